"""When and how long to retry a safe request: connection errors, 408, 429 (honouring Retry-After), 5xx.

The paid submit is never retried; everything else goes through `retrying`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from runcomfy_mcp.errors import APIConnectionError, RateLimitError, RetryableError, RunComfyError, UpstreamServerError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Values from the settings (`Settings.retry_policy`), which hold the defaults."""

    attempts: int
    wait_initial_s: float
    wait_max_s: float
    retry_after_max_s: float
    deadline_s: float  # one request, start to finish: a slow-drip upstream cannot hold a call longer


def backoff_hook(policy: RetryPolicy) -> Callable[[Exception], bool | float]:
    def decide(exc: Exception) -> bool | float:
        if isinstance(exc, RateLimitError):
            return min(exc.retry_after_s, policy.retry_after_max_s) if exc.retry_after_s is not None else True
        return isinstance(exc, APIConnectionError | UpstreamServerError | RetryableError)

    return decide


async def retrying(policy: RetryPolicy, attempt: Callable[[], Awaitable[T]]) -> T:
    """Run `attempt` until it succeeds or fails for good; the final error says how often it was tried."""
    import stamina

    tries = 0
    try:
        async for retry in stamina.retry_context(
            on=backoff_hook(policy),
            attempts=policy.attempts,
            timeout=None,
            wait_initial=policy.wait_initial_s,
            wait_max=policy.wait_max_s,
            wait_jitter=policy.wait_initial_s,
        ):
            with retry:
                tries += 1
                return await attempt()
    except RunComfyError as exc:
        exc.attempts = tries  # the message stays as raised; shown() adds the count
        raise
    raise AssertionError("stamina ended without a result or an error")
