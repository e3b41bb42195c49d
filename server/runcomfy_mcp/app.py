"""The MCP layer: every spec becomes a tool, every call goes to the core, every failure a readable result."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from pydantic import BaseModel

from runcomfy_mcp import __version__, replies
from runcomfy_mcp.client import REQUEST_ID
from runcomfy_mcp.errors import InvalidRequestIdError, RunComfyError
from runcomfy_mcp.jobs import CancelOutcome, JobResult, JobService, JobStatus, SubmittedJob
from runcomfy_mcp.redaction import Redactor
from runcomfy_mcp.specs import ToolSpec, portable_input_schema

logger = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Makes videos with RunComfy's hosted ByteDance models. A model tool submits a paid job and returns a "
    "request_id at once; follow it with get_status and fetch the video URL with get_result. Never resubmit a "
    "job to 'retry' a status check: every submission is charged."
)

_REQUEST_ID_PROPERTY = {
    "type": "string",
    "pattern": REQUEST_ID.pattern,
    "description": "The request_id returned by the model tool that submitted the job.",
}


def _args_schema(**extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"request_id": _REQUEST_ID_PROPERTY, **extra},
        "required": ["request_id"],
        "additionalProperties": False,
    }


def _output_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="serialization")


ToolHandler = Callable[[Mapping[str, Any]], Awaitable[types.CallToolResult]]


@dataclass(frozen=True)
class RegisteredTool:
    tool: types.Tool
    handler: ToolHandler


def _reply(view: BaseModel, text: str, *, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=text)],
        structured_content=view.model_dump(mode="json"),
        is_error=is_error,
    )


def error_result(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


def _request_id(arguments: Mapping[str, Any]) -> str:
    value = arguments.get("request_id")
    if not isinstance(value, str) or not REQUEST_ID.match(value):
        raise InvalidRequestIdError(value)
    return value


class RunComfyTools:
    """The tool table for one server: model tools from specs, plus the job-tracking tools."""

    def __init__(self, service: JobService, redactor: Redactor) -> None:
        self.service = service
        self._redact = redactor
        self.tools: dict[str, RegisteredTool] = {}
        for spec in service.specs.values():
            self._add_model_tool(spec)
        self._add_tracking_tools()

    def _add(self, tool: types.Tool, handler: ToolHandler) -> None:
        self.tools[tool.name] = RegisteredTool(tool, handler)

    def _add_model_tool(self, spec: ToolSpec) -> None:
        async def submit(arguments: Mapping[str, Any]) -> types.CallToolResult:
            job = await self.service.submit_job(spec.tool_name, arguments)
            return _reply(job, replies.submitted(job))

        description = (
            f"{spec.description}\n\nSubmits a paid job to RunComfy ({spec.model_id}) and returns its request_id "
            "at once; the video takes minutes. Follow with get_status / get_result. Each call is a new charged "
            "job, so never call it again just to check on a job."
        )
        self._add(
            types.Tool(
                name=spec.tool_name,
                title=spec.title,
                description=description,
                input_schema=portable_input_schema(spec),
                output_schema=_output_schema(SubmittedJob),
                annotations=types.ToolAnnotations(
                    title=spec.title,
                    read_only_hint=False,
                    destructive_hint=False,
                    idempotent_hint=False,
                    open_world_hint=True,
                ),
            ),
            submit,
        )

    def _add_tracking_tools(self) -> None:
        read_only = types.ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True)

        async def get_status(arguments: Mapping[str, Any]) -> types.CallToolResult:
            view = await self.service.get_status(_request_id(arguments))
            return _reply(view, replies.status(view))

        async def get_result(arguments: Mapping[str, Any]) -> types.CallToolResult:
            include_cost = arguments.get("include_cost") is True
            view = await self.service.get_result(_request_id(arguments), include_cost=include_cost)
            return _reply(view, replies.result(view), is_error=view.status == "failed")

        async def cancel(arguments: Mapping[str, Any]) -> types.CallToolResult:
            outcome = await self.service.cancel(_request_id(arguments))
            return _reply(outcome, replies.cancelled(outcome))

        self._add(
            types.Tool(
                name="get_status",
                title="Job status",
                description=(
                    "Where a RunComfy job stands: in_queue (with queue_position), in_progress, completed, "
                    "cancelled or failed. 'completed' means the run ended, not that it succeeded: call get_result."
                ),
                input_schema=_args_schema(),
                output_schema=_output_schema(JobStatus),
                annotations=read_only.model_copy(update={"title": "Job status"}),
            ),
            get_status,
        )
        self._add(
            types.Tool(
                name="get_result",
                title="Job result",
                description=(
                    "The outcome of a RunComfy job: on success the output object and every video URL. A job that "
                    "has not finished yet is reported as such (ask again later); a failed job is an error with "
                    "RunComfy's reason."
                ),
                input_schema=_args_schema(
                    include_cost={
                        "type": "boolean",
                        "default": False,
                        "description": "Also ask RunComfy what the job cost.",
                    }
                ),
                output_schema=_output_schema(JobResult),
                annotations=read_only.model_copy(update={"title": "Job result"}),
            ),
            get_result,
        )
        self._add(
            types.Tool(
                name="cancel",
                title="Cancel job",
                description=(
                    "Cancel a RunComfy job that is still queued. A job already generating cannot be cancelled "
                    "(outcome 'not_cancellable'): it goes on and may be charged."
                ),
                input_schema=_args_schema(),
                output_schema=_output_schema(CancelOutcome),
                annotations=types.ToolAnnotations(
                    title="Cancel job",
                    read_only_hint=False,
                    destructive_hint=True,
                    idempotent_hint=True,
                    open_world_hint=True,
                ),
            ),
            cancel,
        )

    async def call(self, name: str, arguments: Mapping[str, Any] | None) -> types.CallToolResult:
        registered = self.tools.get(name)
        if registered is None:
            return error_result(f"There is no tool named {name!r}. Available tools: {', '.join(self.tools)}.")
        try:
            return await registered.handler(arguments or {})
        except RunComfyError as exc:
            return error_result(self._redact(exc.message))
        except Exception:
            logger.exception("unexpected failure in tool %s", name)
            return error_result(
                f"{name} failed because of an internal error in runcomfy-mcp (a bug; the server log has details). "
                "If this was a model tool, check get_status or the RunComfy dashboard before submitting again."
            )


def build_server(tools: RunComfyTools) -> Server[Any]:
    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[t.tool for t in tools.tools.values()])

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        return await tools.call(params.name, params.arguments)

    return Server(
        "runcomfy-mcp",
        version=__version__,
        title="RunComfy video models",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
