"""Asking the person before a costly job, through MCP elicitation, in both protocol generations.

Up to 2025-11-25 the server sends `elicitation/create` in the middle of the tool call and waits.
From 2026-07-28 a server cannot call the client: the tool call answers `InputRequiredResult` with
the question, and the client calls the tool again with the answer (`input_responses`) and the
question's `request_state`, which the client holds and so may replay, move or forge. So the state is
sealed by the SDK's `RequestStateBoundary` (AES-GCM under RUNCOMFY_CONSENT_KEY): it opens only for
the same caller, the same tool and arguments, within ten minutes. Inside it, a nonce and the
estimate: the estimate must still be the same, and the nonce is used once, marked in the history
(which replicas share), so one yes sends one job. In both generations only an explicit "yes" sends
the job.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.elicitation import render_elicitation_schema
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.shared.exceptions import NoBackChannelError
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

from runcomfy_mcp.core.wallet import Consent, ConsentRequest
from runcomfy_mcp.domain.amounts import money
from runcomfy_mcp.errors import ConsentError, StoreError
from runcomfy_mcp.mcp.callers import CallerIdentity

INPUT_REQUIRED_VERSION = "2026-07-28"
QUESTION_KEY = "confirm_spend"
ANSWER_TIMEOUT_S = 600.0  # a question nobody answers ends as "no"; a sealed question expires then too
CLOCK_SKEW_S = 60.0  # the boundary accepts states minted this far in the future: their marks are kept as long

UseOnce = Callable[[str, float], Awaitable[bool]]
"""Marks a nonce used until a time; True only the first time, on any replica (`JobService.use_once`)."""


def sealing(identity: CallerIdentity, keys: Sequence[str] | None, audience: str) -> RequestStateBoundary:
    """The middleware that seals every request_state this server hands out and opens what comes back, bound to
    the caller (their token's fingerprint over HTTP). Without `keys`, a key of this process only."""

    def principal(ctx: ServerRequestContext[Any, Any]) -> str | None:
        return identity.caller(ctx.request).owner or None  # the one local user needs no binding

    security = RequestStateSecurity(
        keys=list(keys) if keys else [os.urandom(32)], ttl=ANSWER_TIMEOUT_S, bind_principal=principal
    )
    return RequestStateBoundary(security, default_audience=audience)


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


def consent_for(
    ctx: ServerRequestContext[Any], params: types.CallToolRequestParams, use_once: UseOnce
) -> Consent | None:
    """How to ask this call's person, or None when the client declared no form elicitation."""
    modern = is_version_at_least(ctx.protocol_version, INPUT_REQUIRED_VERSION)
    if not modern and ctx.session.client_params is None:
        return _cannot_call_back  # stateless: this process never saw the client's initialize, and cannot call it
    capabilities = ctx.session.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return None
    if modern:
        return _ask_by_input_required(params, use_once)
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


def _opened(request_state: str | None) -> dict[str, Any] | None:
    """What this server put in a question's state (the boundary has checked the seal); None when there is none."""
    try:
        state = json.loads(request_state or "")
    except ValueError:
        return None
    return state if isinstance(state, dict) and isinstance(state.get("nonce"), str) else None


def _ask_by_input_required(params: types.CallToolRequestParams, use_once: UseOnce) -> Consent:
    async def ask(request: ConsentRequest) -> bool:
        answer = (params.input_responses or {}).get(QUESTION_KEY)
        state = _opened(params.request_state)
        if answer is not None and state is not None and state.get("usd") == request.estimate.usd:
            try:
                first_use = await use_once(f"consent:{state['nonce']}", time.time() + ANSWER_TIMEOUT_S + CLOCK_SKEW_S)
            except StoreError as exc:
                raise ConsentError(
                    "The person's answer could not be recorded as used (the job history cannot be written), so "
                    "nothing was sent. Try again once the history is back."
                ) from exc
            if not first_use:
                raise ConsentError(
                    f"This yes was already used for a job ({request.model_id}): one yes sends one job, so nothing was "
                    "sent this time. To run it again, call the tool again without the old answer, and the person is "
                    "asked again."
                )
            return _accepted(answer)
        # No answer yet, or one to a question about another estimate (the price changed): ask this one.
        sealed = json.dumps({"nonce": secrets.token_urlsafe(16), "usd": request.estimate.usd})
        elicit = types.ElicitRequest(
            params=types.ElicitRequestFormParams(
                message=question(request), requested_schema=render_elicitation_schema(SpendConfirmation)
            )
        )
        raise InputNeeded(types.InputRequiredResult(input_requests={QUESTION_KEY: elicit}, request_state=sealed))

    return ask
