"""What a caller's finished job made, as a file on this machine: the clips and soundtrack of a film, the video a
frame is taken from.

A source is a request id (a job of the caller's: checked like get_result, so another caller's id is
unknown here), a film's id, or — over stdio only — a local file inside the input folders. Locating
checks everything and fetches nothing, so that every problem of a film's sources is named before any
work; fetching then saves a job's output once into the output folder (bounded like any download) and
reuses it after.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from runcomfy_mcp.core.film_archive import FilmArchive
from runcomfy_mcp.domain.films import is_film_id
from runcomfy_mcp.domain.ids import REQUEST_ID
from runcomfy_mcp.domain.outputs import Output
from runcomfy_mcp.domain.views import Caller, JobResult
from runcomfy_mcp.errors import MediaError, RunComfyError
from runcomfy_mcp.media.downloads import Downloader
from runcomfy_mcp.media.sources import MediaPolicy

SourceKind = Literal["video", "audio"]
ResultReader = Callable[[str, Caller], Awaitable[JobResult]]  # get_result, as the caller


class SourceProblem(RunComfyError):
    """Why a source cannot be used; the message completes '<label>: …'."""


@dataclass(frozen=True)
class Located:
    """A source checked and ready: a file already here, or a job's output still to fetch."""

    source: str
    path: Path | None = None
    request_id: str | None = None
    output: Output | None = None
    index: int = 0
    count: int = 1


def _a(kind: str) -> str:
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"


class JobFiles:
    def __init__(self, results: ResultReader, downloader: Downloader, films: FilmArchive, policy: MediaPolicy) -> None:
        self._results = results
        self.downloader = downloader
        self.films = films
        self.policy = policy

    async def locate(self, source: str, kind: SourceKind, caller: Caller) -> Located:
        """Checks a source without fetching it; raises SourceProblem saying what is wrong and what to do."""
        text = source.strip()
        if is_film_id(text) and REQUEST_ID.match(text):
            if kind != "video":
                raise SourceProblem(f"{text} is a film (a video), not a sound")
            try:
                return Located(text, path=await self.films.file(text, caller))
            except RunComfyError as exc:
                raise SourceProblem(exc.message) from exc
        if REQUEST_ID.match(text):
            return await self._job(text, kind, caller)
        if text.startswith(("/", "~")) or text.lower().startswith("file://"):
            return Located(text, path=self._local(text))
        raise SourceProblem(
            f"{text[:80]!r} is neither a request id of a job of yours nor the absolute path of a local file"
        )

    async def fetch(self, located: Located) -> Path:
        """The located source as a file here: a job's output is downloaded the first time only."""
        if located.path is not None:
            return located.path
        assert located.request_id is not None and located.output is not None
        try:
            return await self.downloader.save(located.request_id, located.output, located.index, located.count)
        except RunComfyError as exc:
            raise SourceProblem(exc.message) from exc

    async def file(self, source: str, kind: SourceKind, caller: Caller) -> Path:
        return await self.fetch(await self.locate(source, kind, caller))

    async def _job(self, request_id: str, kind: SourceKind, caller: Caller) -> Located:
        try:
            view = await self._results(request_id, caller)
        except RunComfyError as exc:
            raise SourceProblem(exc.message) from exc
        if view.status in ("in_queue", "in_progress"):
            raise SourceProblem(
                f"job {request_id} is still {view.status.replace('_', ' ')}: follow it with wait_for_result until it "
                "has succeeded, then try again"
            )
        if view.status != "succeeded":
            reason = f" ({view.error})" if view.error else ""
            raise SourceProblem(f"job {request_id} {view.status}{reason}; only a job that succeeded made something")
        wanted = [o for o in view.outputs if o.kind == kind]
        if not wanted:
            made = " and ".join(sorted({_a(o.kind) for o in view.outputs})) or "no file"
            raise SourceProblem(f"job {request_id} made {made}, not {_a(kind if kind == 'video' else 'sound')}")
        output = wanted[0]
        return Located(request_id, request_id=request_id, output=output, index=view.outputs.index(output),
                       count=len(view.outputs))  # fmt: skip

    def _local(self, text: str) -> Path:
        if not self.policy.local_files:
            raise SourceProblem(
                "is a local file path, but this server runs over HTTP and reads no files from its host; use the "
                "request id of a job of yours instead"
            )
        try:
            path = Path(unquote(urlsplit(text).path) if text.lower().startswith("file://") else text).expanduser()
            real = path.resolve(strict=True)
            self.policy.check_root(real)
        except FileNotFoundError as exc:
            raise SourceProblem(f"{text[:80]} does not exist; check the path") from exc
        except (OSError, ValueError, RuntimeError) as exc:
            raise SourceProblem(f"{text[:80]} cannot be opened ({type(exc).__name__})") from exc
        except MediaError as exc:
            raise SourceProblem(f"{text[:80]} {exc.reason}") from exc
        if not real.is_file():
            raise SourceProblem(f"{text[:80]} is not a regular file")
        return real
