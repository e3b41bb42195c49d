"""What a preview shows, made from a file that may be hostile: a contact sheet of a video, or an image scaled down.

An output is upstream data, so its size is read from its header and a file whose pictures would not
fit the memory budget is refused before a pixel is decoded. Each chosen frame is scaled to its tile
the moment it is decoded (only thumbnails are kept), seeks are planned from the container's index so a
clip with one keyframe is decoded once rather than once per tile, every tile may cost only so many
frames, and decoding stops after so much CPU time: what was reached by then is shown, labelled with its
real time. (CPU time, not the clock: how far a file gets is the same on a busy machine, so the verdict
can be kept.)

This runs in the preview worker process (see preview_worker), never in the server itself.
"""

from __future__ import annotations

import bisect
import io
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runcomfy_mcp.domain.amounts import MIB, file_size
from runcomfy_mcp.errors import UndecodableOutputError

if TYPE_CHECKING:
    from PIL.Image import Image

LONG_EDGE = 1024
MAX_JPEG_BYTES = 300 * 1024
FRAMES = 6  # a 3 × 2 sheet; short clips get fewer
GAP = 8  # dark space between tiles, and around them
GAP_COLOUR = (20, 20, 20)
BORDER_COLOUR = (150, 150, 150)  # a 1 px frame round each tile, so dark tiles do not melt into the gap

# Only these containers are opened: no playlists or concatenations that name other files (hls, concat).
VIDEO_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,gif"
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "AVIF", "BMP")
_UNKNOWN_BYTES_PER_PIXEL = 6  # a pixel format the header does not name: assume 16-bit 4:4:4
_INDEX_SCAN_MAX = 200_000  # index entries read to plan seeks; beyond that, seek for every tile


@dataclass(frozen=True)
class DecodeLimits:
    """What one preview may cost: decoding time, frames, and the size of what is decoded at once."""

    seconds: float = 10.0  # CPU time for decoding; the tiles reached by then are shown
    frames_per_tile: int = 240  # frames decoded to reach one tile (10 s at 24 fps)
    # What one decoded image may hold at once: a 6000×4000 RGB photo (4 bytes a pixel in Pillow), or
    # 4000×3000 with an alpha channel (decoded, and a copy to scale it).
    image_bytes: int = 96 * MIB
    # One 4096×2160 8-bit 4:2:0 frame. A decoder holds up to ~17 frames (references and reordering):
    # a 4K H.264 stream with 16 reference frames peaks at ~170 MB.
    video_frame_bytes: int = 4096 * 2160 * 3 // 2


@dataclass(frozen=True)
class Preview:
    jpeg: bytes
    frames_at_s: list[float]  # where each frame was taken; empty for an image
    cut_short: bool = False  # decoding stopped (deadline or frame budget) before every planned frame

    def words(self) -> str:
        if not self.frames_at_s:
            return "Preview: the image, scaled down."
        times = ", ".join(f"{t:.1f}" for t in self.frames_at_s)
        text = f"Preview: {len(self.frames_at_s)} frames, left to right and top to bottom, at {times} s"
        if self.cut_short:
            text += " (decoding stopped there: later parts of the clip are not shown)"
        return text + "."


def make_preview(kind: str, path: Path, limits: DecodeLimits) -> Preview:
    """The preview of a video or an image file; UndecodableOutputError says why there is none."""
    return video_preview(path, limits) if kind == "video" else image_preview(path, limits)


# ---------------------------------------------------------------------------------------------- images


def image_preview(path: Path, limits: DecodeLimits) -> Preview:
    return Preview(jpeg(image_thumbnail(path, LONG_EDGE, limits)), [])


