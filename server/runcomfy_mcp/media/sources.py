"""Media inputs (images, videos, sounds): where one comes from, what it is, and what to send RunComfy.

A media argument may be a public https:// URL (probed by reading only its first bytes and
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import anyio
import httpx

from runcomfy_mcp.domain.amounts import MIB, file_size
from runcomfy_mcp.domain.media_rules import FORMAT_NAMES, MediaFacts, MediaKind
from runcomfy_mcp.errors import FetchRefusedError, MediaError, MediaTooLargeError
from runcomfy_mcp.media.guarded_http import (
    FetchSlots,
    Resolver,
    content_coding,
    is_public_address,
    plain_chunks,
    resolve_host,
    transport_failures,
)

SUPPORTED_FORMATS = tuple(FORMAT_NAMES)  # the image formats this server can read the size of
PROBE_LIMIT = 256 * 1024  # header bytes read to learn format and dimensions
DEFAULT_MAX_BYTES: dict[MediaKind, int] = {
    "image": 50 * MIB,
    "video": 100 * MIB,
    "audio": 100 * MIB,
}  # RunComfy's advice
# Videos and sounds from disk travel inside the request as base64 (4/3 larger): at most this much each.
MAX_INLINE_AV_BYTES = 32 * MIB
REQUEST_CAP = 64 * MIB  # a whole request, as RunComfy's own clients keep it
MAX_REDIRECTS = 5
_PROBE_STEPS = (64, 1024, 16 * 1024, 64 * 1024, PROBE_LIMIT)
_WINDOWS_PATH = re.compile(r"^[A-Za-z]:[\\/]")


def too_large(size_bytes: int, cap_bytes: int, hint: str) -> MediaTooLargeError:
    return MediaTooLargeError(
        f"is {file_size(size_bytes)}, over the {file_size(cap_bytes)} this input allows. {hint}", size_bytes
    )


@dataclass(frozen=True)
class LoadedMedia:
    facts: MediaFacts
    send_as: str  # the value to send RunComfy: the original, or a data URI
    note: str | None = None


@dataclass(frozen=True)
class MediaPolicy:
    """What this server may read on the caller's behalf (stdio: their machine; HTTP: nothing local)."""

    local_files: bool = True
    fetch_private_urls: bool = True
    offline: bool = False  # sandbox mode: nothing on the internet is fetched
    input_roots: tuple[Path, ...] = ()  # where local files may come from; empty means anywhere

    def check_root(self, real: Path) -> None:
        """Raises MediaError unless the resolved path `real` is inside an input root (or no root is set)."""
        if not self.input_roots:
            return
        for root in self.input_roots:
            if real.is_relative_to(root.expanduser().resolve()):
                return
        allowed = ", ".join(str(r) for r in self.input_roots)
        raise MediaError(
            f"is outside the folders this server may read ({allowed}). Move the file into one of them, or add "
            "its folder to RUNCOMFY_INPUT_ROOTS in the server's environment"
        )


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
    import filetype  # type: ignore[import-untyped]
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


def identify_av(head: bytes, kind: MediaKind, *, complete: bool) -> tuple[str, str] | None:
    """(format, mime) of a video or sound from its first bytes; None if more bytes are needed."""
    import filetype

    found = filetype.guess(head[:8192]) if head else None
    if found is None:
        if len(head) < 262 and not complete:
            return None
        if head.lstrip()[:1] in (b"<", b"{"):
            raise MediaError(f"is a web page or text document, not {a_or_an(kind)} file")
        raise MediaError(f"is not {a_or_an(kind)} file (the bytes match no {kind} format)")
    if found.mime.startswith(f"{kind}/"):
        return found.extension, found.mime
    what = found.mime.split("/")[0]
    raise MediaError(f"is {a_or_an(what)} ({found.extension}) file, not {a_or_an(kind)} file")


def _sniff(head: bytes, kind: MediaKind, *, complete: bool) -> MediaFacts | None:
    """What the first bytes say (size still unknown), or None if more are needed."""
    if kind == "image":
        image = identify(head, complete=complete)
        return MediaFacts("image", image[0], 0, image[1], image[2], f"image/{image[0]}") if image else None
    av = identify_av(head, kind, complete=complete)
    return MediaFacts(kind, av[0], 0, mime=av[1]) if av else None


def _ends_properly(fmt: str, data: bytes) -> bool:
    """Whether a whole file carries its format's end marker (a cut-off download or copy does not)."""
    if fmt == "jpeg":
        return data.rfind(b"\xff\xd9") > 2
    if fmt == "png":
        return data.rfind(b"IEND") > 8
    return int.from_bytes(data[4:8], "little") + 8 <= len(data)  # WebP: the RIFF size


