"""Clips cut into one film with PyAV: trimmed, joined by cuts or crossfades, fitted to one size, with sound.

The film is made frame by frame: each output frame is decoded, fitted (scaled to fit, padded with
black, never stretched), blended when two shots cross, and encoded before the next one is read,
and the sound follows in step. So memory holds a few frames and a few thousand samples whatever
the length. Writes an H.264 + AAC MP4 with its index at the front (+faststart), so it plays while
it downloads. CPU-bound: run `compose` in a worker thread.
"""

from __future__ import annotations

import math
import os
import secrets
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from runcomfy_mcp.domain.films import MAX_CLIPS, AudioMode, Transition
from runcomfy_mcp.errors import FilmError, MediaFileError
from runcomfy_mcp.media.probe import MAX_FRAME_PIXELS, MediaInfo, probe

if TYPE_CHECKING:
    import av
    import numpy as np
    from numpy.typing import NDArray
    from PIL.Image import Image

MAX_FILM_S = 600.0  # ten minutes: a film of model clips is far shorter; a longer one is a mistake or an attack
MAX_FPS = 60
MIN_SIDE, MAX_SIDE = 16, 4096
DEFAULT_FPS = Fraction(24)
SAMPLE_RATE = 48_000
AUDIO_BLOCK = 1024  # one AAC frame
FADE_OUT_MAX_S = 2.0  # the soundtrack's fade at the end: this long, or a quarter of a short film
STILL_WIDTH = 320  # one still per shot, for the contact sheet of the cut
BLACK = (16, 128, 128)  # Y, U, V of black in the video range
PROGRESS_FRAMES = 12  # progress is told every this many frames
# superfast: the encoder was half of composing at veryfast; the film is ~1.7× larger at the same CRF, still small
ENCODER_OPTIONS = {"preset": "superfast", "crf": "20"}


@dataclass(frozen=True)
class Clip:
    path: Path
    source: str  # what the caller named it by (a request id, a file name): for the shot list and messages
    start_s: float = 0.0
    end_s: float | None = None  # None: to the clip's end
    label: str = ""  # how problems name it; default "clips[<index>] (<source>)"

    def named(self, index: int) -> str:
        return self.label or f"clips[{index}] ({self.source})"


@dataclass(frozen=True)
class Soundtrack:
    path: Path
    source: str
    volume: float = 1.0
    mode: AudioMode = "replace"  # replace the clips' own sound, or mix with it
    label: str = ""  # how problems name it; default "audio (<source>)"


@dataclass(frozen=True)
class FilmPlan:
    clips: tuple[Clip, ...]
    transition: Transition = "cut"
    transition_s: float = 0.5
    size: tuple[int, int] | None = None  # None: the first clip's
    fps: Fraction | None = None  # None: the first clip's
    soundtrack: Soundtrack | None = None


@dataclass(frozen=True)
class Shot:
    source: str
    at_s: float  # where the shot starts in the film
    duration_s: float  # how long it lasts in the film (crossfades included)
    clip_start_s: float
    clip_end_s: float


@dataclass(frozen=True)
class Film:
    path: Path
    duration_s: float
    width: int
    height: int
    fps: float
    size_bytes: int
    shots: tuple[Shot, ...]
    stills: tuple[Image, ...] = field(repr=False)  # the middle of each shot, STILL_WIDTH wide


@dataclass(frozen=True)
class _Layout:
    """A checked plan: the files' facts and the cut's arithmetic, in seconds."""

    plan: FilmPlan
    width: int
    height: int
    fps: Fraction
    shots: tuple[Shot, ...]
    overlap_s: float
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / float(self.fps)


def plan_problems(plan: FilmPlan) -> list[str]:
    """Every reason the plan cannot be made, read from the files' headers (nothing is decoded)."""
    return _layout(plan)[1]


