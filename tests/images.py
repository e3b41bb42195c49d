"""Real image files made in the tests, and a fake public image host that counts what it serves."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from functools import lru_cache

import httpx
from PIL import Image

PUBLIC_HOST = "images.example.com"
PRIVATE_HOST = "nas.home.arpa"
FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP", "gif": "GIF", "bmp": "BMP"}


@lru_cache(maxsize=64)
def make_image(width: int, height: int, ext: str = "png") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (40, 90, 160)).save(buffer, FORMATS[ext])
    return buffer.getvalue()


MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00\x00\x00\x08free"


def make_media(kind: str, size: int = 50_000) -> bytes:
    """Bytes that sniff as an MP4 video or a WAV sound, `size` long."""
    if kind == "video":
        return padded(MP4_HEAD, size)
    from runcomfy_mcp.sandbox.simulator import tone

    return padded(tone(), size)


def padded(data: bytes, total: int) -> bytes:
    """The image followed by filler bytes up to `total`: same header, any file size."""
    return data + b"\0" * max(0, total - len(data))


def image_url(width: int, height: int, ext: str = "png", **query: object) -> str:
    suffix = "&".join(f"{k}={v}" for k, v in query.items())
    return f"https://{PUBLIC_HOST}/{width}x{height}.{ext}" + (f"?{suffix}" if suffix else "")


async def fake_resolver(host: str) -> list[str]:
    if host == PUBLIC_HOST:
        return ["93.184.216.34"]
    if host == PRIVATE_HOST:
        return ["192.168.1.20"]
    raise OSError(f"cannot resolve {host}")


class FakeImageHost:
    """Serves `/{w}x{h}.{ext}` images; `?pad=N` pads to N bytes, `?nolength=1` streams without a length."""

    def __init__(self) -> None:
        self.bytes_sent: dict[str, int] = {}
        self.requests: list[str] = []
        self._loopback = httpx.AsyncHTTPTransport()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "127.0.0.1":  # the API simulator's file host, on loopback
            return await self._loopback.handle_async_request(request)
        url = str(request.url)
        self.requests.append(url)
        path = request.url.path
        if path == "/broken.mp4":
            return httpx.Response(200, headers={"content-length": "9999999"}, content=self._broken_stream())
        if path == "/private.png":
            return httpx.Response(403, text="login required")
        if path == "/page.html":
            return httpx.Response(200, text="<html><body>hi</body></html>", headers={"content-type": "text/html"})
        if path == "/moved.png":
            return httpx.Response(302, headers={"location": "/640x480.png"})
        if path == "/garbage.png":
            return httpx.Response(200, content=b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00")
        if path in ("/clip.mp4", "/voice.wav"):
            media = make_media("video" if path.endswith("mp4") else "audio")
            return httpx.Response(200, headers={"content-length": str(len(media))}, content=media)
        match = re.fullmatch(r"/(\d+)x(\d+)\.(\w+)", path)
        if not match:
            return httpx.Response(404, text="not found")
        data = make_image(int(match[1]), int(match[2]), match[3])
        pad = request.url.params.get("pad")
        if pad:
            data = padded(data, int(pad))
        headers = {"content-type": f"image/{match[3]}"}
        if not request.url.params.get("nolength"):
            headers["content-length"] = str(len(data))
        return httpx.Response(200, headers=headers, content=self._stream(url, data))

    async def _stream(self, url: str, data: bytes) -> AsyncIterator[bytes]:
        self.bytes_sent[url] = 0
        for start in range(0, len(data), 16 * 1024):
            chunk = data[start : start + 16 * 1024]
            self.bytes_sent[url] += len(chunk)
            yield chunk

    @staticmethod
    async def _broken_stream() -> AsyncIterator[bytes]:
        yield b"\0" * 100_000
        raise httpx.ReadError("connection reset by peer")