def _facts(data: bytes, kind: MediaKind) -> MediaFacts:
    if kind != "image":
        av = identify_av(data, kind, complete=True)
        assert av is not None
        return MediaFacts(kind, av[0], len(data), mime=av[1])
    found = identify(data, complete=True)
    assert found is not None
    if not _ends_properly(found[0], data):
        raise MediaError(f"is a truncated {FORMAT_NAMES[found[0]]} file: it ends before the image does")
    return MediaFacts("image", found[0], len(data), found[1], found[2], f"image/{found[0]}")


def _data_uri(facts: MediaFacts, data: bytes) -> str:
    return f"data:{facts.mime};base64,{base64.b64encode(data).decode('ascii')}"


SHRINK_HINT = "Re-save it smaller (e.g. JPEG at quality 85, at most 2048 px on the long side) and try again."


def _inline_limit(max_bytes: int, kind: MediaKind) -> tuple[int, str]:
    """The cap for a file that travels inside the request, and what to say beyond it."""
    if kind == "image" or max_bytes <= MAX_INLINE_AV_BYTES:
        return max_bytes, SHRINK_HINT
    return MAX_INLINE_AV_BYTES, (
        f"A {kind} that is not at a public https:// URL is sent inside the request, which works up to "
        f"{MAX_INLINE_AV_BYTES / MIB:g} MB: upload it somewhere public (https) and give its URL instead."
    )


