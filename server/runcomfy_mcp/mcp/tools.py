"""The tool table: model tools from specs, plus the tools that follow jobs. Thin: the core does the work."""

from __future__ import annotations

import base64
import functools
import logging
import mimetypes
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mcp_types as types
from pydantic import BaseModel

from runcomfy_mcp.domain.films import FILM_TOOL, is_film_id
from runcomfy_mcp.domain.ids import check_model_id
from runcomfy_mcp.domain.pricing import Price
from runcomfy_mcp.domain.specs import ToolSpec, portable_input_schema
from runcomfy_mcp.domain.views import (
    LOCAL_CALLER,
    OUTCOME_UNKNOWN,
    Caller,
    CancelOutcome,
    FoundModels,
    JobList,
    JobResult,
    JobStatus,
    ModelDescription,
    ProgressReporter,
    WaitResult,
)
from runcomfy_mcp.errors import RunComfyError, SpecError
from runcomfy_mcp.mcp import film_tool, replies
from runcomfy_mcp.mcp.arguments import (
    DEFAULT_WAIT_S,
    MAX_WAIT_S,
    Args,
    FindModelsArguments,
    JobArguments,
    ListJobsArguments,
    ModelArguments,
    NoArguments,
    ResultArguments,
    RunModelArguments,
    WaitArguments,
    parse,
)
from runcomfy_mcp.mcp.consent import InputNeeded
from runcomfy_mcp.mcp.player import PLAYER_META, SIMULATED_META
from runcomfy_mcp.mcp.schemas import hints, input_schema, output_schema
from runcomfy_mcp.upstream.redaction import Redactor, request_secret

if TYPE_CHECKING:
    from runcomfy_mcp.core.catalog import Catalog
    from runcomfy_mcp.core.films import FilmService
    from runcomfy_mcp.core.frame_inputs import FrameInputs
    from runcomfy_mcp.core.jobs import JobService
    from runcomfy_mcp.core.services import Services
    from runcomfy_mcp.core.wallet import Consent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Call:
    """What a tool call brings besides its arguments: who asks, where progress goes, and how to ask the person."""

    caller: Caller
    report: ProgressReporter
    consent: Consent | None = None  # None: this client cannot be asked (no elicitation)


ToolHandler = Callable[[Mapping[str, Any], Call], Awaitable[types.CallToolResult]]


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


def _result_reply(view: JobResult, text: str) -> types.CallToolResult:
    reply = _reply(view, text, is_error=view.status == "failed")
    if view.preview_jpeg:  # what was made, seen before it is described
        picture = base64.b64encode(view.preview_jpeg).decode("ascii")
        reply.content.insert(0, types.ImageContent(data=picture, mime_type="image/jpeg"))
    for path in map(Path, view.local_files):
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        reply.content.append(
            types.ResourceLink(uri=path.as_uri(), name=path.name, mime_type=kind, size=path.stat().st_size)
        )
    return reply


