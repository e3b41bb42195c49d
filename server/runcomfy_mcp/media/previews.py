"""What a job made, for the assistant's eyes: a contact sheet of frames across a video, or an image scaled down.

One JPEG, long edge at most 1024 px and at most 300 KB. It is made from the downloaded file, or from
one streamed fetch of the output into a temporary file (never the whole video in memory), and kept
beside the history, so a job's output is fetched for a preview at most once.
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import anyio
import httpx

from runcomfy_mcp.domain.media_rules import MIB
from runcomfy_mcp.domain.outputs import Output
from runcomfy_mcp.errors import FetchInterruptedError, FetchRefusedError, PreviewError, UndecodableOutputError
from runcomfy_mcp.media.downloads import OutputHosts
from runcomfy_mcp.media.guarded_http import plain_chunks, transport_failures

logger = logging.getLogger(__name__)

LONG_EDGE = 1024
MAX_JPEG_BYTES = 300 * 1024
FRAMES = 6  # a 3 × 2 sheet; short clips get fewer


@dataclass(frozen=True)
class Preview:
    jpeg: bytes
    frames_at_s: list[float]  # where each frame was taken; empty for an image

    def words(self) -> str:
        if not self.frames_at_s:
            return "Preview: the image, scaled down."
        times = ", ".join(f"{t:.1f}" for t in self.frames_at_s)
        return f"Preview: {len(self.frames_at_s)} frames, left to right and top to bottom, at {times} s."


def _jpeg(image: object) -> bytes:
    """The picture as a JPEG within the size budget: quality goes down until it fits."""
    from PIL import Image

    assert isinstance(image, Image.Image)
    image = image.convert("RGB")
    image.thumbnail((LONG_EDGE, LONG_EDGE))
    for quality in (85, 75, 65, 55, 45, 35):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality, optimize=True)
        if buffer.tell() <= MAX_JPEG_BYTES:
            return buffer.getvalue()
    image.thumbnail((LONG_EDGE // 2, LONG_EDGE // 2))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=50)
    return buffer.getvalue()


def contact_sheet(path: Path) -> Preview:
    """Evenly spaced frames across the clip, labelled with their times, on one sheet."""
    import av
    from PIL import Image, ImageDraw

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            base = stream.time_base or Fraction(1, 90000)
            duration = float(stream.duration * base) if stream.duration else (container.duration or 0) / 1e6
            count = FRAMES if duration >= 2 else max(1, min(FRAMES, int(duration * 4) or 1))
            times = [duration * (i + 0.5) / count for i in range(count)] if duration else [0.0]
            frames = []
            for at in times:
                container.seek(int(at / base), stream=stream, backward=True, any_frame=False)
                frame = next(
                    (f for f in container.decode(stream) if f.time is None or f.time >= at - 1 / 24),
                    None,
                )
                if frame is not None:
                    frames.append((at, frame.to_image()))  # type: ignore[no-untyped-call]
    except (av.error.FFmpegError, IndexError, StopIteration, ValueError, OSError) as exc:
        raise UndecodableOutputError(f"the video could not be decoded ({type(exc).__name__})") from exc
    if not frames:
        raise UndecodableOutputError("the video has no frame that could be decoded")
    columns = 3 if len(frames) > 4 else 2 if len(frames) > 1 else 1
    rows = -(-len(frames) // columns)
    cell_w = LONG_EDGE // columns
    first = frames[0][1]
    cell_h = max(1, round(cell_w * first.height / first.width))
    if cell_h * rows > LONG_EDGE:  # a tall video: fit the height instead
        cell_h = LONG_EDGE // rows
        cell_w = max(1, round(cell_h * first.width / first.height))
    sheet = Image.new("RGB", (cell_w * columns, cell_h * rows), (16, 16, 16))
    draw = ImageDraw.Draw(sheet)
    for index, (at, picture) in enumerate(frames):
        x, y = (index % columns) * cell_w, (index // columns) * cell_h
        sheet.paste(picture.convert("RGB").resize((cell_w, cell_h)), (x, y))
        label = f"{at:.1f} s"
        draw.rectangle((x + 4, y + 4, x + 8 + 7 * len(label), y + 20), fill=(0, 0, 0))
        draw.text((x + 6, y + 6), label, fill=(255, 255, 255))
    return Preview(_jpeg(sheet), [round(at, 2) for at, _ in frames])


def scaled_image(path: Path) -> Preview:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return Preview(_jpeg(image), [])
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UndecodableOutputError(f"the image could not be read ({type(exc).__name__})") from exc


def _write_private(path: Path, data: bytes) -> None:
    """`data` in `path`, created owner-only (0600) whatever the umask."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(data)


