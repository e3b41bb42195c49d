"""Image inputs: where an image comes from, what it is, and what to send RunComfy.

An image argument may be a public https:// URL (probed by reading only its first bytes and
passed through), a data: URI (decoded, checked, passed through), a local file (read, checked,
sent as a data URI) or a URL RunComfy cannot reach (fetched here and inlined, where the
server's policy allows it). Format and size come from the bytes, never from a file name.
"""

from __future__ import annotations

import base64
import binascii
import io
import ipaddress
import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import anyio
import httpx

from runcomfy_mcp.media.guarded_http import (
    FetchRefusedError,
    FetchSlots,
    Resolver,
    content_coding,
    is_public_address,
    plain_chunks,
    resolve_host,
)

MIB = 1024 * 1024
SUPPORTED_FORMATS = ("jpeg", "png", "webp")
FORMAT_NAMES = {"jpeg": "JPEG", "png": "PNG", "webp": "WebP"}
PROBE_LIMIT = 256 * 1024  # header bytes read to learn format and dimensions
DEFAULT_MAX_IMAGE_BYTES = 50 * MIB  # RunComfy's recommended ceiling when a model sets none
REQUEST_CAP = 64 * MIB  # a whole request, as RunComfy's own clients keep it
MAX_REDIRECTS = 5
_PROBE_STEPS = (64, 1024, 16 * 1024, 64 * 1024, PROBE_LIMIT)
_WINDOWS_PATH = re.compile(r"^[A-Za-z]:[\\/]")


