"""Asking the person before a costly job, through MCP elicitation, in both protocol generations.

Up to 2025-11-25 the server sends `elicitation/create` in the middle of the tool call and waits.
From 2026-07-28 a server cannot call the client: the tool call answers `InputRequiredResult` with
the question, and the client calls the tool again with the answer (`input_responses`). The
question's `request_state` is a digest of the call and its estimate, so an answer counts only for
the call it was given for. In both, only an explicit "yes" sends the job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.elicitation import render_elicitation_schema
from mcp.shared.exceptions import NoBackChannelError
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

from runcomfy_mcp.core.wallet import Consent, ConsentRequest
from runcomfy_mcp.domain.amounts import money
from runcomfy_mcp.errors import ConsentError

INPUT_REQUIRED_VERSION = "2026-07-28"
QUESTION_KEY = "confirm_spend"
ANSWER_TIMEOUT_S = 600.0  # a question nobody answers ends as "no"


class InputNeeded(Exception):
    """Carries the question out of the tool call (2026-07-28): the server answers with it instead of a result."""

    def __init__(self, result: types.InputRequiredResult) -> None:
        super().__init__("input required")
        self.result = result


class SpendConfirmation(BaseModel):
    confirm: bool = Field(title="Run this paid job?", description="Yes sends the job to RunComfy; no sends nothing.")


def question(request: ConsentRequest) -> str:
    cost = (
        f"about {money(request.estimate.usd)} ({request.estimate.basis})"
        if request.estimate.usd is not None
        else f"an unknown amount ({request.estimate.basis})"
    )
    balance = f" Your RunComfy balance is {money(request.balance_usd)}." if request.balance_usd is not None else ""
    return (
        f"Run {request.model_id} for {cost}?{balance} Jobs above {money(request.threshold_usd)} need your yes "
        "before they are sent."
    )


def consent_for(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> Consent | None:
    """How to ask this call's person, or None when the client declared no form elicitation."""
    modern = is_version_at_least(ctx.protocol_version, INPUT_REQUIRED_VERSION)
    if not modern and ctx.session.client_params is None:
        return _cannot_call_back  # stateless: this process never saw the client's initialize, and cannot call it
    capabilities = ctx.session.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return None
    if modern:
        return _ask_by_input_required(params)
    return _ask_by_request(ctx)


_STATELESS = (
    "This job needs the person's yes (RUNCOMFY_CONFIRM_ABOVE_USD={threshold:g}), but this server runs stateless "
    "(replicas), where a client of protocol 2025-11-25 or older cannot be asked, so nothing was sent. Use a client "
    "of protocol 2026-07-28, or a smaller job."
)


async def _cannot_call_back(request: ConsentRequest) -> bool:
    raise ConsentError(_STATELESS.format(threshold=request.threshold_usd))


def _accepted(result: types.ElicitResult | Any) -> bool:
    if not isinstance(result, types.ElicitResult) or result.action != "accept" or not result.content:
        return False
    return result.content.get("confirm") is True


def _ask_by_request(ctx: ServerRequestContext[Any]) -> Consent:
    async def ask(request: ConsentRequest) -> bool:
        with anyio.move_on_after(ANSWER_TIMEOUT_S):
            try:
                result = await ctx.session.elicit_form(
                    question(request), render_elicitation_schema(SpendConfirmation), related_request_id=ctx.request_id
                )
            except NoBackChannelError as exc:  # a stateless server (replicas) cannot call an older client back
                raise ConsentError(_STATELESS.format(threshold=request.threshold_usd)) from exc
            return _accepted(result)
        return False

    return ask


def _digest(params: types.CallToolRequestParams, request: ConsentRequest) -> str:
    """What the answer is an answer to: this tool, these arguments, this estimate."""
    arguments: Mapping[str, Any] = params.arguments or {}
    text = json.dumps([params.name, arguments, request.estimate.usd, request.model_id], sort_keys=True, default=str)
    return "spend:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _ask_by_input_required(params: types.CallToolRequestParams) -> Consent:
    async def ask(request: ConsentRequest) -> bool:
        state = _digest(params, request)
        answer = (params.input_responses or {}).get(QUESTION_KEY)
        if answer is not None and params.request_state == state:
            return _accepted(answer)
        elicit = types.ElicitRequest(
            params=types.ElicitRequestFormParams(
                message=question(request), requested_schema=render_elicitation_schema(SpendConfirmation)
            )
        )
        raise InputNeeded(types.InputRequiredResult(input_requests={QUESTION_KEY: elicit}, request_state=state))

    return ask
