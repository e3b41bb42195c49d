"""Films and frames as the vocabulary shares them: their ids and URIs, a frame's position, a film's view.

A film is made here, not by RunComfy: it has an id of its own (`film-…`) so that nothing about it is
ever sent upstream, and it costs nothing. A frame of a finished job is named by a URI a caller can put
wherever an image goes: `runcomfy://jobs/{request_id}/frames/last` (or `first`, or seconds).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from runcomfy_mcp.domain.views import WaitResult
from runcomfy_mcp.errors import FrameError

FILM_PREFIX = "film-"
FILM_MODEL_ID = "runcomfy-mcp/compose-video"  # the history's model for a film: no RunComfy model, no cost
FILM_TOOL = "compose_video"
FILMS_URI = "runcomfy://films/"
FRAME_URI = re.compile(r"^runcomfy://jobs/(?P<request_id>[A-Za-z0-9_-]{1,128})/frames/(?P<position>[^/\s]{1,40})$")
FramePosition = Literal["first", "last"] | float
Transition = Literal["cut", "crossfade"]
AudioMode = Literal["replace", "mix"]
MAX_CLIPS = 20


def is_film_id(request_id: str) -> bool:
    return request_id.startswith(FILM_PREFIX)


def film_uri(film_id: str) -> str:
    return FILMS_URI + film_id


def parse_position(text: str) -> FramePosition:
    """'first', 'last', or a number of seconds from the start ('2.5'); raises FrameError otherwise."""
    if text == "first":
        return "first"
    if text == "last":
        return "last"
    try:
        seconds = float(text) if len(text) <= 32 else math.nan
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise FrameError(
            f"{text[:40]!r} is not a frame position: use 'first', 'last', or the seconds from the start "
            "(a number such as 2.5)."
        )
    return seconds


def position_words(position: FramePosition) -> str:
    return f"the {position} frame" if isinstance(position, str) else f"the frame at {position:g} s"


def frame_reference(value: str) -> tuple[str, FramePosition] | None:
    """(request id, position) when `value` is a frame URI; None for anything else. Raises FrameError when it is
    a frame URI with a position that cannot be."""
    text = value.strip()
    match = FRAME_URI.match(text) if text.startswith("runcomfy://jobs/") and "/frames/" in text else None
    if match is None:
        return None
    return match["request_id"], parse_position(match["position"])


class FilmShot(BaseModel):
    source: str = Field(description="The clip: a request id, or a file's name.")
    at_s: float = Field(description="Where the shot starts in the film, in seconds.")
    duration_s: float = Field(description="How long it shows (crossfades included).")
    clip_start_s: float = Field(description="Where in its clip the shot starts.")
    clip_end_s: float = Field(description="Where in its clip it ends.")


class FilmResult(WaitResult):
    """A film, as compose_video answers and get_result reads it back: a job result with the film's own facts."""

    kind: Literal["film"] = "film"
    timed_out: bool = False  # a film is made at once: nothing to wait for
    waited_s: float = 0.0
    duration_s: float
    width: int
    height: int
    fps: float
    size_bytes: int
    shots: list[FilmShot]
    audio: str | None = Field(default=None, description="The soundtrack's source, if any.")
    film_uri: str = Field(description="The film as an MCP resource (video/mp4), for this caller only.")


@dataclass(frozen=True)
class ClipRequest:
    source: str
    start_s: float = 0.0
    end_s: float | None = None


@dataclass(frozen=True)
class AudioRequest:
    source: str
    volume: float = 1.0
    mode: AudioMode = "replace"


@dataclass(frozen=True)
class FilmRequest:
    clips: tuple[ClipRequest, ...]
    transition: Transition = "cut"
    transition_s: float = 0.5
    audio: AudioRequest | None = None
    size: tuple[int, int] | None = None
    fps: float | None = None
    name: str | None = None

    def as_arguments(self) -> dict[str, Any]:
        """What the history keeps of the request."""
        arguments: dict[str, Any] = {
            "clips": [{"source": c.source, "start_s": c.start_s, "end_s": c.end_s} for c in self.clips],
            "transition": self.transition,
        }
        if self.transition == "crossfade":
            arguments["transition_s"] = self.transition_s
        if self.audio:
            arguments["audio"] = {"source": self.audio.source, "volume": self.audio.volume, "mode": self.audio.mode}
        if self.size:
            arguments["resolution"] = f"{self.size[0]}x{self.size[1]}"
        if self.fps:
            arguments["fps"] = self.fps
        if self.name:
            arguments["name"] = self.name
        return arguments
