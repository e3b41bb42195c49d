"""Saves a job's output files to the output folder: streamed, in constant memory, complete or not at all.

Output URLs come from the upstream, so they are treated like any stranger's URL: each download has
a size cap and a total deadline, and a shared (HTTP) server fetches only from the API's own host
and the configured output hosts.
"""

from __future__ import annotations

import fnmatch
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import anyio
import httpx

from runcomfy_mcp.domain.amounts import MIB, file_size
from runcomfy_mcp.domain.ids import check_request_id
from runcomfy_mcp.domain.outputs import SUFFIX_KINDS, Output
from runcomfy_mcp.errors import DownloadError, FetchInterruptedError, FetchRefusedError, RetryableError
from runcomfy_mcp.media.guarded_http import plain_chunks, transport_failures
from runcomfy_mcp.media.sources import shortened
from runcomfy_mcp.upstream.retries import RetryPolicy, retrying

WRITE_BATCH = 2 * MIB  # what one hop to the writer thread writes
BATCHES_AHEAD = 4  # received but not yet written, at most: memory stays under (BATCHES_AHEAD + 2) × WRITE_BATCH
DEFAULT_SUFFIX = {"video": ".mp4", "image": ".png", "audio": ".mp3", "file": ".bin"}


def output_stem(request_id: str, index: int, count: int) -> str:
    """`<request_id>`, or `<request_id>-2` when a job has several outputs. Never a path."""
    return f"{check_request_id(request_id)}{'' if count == 1 else f'-{index + 1}'}"


def url_suffix(output: Output) -> str | None:
    """The URL's extension when it fits the output's kind (`.png` for an image), else None."""
    suffix = PurePosixPath(urlsplit(output.url).path).suffix.lower()
    return suffix if SUFFIX_KINDS.get(suffix) == output.kind else None


def sniffed_suffix(head: bytes, kind: str) -> str:
    """The extension the file's first bytes say, else the kind's usual one."""
    import filetype  # type: ignore[import-untyped]

    found = filetype.guess(head) if head else None
    return f".{found.extension}" if found else DEFAULT_SUFFIX.get(kind, ".bin")


@dataclass(frozen=True)
class OutputHosts:
    """Where output files may be fetched from. `patterns` None: anywhere (the local user's own server)."""

    api_origin: tuple[str, str, int | None] | None = None  # (scheme, host, port) of the API itself
    patterns: tuple[str, ...] | None = None

    @classmethod
    def shared(cls, api_base_url: str, patterns: Iterable[str]) -> OutputHosts:
        parts = urlsplit(api_base_url)
        origin = (parts.scheme, (parts.hostname or "").lower(), parts.port)
        return cls(api_origin=origin, patterns=tuple(patterns))

    def allows(self, url: str) -> bool:
        if self.patterns is None:
            return True
        try:
            parts = urlsplit(url)
            host, port = (parts.hostname or "").lower(), parts.port
        except ValueError:
            return False
        if self.api_origin == (parts.scheme, host, port):
            return True
        return parts.scheme == "https" and any(fnmatch.fnmatchcase(host, p) for p in self.patterns)

    def describe(self) -> str:
        return ", ".join(self.patterns or ()) + " and the API's own host"


@dataclass(frozen=True)
class DownloadLimits:
    max_bytes: int
    deadline_s: float  # one file, first byte to last


