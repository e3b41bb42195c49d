"""What a media file holds, read from its container header: streams, length, picture size, frame rate.

Nothing is decoded, so probing a file of any length takes milliseconds. The file may come from a
stranger (an upstream output, a caller's file): a header that cannot be read is a `MediaFileError`,
and a picture bigger than `MAX_FRAME_PIXELS` is refused before any frame of it is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from runcomfy_mcp.errors import MediaFileError

MAX_FRAME_PIXELS = 4096 * 2304  # 4K and a little more; one decoded frame stays under ~15 MB
MAX_FPS = 240


@dataclass(frozen=True)
class MediaInfo:
    """`duration_s` is 0 when the header does not say; `fps` is None without a video stream."""

    duration_s: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: Fraction | None = None

    def words(self) -> str:
        """'a 5.0 s 1280×720 video with sound', 'a 12.0 s sound'."""
        length = f"{self.duration_s:.1f} s " if self.duration_s else ""
        if self.has_video:
            sound = " with sound" if self.has_audio else ""
            return f"a {length}{self.width}×{self.height} video{sound}"
        return f"a {length}sound" if self.has_audio else "a file with no picture or sound"


def stream_seconds(stream: object, container: object) -> float:
    """A stream's length in seconds, else the container's, else 0."""
    duration, base = getattr(stream, "duration", None), getattr(stream, "time_base", None)
    if duration and base:
        return float(duration * base)
    whole = getattr(container, "duration", None)
    return float(whole) / 1_000_000 if whole else 0.0


def probe(path: Path) -> MediaInfo:
    """The file's streams and length; raises MediaFileError when it is not a media file PyAV can open."""
    import av

    try:
        with av.open(str(path)) as container:
            videos = list(container.streams.video)
            audios = list(container.streams.audio)
            if videos:
                video = videos[0]
                width, height = video.codec_context.width, video.codec_context.height
                rate = video.average_rate or video.guessed_rate or video.base_rate
                fps = Fraction(rate) if rate and 0 < rate <= MAX_FPS else None
                duration = stream_seconds(video, container)
            else:
                width = height = 0
                fps = None
                duration = stream_seconds(audios[0], container) if audios else 0.0
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise MediaFileError(f"is not a video or sound file that can be read ({type(exc).__name__})") from exc
    if videos and (width <= 0 or height <= 0):
        raise MediaFileError("has a video stream with no picture size")
    if width * height > MAX_FRAME_PIXELS:
        raise MediaFileError(
            f"has {width}×{height} frames, more than the {MAX_FRAME_PIXELS / 1e6:.1f} megapixels this server decodes"
        )
    return MediaInfo(duration, bool(videos), bool(audios), width, height, fps)