class MediaLoader:
    """Loads media arguments. URL fetches are bounded: a total deadline, a byte cap, and `slots` per caller."""

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

    async def load(self, value: str, *, max_bytes: int, owner: str = "local", kind: MediaKind = "image") -> LoadedMedia:
        """`max_bytes` bounds the file; a video or sound that must travel inline is held to MAX_INLINE_AV_BYTES."""
        text = value.strip()
        lowered = text[:8].lower()
        try:
            if lowered.startswith("data:"):
                return self._from_data_uri(text, max_bytes, kind)
            if lowered.startswith("file://") or text.startswith(("/", "~")) or _WINDOWS_PATH.match(text):
                return await self._from_file(text, max_bytes, kind)
            if lowered.startswith(("http://", "https://")):
                return await self._from_url(text, max_bytes, owner, kind)
        except (ValueError, httpx.InvalidURL) as exc:  # a NUL byte, a broken [IPv6] host, an unencodable name
            what = "path" if not lowered.startswith(("http://", "https://")) else "URL"
            raise MediaError(f"is not a valid {what} ({shortened(str(exc), 80)})") from exc
        raise MediaError(
            f"is not {a_or_an(kind)} reference: give a public https:// URL, a data: URI, "
            f"or the absolute path of a local {kind} file"
        )

    # ---------------------------------------------------------------- sources

    def _from_data_uri(self, uri: str, max_bytes: int, kind: MediaKind) -> LoadedMedia:
        header, sep, payload = uri.partition(",")
        if not sep or ";base64" not in header.lower():
            raise MediaError("is a data: URI that is not base64-encoded (expected data:image/png;base64,...)")
        if len(payload) * 3 // 4 > max_bytes + 3:
            raise too_large(len(payload) * 3 // 4, max_bytes, SHRINK_HINT)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MediaError("is a data: URI whose base64 payload is damaged") from exc
        facts = _facts(data, kind)
        return LoadedMedia(facts, uri)

    async def _from_file(self, text: str, max_bytes: int, kind: MediaKind) -> LoadedMedia:
        if not self.policy.local_files:
            raise MediaError(
                "is a local file path, but this server runs over HTTP and does not read files from its host. "
                "Give a public https:// URL or a data: URI instead"
            )
        path = Path(unquote(urlsplit(text).path) if text.lower().startswith("file://") else text).expanduser()
        cap, hint = _inline_limit(max_bytes, kind)
        data = await anyio.to_thread.run_sync(self._read_file, path, cap, hint)
        facts = _facts(data, kind)
        note = f"{path.name} ({file_size(facts.size_bytes)}) was read from disk and sent inline as a data URI."
        return LoadedMedia(facts, _data_uri(facts, data), note)

    def _read_file(self, path: Path, max_bytes: int, hint: str) -> bytes:
        """Open once, then check what was opened: a path swapped between a check and the read cannot leak a file."""
        try:
            real = path.resolve()
            self._check_root(real)  # an early, plain answer for paths that lead outside
            fd = os.open(real, _OPEN_FLAGS)  # no symlink at the last step: that would be a swap since resolve()
        except FileNotFoundError as exc:
            raise MediaError("does not exist. Check the path (it must be absolute or start with ~)") from exc
        except PermissionError as exc:
            raise MediaError("cannot be read (permission denied)") from exc
        except OSError as exc:
            raise MediaError(f"cannot be opened ({exc.strerror or exc}); it may have changed while being read") from exc
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise MediaError("is a folder, not a file")
            if not stat.S_ISREG(info.st_mode):
                raise MediaError("is not a regular file (a device, pipe or socket)")
            self._check_root(_opened_path(fd, real))
            if info.st_size > max_bytes:
                raise too_large(info.st_size, max_bytes, hint)
            with os.fdopen(os.dup(fd), "rb") as file:
                data = file.read(max_bytes + 1)
        finally:
            os.close(fd)
        if len(data) > max_bytes:
            raise too_large(len(data), max_bytes, hint)
        return data

    def _check_root(self, real: Path) -> None:
        self.policy.check_root(real)

    async def _from_url(self, url: str, max_bytes: int, owner: str, kind: MediaKind) -> LoadedMedia:
        if self.policy.offline and not _is_loopback_literal(urlsplit(url).hostname or ""):
            raise MediaError(
                "is not on this machine, and sandbox mode works offline. Give the path of a local file or a "
                "data: URI instead"
            )
        try:
            with self.slots.take(owner), anyio.fail_after(self.deadline_s):
                return await self._fetch_url(url, max_bytes, kind)
        except TimeoutError as exc:
            raise MediaError(
                f"did not finish answering within {self.deadline_s:g} s (a slow or stalled host). Use a faster "
                "host, or a local file"
            ) from exc
        except FetchRefusedError as exc:
            raise MediaError(exc.reason) from exc

    async def _fetch_url(self, url: str, max_bytes: int, kind: MediaKind) -> LoadedMedia:
        """Probed and passed through when RunComfy can reach it; otherwise fetched whole and inlined, if allowed."""
        if not await self._unreachable_by_runcomfy(url):
            return LoadedMedia(await self._probe(url, max_bytes, kind), url)
        if not self.policy.fetch_private_urls:
            raise MediaError(
                "is on a private network or plain http://, which RunComfy cannot fetch; and this server, shared "
                "over HTTP, does not fetch internal addresses for callers. Upload the file somewhere public (https) "
                "or send it as a data: URI"
            )
        data = await self._download(url, *_inline_limit(max_bytes, kind))
        facts = _facts(data, kind)
        note = (
            f"{shortened(url)} is not reachable by RunComfy (private network or plain http), so it was fetched by "
            "this server and sent inline as a data URI."
        )
        return LoadedMedia(facts, _data_uri(facts, data), note)

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
        except OSError as exc:
            raise MediaError(f"cannot be fetched: the host name {host!r} does not resolve") from exc
        return not all(is_public_address(a) for a in addresses)

    async def _open(self, url: str) -> httpx.Response:
        """GET with redirects followed by hand, so every hop is checked like the first."""
        for _ in range(MAX_REDIRECTS + 1):
            # identity: a compressed answer could inflate far past the size caps before they are checked
            headers = {"Accept": "*/*", "Accept-Encoding": "identity"}
            request = self._http.build_request("GET", url, headers=headers)
            with transport_failures():
                response = await self._http.send(request, stream=True)
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
            raise MediaError(f"answered HTTP {code}; it must answer a plain GET with the file itself")

    async def _probe(self, url: str, max_bytes: int, kind: MediaKind) -> MediaFacts:
        response = await self._open(url)
        try:
            if "text/html" in response.headers.get("content-type", ""):
                raise MediaError(f"is a web page, not {a_or_an(kind)}. Use the address of the file itself")
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
                    found = _sniff(bytes(head[:PROBE_LIMIT]), kind, complete=False)
                    if found:
                        exhausted = False
                        break
                    target = next(steps, PROBE_LIMIT)
                    if len(head) > PROBE_LIMIT:
                        break  # identify() has had all it ever reads
            if found is None:
                found = _sniff(bytes(head[:PROBE_LIMIT]), kind, complete=True)
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
            return replace(found, size_bytes=size)
        finally:
            await response.aclose()

    async def _download(self, url: str, max_bytes: int, hint: str) -> bytes:
        response = await self._open(url)
        try:
            data = bytearray()
            async for chunk in plain_chunks(response):
                data += chunk
                if len(data) > max_bytes:
                    raise too_large(len(data), max_bytes, hint)
            return bytes(data)
        finally:
            await response.aclose()


def a_or_an(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def shortened(text: str, limit: int = 100) -> str:
    """`text` cut to `limit` characters, for naming a long URL or value in a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_source(value: Any) -> str:
    """How a media argument is named in messages: never a whole data URI."""
    text = str(value).strip()
    if text[:5].lower() == "data:":
        return "the data: URI"
    return shortened(text, 80)
