"""compose_video's service: a caller's finished clips cut into one film, here, for nothing.

Every problem is named before any work: first each source is located (a job of the caller's that
succeeded and made a video, or a sound for the soundtrack; a film; a local file over stdio), then the
files are fetched, then their headers are checked against the cut (trims, lengths, crossfades). Only
then is the film made, in a worker thread, one film at a time per process; it is recorded in the
history (list_jobs shows it, get_result reads it back) and its contact sheet (one tile per shot) is
what the assistant sees first.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from runcomfy_mcp.core.film_archive import FilmArchive
from runcomfy_mcp.core.job_files import JobFiles, Located, SourceKind, SourceProblem
from runcomfy_mcp.domain.amounts import file_size
from runcomfy_mcp.domain.films import (
    FILM_MODEL_ID,
    FILM_PREFIX,
    FILM_TOOL,
    MAX_CLIPS,
    FilmRequest,
    FilmResult,
    FilmShot,
    film_uri,
)
from runcomfy_mcp.domain.views import Caller, JobStatus, ProgressReporter
from runcomfy_mcp.errors import FilmError, InvalidArgumentsError, StoreError
from runcomfy_mcp.media.film import Clip, Film, FilmPlan, Soundtrack, compose, plan_problems

if TYPE_CHECKING:
    from runcomfy_mcp.store.base import Store

logger = logging.getLogger(__name__)

LOCATING_AT_ONCE = 4  # sources checked with RunComfy at the same time
PROGRESS_EVERY_S = 1.0
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


def file_stem(name: str | None, film_id: str) -> str:
    """A safe file name from the caller's `name` (never a path), else the film's id."""
    stem = _UNSAFE_NAME.sub("", name or "").strip(" .-").replace(" ", "-")[:80]
    return stem or film_id


class FilmService:
    def __init__(
        self,
        files: JobFiles,
        archive: FilmArchive,
        store: Store,
        output_dir: Path,
        *,
        reveal_paths: bool,
        max_resource_bytes: int,
    ) -> None:
        """`reveal_paths` False: the caller is remote, so no path on this server is handed out. `max_resource_bytes`:
        the largest film a resource read returns (it travels base64 in one message)."""
        self.max_resource_bytes = max_resource_bytes
        self.files = files
        self.archive = archive
        self.store = store
        self.output_dir = output_dir
        self.reveal_paths = reveal_paths
        self._one_at_a_time = anyio.CapacityLimiter(1)  # a film takes the CPU: others wait their turn

    async def compose(self, request: FilmRequest, caller: Caller, report: ProgressReporter) -> FilmResult:
        plan = await self._checked_plan(request, caller)
        film_id = FILM_PREFIX + secrets.token_hex(6)
        folder = anyio.Path(self.output_dir.expanduser())
        await folder.mkdir(parents=True, exist_ok=True)
        path = await self._free_path(Path(folder), file_stem(request.name, film_id))
        await self._remember(
            self.store.record_submission(
                request_id=film_id,
                model_id=FILM_MODEL_ID,
                tool=FILM_TOOL,
                arguments=request.as_arguments(),
                owner=caller.owner,
                status="in_progress",
                estimated_cost=0.0,
            )
        )
        try:
            film = await self._make(plan, path, report)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                reason = exc.message if isinstance(exc, FilmError) else "stopped before it was done"
                await self._remember(self.store.update(film_id, status="failed", error=reason))
            raise
        sheet = await anyio.to_thread.run_sync(_sheet, film)
        view = self._view(film_id, request, film)
        await self._remember(self.store.update(film_id, status="succeeded", cost=0.0))
        await self._remember(self.store.set_local_files(film_id, [str(path) if self.reveal_paths else path.name]))
        await self.archive.keep(view, path, sheet)
        view.attach_preview([s.at_s for s in view.shots], sheet)
        return view

    async def result(self, film_id: str, caller: Caller) -> FilmResult:
        view, path = await self.archive.find(film_id, caller)
        if not await anyio.Path(path).is_file():
            view.notes.append("The film's file is no longer in the output folder (it was moved or deleted).")
            view.local_files = []
        return view

    async def status(self, film_id: str, caller: Caller) -> JobStatus:
        await self.archive.find(film_id, caller)
        return JobStatus(request_id=film_id, status="completed", finished=True)

    async def film_bytes(self, film_id: str, caller: Caller) -> bytes:
        """The film's file, for a resource read; FilmError when it is over the resource cap."""
        path = await self.archive.file(film_id, caller)
        size, max_bytes = (await anyio.Path(path).stat()).st_size, self.max_resource_bytes
        if size > max_bytes:
            raise FilmError(
                f"Film {film_id} is {file_size(size)}, over the {file_size(max_bytes)} a resource read may "
                "carry (RUNCOMFY_FILM_RESOURCE_MAX_MB). Make it smaller (a lower resolution, shorter) or, over "
                "stdio, open the file itself."
            )
        return await anyio.Path(path).read_bytes()

    # ---------------------------------------------------------------- checks

    async def _checked_plan(self, request: FilmRequest, caller: Caller) -> FilmPlan:
        """The film's plan with every source here, or InvalidArgumentsError naming every problem at once: sources
        that cannot be used, then what the files' headers say of the others (trims, lengths, crossfades)."""
        problems: dict[int, str] = {}  # by position, so they read in the order of the arguments
        clips = request.clips[:MAX_CLIPS]
        if not 1 <= len(request.clips) <= MAX_CLIPS:
            problems[-1] = f"clips: {len(request.clips)} given; a film takes 1 to {MAX_CLIPS} clips."
        wanted: list[tuple[str, str, SourceKind]] = [
            (f"clips[{i}] ({c.source[:80]})", c.source, "video") for i, c in enumerate(clips)
        ]
        if request.audio is not None:
            wanted.append((f"audio ({request.audio.source[:80]})", request.audio.source, "audio"))
        located: dict[int, Located] = {}
        limiter = anyio.CapacityLimiter(LOCATING_AT_ONCE)

        async def locate(index: int, label: str, source: str, kind: SourceKind) -> None:
            async with limiter:
                try:
                    located[index] = await self.files.locate(source, kind, caller)
                except SourceProblem as exc:
                    problems[index] = f"{label}: {exc.message}"

        async with anyio.create_task_group() as group:
            for index, (label, source, kind) in enumerate(wanted):
                group.start_soon(locate, index, label, source, kind)
        paths: dict[int, Path] = {}
        for index in sorted(located):  # one at a time: each download is bounded, and they add up
            try:
                paths[index] = await self.files.fetch(located[index])
            except SourceProblem as exc:
                problems[index] = f"{wanted[index][0]}: {exc.message}"
        soundtrack = None
        if request.audio is not None and len(clips) in paths:
            audio = request.audio
            soundtrack = Soundtrack(paths[len(clips)], audio.source, audio.volume, audio.mode, wanted[-1][0])
        plan = FilmPlan(
            tuple(
                Clip(paths[i], c.source, c.start_s, c.end_s, label=wanted[i][0])
                for i, c in enumerate(clips)
                if i in paths
            ),
            request.transition,
            request.transition_s,
            request.size,
            Fraction(request.fps).limit_denominator(1001) if request.fps else None,
            soundtrack,
        )
        found = await anyio.to_thread.run_sync(plan_problems, plan) if plan.clips else []
        if problems or found:
            raise InvalidArgumentsError(FILM_TOOL, [problems[i] for i in sorted(problems)] + found)
        return plan

    # ---------------------------------------------------------------- making

    async def _make(self, plan: FilmPlan, path: Path, report: ProgressReporter) -> Film:
        stop = threading.Event()
        done = [0.0]
        finished = anyio.Event()

        async def tell() -> None:
            while not finished.is_set():
                with anyio.move_on_after(PROGRESS_EVERY_S):
                    await finished.wait()
                if not finished.is_set():
                    await report(done[0], f"cutting the film: {done[0] * 100:.0f}%")

        def progress(fraction: float) -> None:
            done[0] = fraction

        film: Film | None = None
        async with self._one_at_a_time:
            try:
                async with anyio.create_task_group() as group:
                    group.start_soon(tell)
                    try:
                        film = await anyio.to_thread.run_sync(
                            lambda: compose(plan, path, stop=stop.is_set, progress=progress),
                            abandon_on_cancel=True,  # the caller left: `stop` ends the work at the next frame
                        )
                    finally:
                        finished.set()
            except anyio.get_cancelled_exc_class():
                stop.set()
                raise
        assert film is not None
        return film

    def _view(self, film_id: str, request: FilmRequest, film: Film) -> FilmResult:
        shots = [FilmShot(**vars(shot)) for shot in film.shots]
        notes = [f"Made here from {len(shots)} clip(s); nothing was sent to RunComfy and nothing was paid."]
        if not self.reveal_paths:
            notes.append(
                f"Saved on the server as {film.path.name}, not on your machine: read the resource "
                f"{film_uri(film_id)} to have it."
            )
        return FilmResult(
            request_id=film_id,
            status="succeeded",
            model_id=FILM_MODEL_ID,
            cost=0.0,
            local_files=[str(film.path)] if self.reveal_paths else [],
            notes=notes,
            duration_s=film.duration_s,
            width=film.width,
            height=film.height,
            fps=film.fps,
            size_bytes=film.size_bytes,
            shots=shots,
            audio=request.audio.source if request.audio else None,
            film_uri=film_uri(film_id),
        )

    @staticmethod
    async def _free_path(folder: Path, stem: str) -> Path:
        """`stem`.mp4 in the folder, or `stem`-2.mp4 and so on: an earlier file is never replaced."""
        for number in range(1, 1000):
            candidate = folder / (f"{stem}.mp4" if number == 1 else f"{stem}-{number}.mp4")
            if not await anyio.Path(candidate).exists():
                return candidate
        raise FilmError(f"The output folder already holds 999 films named {stem}; give another name.")

    async def _remember(self, work: Any) -> None:
        """The history is a convenience: a disk problem is logged, never allowed to lose a film."""
        try:
            await work
        except StoreError:
            logger.exception("could not update the job history")


def _sheet(film: Film) -> bytes | None:
    """One tile per shot (its middle), labelled with where the shot starts: the cut at a glance."""
    from runcomfy_mcp.media.thumbnails import SheetLayout, jpeg

    if not film.stills:
        return None
    shots = zip(film.shots, film.stills, strict=False)  # a still per shot; a shot never reached has none
    tiles = [(f"{i + 1}. {shot.at_s:.1f} s", still) for i, (shot, still) in enumerate(shots)]
    return jpeg(SheetLayout.fit(len(tiles), film.width, film.height).draw(tiles))