def compose(
    plan: FilmPlan,
    out_path: Path,
    *,
    stop: Callable[[], bool] | None = None,
    progress: Callable[[float], None] | None = None,
) -> Film:
    """Makes the film at `out_path` (complete or not at all). Raises FilmError naming every problem,
    or what failed; `stop` returning True abandons the work (the caller went away); `progress` hears
    the share of frames done, from 0 to 1."""
    layout, problems = _layout(plan)
    if problems or layout is None:
        raise FilmError("The film cannot be made:\n" + "\n".join(f"- {p}" for p in problems))
    partial = out_path.with_name(f".{out_path.stem}.{secrets.token_hex(4)}.part")
    try:
        stills = _write(layout, partial, stop or (lambda: False), progress or (lambda done: None))
        os.replace(partial, out_path)
    except MediaFileError as exc:
        raise FilmError(f"Making the film failed: a clip {exc.reason}. Nothing was saved.") from exc
    except OSError as exc:
        raise FilmError(
            f"Writing the film failed ({exc.strerror or type(exc).__name__}). Check that the output folder is "
            "writable and has space. Nothing was saved."
        ) from exc
    finally:
        partial.unlink(missing_ok=True)
    return Film(
        out_path,
        round(layout.duration_s, 3),
        layout.width,
        layout.height,
        round(float(layout.fps), 3),
        out_path.stat().st_size,
        layout.shots,
        tuple(stills),
    )


def _layout(plan: FilmPlan) -> tuple[_Layout | None, list[str]]:
    problems: list[str] = []
    clips = plan.clips
    if not 1 <= len(clips) <= MAX_CLIPS:
        problems.append(f"clips: {len(clips)} given; a film takes 1 to {MAX_CLIPS} clips.")
    infos: list[MediaInfo | None] = []
    spans: list[tuple[float, float]] = []  # each clip's trim; (0, 0) for a clip with a problem
    for index, clip in enumerate(clips[: MAX_CLIPS + 1]):
        name = clip.named(index)
        info = _probe_for(name, clip.path, problems)
        if info is not None and not info.has_video:
            problems.append(f"{name}: is {info.words()}, not a video; give a video here (a sound goes in 'audio').")
            info = None
        elif info is not None and not info.duration_s:
            problems.append(f"{name}: its length cannot be read from the file, so it cannot be trimmed or cut.")
            info = None
        infos.append(info)
        spans.append((0.0, 0.0))
        length = info.duration_s if info else math.inf
        start, end = clip.start_s, clip.end_s if clip.end_s is not None else length
        if not (math.isfinite(start) and start >= 0) or (clip.end_s is not None and not math.isfinite(clip.end_s)):
            problems.append(f"{name}: start_s and end_s must be finite seconds from the clip's start, at least 0.")
        elif end <= start:
            problems.append(f"{name}: end_s ({end:g}) must be after start_s ({start:g}).")
        elif info is not None and (start >= length or end > length + 1e-3):
            problems.append(
                f"{name}: the trim {start:g}–{end:g} s is outside the clip, which is {length:.2f} s long; "
                f"use times from 0 to {length:.2f}."
            )
        elif info is not None:
            spans[-1] = (start, min(end, length))
    crossfade = plan.transition == "crossfade" and len(clips) > 1
    overlap = plan.transition_s if crossfade else 0.0
    if crossfade and not (math.isfinite(overlap) and overlap > 0):
        problems.append("transition_s: a crossfade lasts more than 0 seconds (0.5 is usual).")
    finite_spans = [(i, e - s) for i, (s, e) in enumerate(spans) if e > s]
    if crossfade and finite_spans and math.isfinite(overlap) and overlap > 0:
        index, shortest = min(finite_spans, key=lambda pair: pair[1])
        if overlap > shortest / 2 + 1e-9:
            problems.append(
                f"transition_s: a {overlap:g} s crossfade is longer than half of clips[{index}] "
                f"({shortest:.2f} s after trimming); use at most {shortest / 2:.2f} s or trim less."
            )
    size = plan.size
    first = infos[0] if infos else None
    if size is None and first is not None:
        size = _even_fit(first.width, first.height)
    if size is not None:
        width, height = size
        if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE) or width * height > MAX_FRAME_PIXELS:
            problems.append(
                f"resolution: {width}×{height} is outside what a film can be ({MIN_SIDE} to {MAX_SIDE} pixels a side, "
                f"at most {MAX_FRAME_PIXELS / 1e6:.1f} megapixels)."
            )
        elif width % 2 or height % 2:
            even = f"{width // 2 * 2}×{height // 2 * 2}"
            problems.append(f"resolution: {width}×{height} has an odd side; H.264 needs even ones (say {even}).")
    fps = plan.fps or (first.fps if first and first.fps else DEFAULT_FPS)
    if plan.fps is not None and not 1 <= plan.fps <= MAX_FPS:
        problems.append(f"fps: {float(plan.fps):g} is outside 1 to {MAX_FPS}.")
    fps = min(fps, Fraction(MAX_FPS))
    for index, (start, end) in enumerate(spans):
        if 0 < end - start < 2 / fps:
            problems.append(
                f"{clips[index].named(index)}: after trimming it lasts {end - start:.3f} s, less than "
                f"two frames of the film ({2 / float(fps):.3f} s)."
            )
    if plan.soundtrack is not None:
        track = plan.soundtrack
        name = track.label or f"audio ({track.source})"
        info = _probe_for(name, track.path, problems)
        if info is not None and info.has_video:
            problems.append(f"{name}: is {info.words()}; give a sound file or an audio job's id, not a video.")
        elif info is not None and not info.has_audio:
            problems.append(f"{name}: has no sound in it.")
        if not (math.isfinite(track.volume) and 0 <= track.volume <= 4):
            problems.append(f"audio.volume: {track.volume!r} is outside 0 to 4 (1 keeps the sound as it is).")
    total = sum(e - s for s, e in spans) - overlap * max(0, len(spans) - 1)
    if total > MAX_FILM_S:
        problems.append(f"clips: the film would last {total:.0f} s, over the {MAX_FILM_S:.0f} s a film may last.")
    if problems or size is None:
        return None, problems
    shots, at = [], 0.0
    for clip, (start, end) in zip(clips, spans, strict=True):
        shots.append(Shot(clip.source, round(at, 3), round(end - start, 3), round(start, 3), round(end, 3)))
        at += end - start - overlap
    frames = max(1, round(total * fps))
    return _Layout(plan, size[0], size[1], fps, tuple(shots), overlap, frames), []


