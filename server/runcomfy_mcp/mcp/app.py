"""The MCP server: tools and resources wired to one runtime. Handlers only translate; the core does the work."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mcp_types as types
from mcp.server import Server
from mcp.server.apps import EXTENSION_ID as APPS_EXTENSION
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError

from runcomfy_mcp import __version__
from runcomfy_mcp.domain.films import FILMS_URI
from runcomfy_mcp.errors import ResourceNotFoundError, RunComfyError
from runcomfy_mcp.mcp.arguments import DEFAULT_WAIT_S
from runcomfy_mcp.mcp.callers import CallerIdentity
from runcomfy_mcp.mcp.consent import InputNeeded, consent_for, sealing
from runcomfy_mcp.mcp.prompts import RunComfyPrompts
from runcomfy_mcp.mcp.resources import JOB_PREFIX, RunComfyResources
from runcomfy_mcp.mcp.tools import RunComfyTools

SHARED_FOR_A_WHILE: dict[str, Any] = {"ttl_ms": 300_000, "cache_scope": "public"}
PRIVATE_NOW: dict[str, Any] = {"ttl_ms": 0, "cache_scope": "private"}  # a caller's own jobs: never shared, always fresh

INSTRUCTIONS = (
    "Makes videos (and images and sounds) with RunComfy's hosted models: a tool per bundled model, and any "
    "model of RunComfy's catalog through find_models, describe_model and run_model. A submit is a paid job and "
    "returns a request_id at once; estimate_cost quotes one first. Then call wait_for_result (up to "
    f"{DEFAULT_WAIT_S:g} s per call, "
    "with progress; call it again while the job runs) or get_status / get_result; download=true saves the files on "
    "the user's disk. list_jobs finds earlier jobs; get_account shows the balance, spending and limits. Never "
    "resubmit a job to 'retry' a status check: every submission is charged."
)


SERVER_NAME = "runcomfy-mcp"


def build_server(
    tools: RunComfyTools, identity: CallerIdentity | None = None, *, consent_keys: Sequence[str] | None = None
) -> Server[Any]:
    """The MCP server; `identity` tells callers apart over HTTP (default: the one local user); `consent_keys` seal
    the person's yes on protocol 2026-07-28 (the settings' RUNCOMFY_CONSENT_KEY; default: a key of this process)."""
    resources = RunComfyResources(tools.specs, tools.services, tools.media_domains, tools.local_files)
    prompts = RunComfyPrompts(tools.services, local_files=tools.local_files)
    identity = identity or CallerIdentity(http=False)

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        # The same for every caller, and fixed for the process's life: clients may cache it (2026-07-28).
        return types.ListToolsResult(tools=[t.tool for t in tools.tools.values()], **SHARED_FOR_A_WHILE)

    async def list_prompts(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=prompts.all(), **SHARED_FOR_A_WHILE)

    async def get_prompt(ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams) -> types.GetPromptResult:
        try:
            return prompts.get(params.name, params.arguments)
        except RunComfyError as exc:
            raise MCPError(types.INVALID_PARAMS, exc.message) from exc

    async def complete(ctx: ServerRequestContext[Any], params: types.CompleteRequestParams) -> types.CompleteResult:
        try:
            caller = identity.caller(ctx.request)
        except RunComfyError:
            caller = None
        values = await prompts.complete(params.argument.name, params.argument.value, caller)
        return types.CompleteResult(completion=types.Completion(values=values, total=len(values), has_more=False))

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        async def report(progress: float, message: str) -> None:
            await ctx.session.report_progress(progress, None, message)

        async def use_once(mark: str, expires_at: float) -> bool:
            return await tools.jobs.use_once(mark, expires_at)

        try:
            return await tools.call(
                params.name,
                params.arguments,
                report,
                lambda: identity.caller(ctx.request),
                consent_for(ctx, params, use_once),
            )
        except InputNeeded as needed:  # a question for the person (2026-07-28): the client asks and calls again
            return needed.result

    async def list_resources(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        try:
            caller = identity.caller(ctx.request)
        except RunComfyError:
            return types.ListResourcesResult(resources=[resources.player(), *resources.list_models()], **PRIVATE_NOW)
        return types.ListResourcesResult(resources=await resources.list_all(caller), **PRIVATE_NOW)

    async def list_resource_templates(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=resources.templates(), **SHARED_FOR_A_WHILE)

    async def read_resource(
        ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        try:
            contents = await resources.read(str(params.uri), lambda: identity.caller(ctx.request))
        except ResourceNotFoundError as exc:
            raise MCPError(types.INVALID_PARAMS, f"Unknown resource {params.uri}; see resources/list.") from exc
        except RunComfyError as exc:
            raise MCPError(types.INVALID_REQUEST, exc.message) from exc
        # the player and schemas are the same for everyone; jobs, their frames and films are a caller's own
        public = not str(params.uri).startswith((JOB_PREFIX, FILMS_URI))
        return types.ReadResourceResult(contents=[contents], **(SHARED_FOR_A_WHILE if public else PRIVATE_NOW))

    server = Server(
        SERVER_NAME,
        version=__version__,
        title="RunComfy models",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_resource_templates,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_completion=complete,
    )
    server.middleware.append(sealing(identity, consent_keys, audience=SERVER_NAME))  # the yes, sealed
    server.extensions[APPS_EXTENSION] = {}  # MCP Apps: the player; hosts without it get the same text and data
    return server
