"""A frame of a caller's finished job where an image goes: `runcomfy://jobs/{id}/frames/last` (or `first`, or
seconds) in any input, at any depth, becomes that frame as a PNG data URI, which the model's media rules
then check like any image. The same frames are readable as resources.

It is the caller's own output, not a file of the server, so it works over HTTP as over stdio; a job
that is not finished, not theirs, has no video, or a time past its end is a problem named before
anything is sent or paid.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import anyio

from runcomfy_mcp.core.job_files import JobFiles
from runcomfy_mcp.domain.films import FramePosition, frame_reference, position_words
from runcomfy_mcp.domain.views import Caller
from runcomfy_mcp.errors import FrameError, MediaFileError, RunComfyError
from runcomfy_mcp.media.frames import Frame, take_frame
from runcomfy_mcp.media.input_preparer import PreparedInputs

MAX_DEPTH = 8  # how deep into nested inputs frame URIs are looked for


class FrameInputs:
    def __init__(self, files: JobFiles) -> None:
        self.files = files

    async def frame(self, request_id: str, position: FramePosition, caller: Caller) -> Frame:
        """The frame as a PNG; raises FrameError saying what is wrong and what to do."""
        try:
            path = await self.files.file(request_id, "video", caller)
        except RunComfyError as exc:
            raise FrameError(f"No frame of job {request_id}: {exc.message}.") from exc
        try:
            return await anyio.to_thread.run_sync(take_frame, path, position)
        except MediaFileError as exc:
            raise FrameError(f"No frame of job {request_id}: its video {exc.reason}.") from exc

    async def inline(self, arguments: Mapping[str, Any], caller: Caller) -> PreparedInputs:
        """The arguments with every frame URI replaced by its frame (a data URI), and what went wrong, by field."""
        done = PreparedInputs({})
        taken: dict[str, tuple[str, Frame]] = {}  # the same frame twice is taken once

        async def walk(value: Any, where: str, depth: int) -> Any:
            if isinstance(value, str):
                return await replaced(value, where)
            if depth >= MAX_DEPTH:
                return value
            if isinstance(value, list):
                return [await walk(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
            if isinstance(value, Mapping):
                return {k: await walk(v, f"{where}.{k}" if where else str(k), depth + 1) for k, v in value.items()}
            return value

        async def replaced(value: str, where: str) -> str:
            try:
                reference = frame_reference(value)
            except FrameError as exc:
                done.problems.append(f"{where}: {exc.message}")
                return value
            if reference is None:
                return value
            request_id, position = reference
            key = f"{request_id}/{position}"
            if key not in taken:
                try:
                    frame = await self.frame(request_id, position, caller)
                except FrameError as exc:
                    done.problems.append(f"{where}: {exc.message}")
                    return value
                taken[key] = ("data:image/png;base64," + base64.b64encode(frame.png).decode("ascii"), frame)
            uri, frame = taken[key]
            done.notes.append(
                f"{where}: {position_words(position)} of job {request_id} (at {frame.at_s:g} s, "
                f"{frame.width}×{frame.height}) was sent inline as a PNG."
            )
            return uri

        done.arguments = {k: await walk(v, str(k), 1) for k, v in arguments.items()}
        return done