class Previewer:
    """Makes and keeps one preview per job, in `folder` (beside the history)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        folder: Path,
        *,
        max_bytes: int,
        deadline_s: float,
        hosts: OutputHosts | None = None,
    ) -> None:
        self._http = http
        self.folder = folder
        self.max_bytes = max_bytes
        self.deadline_s = deadline_s
        self.hosts = hosts or OutputHosts()

    async def preview(self, request_id: str, output: Output, local_file: Path | None = None) -> Preview:
        """The job's preview, made once; raises PreviewError saying why there is none."""
        if output.kind not in ("video", "image"):
            raise PreviewError(f"a {output.kind} output has nothing to show")
        jpeg_path, facts_path = self.folder / f"{request_id}.jpg", self.folder / f"{request_id}.json"
        try:
            facts = json.loads(facts_path.read_text())
            if "undecodable" in facts:  # decided before: the same bytes would fail the same way
                raise PreviewError(facts["undecodable"])
            return Preview(await anyio.Path(jpeg_path).read_bytes(), facts["frames_at_s"])
        except (OSError, ValueError, KeyError):
            pass  # not made yet
        try:
            if local_file is not None and local_file.is_file():
                preview = await self._from_file(local_file, output.kind)
            else:
                preview = await self._from_url(output)
        except UndecodableOutputError as exc:
            await anyio.to_thread.run_sync(self._remember_failure, facts_path, exc.message)
            raise
        await anyio.to_thread.run_sync(self._keep, jpeg_path, facts_path, preview)
        return preview

    async def _from_file(self, path: Path, kind: str) -> Preview:
        make = contact_sheet if kind == "video" else scaled_image
        return await anyio.to_thread.run_sync(make, path)

    async def _from_url(self, output: Output) -> Preview:
        if not self.hosts.allows(output.url):
            raise PreviewError(f"the output is not on RunComfy's file hosts ({self.hosts.describe()})")
        await anyio.to_thread.run_sync(self._make_folder)
        temporary = self.folder / f".fetch-{secrets.token_hex(6)}.part"
        try:
            with anyio.fail_after(self.deadline_s), transport_failures():
                await self._fetch(output.url, temporary)
            return await self._from_file(temporary, output.kind)
        except TimeoutError as exc:
            raise PreviewError(f"fetching the output took longer than {self.deadline_s:g} s") from exc
        except FetchInterruptedError as exc:
            raise PreviewError(f"the output could not be fetched ({exc.transport})") from exc
        except FetchRefusedError as exc:
            raise PreviewError(f"the output could not be fetched ({type(exc).__name__})") from exc
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.Path(temporary).unlink(missing_ok=True)

    async def _fetch(self, url: str, into: Path) -> None:
        async with self._http.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response:
            if response.status_code != 200:
                raise PreviewError(f"the file host answered HTTP {response.status_code}")
            size = 0
            async with await anyio.open_file(into, "wb") as out:
                async for chunk in plain_chunks(response):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise PreviewError(
                            f"the output is over {self.max_bytes / MIB:g} MB (RUNCOMFY_PREVIEW_MAX_MB), too big to "
                            "fetch for a preview; download it to see it"
                        )
                    await out.write(chunk)

    def _make_folder(self) -> None:
        """Owner-only: what the user's jobs made is theirs alone (an earlier version's folder is tightened)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.folder.stat().st_mode & 0o077:
            os.chmod(self.folder, 0o700)

    def _remember_failure(self, facts_path: Path, reason: str) -> None:
        try:
            self._make_folder()
            _write_private(facts_path, json.dumps({"undecodable": reason}).encode())
        except OSError as exc:
            logger.warning("could not keep the preview's failure %s: %s", facts_path, exc)

    def _keep(self, jpeg_path: Path, facts_path: Path, preview: Preview) -> None:
        try:
            self._make_folder()
            partial = jpeg_path.with_suffix(f".{os.getpid()}.part")
            _write_private(partial, preview.jpeg)
            os.replace(partial, jpeg_path)
            _write_private(facts_path, json.dumps({"frames_at_s": preview.frames_at_s}).encode())
        except OSError as exc:  # a preview not kept is made again next time; never a reason to fail
            logger.warning("could not keep the preview %s: %s", jpeg_path, exc)