class MediaError(Exception):
    """An image that cannot be used; `reason` completes '<field>: <the image> …'."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ImageFacts:
    format: str
    width: int
    height: int
    size_bytes: int

    @property
    def size_mb(self) -> float:
        return self.size_bytes / MIB

    @property
    def mime(self) -> str:
        return f"image/{self.format}"


@dataclass(frozen=True)
class LoadedImage:
    facts: ImageFacts
    send_as: str  # the value to send RunComfy: the original, or a data URI
    note: str | None = None


@dataclass(frozen=True)
class MediaPolicy:
    """What this server may read on the caller's behalf (stdio: their machine; HTTP: nothing local)."""

    local_files: bool = True
    fetch_private_urls: bool = True
    offline: bool = False  # sandbox mode: nothing on the internet is fetched
    input_roots: tuple[Path, ...] = ()  # where local files may come from; empty means anywhere


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _is_loopback_literal(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _opened_path(fd: int, fallback: Path) -> Path:
    """Where an open file really is: asked of the kernel, so a path swapped after opening cannot lie."""
    if sys.platform.startswith("linux"):
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    if sys.platform == "darwin":
        import fcntl

        raw = fcntl.fcntl(fd, fcntl.F_GETPATH, b"\0" * 1024)  # type: ignore[attr-defined]
        return Path(raw.rstrip(b"\0").decode())
    return fallback


def identify(head: bytes, *, complete: bool) -> tuple[str, int, int] | None:
    """(format, width, height) from an image's first bytes; None if more bytes are needed."""
    import filetype  # type: ignore[import-untyped]  # loaded on the first image, not at start-up
    import imagesize  # type: ignore[import-untyped]

    kind = filetype.guess(head[:8192]) if head else None
    if kind is None or not kind.mime.startswith("image/"):
        if len(head) < 262 and not complete:
            return None
        if head.lstrip()[:1] == b"<" or head.lstrip()[:1] == b"{":
            raise MediaError("is a web page or text document, not an image")
        raise MediaError("is not an image (the bytes match no image format)")
    fmt = {"jpg": "jpeg"}.get(kind.extension, kind.extension)
    if fmt not in SUPPORTED_FORMATS:
        raise MediaError(f"is a {fmt.upper()} image; only JPEG, PNG and WebP are accepted. Convert it to JPEG or PNG")
    try:
        width, height = imagesize.get(io.BytesIO(head), exif_rotation=False)
    except Exception:  # hostile or truncated headers make the parser raise all sorts
        width = height = -1
    if width > 0 and height > 0:
        return fmt, int(width), int(height)
    if complete or len(head) >= PROBE_LIMIT:
        raise MediaError(f"is a damaged or truncated {FORMAT_NAMES[fmt]} file: its dimensions cannot be read")
    return None


def _ends_properly(fmt: str, data: bytes) -> bool:
    """Whether a whole file carries its format's end marker (a cut-off download or copy does not)."""
    if fmt == "jpeg":
        return data.rfind(b"\xff\xd9") > 2
    if fmt == "png":
        return data.rfind(b"IEND") > 8
    return int.from_bytes(data[4:8], "little") + 8 <= len(data)  # WebP: the RIFF size


def _facts(data: bytes) -> ImageFacts:
    found = identify(data, complete=True)
    assert found is not None
    if not _ends_properly(found[0], data):
        raise MediaError(f"is a truncated {FORMAT_NAMES[found[0]]} file: it ends before the image does")
    return ImageFacts(found[0], found[1], found[2], len(data))


def _data_uri(facts: ImageFacts, data: bytes) -> str:
    return f"data:{facts.mime};base64,{base64.b64encode(data).decode('ascii')}"


SHRINK_HINT = "Re-save it smaller (e.g. JPEG at quality 85, at most 2048 px on the long side) and try again."


class ImageTooLargeError(MediaError):
    def __init__(self, size_bytes: int, cap_bytes: int) -> None:
        super().__init__(
            f"is {size_bytes / MIB:.1f} MB, over the {cap_bytes / MIB:g} MB this input allows. {SHRINK_HINT}"
        )
        self.size_bytes = size_bytes


class ImageLoader:
    """Loads image arguments. URL fetches are bounded: a total deadline, a byte cap, and `slots` per caller."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        policy: MediaPolicy,
        resolver: Resolver = resolve_host,
        *,
        deadline_s: float,
        slots: FetchSlots,
    ) -> None:
        self._http = http
        self.policy = policy
        self._resolve = resolver
        self.deadline_s = deadline_s
        self.slots = slots

    async def load(self, value: str, *, max_bytes: int, owner: str = "local") -> LoadedImage:
        text = value.strip()
        lowered = text[:8].lower()
        try:
            if lowered.startswith("data:"):
                return self._from_data_uri(text, max_bytes)
            if lowered.startswith("file://") or text.startswith(("/", "~")) or _WINDOWS_PATH.match(text):
                return await self._from_file(text, max_bytes)
            if lowered.startswith(("http://", "https://")):
                return await self._from_url(text, max_bytes, owner)
        except (ValueError, httpx.InvalidURL) as exc:  # a NUL byte, a broken [IPv6] host, an unencodable name
            what = "path" if not lowered.startswith(("http://", "https://")) else "URL"
            raise MediaError(f"is not a valid {what} ({shortened(str(exc), 80)})") from None
        raise MediaError(
            "is not an image reference: give a public https:// URL, a data: URI, or the absolute path of a "
            "local image file"
        )

    # ---------------------------------------------------------------- sources

    def _from_data_uri(self, uri: str, max_bytes: int) -> LoadedImage:
        header, sep, payload = uri.partition(",")
        if not sep or ";base64" not in header.lower():
            raise MediaError("is a data: URI that is not base64-encoded (expected data:image/png;base64,...)")
        if len(payload) * 3 // 4 > max_bytes + 3:
            raise ImageTooLargeError(len(payload) * 3 // 4, max_bytes)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise MediaError("is a data: URI whose base64 payload is damaged") from None
        facts = _facts(data)
        return LoadedImage(facts, uri)

    async def _from_file(self, text: str, max_bytes: int) -> LoadedImage:
        if not self.policy.local_files:
            raise MediaError(
                "is a local file path, but this server runs over HTTP and does not read files from its host. "
                "Give a public https:// URL or a data: URI instead"
            )
        path = Path(unquote(urlsplit(text).path) if text.lower().startswith("file://") else text).expanduser()
        data = await anyio.to_thread.run_sync(self._read_file, path, max_bytes)
        facts = _facts(data)
        note = f"{path.name} ({facts.size_mb:.1f} MB) was read from disk and sent inline as a data URI."
        return LoadedImage(facts, _data_uri(facts, data), note)

    def _read_file(self, path: Path, max_bytes: int) -> bytes:
        """Open once, then check what was opened: a path swapped between a check and the read cannot leak a file."""
        try:
            real = path.resolve()
            self._check_root(real)  # an early, plain answer for paths that lead outside
            fd = os.open(real, _OPEN_FLAGS)  # no symlink at the last step: that would be a swap since resolve()
        except FileNotFoundError:
            raise MediaError("does not exist. Check the path (it must be absolute or start with ~)") from None
        except PermissionError:
            raise MediaError("cannot be read (permission denied)") from None
        except OSError as exc:
            raise MediaError(
                f"cannot be opened ({exc.strerror or exc}); it may have changed while being read"
            ) from None
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise MediaError("is a folder, not an image file")
            if not stat.S_ISREG(info.st_mode):
                raise MediaError("is not a regular file (a device, pipe or socket)")
            self._check_root(_opened_path(fd, real))
            if info.st_size > max_bytes:
                raise ImageTooLargeError(info.st_size, max_bytes)
            with os.fdopen(os.dup(fd), "rb") as file:
                data = file.read(max_bytes + 1)
        finally:
            os.close(fd)
        if len(data) > max_bytes:
            raise ImageTooLargeError(len(data), max_bytes)
        return data

    def _check_root(self, real: Path) -> None:
        if not self.policy.input_roots:
            return
        for root in self.policy.input_roots:
            if real.is_relative_to(root.expanduser().resolve()):
                return
        allowed = ", ".join(str(r) for r in self.policy.input_roots)
        raise MediaError(
            f"is outside the folders this server may read ({allowed}). Move the image into one of them, or add "
            "its folder to RUNCOMFY_INPUT_ROOTS in the server's environment"
        )

    async def _from_url(self, url: str, max_bytes: int, owner: str) -> LoadedImage:
        if self.policy.offline and not _is_loopback_literal(urlsplit(url).hostname or ""):
            raise MediaError(
                "is not on this machine, and sandbox mode works offline. Give the path of a local image file or a "
                "data: URI instead"
            )
        try:
            with self.slots.take(owner), anyio.fail_after(self.deadline_s):
                return await self._fetch_url(url, max_bytes)
        except TimeoutError:
            raise MediaError(
                f"did not finish answering within {self.deadline_s:g} s (a slow or stalled host). Use a faster "
                "host, or a local file"
            ) from None
        except FetchRefusedError as exc:
            raise MediaError(exc.reason) from exc

    async def _fetch_url(self, url: str, max_bytes: int) -> LoadedImage:
        """Probed and passed through when RunComfy can reach it; otherwise fetched whole and inlined, if allowed."""
        if not await self._unreachable_by_runcomfy(url):
            return LoadedImage(await self._probe(url, max_bytes), url)
        if not self.policy.fetch_private_urls:
            raise MediaError(
                "is on a private network or plain http://, which RunComfy cannot fetch; and this server, shared "
                "over HTTP, does not fetch internal addresses for callers. Upload the image somewhere public (https) "
                "or send it as a data: URI"
            )
        data = await self._download(url, max_bytes)
        facts = _facts(data)
        note = (
            f"{shortened(url)} is not reachable by RunComfy (private network or plain http), so it was fetched by "
            "this server and sent inline as a data URI."
        )
        return LoadedImage(facts, _data_uri(facts, data), note)

    # ---------------------------------------------------------------- network

    async def _unreachable_by_runcomfy(self, url: str) -> bool:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if not host:
            raise MediaError("has no host name")
        if parts.scheme == "http" or host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            return True
        try:
            return not is_public_address(host)
        except ValueError:
            pass  # a name, not an address literal
        try:
            addresses = await self._resolve(host)
        except OSError:
            raise MediaError(f"cannot be fetched: the host name {host!r} does not resolve") from None
        return not all(is_public_address(a) for a in addresses)

    async def _open(self, url: str) -> httpx.Response:
        """GET with redirects followed by hand, so every hop is checked like the first."""
        for _ in range(MAX_REDIRECTS + 1):
            # identity: a compressed answer could inflate far past the size caps before they are checked
            headers = {"Accept": "image/*", "Accept-Encoding": "identity"}
            request = self._http.build_request("GET", url, headers=headers)
            try:
                response = await self._http.send(request, stream=True)
            except httpx.TimeoutException:
                raise MediaError("did not answer in time") from None
            except httpx.TransportError as exc:
                raise MediaError(f"cannot be fetched ({type(exc).__name__})") from None
            if not response.is_redirect:
                self._check_status(response)
                return response
            await response.aclose()
            target = urljoin(url, response.headers.get("location", ""))
            if not self.policy.fetch_private_urls and await self._unreachable_by_runcomfy(target):
                raise MediaError("redirects to a private address, which this server will not fetch")
            url = target
        raise MediaError("redirects too many times")

    @staticmethod
    def _check_status(response: httpx.Response) -> None:
        code = response.status_code
        if code in (401, 403, 407):
            raise MediaError(
                f"needs a login or refuses outside requests (HTTP {code}); RunComfy will not be able "
                "to fetch it either. Use a public or pre-signed URL, or a local file"
            )
        if code == 404:
            raise MediaError("was not found (HTTP 404)")
        if code >= 400:
            raise MediaError(f"answered HTTP {code}; it must answer a plain GET with the image")

    async def _probe(self, url: str, max_bytes: int) -> ImageFacts:
        response = await self._open(url)
        try:
            if "text/html" in response.headers.get("content-type", ""):
                raise MediaError("is a web page, not an image. Use the address of the image itself")
            head = bytearray()
            found = None
            steps = iter(_PROBE_STEPS)
            target = next(steps)
            encoded = content_coding(response) != "identity"
            chunks = aiter(plain_chunks(response))
            exhausted = True
            async for chunk in chunks:
                head += chunk
                if len(head) >= target:
                    found = identify(bytes(head[:PROBE_LIMIT]), complete=False)
                    if found:
                        exhausted = False
                        break
                    target = next(steps, PROBE_LIMIT)
                    if len(head) > PROBE_LIMIT:
                        break  # identify() has had all it ever reads
            if found is None:
                found = identify(bytes(head[:PROBE_LIMIT]), complete=True)
            assert found is not None
            length = response.headers.get("content-length")
            size = len(head)
            if length and length.isdigit() and not encoded:
                size = int(length)
            elif not exhausted:
                async for chunk in chunks:  # count the rest, keeping none of it
                    size += len(chunk)
                    if size > max_bytes:
                        break
            return ImageFacts(found[0], found[1], found[2], size)
        finally:
            await response.aclose()

    async def _download(self, url: str, max_bytes: int) -> bytes:
        response = await self._open(url)
        try:
            data = bytearray()
            async for chunk in plain_chunks(response):
                data += chunk
                if len(data) > max_bytes:
                    raise ImageTooLargeError(len(data), max_bytes)
            return bytes(data)
        finally:
            await response.aclose()


def shortened(text: str, limit: int = 100) -> str:
    """`text` cut to `limit` characters, for naming a long URL or value in a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_source(value: Any) -> str:
    """How an image argument is named in messages: never a whole data URI."""
    text = str(value).strip()
    if text[:5].lower() == "data:":
        return "the data: URI"
    return shortened(text, 80)
