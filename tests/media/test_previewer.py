"""The previewer: a few previews at a time, the rest queued behind them without holding a result back, a worker
process that cannot take the server down."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from anyio.abc import TaskGroup

from hostile_media import write_video
from runcomfy_mcp.domain.outputs import Output
from runcomfy_mcp.errors import PreviewError, UndecodableOutputError
from runcomfy_mcp.media.previews import Previewer, PreviewLimits
from runcomfy_mcp.media.thumbnails import DecodeLimits, Preview

pytestmark = pytest.mark.anyio

VIDEO = Output(url="https://files.runcomfy.net/out.mp4", kind="video")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("clips") / "clip.mp4", 1280, 720, frames=48, fps=24)


class HeldPreviewer(Previewer):
    """Its decoding waits for `release`, and it counts how many decode at the same time."""

    def __init__(self, folder: Path, limits: PreviewLimits, background: TaskGroup | None = None) -> None:
        super().__init__(
            httpx.AsyncClient(), folder, max_bytes=1 << 20, deadline_s=5, limits=limits, background=background
        )
        self.release = anyio.Event()
        self.decoding = self.most_at_once = 0

    def waiting(self) -> int:
        return self._turns.statistics().tasks_waiting if self._turns else 0

    async def decode(self, path: Path, kind: str, *, give_way: bool = False) -> Preview:
        self.decoding += 1
        self.most_at_once = max(self.most_at_once, self.decoding)
        try:
            await self.release.wait()
        finally:
            self.decoding -= 1
        return Preview(b"jpeg", [1.0])


async def previews_at_once(
    previewer: HeldPreviewer, count: int, local: Path, *, release_after: int = 0
) -> dict[str, Preview | PreviewError]:
    """`count` previews of different jobs at once; decoding is released once `release_after` have ended."""
    outcomes: dict[str, Preview | PreviewError] = {}

    async def one(request_id: str) -> None:
        try:
            outcomes[request_id] = await previewer.preview(request_id, VIDEO, local)
        except PreviewError as exc:
            outcomes[request_id] = exc
        if len(outcomes) >= release_after:
            previewer.release.set()

    async with anyio.create_task_group() as group:
        for index in range(count):
            group.start_soon(one, f"job-{index}")
    return outcomes


async def test_two_previews_are_made_at_a_time_and_the_others_follow_without_holding_their_results(
    tmp_path: Path, clip: Path
) -> None:
    """A thousand waits ending together must not decode a thousand videos, nor hold their URLs back."""
    async with anyio.create_task_group() as background:
        previewer = HeldPreviewer(tmp_path / "previews", PreviewLimits(at_once=2, waiting=3), background)
        outcomes: dict[str, Preview | PreviewError] = {}

        async def one(request_id: str) -> None:
            try:
                outcomes[request_id] = await previewer.preview(request_id, VIDEO, clip)
            except PreviewError as exc:
                outcomes[request_id] = exc

        with anyio.fail_after(10):  # every result but the two decoding goes out while those two are held
            async with anyio.create_task_group() as group:
                for index in range(20):
                    group.start_soon(one, f"job-{index}")
                while len(outcomes) < 18 or previewer.decoding < 2:
                    await anyio.sleep(0.01)
                previewer.release.set()
        busy = [o for o in outcomes.values() if isinstance(o, PreviewError)]
        assert len(outcomes) == 20 and len(busy) == 18
        queued = [o for o in busy if "is being made, and get_result shows it in a moment" in o.message]
        assert len(queued) == 3  # the background queue's room; the other 15 are made by a later get_result
        assert all("get_result shows it later" in o.message for o in busy if o not in queued)
        assert "other previews were being made (at most 2 at once)" in busy[0].message
        assert not isinstance(busy[0], UndecodableOutputError)  # not remembered: the next get_result makes it
        with anyio.fail_after(10):
            while len(list((tmp_path / "previews").glob("*.jpg"))) < 5:  # the two, then the three queued
                await anyio.sleep(0.01)
    assert previewer.most_at_once == 2


async def test_a_skipped_preview_is_made_next_time(tmp_path: Path, clip: Path) -> None:
    previewer = HeldPreviewer(tmp_path / "previews", PreviewLimits(at_once=1, waiting=0))
    outcomes = await previews_at_once(previewer, 2, clip, release_after=1)
    skipped = next(job for job, made in outcomes.items() if isinstance(made, PreviewError))
    assert isinstance(await previewer.preview(skipped, VIDEO, clip), Preview)


async def test_the_worker_makes_a_contact_sheet_of_a_real_clip(tmp_path: Path, clip: Path) -> None:
    previewer = Previewer(httpx.AsyncClient(), tmp_path / "previews", max_bytes=1 << 20, deadline_s=5)
    made = await previewer.preview("job-1", VIDEO, clip)
    assert made.jpeg.startswith(b"\xff\xd8") and made.frames_at_s == [0.17, 0.5, 0.83, 1.17, 1.5, 1.83]
    assert (tmp_path / "previews" / "job-1.jpg").read_bytes() == made.jpeg


@pytest.mark.skipif(sys.platform != "linux", reason="the address-space cap is enforced on Linux")
async def test_a_decoder_that_needs_more_memory_than_allowed_is_stopped_and_remembered(
    tmp_path: Path, clip: Path
) -> None:
    limits = PreviewLimits(memory_mb=24)  # far less than decoding 720p frames needs
    previewer = Previewer(httpx.AsyncClient(), tmp_path / "previews", max_bytes=1 << 20, deadline_s=5, limits=limits)
    with pytest.raises(UndecodableOutputError, match=r"needed more memory than a preview may use \(24 MB\)"):
        await previewer.preview("job-1", VIDEO, clip)
    with pytest.raises(PreviewError, match=r"needed more memory than a preview may use \(24 MB\)"):
        await previewer.preview("job-1", VIDEO, clip)  # remembered: not decoded again


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a named pipe")
async def test_a_worker_that_never_answers_is_stopped_by_the_clock_and_tried_again_later(tmp_path: Path) -> None:
    """A file that never ends (a pipe nobody writes to): the worker waits on it without using any CPU."""
    endless = tmp_path / "endless.mp4"
    os.mkfifo(endless)
    limits = PreviewLimits(decode=DecodeLimits(seconds=0.5), start_s=1.0)
    previewer = Previewer(httpx.AsyncClient(), tmp_path / "previews", max_bytes=1 << 20, deadline_s=5, limits=limits)
    with anyio.fail_after(10), pytest.raises(PreviewError, match=r"making it took longer than 1\.5 s") as stopped:
        await previewer.decode(endless, "video")
    assert not isinstance(stopped.value, UndecodableOutputError)  # a busy machine looks the same: not kept


@pytest.mark.skipif(
    not hasattr(os, "mkfifo") or not hasattr(os, "getpriority") or not Path("/proc/self/stat").exists(),
    reason="needs a named pipe, priorities and /proc",
)
@pytest.mark.parametrize("later", [False, True])
async def test_a_preview_made_for_later_gives_way_to_the_server(tmp_path: Path, later: bool) -> None:
    """A preview an answer waits for is made at the server's own priority; one made for later (no answer waits for
    it) by a worker 10 levels lower, which runs when the server can spare the CPU."""
    server = os.getpriority(os.PRIO_PROCESS, 0)
    if later and server >= 19:
        pytest.skip("the tests run at the lowest priority already: nothing lower to give way with")
    endless = tmp_path / "endless.mp4"
    os.mkfifo(endless)  # the worker waits on it, using no CPU, while its priority is read
    limits = PreviewLimits(decode=DecodeLimits(seconds=0.5), start_s=1.5)
    previewer = Previewer(httpx.AsyncClient(), tmp_path / "previews", max_bytes=1 << 20, deadline_s=5, limits=limits)
    seen: list[int] = []

    async def watch() -> None:
        while not seen:
            for entry in Path("/proc").iterdir():
                try:
                    stat = (entry / "stat").read_text()
                    mine = entry.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid()
                    if mine and b"preview_worker" in (entry / "cmdline").read_bytes():
                        seen.append(os.getpriority(os.PRIO_PROCESS, int(entry.name)))
                except (OSError, ValueError, IndexError):
                    continue
            await anyio.sleep(0.02)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            with pytest.raises(PreviewError):
                await previewer.decode(endless, "video", give_way=later)
            group.cancel_scope.cancel()
    assert seen and seen[0] == (min(19, server + 10) if later else server)
