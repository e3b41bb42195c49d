"""MCP resources: each job in the history, a frame of a finished job's video, a film, each model's input schema."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import mcp_types as types

from runcomfy_mcp.domain.films import FILMS_URI, FRAME_URI, frame_reference, is_film_id
from runcomfy_mcp.domain.ids import REQUEST_ID
from runcomfy_mcp.domain.specs import ToolSpec, portable_input_schema
from runcomfy_mcp.domain.views import LOCAL_CALLER, Caller
from runcomfy_mcp.errors import ResourceNotFoundError
from runcomfy_mcp.mcp.player import PLAYER_URI, player_contents, player_resource

if TYPE_CHECKING:
    from runcomfy_mcp.core.services import Services

JOB_PREFIX = "runcomfy://jobs/"
MODEL_PREFIX = "runcomfy://models/"
JSON = "application/json"


class RunComfyResources:
    def __init__(
        self,
        specs: Mapping[str, ToolSpec],
        services: Services,
        media_domains: Sequence[str] = (),
        local_files: bool = True,
    ) -> None:
        self.specs = specs
        self.services = services
        self.media_domains = media_domains  # where the player may load outputs from
        self.local_files = local_files  # whether the schemas offer local paths for media

    def templates(self) -> list[types.ResourceTemplate]:
        return [
            types.ResourceTemplate(
                uri_template=JOB_PREFIX + "{request_id}",
                name="job",
                title="A RunComfy job",
                description="One job from the history: arguments, last known status, video URLs, saved files.",
                mime_type=JSON,
            ),
            types.ResourceTemplate(
                uri_template=JOB_PREFIX + "{request_id}/frames/{position}",
                name="frame",
                title="A frame of a finished job's video",
                description="position: first, last, or seconds from the start (e.g. 2.5). The same URI works as an "
                "image input of any model, to continue a shot from where another ended.",
                mime_type="image/png",
            ),
            types.ResourceTemplate(
                uri_template=FILMS_URI + "{film_id}",
                name="film",
                title="A film made by compose_video",
                description="The film itself (video/mp4), for the caller who made it.",
                mime_type="video/mp4",
            ),
        ]

    async def list_all(self, caller: Caller = LOCAL_CALLER) -> list[types.Resource]:
        models = [self.player(), *self.list_models()]
        jobs = [
            types.Resource(
                uri=JOB_PREFIX + job.request_id,
                name=job.request_id,
                title=f"{job.tool} job ({job.status})",
                description=f"Submitted {job.submitted_at} to {job.model_id}.",
                mime_type=JSON,
            )
            for job in (await self.services.jobs().list_jobs(limit=50, caller=caller)).jobs
        ]
        return models + jobs

    def list_models(self) -> list[types.Resource]:
        return [
            types.Resource(
                uri=f"{MODEL_PREFIX}{spec.tool_name}/schema",
                name=f"{spec.tool_name} schema",
                title=f"{spec.title}: input schema",
                description=f"The input schema of {spec.model_id}, as the {spec.tool_name} tool takes it.",
                mime_type=JSON,
            )
            for spec in self.specs.values()
        ]

    async def read(
        self, uri: str, caller: Callable[[], Caller] = lambda: LOCAL_CALLER
    ) -> types.TextResourceContents | types.BlobResourceContents:
        """The resource's contents. Only a caller's own (jobs, frames, films) need the caller: the player and schemas
        are public."""
        if uri == PLAYER_URI:
            return player_contents(self.media_domains)
        if FRAME_URI.match(uri):
            reference = frame_reference(uri)
            assert reference is not None  # it matched
            frame = await self.services.frames().frame(*reference, caller())
            return types.BlobResourceContents(uri=uri, mime_type="image/png", blob=_base64(frame.png))
        if uri.startswith(FILMS_URI) and is_film_id(uri[len(FILMS_URI) :]) and REQUEST_ID.match(uri[len(FILMS_URI) :]):
            film = await self.services.films().film_bytes(uri[len(FILMS_URI) :], caller())
            return types.BlobResourceContents(uri=uri, mime_type="video/mp4", blob=_base64(film))
        text = await self._read_json(uri, caller)
        return types.TextResourceContents(uri=uri, mime_type=JSON, text=text)

    def player(self) -> types.Resource:
        return player_resource(self.media_domains)

    async def _read_json(self, uri: str, caller: Callable[[], Caller]) -> str:
        if uri.startswith(MODEL_PREFIX) and uri.endswith("/schema"):
            spec = self.specs.get(uri[len(MODEL_PREFIX) : -len("/schema")])
            if spec is not None:
                return json.dumps(
                    {
                        "model_id": spec.model_id,
                        "tool": spec.tool_name,
                        "input_schema": portable_input_schema(spec, local_files=self.local_files),
                        "upstream_input_schema": spec.input_schema,
                        "output_schema": spec.output_schema,
                    },
                    ensure_ascii=False,
                    indent=2,
                )
        if uri.startswith(JOB_PREFIX):
            request_id = uri[len(JOB_PREFIX) :]
            if REQUEST_ID.match(request_id):
                record = await self.services.jobs().job_record(request_id, caller=caller())
                if record is not None:
                    return record.model_dump_json(indent=2)
        raise ResourceNotFoundError(uri)


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