def _probe_for(name: str, path: Path, problems: list[str]) -> MediaInfo | None:
    try:
        return probe(path)
    except MediaFileError as exc:
        problems.append(f"{name}: {exc.reason}.")
        return None


def _even_fit(width: int, height: int) -> tuple[int, int]:
    return max(2, width // 2 * 2), max(2, height // 2 * 2)


def _write(layout: _Layout, path: Path, stop: Callable[[], bool], progress: Callable[[float], None]) -> list[Image]:
    import av

    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=layout.fps)
        video.width, video.height, video.pix_fmt = layout.width, layout.height, "yuv420p"
        video.options = dict(ENCODER_OPTIONS)
        video.codec_context.gop_size = max(1, round(2 * layout.fps))  # a keyframe every 2 s: quick seeks
        video.codec_context.time_base = 1 / layout.fps
        audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="stereo")
        audio.codec_context.bit_rate = 160_000
        audio.options = {"aac_coder": "fast"}  # half the default coder's time, the same size and sound to the ear
        pictures, sound = _Pictures(layout), _Mixer(layout)
        try:
            for index in range(layout.frames):
                if stop():
                    raise FilmError("Making the film was stopped before it was done. Nothing was saved.")
                frame = pictures.frame(index)
                frame.pts, frame.time_base = index, video.codec_context.time_base
                container.mux(video.encode(frame))
                for block in sound.blocks_until(round((index + 1) * SAMPLE_RATE / layout.fps)):
                    container.mux(audio.encode(block))
                if index % PROGRESS_FRAMES == 0:
                    progress(index / layout.frames)
            container.mux(video.encode(None))
            container.mux(audio.encode(None))
        finally:
            pictures.close()
            sound.close()
    return [pictures.stills[i] for i in sorted(pictures.stills)]