class Downloader:
    def __init__(
        self,
        http: httpx.AsyncClient,
        output_dir: Path,
        retry: RetryPolicy,
        *,
        limits: DownloadLimits,
        hosts: OutputHosts | None = None,
        reveal_paths: bool = True,
    ) -> None:
        self._http = http
        self.output_dir = output_dir
        self.retry = retry
        self.limits = limits
        self.hosts = hosts or OutputHosts()
        self.reveal_paths = reveal_paths  # False when the caller is remote: the server's folders are not theirs

    async def save_all(self, request_id: str, outputs: list[Output]) -> list[Path]:
        return [await self.save(request_id, output, i, len(outputs)) for i, output in enumerate(outputs)]

    async def save(self, request_id: str, output: Output, index: int = 0, count: int = 1) -> Path:
        url = output.url
        if not self.hosts.allows(url):
            raise DownloadError(
                f"The output file {shortened(url)} is not on RunComfy's file hosts ({self.hosts.describe()}), and this "
                "server, shared over HTTP, downloads only from those, so nothing was saved. The URL is in the result; "
                "an operator who trusts that host can add it to RUNCOMFY_OUTPUT_HOSTS."
            )
        folder = anyio.Path(self.output_dir.expanduser())
        await folder.mkdir(parents=True, exist_ok=True)
        stem, suffix = output_stem(request_id, index, count), url_suffix(output)
        async for earlier in folder.glob(f"{stem}{suffix or '.*'}"):
            if (await earlier.stat()).st_size > 0:
                return Path(earlier)  # saved before: never fetched twice
        return Path(await retrying(self.retry, lambda: self._fetch(output, folder, stem, suffix)))

    async def _fetch(self, output: Output, folder: anyio.Path, stem: str, suffix: str | None) -> anyio.Path:
        url = output.url
        partial = folder / f".{stem}.{secrets.token_hex(4)}.part"
        try:
            with anyio.fail_after(self.limits.deadline_s), transport_failures():
                head = await self._stream_to(url, partial)
            final = folder / f"{stem}{suffix or sniffed_suffix(head, output.kind)}"
            await anyio.to_thread.run_sync(os.replace, partial, final)
            return final
        except TimeoutError as exc:
            raise DownloadError(
                f"Downloading {shortened(url)} did not finish within {self.limits.deadline_s:g} s, so nothing was "
                "saved. The file host may be slow; try the download again later."
            ) from exc
        except FetchInterruptedError as exc:
            raise RetryableError(
                f"Downloading {shortened(url)} was interrupted ({exc.transport}); nothing was saved. "
                "Try the download again."
            ) from exc
        except FetchRefusedError as exc:
            raise DownloadError(f"Downloading {shortened(url)} was refused: the URL {exc.reason}.") from exc
        except OSError as exc:
            where = str(folder) if self.reveal_paths else "the server's output folder"
            raise DownloadError(
                f"Saving the file to {where} failed ({exc.strerror or type(exc).__name__}). Check that the folder "
                "is writable and has space, or set RUNCOMFY_OUTPUT_DIR to another folder."
            ) from exc
        finally:
            with anyio.CancelScope(shield=True):
                if await partial.exists():
                    await partial.unlink()

    async def _stream_to(self, url: str, partial: anyio.Path) -> bytes:
        """Streams the file into `partial`; returns its first bytes, which say what it is."""
        headers = {"Accept-Encoding": "identity"}  # a compressed answer must not inflate past the size cap
        async with self._http.stream("GET", url, headers=headers) as response:
            if response.status_code in (408, 429) or response.status_code >= 500:
                raise RetryableError(
                    f"Downloading {shortened(url)} failed: the file host answered HTTP {response.status_code}. "
                    "Try the download again in a minute."
                )
            if response.status_code != 200:
                raise DownloadError(
                    f"Downloading {shortened(url)} failed: the file host answered HTTP {response.status_code}. Result "
                    "URLs can expire; call get_result again for fresh URLs, then download again."
                )
            cap = self.limits.max_bytes
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > cap:
                raise self._too_large(url, int(length))
            fd = await anyio.to_thread.run_sync(_create, partial)
            try:
                return await self._receive_into(BatchedFile(fd), response, url)
            finally:
                os.close(fd)  # after the writer's last write: a cancelled download waits for its thread

    async def _receive_into(self, file: BatchedFile, response: httpx.Response, url: str) -> bytes:
        """Receives the body while a worker thread writes what came before; returns its first bytes."""
        cap, total, head = self.limits.max_bytes, 0, b""
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(file.drain)
                try:
                    async for chunk in plain_chunks(response):
                        total += len(chunk)
                        if total > cap:  # a host that sends no length, or lies about it
                            raise self._too_large(url, total)
                        await file.write(chunk)
                        if not head:
                            head = chunk[:4096]
                    await file.flush()
                finally:
                    file.close()
        except BaseExceptionGroup as failed:  # one side failed and the other was cancelled: say what failed
            raise failed.exceptions[0] from None
        return head

    def _too_large(self, url: str, size: int) -> DownloadError:
        over = "more than " if size > self.limits.max_bytes else ""
        return DownloadError(
            f"Downloading {shortened(url)} stopped: the file is {over}{file_size(size)}, over the "
            f"{self.limits.max_bytes / MIB:g} MB this server saves (RUNCOMFY_MAX_DOWNLOAD_MB). Nothing was saved; "
            "the URL in the result still works."
        )


def _create(path: anyio.Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o666)


def _write_all(fd: int, chunks: list[bytes]) -> None:
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view) :]


class BatchedFile:
    """A file written by a worker thread, batch by batch, while the event loop goes on receiving.

    Receiving and writing overlap (each waited on the other before), one thread hop per batch, and a
    bounded queue between them holds the memory to a few batches when the disk is slower than the network.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._batch: list[bytes] = []
        self._batched = 0
        self._to_disk, self._from_loop = anyio.create_memory_object_stream[list[bytes]](BATCHES_AHEAD)

    async def write(self, chunk: bytes) -> None:
        self._batch.append(chunk)  # no join: the chunks go to the file as they are
        self._batched += len(chunk)
        if self._batched >= WRITE_BATCH:
            await self._to_disk.send(self._batch)
            self._batch, self._batched = [], 0

    async def flush(self) -> None:
        """Hands over the last batch."""
        if self._batch:
            await self._to_disk.send(self._batch)
            self._batch, self._batched = [], 0

    def close(self) -> None:
        """Nothing more comes: `drain` ends once what was handed over is written."""
        self._to_disk.close()

    async def drain(self) -> None:
        """Writes batches as they come, until `close`."""
        with self._from_loop:
            async for batch in self._from_loop:
                await anyio.to_thread.run_sync(_write_all, self._fd, batch)