def image_thumbnail(path: Path, edge: int, limits: DecodeLimits) -> Image:
    """The image within `edge` × `edge`, decoded only when its header says it fits `limits.image_pixels`."""
    import imagesize  # type: ignore[import-untyped]
    from PIL import Image

    try:  # the header alone, for the message when Pillow refuses the file outright
        width, height = imagesize.get(str(path))
    except (OSError, ValueError):
        width, height = -1, -1
    try:
        with Image.open(path, formats=IMAGE_FORMATS) as image:
            if image.format == "JPEG":  # JPEG decodes at 1/2 … 1/8 scale: fewer pixels ever exist
                shrink = min(1.0, edge / max(image.size))
                image.draft("RGB", (max(1, math.ceil(image.width * shrink)), max(1, math.ceil(image.height * shrink))))
            width, height = image.size
            _check_image_size(width, height, image.mode, limits)
            image.load()
            picture: Image.Image = image
            if picture.mode not in ("RGB", "RGBA", "L", "LA"):
                picture = picture.convert("RGBA" if _has_alpha(picture) else "RGB")
            picture.thumbnail((edge, edge), reducing_gap=3.0)
            return picture.convert("RGB")
    except Image.DecompressionBombError as exc:  # over Pillow's own limit, far over ours
        raise _too_many_pixels(width, height, limits) from exc


def _has_alpha(image: Image) -> bool:
    return "A" in image.getbands() or "transparency" in image.info


def _bytes_per_pixel(mode: str) -> int:
    """Pillow's memory for a pixel of `mode`, plus the copy made to scale it when it is not RGB or grey."""
    stored = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    return stored if mode in ("RGB", "L") else stored + 4


def _check_image_size(width: int, height: int, mode: str, limits: DecodeLimits) -> None:
    if width <= 0 or height <= 0:
        raise UndecodableOutputError("the image has no size")
    if width * height * _bytes_per_pixel(mode) > limits.image_bytes:
        raise _too_many_pixels(width, height, limits, mode)


def _too_many_pixels(width: int, height: int, limits: DecodeLimits, mode: str = "RGB") -> UndecodableOutputError:
    size = f"{width}×{height} ({width * height / 1e6:.0f} megapixels)" if width > 0 else "too large"
    allowed = limits.image_bytes / _bytes_per_pixel(mode) / 1e6
    return UndecodableOutputError(
        f"the image is {size}, more than a preview decodes ({allowed:.0f} megapixels for such an image); "
        "download it to see it"
    )


# ---------------------------------------------------------------------------------------------- videos


def video_preview(path: Path, limits: DecodeLimits) -> Preview:
    """Evenly spaced frames across the clip, labelled with their times, on one sheet."""
    import av

    deadline = time.process_time() + limits.seconds
    # While probing, a decoder may allocate no frame over the budget (at 1 byte a pixel, the smallest).
    probe = {"max_pixels": str(limits.video_frame_bytes)}
    container_options = {"format_whitelist": VIDEO_FORMATS, "protocol_whitelist": "file"}
    with av.open(str(path), options=probe, container_options=container_options) as container:
        if not container.streams.video:
            raise UndecodableOutputError("the file has no video stream")
        stream = container.streams.video[0]
        context = stream.codec_context
        width, height = context.width, context.height
        frame_bytes = _frame_bytes(context.pix_fmt, width, height)
        if width <= 0 or height <= 0:
            raise UndecodableOutputError("the video's frames have no size")
        if frame_bytes > limits.video_frame_bytes:
            raise UndecodableOutputError(
                f"the video's frames are {width}×{height} ({context.pix_fmt or 'an unnamed pixel format'}), "
                f"more than a preview decodes ({file_size(limits.video_frame_bytes)} a frame: 4096×2160 at "
                "8 bits 4:2:0 by default); download it to see it"
            )
        # Frames larger than the header's (a stream that changes size midway) are refused by the decoder.
        context.options = {"max_pixels": str((width + 128) * (height + 128))}
        context.thread_type = "SLICE"  # frame threads would each hold frames of their own
        clip = _Clip(container, stream, deadline, limits)
        count = FRAMES if clip.duration >= 2 else max(1, min(FRAMES, int(clip.duration * 4) or 1))
        sar = context.sample_aspect_ratio
        shown_width = width * float(sar) if sar and 0.1 < sar < 10 else width
        layout = SheetLayout.fit(count, shown_width, height)
        targets = [clip.start + clip.duration * (i + 0.5) / count for i in range(count)]
        tiles, cut_short = clip.tiles(targets, layout.cell)
    if not tiles:
        raise UndecodableOutputError(
            f"no frame could be decoded within {limits.seconds:g} s of CPU time"
            if cut_short
            else "the video has no frame that could be decoded"
        )
    labelled = [(f"{at:.1f} s", picture) for at, picture in tiles]
    return Preview(jpeg(layout.draw(labelled)), [round(at, 2) for at, _ in tiles], cut_short)


