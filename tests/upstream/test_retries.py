"""The retry policy's decisions, table by table, with no real waiting."""

from __future__ import annotations

import pytest

from runcomfy_mcp.errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    RateLimitError,
    RetryableError,
    RunComfyError,
    SubmitOutcomeUnknownError,
    UpstreamServerError,
)
from runcomfy_mcp.upstream.retries import RetryPolicy, backoff_hook, retrying

pytestmark = pytest.mark.anyio

POLICY = RetryPolicy(attempts=4, wait_initial_s=0, wait_max_s=0, retry_after_max_s=30, deadline_s=40)
STATUS = {"status_code": 500, "error_code": None, "upstream_message": None}


@pytest.mark.parametrize(
    ("error", "decision"),
    [
        (APIConnectionError("down"), True),
        (UpstreamServerError("5xx", **STATUS), True),
        (RetryableError("file host 503"), True),
        (RateLimitError("slow down", **STATUS), True),
        (RateLimitError("slow down", retry_after_s=7, **STATUS), 7),
        (RateLimitError("slow down", retry_after_s=3600, **STATUS), 30),  # capped
        (AuthenticationError("bad token", **STATUS), False),
        (BadRequestError("bad", **STATUS), False),
        (SubmitOutcomeUnknownError("maybe paid"), False),  # never retried: could pay twice
    ],
)
def test_what_is_retried(error: Exception, decision: bool | float) -> None:
    assert backoff_hook(POLICY)(error) == decision


@pytest.mark.parametrize(
    ("error", "tries"), [(UpstreamServerError("5xx", **STATUS), 4), (BadRequestError("x", **STATUS), 1)]
)
async def test_attempts_are_counted_and_the_message_is_left_alone(error: RunComfyError, tries: int) -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise error

    with pytest.raises(type(error)) as raised:
        await retrying(POLICY, attempt)
    assert calls == tries and raised.value.attempts == tries and "Tried" not in raised.value.message


async def test_a_success_after_failures_returns_the_value() -> None:
    answers = iter([APIConnectionError("down"), APIConnectionError("down"), "ok"])

    async def attempt() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await retrying(POLICY, attempt) == "ok"