class _Pictures:
    """The film's frames in order: each shot's picture at that moment, fitted, blended where shots cross."""

    def __init__(self, layout: _Layout) -> None:
        self.layout = layout
        self.readers: dict[int, _ClipReader] = {}
        self.stills: dict[int, Image] = {}

    def frame(self, index: int) -> av.VideoFrame:
        import av
        import numpy as np

        layout, at = self.layout, index / float(self.layout.fps)
        half_frame = 0.5 / float(layout.fps)
        visible = [i for i, s in enumerate(layout.shots) if s.at_s - 1e-9 <= at < s.at_s + s.duration_s - 1e-9]
        visible = visible or [len(layout.shots) - 1]  # rounding at the very end: the last shot holds
        for i in [i for i in self.readers if i < visible[0]]:
            self.readers.pop(i).close()
        planes = []
        for i in visible:
            shot = layout.shots[i]
            reader = self.readers.get(i)
            if reader is None:
                clip = layout.plan.clips[i]
                reader = self.readers[i] = _ClipReader(clip.path, shot.clip_start_s, layout.width, layout.height)
            picture = reader.picture_at(shot.clip_start_s + at - shot.at_s)
            if i not in self.stills and at + half_frame >= shot.at_s + shot.duration_s / 2:
                self.stills[i] = _still(picture, layout.width, layout.height)
            planes.append(picture)
        if len(planes) == 1:
            return planes[0]  # one shot: its (fitted) frame as it is
        # a crossfade: the incoming shot's weight grows over the overlap
        incoming = layout.shots[visible[1]]
        weight = min(1.0, max(0.0, (at + half_frame - incoming.at_s) / layout.overlap_s))
        k = np.uint16(round(weight * 256))
        outgoing, coming = (np.asarray(p.to_ndarray(), dtype=np.uint16) for p in planes)
        blended = ((outgoing * (256 - k) + coming * k) >> 8).astype(np.uint8)
        return av.VideoFrame.from_ndarray(blended, format="yuv420p")

    def close(self) -> None:
        for reader in self.readers.values():
            reader.close()
        self.readers.clear()


def _still(frame: av.VideoFrame, width: int, height: int) -> Image:
    still_w = min(STILL_WIDTH, width)
    small = frame.reformat(width=still_w, height=max(2, round(still_w * height / width)), format="rgb24")
    picture: Image = small.to_image()  # type: ignore[no-untyped-call]
    return picture


class _ClipReader:
    """One clip's pictures from `start_s` on, in order, each fitted to the film's size (yuv420p)."""

    def __init__(self, path: Path, start_s: float, width: int, height: int) -> None:
        import av

        self.width, self.height = width, height
        try:
            self.container = av.open(str(path))
            self.stream = self.container.streams.video[0]
            self.stream.thread_type = "AUTO"
            self.base = self.stream.time_base or Fraction(1, 90000)
            self.origin = self.stream.start_time or 0
            if start_s > 0:
                self.container.seek(self.origin + int(start_s / self.base), stream=self.stream, backward=True)
            self.decoded = self.container.decode(self.stream)
        except av.error.FFmpegError as exc:
            raise MediaFileError(f"{path.name} could not be decoded ({type(exc).__name__})") from exc
        self.current: tuple[float, av.VideoFrame] | None = None
        self.upcoming = self._next()
        self.fitted: av.VideoFrame | None = None

    def _next(self) -> tuple[float, av.VideoFrame] | None:
        import av

        try:
            frame = next(self.decoded, None)
        except av.error.FFmpegError as exc:
            raise MediaFileError(f"could not be decoded ({type(exc).__name__})") from exc
        if frame is None:
            return None
        return float(((frame.pts or 0) - self.origin) * self.base), frame

    def picture_at(self, clip_s: float) -> av.VideoFrame:
        """The frame showing at `clip_s`: frames before it are read and dropped; one may show several times."""
        while self.upcoming is not None and (self.current is None or self.upcoming[0] <= clip_s + 1e-6):
            self.current, self.fitted = self.upcoming, None
            self.upcoming = self._next()
        if self.current is None:
            raise MediaFileError("has no frame that could be decoded")
        if self.fitted is None:
            self.fitted = _fit(self.current[1], self.width, self.height)
        return self.fitted

    def close(self) -> None:
        self.container.close()