def _frame_bytes(pix_fmt: str | None, width: int, height: int) -> int:
    """Bytes of one decoded frame, from the header's size and pixel format."""
    import av

    if width <= 0 or height <= 0:
        return 0
    try:
        planes = av.VideoFormat(pix_fmt, width, height).components if pix_fmt else ()
    except (ValueError, av.error.FFmpegError):
        planes = ()
    if not planes:
        return width * height * _UNKNOWN_BYTES_PER_PIXEL
    return sum(c.width * c.height * ((c.bits + 7) // 8) for c in planes)


class _OutOfTime(Exception):
    pass


class _Clip:
    """One video stream, decoded forward from where it is, seeking only when that is cheaper."""

    def __init__(self, container: Any, stream: Any, deadline: float, limits: DecodeLimits) -> None:
        self.container, self.stream = container, stream
        self.deadline, self.limits = deadline, limits
        self.base: Fraction = stream.time_base or Fraction(1, 90000)
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate and 0 < rate < 1000 else 24.0
        self.start = float(stream.start_time * self.base) if stream.start_time is not None else 0.0
        self.keyframes = self._keyframes()
        declared = float(stream.duration * self.base) if stream.duration else (container.duration or 0) / 1e6
        if self.keyframes is not None and len(stream.index_entries):
            # The index says where the clip really ends; a header may claim anything.
            end = float(stream.index_entries[len(stream.index_entries) - 1].timestamp * self.base)
            declared = min(declared, end - self.start + 1 / self.fps) if declared > 0 else end - self.start
        self.duration = max(0.0, declared)
        self.position: float | None = None  # time of the last frame decoded
        self._frames: Iterator[Any] | None = None
        self._checked: tuple[str, int, int] | None = None  # the frame shape last found within the budget
        self.target = 0.0  # the time of the frame wanted now

    def _keyframes(self) -> list[float] | None:
        """Keyframe times from the container's index (MP4 and MOV have one), or None when there is none."""
        entries = self.stream.index_entries
        if not 0 < len(entries) <= _INDEX_SCAN_MAX:
            return None
        times = sorted(float(e.timestamp * self.base) for e in entries if e.is_keyframe and e.timestamp > -(1 << 62))
        return times or None

    def tiles(self, targets: Sequence[float], cell: tuple[int, int]) -> tuple[list[tuple[float, Image]], bool]:
        """A thumbnail at (or just before, when budgets run out) each target time, and whether any ran out."""
        tiles: list[tuple[float, Image]] = []
        last_pts: int | None = None
        cut_short = False
        try:
            for target in targets:
                if self._should_seek(target):
                    self._seek(target)
                frame, reached = self._frame_at(target)
                cut_short = cut_short or not reached
                if frame is None:
                    break
                if frame.pts is not None and frame.pts == last_pts:
                    continue  # the budget stopped short of the last tile's frame: no repeat
                last_pts = frame.pts
                at = (frame.time if frame.time is not None else target) - self.start
                tiles.append((max(0.0, at), frame.to_image(width=cell[0], height=cell[1], interpolation="AREA")))
                if frame.time is not None and frame.time < target - 1 / self.fps and self._frames is None:
                    break  # the stream ended before this target: later ones are past its end
        except _OutOfTime:
            cut_short = True
        return tiles, cut_short

    def _should_seek(self, target: float) -> bool:
        if self.position is None or target < self.position:
            return True
        if self.keyframes is not None:  # seek only past a keyframe after the current position
            before = bisect.bisect_right(self.keyframes, target + 1e-6) - 1
            return before >= 0 and self.keyframes[before] > self.position + 1e-6
        return (target - self.position) * self.fps > self.limits.frames_per_tile

    def _seek(self, target: float) -> None:
        # PyAV flushes the decoder when it seeks.
        self.container.seek(int(target / self.base), stream=self.stream, backward=True, any_frame=False)
        self._frames = self._decoded()
        self.position = None

    def _decoded(self) -> Iterator[Any]:
        context = self.stream.codec_context
        for packet in self.container.demux(self.stream):
            if time.process_time() > self.deadline:
                raise _OutOfTime
            # Well before the frame wanted, frames no other frame refers to need not be decoded at all.
            at = packet.pts * self.base if packet.pts is not None else None
            context.skip_frame = "NONREF" if at is not None and at < self.target - 0.5 else "DEFAULT"
            yield from packet.decode()

    def _frame_at(self, target: float) -> tuple[Any | None, bool]:
        """The first frame at the target, or the last one decoded when the tile's budget or the clip ends."""
        self.target = target
        if self._frames is None:
            self._seek(target)
        assert self._frames is not None
        previous = None
        for _ in range(self.limits.frames_per_tile):
            frame = next(self._frames, None)
            if frame is None:
                self._frames = None  # the end of the stream
                return previous, previous is not None
            self._check(frame)
            if frame.time is not None:
                self.position = frame.time
            if frame.time is None or frame.time >= target - 0.5 / self.fps:
                return frame, True
            previous = frame
        return previous, False

    def _check(self, frame: Any) -> None:
        """A stream may change its frames midway (a new sequence header): the budget holds for every frame."""
        shape = (frame.format.name, frame.width, frame.height)
        if shape == self._checked:
            return
        if _frame_bytes(*shape) > self.limits.video_frame_bytes:
            raise UndecodableOutputError(f"the video changes to {frame.width}×{frame.height} frames midway")
        self._checked = shape


# ------------------------------------------------------------------------------------------- the sheet


@dataclass(frozen=True)
class SheetLayout:
    """Tiles in a grid within LONG_EDGE, each framed and set apart by a dark gap."""

    columns: int
    rows: int
    cell: tuple[int, int]

    @classmethod
    def fit(cls, count: int, width: float, height: float) -> SheetLayout:
        columns = 3 if count > 4 else 2 if count > 1 else 1
        rows = -(-count // columns)
        cell_w = (LONG_EDGE - GAP * (columns + 1)) // columns
        cell_h = max(1, round(cell_w * height / width))
        if GAP * (rows + 1) + cell_h * rows > LONG_EDGE:  # a tall video: fit the height instead
            cell_h = (LONG_EDGE - GAP * (rows + 1)) // rows
            cell_w = max(1, round(cell_h * width / height))
        return cls(columns, rows, (max(1, cell_w), max(1, cell_h)))

    def size(self) -> tuple[int, int]:
        return (
            GAP + self.columns * (self.cell[0] + GAP),
            GAP + self.rows * (self.cell[1] + GAP),
        )

    def origin(self, index: int) -> tuple[int, int]:
        return (
            GAP + (index % self.columns) * (self.cell[0] + GAP),
            GAP + (index // self.columns) * (self.cell[1] + GAP),
        )

    def draw(self, tiles: Sequence[tuple[str, Image]]) -> Image:
        from PIL import Image, ImageDraw

        sheet = Image.new("RGB", self.size(), GAP_COLOUR)
        draw = ImageDraw.Draw(sheet)
        for index, (label, picture) in enumerate(tiles):
            x, y = self.origin(index)
            draw.rectangle((x - 1, y - 1, x + self.cell[0], y + self.cell[1]), outline=BORDER_COLOUR)
            if picture.size != self.cell:
                picture = picture.resize(self.cell)
            sheet.paste(picture.convert("RGB"), (x, y))
            if label:
                draw.rectangle((x + 4, y + 4, x + 8 + 7 * len(label), y + 20), fill=(0, 0, 0))
                draw.text((x + 6, y + 6), label, fill=(255, 255, 255))
        return sheet


def jpeg(image: Image) -> bytes:
    """The picture as a JPEG within the size budget: quality goes down until it fits."""
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
