"""One frame of a video as a PNG: the first, the last, or the one showing at a given second.

A frame is found the cheap way: seek to the keyframe at or before it and decode forward, holding one
decoded frame at a time (the last frame: from the last keyframe to the end). Memory stays at a few
frames whatever the clip's length; a picture over `MAX_FRAME_PIXELS` is refused before decoding.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from runcomfy_mcp.domain.films import FramePosition
from runcomfy_mcp.errors import FrameError, MediaFileError
from runcomfy_mcp.media.probe import probe

if TYPE_CHECKING:
    import av
    from PIL.Image import Image

PNG_LEVEL = 3  # zlib level: 6 (Pillow's default) takes about twice the time for a tenth less size
NO_FRAME = "The video has no frame that could be decoded."
# Frames this close to the one wanted are all decoded: B-frames arrive out of order, up to 16 frames late.
SKIP_MARGIN_S, SKIP_MARGIN_FRAMES = 0.5, 20


@dataclass(frozen=True)
class Frame:
    png: bytes
    at_s: float  # where the frame shows in the clip
    width: int
    height: int


def frame_picture(path: Path, position: FramePosition) -> tuple[Image, float]:
    """The frame as an RGB picture and the second it shows at. Raises FrameError or MediaFileError."""
    import av

    info = probe(path)
    if not info.has_video:
        raise FrameError(f"There is no frame to take: the file is {info.words()}, not a video.")
    if not isinstance(position, str) and info.duration_s and position > info.duration_s + 1e-3:
        raise FrameError(past_end(position, info.duration_s))
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frame, at_s = _FrameFinder(container, stream).find(position)
            return frame.to_image(), at_s  # type: ignore[no-untyped-call]
    except av.error.FFmpegError as exc:
        raise MediaFileError(f"could not be decoded ({type(exc).__name__})") from exc


def take_frame(path: Path, position: FramePosition) -> Frame:
    """The frame as PNG bytes. CPU-bound: call it from a worker thread."""
    picture, at_s = frame_picture(path, position)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", compress_level=PNG_LEVEL)
    return Frame(buffer.getvalue(), round(at_s, 3), picture.width, picture.height)


def past_end(position: float, duration_s: float) -> str:
    return (
        f"The clip is {duration_s:.2f} s long, so it has no frame at {position:g} s. Ask for a time from 0 to "
        f"{duration_s:.2f}, or for 'last'."
    )


class _FrameFinder:
    def __init__(self, container: av.container.InputContainer, stream: av.VideoStream) -> None:
        self.container, self.stream = container, stream
        self.base = stream.time_base or Fraction(1, 90000)
        self.origin = stream.start_time or 0
        rate = stream.average_rate or stream.guessed_rate
        self.frame_s = 1 / float(rate) if rate else 0.1

    def seconds(self, frame: av.VideoFrame) -> float:
        return float((frame.pts - self.origin) * self.base) if frame.pts is not None else 0.0

    def find(self, position: FramePosition) -> tuple[av.VideoFrame, float]:
        if position == "first":
            for frame in self.container.decode(self.stream):
                return frame, self.seconds(frame)
            raise FrameError(NO_FRAME)
        target = math.inf if position == "last" else float(position)
        length = self.stream.duration or 0  # in stream time; 0 when the header does not say
        seek_to = self.origin + (length if target == math.inf else min(int(target / self.base), length or 1 << 62))
        end_s = min(target, float(length * self.base)) if length else target
        skip_until = end_s - max(SKIP_MARGIN_S, SKIP_MARGIN_FRAMES * self.frame_s) if math.isfinite(end_s) else None
        found = self._last_at_or_before(target, seek_to, skip_until)
        if found is None:  # the seek landed past every frame: some files index only their start
            found = self._last_at_or_before(target, self.origin, skip_until)
        if found is not None and skip_until is not None and found[1] < skip_until:
            found = self._last_at_or_before(target, seek_to, None)  # a gap in the frames: look at every one
        if found is None:
            raise FrameError(NO_FRAME)
        frame, at_s = found
        if target != math.inf and target > at_s + self.frame_s + 1e-3:  # the header's length was wrong or missing
            raise FrameError(past_end(target, at_s + self.frame_s))
        return frame, at_s

    def _last_at_or_before(
        self, target: float, seek_to: int, skip_until: float | None
    ) -> tuple[av.VideoFrame, float] | None:
        """The last frame showing at or before `target`, decoding forward from the keyframe before `seek_to`.

        Until `skip_until` s, frames that no other frame is predicted from are not decoded at all: they cannot
        be the one wanted, and they are half of an H.264 clip's frames (its non-reference B-frames)."""
        self.container.seek(seek_to, stream=self.stream, backward=True, any_frame=False)
        context = self.stream.codec_context
        skipping = skip_until is not None
        context.skip_frame = "NONREF" if skipping else "DEFAULT"
        found: tuple[av.VideoFrame, float] | None = None
        for packet in self.container.demux(self.stream):
            if skipping and (packet.pts is None or float((packet.pts - self.origin) * self.base) >= (skip_until or 0)):
                context.skip_frame, skipping = "DEFAULT", False
            for frame in self.stream.decode(packet):
                at_s = self.seconds(frame)
                if found is not None and at_s > target + 1e-6:
                    return found
                found = (frame, at_s)  # the one before is released here: one frame held at a time
        return found