def _fit(frame: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """Scaled to fit inside width×height keeping its shape, centred on black, as yuv420p."""
    import av
    import numpy as np

    scale = min(width / frame.width, height / frame.height)
    inner_w = min(width, max(2, round(frame.width * scale / 2) * 2))
    inner_h = min(height, max(2, round(frame.height * scale / 2) * 2))
    scaled = frame.reformat(width=inner_w, height=inner_h, format="yuv420p", interpolation="BICUBIC")
    if (inner_w, inner_h) == (width, height):
        return scaled
    picture = np.asarray(scaled.to_ndarray(), dtype=np.uint8)
    y, u, v = _planes(picture, inner_w, inner_h)
    left, top = (width - inner_w) // 4 * 2, (height - inner_h) // 4 * 2  # even: the chroma planes are halved
    canvas = [np.full((height, width), BLACK[0], np.uint8)]
    canvas += [np.full((height // 2, width // 2), level, np.uint8) for level in BLACK[1:]]
    canvas[0][top : top + inner_h, left : left + inner_w] = y
    for plane, source in zip(canvas[1:], (u, v), strict=True):
        plane[top // 2 : (top + inner_h) // 2, left // 2 : (left + inner_w) // 2] = source
    packed = np.concatenate([plane.ravel() for plane in canvas]).reshape(height * 3 // 2, width)
    return av.VideoFrame.from_ndarray(packed, format="yuv420p")


def _planes(packed: NDArray[np.uint8], width: int, height: int) -> tuple[NDArray[np.uint8], ...]:
    """PyAV packs yuv420p as one (height × 3/2, width) array: Y, then U and V a quarter each."""
    flat = packed.ravel()
    luma, chroma = width * height, (width // 2) * (height // 2)
    return (
        flat[:luma].reshape(height, width),
        flat[luma : luma + chroma].reshape(height // 2, width // 2),
        flat[luma + chroma : luma + 2 * chroma].reshape(height // 2, width // 2),
    )


class _Sound:
    """A file's sound as 48 kHz stereo float samples, read in order from `start_s`; silence after its end
    (and throughout, for a clip without sound)."""

    def __init__(self, path: Path, start_s: float) -> None:
        import av

        self.start_s = start_s
        self.pending: deque[NDArray[np.float32]] = deque()
        self.skip = 0  # samples decoded from before `start_s` (the seek lands on a packet before it)
        self.first = True
        self.resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
        self.container: av.container.InputContainer | None = None
        self.frames: Iterator[av.AudioFrame] | None = None
        try:
            self.container = av.open(str(path))
            if not self.container.streams.audio:
                self.close()
                return
            stream = self.container.streams.audio[0]
            self.base, self.origin = stream.time_base or Fraction(1, SAMPLE_RATE), stream.start_time or 0
            if start_s > 0:
                self.container.seek(self.origin + int(start_s / self.base), stream=stream, backward=True)
            self.frames = self.container.decode(stream)
        except av.error.FFmpegError as exc:
            self.close()
            raise MediaFileError(f"has a sound that could not be decoded ({type(exc).__name__})") from exc

    def read(self, count: int) -> NDArray[np.float32]:
        import numpy as np

        parts, have = [], 0
        while have < count:
            if not self.pending and not self._decode_more():
                parts.append(np.zeros((2, count - have), np.float32))
                break
            chunk = self.pending.popleft()
            take = min(count - have, chunk.shape[1])
            parts.append(chunk[:, :take])
            if take < chunk.shape[1]:
                self.pending.appendleft(chunk[:, take:])
            have += take
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def _decode_more(self) -> bool:
        """Decodes one more frame into `pending`; False once the sound has ended."""
        import av
        import numpy as np

        if self.frames is None:
            return False
        try:
            frame = next(self.frames, None)
            if frame is not None and self.first:
                self.first = False
                begins = float((frame.pts - self.origin) * self.base) if frame.pts is not None else self.start_s
                gap = round((begins - self.start_s) * SAMPLE_RATE)
                if gap > 0:  # the sound starts after the trim point: silence until it does
                    self.pending.append(np.zeros((2, gap), np.float32))
                self.skip = max(0, -gap)
            resampled = self.resampler.resample(frame)  # None flushes what the resampler holds
        except av.error.FFmpegError as exc:
            raise MediaFileError(f"has a sound that could not be decoded ({type(exc).__name__})") from exc
        if frame is None:
            self.close()
        for piece in resampled:
            samples = piece.to_ndarray().astype(np.float32, copy=False)
            if self.skip:
                dropped = min(self.skip, samples.shape[1])
                samples, self.skip = samples[:, dropped:], self.skip - dropped
            if samples.shape[1]:
                self.pending.append(samples)
        return True

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None
        self.frames = None


class _Mixer:
    """The film's sound in AAC-frame blocks: the shots' own sound (crossfaded with their pictures) unless
    replaced, and the soundtrack at its volume, cut to the film's length and faded out at the end."""

    def __init__(self, layout: _Layout) -> None:
        self.layout = layout
        self.written = 0
        self.total = round(layout.frames * SAMPLE_RATE / layout.fps)
        track = layout.plan.soundtrack
        self.keep_shot_sound = track is None or track.mode == "mix"
        self.track = _Sound(track.path, 0.0) if track else None
        self.volume = track.volume if track else 1.0
        self.fade_out = min(FADE_OUT_MAX_S, layout.duration_s / 4) * SAMPLE_RATE
        self.shot_spans = [
            (round(s.at_s * SAMPLE_RATE), round((s.at_s + s.duration_s) * SAMPLE_RATE)) for s in layout.shots
        ]
        self.sounds: dict[int, _Sound] = {}

    def blocks_until(self, sample: int) -> Iterator[av.AudioFrame]:
        import av

        sample = min(sample, self.total)
        while self.written < sample:
            count = min(AUDIO_BLOCK, self.total - self.written)
            if sample < self.total and self.written + count > sample:
                return  # wait for the pictures to catch up: a whole block or the very end
            frame = av.AudioFrame.from_ndarray(self._mix(self.written, count), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = SAMPLE_RATE, self.written
            frame.time_base = Fraction(1, SAMPLE_RATE)
            self.written += count
            yield frame

    def _mix(self, begin: int, count: int) -> NDArray[np.float32]:
        import numpy as np

        out = np.zeros((2, count), np.float32)
        end = begin + count
        overlap = round(self.layout.overlap_s * SAMPLE_RATE)
        last = len(self.shot_spans) - 1
        if self.keep_shot_sound:
            for i, (first, after) in enumerate(self.shot_spans):
                lo, hi = max(begin, first), min(end, after)
                if lo >= hi:
                    if after <= begin and i in self.sounds:
                        self.sounds.pop(i).close()
                    continue
                sound = self.sounds.get(i)
                if sound is None:
                    clip = self.layout.plan.clips[i]
                    sound = self.sounds[i] = _Sound(clip.path, self.layout.shots[i].clip_start_s)
                samples = sound.read(hi - lo)
                if overlap:
                    where = np.arange(lo, hi, dtype=np.float32)
                    gain = np.ones(hi - lo, np.float32)
                    if i > 0:
                        gain = np.minimum(gain, (where - first) / overlap)
                    if i < last:
                        gain = np.minimum(gain, (after - where) / overlap)
                    samples = samples * np.clip(gain, 0, 1)
                out[:, lo - begin : hi - begin] += samples
        if self.track is not None:
            where = np.arange(begin, end, dtype=np.float32)
            gain = np.clip((self.total - where) / max(1.0, self.fade_out), 0, 1) * self.volume
            out += self.track.read(count) * gain
        return np.clip(out, -1, 1)

    def close(self) -> None:
        for sound in self.sounds.values():
            sound.close()
        if self.track is not None:
            self.track.close()


def describe_shots(shots: Sequence[Shot]) -> str:
    """'1. abc at 0.0 s (5.0 s); 2. …' — the cut, for the assistant's text."""
    return "; ".join(f"{i + 1}. {s.source} at {s.at_s:.1f} s ({s.duration_s:.1f} s)" for i, s in enumerate(shots))
