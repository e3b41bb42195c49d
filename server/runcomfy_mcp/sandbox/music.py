"""A real piece of music for the sandbox's music model: soft chords and an arpeggio, as a WAV file.

As long as the job asked for (`duration`, 5 to 60 s; 15 s by default), so a film's soundtrack can be
cut to length and faded out like a real one. Made with numpy in a few milliseconds per second.
"""

from __future__ import annotations

import io
import wave
from typing import Any

RATE = 22_050
DEFAULT_SECONDS = 15.0
MIN_SECONDS, MAX_SECONDS = 1.0, 60.0
BEAT_S = 0.25
# C major, A minor, F major, G major: the four chords every pop song knows, as semitones above A4.
CHORDS = ((3, 7, 10), (0, 3, 7), (-4, 0, 3), (-2, 2, 5))


def requested_seconds(arguments: dict[str, Any]) -> float:
    duration = arguments.get("duration")
    if isinstance(duration, str) and duration.strip().isdigit():
        duration = int(duration)
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        return min(MAX_SECONDS, max(MIN_SECONDS, float(duration)))
    return DEFAULT_SECONDS


def make_music(seconds: float) -> bytes:
    """16-bit stereo WAV: a chord per bar under an arpeggio, each note with a soft attack and decay."""
    import numpy as np

    total = int(seconds * RATE)
    t = np.arange(total) / RATE
    bar = (t // (BEAT_S * 8)).astype(int) % len(CHORDS)
    beat = (t // BEAT_S).astype(int)
    in_beat = t - beat * BEAT_S
    chords = np.array(CHORDS)[bar]  # (samples, 3) semitones
    pads = sum(np.sin(2 * np.pi * 220.0 * 2 ** (chords[:, i] / 12) * t) for i in range(3)) / 3
    arpeggio_notes = chords[np.arange(total), beat % 3] + 12
    envelope = np.minimum(1.0, in_beat / 0.01) * np.exp(-in_beat * 9)
    arpeggio = np.sin(2 * np.pi * 220.0 * 2 ** (arpeggio_notes / 12) * t) * envelope
    left = 0.25 * pads + 0.35 * arpeggio
    right = 0.25 * pads + 0.3 * np.roll(arpeggio, int(0.012 * RATE))  # a little width
    samples = (np.stack([left, right], axis=1) * 32767 * 0.8).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def music_for_job(arguments: dict[str, Any]) -> bytes:
    return make_music(requested_seconds(arguments))
