"""compose_video as the protocol shows it: its arguments (declared once: schema and parsing), and its answer —
the contact sheet of the cut first, then the words, then where the film is (a file over stdio, a resource of
the caller's over HTTP), with the shot list in structured content for the player."""

from __future__ import annotations

import base64
import re
from typing import Annotated, Literal

import mcp_types as types
from pydantic import Field

from runcomfy_mcp.domain.amounts import count, file_size
from runcomfy_mcp.domain.films import MAX_CLIPS, AudioRequest, ClipRequest, FilmRequest, FilmResult
from runcomfy_mcp.mcp.arguments import _Arguments

MAX_SOURCE_CHARS = 1024
_RESOLUTION = re.compile(r"^(\d{2,4})x(\d{2,4})$")
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class ClipArgument(_Arguments):
    source: str = Field(max_length=MAX_SOURCE_CHARS, description="A finished video job's request_id, or a local file.")
    start_s: Seconds | None = None
    end_s: Seconds | None = None


class AudioArgument(_Arguments):
    source: str = Field(max_length=MAX_SOURCE_CHARS)
    volume: float = Field(default=1.0, ge=0, le=4, allow_inf_nan=False)
    mode: Literal["replace", "mix"] = "replace"


class ComposeVideoArguments(_Arguments):
    # The count is checked by the service, which names it with the other problems; the schema still says it.
    clips: list[ClipArgument] = Field(json_schema_extra={"minItems": 1, "maxItems": MAX_CLIPS})
    transition: Literal["cut", "crossfade"] = "cut"
    transition_s: float = Field(default=0.5, gt=0, le=5, allow_inf_nan=False)
    audio: AudioArgument | None = Field(default=None, description="An audio job's request_id or a local file.")
    resolution: str | None = Field(default=None, pattern=_RESOLUTION.pattern, description="WIDTHxHEIGHT")
    fps: float | None = Field(default=None, ge=1, le=60, allow_inf_nan=False)
    name: str | None = Field(default=None, max_length=80)

    def request(self) -> FilmRequest:
        size = None
        if self.resolution:
            match = _RESOLUTION.match(self.resolution)
            assert match is not None  # the field's pattern
            size = (int(match[1]), int(match[2]))
        audio = self.audio
        return FilmRequest(
            clips=tuple(ClipRequest(c.source, c.start_s or 0.0, c.end_s) for c in self.clips),
            transition=self.transition,
            transition_s=self.transition_s,
            audio=AudioRequest(audio.source, audio.volume, audio.mode) if audio else None,
            size=size,
            fps=self.fps,
            name=self.name,
        )


DESCRIPTION = (
    "Cut finished clips into one MP4 film, here for free: trims, cuts or crossfades, audio under it (faded out), one "
    "size. To continue a shot, a job's image input may be runcomfy://jobs/<request_id>/frames/last."
)


def words(view: FilmResult) -> str:
    shots = "\n".join(
        f"{i + 1}. {s.source}: {s.at_s:.2f}-{s.at_s + s.duration_s:.2f} s of the film "
        f"(its {s.clip_start_s:g}-{s.clip_end_s:g} s)"
        for i, s in enumerate(view.shots)
    )
    where = (
        f"Saved to:\n- {view.local_files[0]}"
        if view.local_files
        else f"Read it as the resource {view.film_uri} (video/mp4)."
    )
    lines = [
        f"Film {view.request_id}: {view.duration_s:.1f} s, {view.width}×{view.height} at {view.fps:g} fps, "
        f"{file_size(view.size_bytes)}, {count(len(view.shots), 'shot')}"
        f"{', with ' + view.audio + ' as the soundtrack' if view.audio else ''}.",
        f"Shots:\n{shots}",
        where,
    ]
    return "\n".join([*lines, *(f"Note: {note}" for note in view.notes)])


def reply(view: FilmResult, *, preview: bool = True) -> types.CallToolResult:
    content: list[types.ContentBlock] = []
    if preview and view.preview_jpeg:  # the cut, seen before it is described: one tile per shot
        content.append(
            types.ImageContent(data=base64.b64encode(view.preview_jpeg).decode("ascii"), mime_type="image/jpeg")
        )
    content.append(types.TextContent(text=words(view)))
    if view.local_files:
        from pathlib import Path

        path = Path(view.local_files[0])
        content.append(
            types.ResourceLink(uri=path.as_uri(), name=path.name, mime_type="video/mp4", size=view.size_bytes)
        )
    else:
        content.append(
            types.ResourceLink(
                uri=view.film_uri, name=f"{view.request_id}.mp4", mime_type="video/mp4", size=view.size_bytes
            )
        )
    return types.CallToolResult(content=content, structured_content=view.model_dump(mode="json"))
