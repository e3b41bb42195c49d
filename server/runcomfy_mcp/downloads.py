"""Saves a job's output files to the output folder: streamed, in constant memory, complete or not at all."""

from __future__ import annotations

import os
import secrets
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import anyio
import httpx

from runcomfy_mcp.errors import RunComfyError
from runcomfy_mcp.request_ids import check_request_id
from runcomfy_mcp.retries import RetryableError, RetryPolicy, retrying

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".gif")
WRITE_BATCH = 8 * 1024 * 1024


class DownloadError(RunComfyError):
    pass


def output_name(request_id: str, url: str, index: int, count: int) -> str:
    """`<request_id>.mp4`, or `<request_id>-2.mp4` when a job has several outputs. Never a path."""
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    suffix = suffix if suffix in VIDEO_SUFFIXES else ".mp4"
    return f"{check_request_id(request_id)}{'' if count == 1 else f'-{index + 1}'}{suffix}"


class Downloader:
    def __init__(self, http: httpx.AsyncClient, output_dir: Path, retry: RetryPolicy | None = None) -> None:
        self._http = http
        self.output_dir = output_dir
        self.retry = retry or RetryPolicy()

    async def save_all(self, request_id: str, urls: list[str]) -> list[Path]:
        return [await self.save(url, output_name(request_id, url, i, len(urls))) for i, url in enumerate(urls)]

    async def save(self, url: str, name: str) -> Path:
        folder = anyio.Path(self.output_dir.expanduser())
        await folder.mkdir(parents=True, exist_ok=True)
        final = folder / name
        if await final.exists() and (await final.stat()).st_size > 0:
            return Path(final)  # saved before: never fetched twice
        await retrying(self.retry, lambda: self._fetch(url, folder, final))
        return Path(final)

    async def _fetch(self, url: str, folder: anyio.Path, final: anyio.Path) -> None:
        partial = folder / f".{final.name}.{secrets.token_hex(4)}.part"
        try:
            async with self._http.stream("GET", url) as response:
                if response.status_code in (408, 429) or response.status_code >= 500:
                    raise RetryableError(
                        f"Downloading {url} failed: the file host answered HTTP {response.status_code}. "
                        "Try the download again in a minute."
                    )
                if response.status_code != 200:
                    raise DownloadError(
                        f"Downloading {url} failed: the file host answered HTTP {response.status_code}. Result URLs "
                        "can expire; call get_result again for fresh URLs, then download again."
                    )
                async with await anyio.open_file(partial, "wb") as out:
                    # Chunks arrive as the socket gives them; a worker thread writes them in batches so the
                    # event loop never blocks on the disk and pays one thread hop per batch, not per chunk.
                    batch: list[bytes] = []
                    batched = 0
                    async for chunk in response.aiter_raw():
                        batch.append(chunk)
                        batched += len(chunk)
                        if batched >= WRITE_BATCH:
                            await out.writelines(batch)  # no join: the chunks go to the file as they are
                            batch, batched = [], 0
                    if batch:
                        await out.writelines(batch)
            await anyio.to_thread.run_sync(os.replace, partial, final)
        except httpx.TransportError as exc:
            raise RetryableError(
                f"Downloading {url} was interrupted ({type(exc).__name__}); nothing was saved. Try the download again."
            ) from None
        except OSError as exc:
            raise DownloadError(
                f"Saving the video to {folder} failed ({exc.strerror or exc}). Check that the folder is writable and "
                "has space, or set RUNCOMFY_OUTPUT_DIR to another folder."
            ) from None
        finally:
            with anyio.CancelScope(shield=True):
                if await partial.exists():
                    await partial.unlink()
