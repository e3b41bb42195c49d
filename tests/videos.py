"""Real media files made with PyAV for the tests: clips whose every frame says which it is, and tones."""

from __future__ import annotations

import io
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

STEP = 15  # colour levels between neighbouring frame numbers: survives H.264 and YUV rounding


def colour(index: int, clip: int = 0) -> tuple[int, int, int]:
    """Frame `index` of clip `clip`: red counts frames, green counts sixteens of frames, blue names the clip."""
    return 8 + (index % 16) * STEP, 8 + (index // 16) * STEP, 40 + clip * 40


def read_colour(picture: Image.Image, box: tuple[int, int, int, int] | None = None) -> tuple[int, int]:
    """(frame index, clip) that `colour` painted, read from the mean colour of the picture (or of `box`)."""
    region = np.asarray(picture.convert("RGB").crop(box) if box else picture.convert("RGB"), dtype=np.float64)
    red, green, blue = region.reshape(-1, 3).mean(axis=0)
    return round((red - 8) / STEP) + 16 * round((green - 8) / STEP), round((blue - 40) / 40)


def numbered_clip(
    path: Path,
    *,
    frames: int,
    fps: int | Fraction = 24,
    size: tuple[int, int] = (160, 96),
    clip: int = 0,
    keyint: int = 12,
    tone_hz: float | None = None,
) -> Path:
    """An H.264 MP4 (with B-frames, a keyframe every `keyint`) whose frame i is painted `colour(i, clip)`;
    with `tone_hz`, an AAC sound of that pitch as long as the picture."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        video.options = {
            "preset": "ultrafast",
            "crf": "10",
            "x264-params": f"keyint={keyint}:min-keyint={keyint}:bframes=2",
        }
        sound = container.add_stream("aac", rate=48000, layout="stereo") if tone_hz else None
        for index in range(frames):
            frame = av.VideoFrame.from_image(Image.new("RGB", size, colour(index, clip)))
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            seconds = frames / float(fps)
            for packet in _encode_tone(sound, seconds, tone_hz or 440.0):
                container.mux(packet)
    return path


def tone_file(path: Path, seconds: float, hz: float = 440.0, rate: int = 44100) -> Path:
    """A sound file of one pitch; the codec follows the suffix (.m4a AAC, .wav PCM, .mp3 MP3)."""
    codec = {".m4a": "aac", ".wav": "pcm_s16le", ".mp3": "libmp3lame"}[path.suffix]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout="stereo")
        for packet in _encode_tone(stream, seconds, hz):
            container.mux(packet)
    return path


def _encode_tone(stream: av.AudioStream, seconds: float, hz: float) -> list[av.Packet]:
    rate = stream.rate
    total = int(seconds * rate)
    chunk = 1024
    packets: list[av.Packet] = []
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        t = (np.arange(start, start + n) / rate).astype(np.float64)
        wave = 0.5 * np.sin(2 * math.pi * hz * t)
        data = np.stack([wave, wave]).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(data, format="fltp", layout="stereo")  # the encoder converts
        frame.rate, frame.pts = rate, start
        packets.extend(stream.encode(frame))
    packets.extend(stream.encode())
    return packets


def sound_of(path: Path) -> tuple[np.ndarray, int]:
    """The file's first sound, as mono samples, and its sample rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=stream.rate)
        parts = [
            piece.to_ndarray().ravel() for frame in container.decode(stream) for piece in resampler.resample(frame)
        ]
        parts += [piece.to_ndarray().ravel() for piece in resampler.resample(None)]
        return np.concatenate(parts), stream.rate


def loudness(samples: np.ndarray, hz: float, rate: int) -> float:
    """How strong the pitch `hz` is in `samples` (amplitude of that frequency, 0 to about 1)."""
    if len(samples) == 0:
        return 0.0
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) / (len(samples) / 4)
    nearest = round(hz * len(samples) / rate)
    return float(spectrum[max(0, nearest - 2) : nearest + 3].max())


def frames_of(video: Path | bytes) -> list[Image.Image]:
    """The decoded frames of a video file, or of a video's bytes."""
    with av.open(io.BytesIO(video) if isinstance(video, bytes) else str(video)) as container:
        return [frame.to_image() for frame in container.decode(video=0)]


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per RGB channel, 0-255, after bringing b to a's size."""
    a, b = a.convert("RGB"), b.convert("RGB").resize(a.size)
    return float(np.abs(np.asarray(a, float) - np.asarray(b, float)).mean())