def error_result(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


class RunComfyTools:
    """Every tool this server offers, by name."""

    def __init__(
        self,
        specs: Iterable[ToolSpec],
        services: Services,
        redactor: Redactor,
        notice: str | None = None,
        prices: Mapping[str, Price] | None = None,
        media_domains: Sequence[str] = (),
        local_files: bool = True,
        simulated: bool = False,
    ) -> None:
        """`prices`: known prices by model id, stated in the model tools' descriptions. `media_domains`: where the
        player may load outputs from. `simulated`: every result is the sandbox's, and says so to the player too."""
        self.media_domains = media_domains
        self.local_files = local_files  # whether media may be named by a local path (stdio), and so described
        specs = list(specs)
        self.specs = {spec.tool_name: spec for spec in specs}
        self._prices = prices or {}
        self.services = services
        self._redact = redactor
        self._notice = notice  # said first in every result, e.g. that results are simulated
        self._simulated = simulated
        self.tools: dict[str, RegisteredTool] = {}
        self.builtin_names: frozenset[str] = frozenset()
        self._add_catalog_tools()
        self._add_tracking_tools()
        self._add_film_tool()
        builtins, self.tools = self.tools, {}
        self.builtin_names = frozenset(builtins)
        for spec in specs:
            self._add_model_tool(spec)
        self.tools.update(builtins)  # model tools first in tools/list, as a person reads them

    @property
    def jobs(self) -> JobService:
        return self.services.jobs()

    def _add(self, tool: types.Tool, handler: ToolHandler) -> None:
        if tool.name in self.tools or tool.name in self.builtin_names:
            held_by = "this server's built-in tool" if tool.name in self.builtin_names else "another model's tool"
            raise SpecError(
                f"The tool name {tool.name!r} of {tool.title or 'a tool'} is already used by {held_by}; every tool "
                "of this server needs its own name."
            )
        self.tools[tool.name] = RegisteredTool(tool, handler)

    def _add_model_tool(self, spec: ToolSpec) -> None:
        async def submit(arguments: Mapping[str, Any], call: Call) -> types.CallToolResult:
            job = await self.jobs.submit_job(spec, arguments, caller=call.caller, consent=call.consent)
            return _reply(job, replies.submitted(job))

        price = self._prices.get(spec.model_id)
        description = (
            f"{spec.description}\n\nEach call is a new paid job ({spec.model_id}"
            f"{', ' + price.words() if price else ''}); it returns a request_id for wait_for_result."
        )
        self._add(
            types.Tool(
                name=spec.tool_name,
                title=spec.title,
                description=description,
                input_schema=portable_input_schema(spec, local_files=self.local_files),
                # no output schema: a submit's answer is small and its text says it all; 5+ copies cost every turn
                _meta=PLAYER_META,
                annotations=hints(read_only=False, destructive=False, idempotent=False),
            ),
            submit,
        )

    def _add_job_tool(
        self,
        name: str,
        title: str,
        description: str,
        arguments: type[Args],
        output: type[BaseModel] | None,
        handler: Callable[[Args, Call], Awaitable[types.CallToolResult]],
        annotations: types.ToolAnnotations | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """A tool that follows jobs: its arguments model is both the schema clients see and the parser."""

        async def run(raw: Mapping[str, Any], call: Call) -> types.CallToolResult:
            return await handler(parse(arguments, name, raw), call)

        annotations = annotations or hints(read_only=True, idempotent=True)
        tool = types.Tool(
            name=name,
            title=title,
            description=description,
            input_schema=input_schema(arguments),
            output_schema=output_schema(output) if output else None,
            annotations=annotations,
            _meta=meta,
        )
        self._add(tool, run)

    def _add_catalog_tools(self) -> None:
        async def find_models(args: FindModelsArguments, call: Call) -> types.CallToolResult:
            found = await self.services.catalog().find(
                args.query, category=args.category, limit=args.limit, refresh=args.refresh, token=call.caller.token
            )
            return _reply(found, replies.found_models(found))

        async def describe_model(args: ModelArguments, call: Call) -> types.CallToolResult:
            model_id = check_model_id(args.model_id, "describe_model")
            model = await self.services.catalog().describe(model_id, token=call.caller.token)
            return _reply(model, replies.model_description(model))

        async def run_model(args: RunModelArguments, call: Call) -> types.CallToolResult:
            spec = await self.services.catalog().spec(check_model_id(args.model_id), token=call.caller.token)
            job = await self.jobs.submit_job(
                spec, args.input, caller=call.caller, tool="run_model", consent=call.consent
            )
            return _reply(job, replies.submitted(job))

        self._add_job_tool(
            "find_models",
            "Find models",
            "Search RunComfy's whole catalog (video, image, audio; Kling, Wan, Veo, FLUX…) by words and/or "
            "category: model ids and prices. Works offline from a cached copy.",
            FindModelsArguments,
            FoundModels,
            find_models,
        )
        self._add_job_tool(
            "describe_model",
            "Describe a model",
            "A catalog model's inputs (types, limits, defaults, media rules), price and page, before running it.",
            ModelArguments,
            ModelDescription,
            describe_model,
        )
        self._add_job_tool(
            "run_model",
            "Run a catalog model",
            "Submit a paid job to any catalog model, its input checked against the model's schema first (nothing "
            "is sent on bad input). Returns a request_id for wait_for_result. Each call is a new charged job.",
            RunModelArguments,
            None,
            run_model,
            hints(read_only=False, destructive=False, idempotent=False),
            PLAYER_META,
        )

    def _add_tracking_tools(self) -> None:
        async def get_status(args: JobArguments, call: Call) -> types.CallToolResult:
            if is_film_id(args.request_id):
                view = await self.services.films().status(args.request_id, call.caller)
            else:
                view = await self.jobs.get_status(args.request_id, caller=call.caller)
            return _reply(view, replies.status(view))

        async def get_result(args: ResultArguments, call: Call) -> types.CallToolResult:
            if is_film_id(args.request_id):  # made here: read back from the history, not asked of RunComfy
                film = await self.services.films().result(args.request_id, call.caller)
                return film_tool.reply(film, preview=args.preview)
            view = await self.jobs.get_result(
                args.request_id,
                include_cost=args.include_cost,
                download=args.download,
                preview=args.preview,
                caller=call.caller,
            )
            return _result_reply(view, replies.result(view, download_asked=args.download))

        async def wait_for_result(args: WaitArguments, call: Call) -> types.CallToolResult:
            if is_film_id(args.request_id):  # a film is made at once: nothing to wait for
                film = await self.services.films().result(args.request_id, call.caller)
                return film_tool.reply(film, preview=args.preview)
            view = await self.jobs.wait_for_result(
                args.request_id,
                timeout_s=args.timeout_s,
                include_cost=args.include_cost,
                download=args.download,
                preview=args.preview,
                on_progress=call.report,
                caller=call.caller,
            )
            if view.timed_out:
                text = replies.wait_timed_out(view)
            else:
                text = replies.result(view, download_asked=args.download)
            return _result_reply(view, text)

        async def cancel(args: JobArguments, call: Call) -> types.CallToolResult:
            if is_film_id(args.request_id):
                raise RunComfyError(f"{args.request_id} is a film, made already: there is nothing to cancel.")
            outcome = await self.jobs.cancel(args.request_id, caller=call.caller)
            return _reply(outcome, replies.cancelled(outcome))

        async def list_jobs(args: ListJobsArguments, call: Call) -> types.CallToolResult:
            jobs = await self.jobs.list_jobs(status=args.status, limit=args.limit, caller=call.caller)
            return _reply(jobs, replies.job_list(jobs))

        self._add_job_tool(
            "get_status",
            "Job status",
            "Where a job stands: in_queue (with queue_position), in_progress, completed (ended, not necessarily "
            "succeeded: call get_result), cancelled or failed.",
            JobArguments,
            JobStatus,
            get_status,
        )
        self._add_job_tool(
            "get_result",
            "Job result",
            "A job's outcome: on success every output file (url and kind; with download=true, saved to disk). "
            "An unfinished job says so; a failed one is an error with RunComfy's reason.",
            ResultArguments,
            JobResult,
            get_result,
            meta=PLAYER_META,
        )
        self._add_job_tool(
            "wait_for_result",
            "Wait for a job",
            f"Wait up to timeout_s s (default {DEFAULT_WAIT_S:g}, max {MAX_WAIT_S:g}) for a job to end, with progress; "
            "then answers like get_result. Running out of time is not an error: call again.",
            WaitArguments,
            WaitResult,
            wait_for_result,
            meta=PLAYER_META,
        )
        self._add_job_tool(
            "cancel",
            "Cancel job",
            "Cancel a RunComfy job that is still queued. A job already generating cannot be cancelled (outcome "
            "'not_cancellable'): it goes on and may be charged.",
            JobArguments,
            CancelOutcome,
            cancel,
            hints(read_only=False, destructive=True, idempotent=True),
        )

        async def estimate_cost(args: RunModelArguments, call: Call) -> types.CallToolResult:
            spec = self.specs.get(args.model_id) or await self.services.catalog().spec(
                check_model_id(args.model_id, "estimate_cost"), token=call.caller.token
            )
            quote = await self.jobs.quote(spec, args.input, caller=call.caller)
            return _reply(quote, replies.quote(quote))

        self._add_job_tool(
            "estimate_cost",
            "Estimate a job's cost",
            "What a job would cost (model_id or a model tool's name; input checked as a submit would) and whether a "
            "limit would refuse it or the person must confirm. Sends nothing.",
            RunModelArguments,
            None,  # small, and its text says it all: context is paid on every turn
            estimate_cost,
        )

        async def get_account(args: NoArguments, call: Call) -> types.CallToolResult:
            account = await self.jobs.account(caller=call.caller)
            return _reply(account, replies.account(account))

        self._add_job_tool(
            "get_account",
            "Account and spending",
            "The balance, spending in the budget window by model, and each spending limit with what is left.",
            NoArguments,
            None,  # no output schema: nested limits cost 1 KB of every turn's context; the text says it all
            get_account,
        )
        self._add_job_tool(
            "list_jobs",
            "Job history",
            "Your jobs, newest first: last status, outputs, saved files; kept across restarts. A submit of unknown "
            f"outcome is listed as '{OUTCOME_UNKNOWN}'.",
            ListJobsArguments,
            JobList,
            list_jobs,
            hints(read_only=True, idempotent=True, open_world=False),
        )

    def _add_film_tool(self) -> None:
        async def compose_video(args: film_tool.ComposeVideoArguments, call: Call) -> types.CallToolResult:
            view = await self.services.films().compose(args.request(), call.caller, call.report)
            return film_tool.reply(view)

        self._add_job_tool(
            FILM_TOOL,
            "Cut clips into a film",
            film_tool.DESCRIPTION,
            film_tool.ComposeVideoArguments,
            None,  # its text and structured content say it all; an output schema would cost every turn 1.5 KB
            compose_video,
            hints(read_only=False, destructive=False, idempotent=False),
            PLAYER_META,
        )

    async def call(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        report: ProgressReporter,
        caller: Caller | Callable[[], Caller] = LOCAL_CALLER,
        consent: Consent | None = None,
    ) -> types.CallToolResult:
        """Run a tool; `caller` may be a function, so that a caller without a token gets a readable error.
        InputNeeded (a question for the person, in the 2026-07-28 protocol) passes through to the server."""
        registered = self.tools.get(name)
        if registered is None:
            return error_result(f"There is no tool named {name!r}. Available tools: {', '.join(self.tools)}.")
        try:
            who = caller() if callable(caller) else caller
        except RunComfyError as exc:
            return self._finished(error_result(exc.shown()))
        with request_secret(who.token):  # this caller's token is a secret in this request only
            try:
                result = await registered.handler(arguments or {}, Call(who, report, consent))
            except InputNeeded:
                raise
            except RunComfyError as exc:
                logger.info("%s refused: %s: %s", name, type(exc).__name__, exc.message.split("\n")[0][:300])
                result = error_result(exc.shown())
            except Exception:
                logger.exception("unexpected failure in tool %s", name)
                result = error_result(
                    f"{name} failed because of an internal error in runcomfy-mcp (a bug; the server log has "
                    "details). If this was a model tool, check list_jobs or the RunComfy dashboard before "
                    "submitting again."
                )
            return self._finished(result)

    def _finished(self, result: types.CallToolResult) -> types.CallToolResult:
        """The notice first; then every result, not only errors, scrubbed of tokens (upstream text may echo one)."""
        if self._notice:
            result.content.insert(0, types.TextContent(text=self._notice))
        if self._simulated:  # for the player's "sandbox" mark: words are for people, this is for code
            result.meta = {**(result.meta or {}), SIMULATED_META: True}
        for block in result.content:
            if isinstance(block, types.TextContent):
                block.text = self._redact(block.text)
        if result.structured_content is not None:
            result.structured_content = self._redact.structure(result.structured_content)
        return result


class _Unbuilt:
    """Services for a tool table that is only read, never called."""

    def jobs(self) -> JobService:
        raise RuntimeError("the built-in tools' names need no services")

    def catalog(self) -> Catalog:
        raise RuntimeError("the built-in tools' names need no services")

    def films(self) -> FilmService:
        raise RuntimeError("the built-in tools' names need no services")

    def frames(self) -> FrameInputs:
        raise RuntimeError("the built-in tools' names need no services")


@functools.cache
def builtin_tool_names() -> frozenset[str]:
    """The names of the tools this server registers itself: every other tool name is checked against them."""
    return RunComfyTools((), _Unbuilt(), Redactor()).builtin_names
