"""Every failure an assistant can act on, as one tree.

    RunComfyError                     .message: what failed, why, and what to do next
    ├── MissingTokenError             no RUNCOMFY_API_TOKEN configured
    ├── CallerTokenMissingError       an HTTP caller brought no token (and none is shared)
    ├── InvalidTokenError             a token that cannot be sent in an HTTP header
    ├── InvalidArgumentsError         arguments break the tool's schema; nothing was sent
    ├── InvalidRequestIdError         a request id that cannot be a RunComfy id
    ├── MediaError                    an input file that cannot be used (.reason)
    │   └── MediaTooLargeError
    ├── FetchRefusedError             a fetch the guarded network will not do (.reason)
    │   ├── BlockedAddressError       a private or reserved address
    │   ├── UnsupportedEncodingError  a content coding that could inflate past the caps
    │   └── FetchesExhaustedError     too many fetches in flight
    ├── DownloadError                 an output file that could not be saved
    ├── PreviewError                  no preview of an output (never fails a result: it becomes a note)
    │   └── UndecodableOutputError    its bytes cannot be shown (remembered: not fetched again)
    ├── RetryableError                a transient failure outside the API (a file host's 5xx)
    ├── SpecError                     a tool spec file that cannot be used
    ├── DialectError                  a catalog schema that cannot be made standard
    ├── CatalogSchemaError            a catalog model that cannot be run from here
    ├── ModelNotInCatalogError        no such model id (the message names the closest)
    ├── ResourceNotFoundError         no such MCP resource
    ├── StoreError                    the job history could not be read or written (SQLite or PostgreSQL)
    ├── SpendLimitError               a job refused by a spending limit; nothing was sent
    ├── ConsentError                  a job above the confirmation threshold was not confirmed
    ├── BalanceTooLowError            the balance is below the job's estimate; nothing was sent
    ├── APIConnectionError            the API could not be reached (nothing was sent)
    │   └── APITimeoutError
    ├── SubmitOutcomeUnknownError     a paid submit may or may not have reached RunComfy
    ├── UnconfirmedSubmissionError    asked to follow the history's record of such a submit
    ├── MalformedResponseError        the API answered with something we cannot read
    └── APIStatusError                the API refused: .status_code, .error_code
        ├── AuthenticationError       401/403, 400004
        ├── PermissionDeniedError     403001: the request belongs to another account
        ├── InsufficientBalanceError  402, 400002
        ├── UnknownModelError         400001
        ├── RequestNotFoundError      404, 404001
        ├── RateLimitError            429
        ├── UpstreamServerError       5xx, 408
        └── BadRequestError           any other refusal

`error_from_response` is the one place an HTTP answer becomes one of these; `retrying` notes on an
error how many attempts it took (`attempts`), and `shown()` is the text the assistant reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

TOKEN_HELP = (
    "Set RUNCOMFY_API_TOKEN in the MCP server's environment (the 'env' block of your client's server config) "
    "to a token from your RunComfy profile (Profile → API keys), then restart the server."
)


class RunComfyError(Exception):
    """Base class; `message` is one short paragraph fit to show the assistant."""

    attempts = 1  # set by `retrying` when a request was tried more than once

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def shown(self) -> str:
        """The message as the assistant reads it, with how often it was tried."""
        return self.message if self.attempts <= 1 else f"{self.message} (Tried {self.attempts} times.)"


class MissingTokenError(RunComfyError):
    def __init__(self) -> None:
        super().__init__(f"No RunComfy API token is configured, so nothing was sent. {TOKEN_HELP}")


class InvalidArgumentsError(RunComfyError):
    def __init__(self, tool_name: str, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"- {p}" for p in problems)
        super().__init__(
            f"The arguments for {tool_name} were refused before anything was sent (nothing was paid for):\n"
            f"{listing}\nFix these and call {tool_name} again."
        )


class InvalidRequestIdError(RunComfyError):
    def __init__(self, request_id: object) -> None:
        shown = repr(request_id) if len(repr(request_id)) <= 80 else repr(request_id)[:77] + "...'"
        super().__init__(
            f"{shown} is not a RunComfy request id (ids are 1-128 letters, digits, '_' or '-'). "
            "Use the request_id returned when the job was submitted."
        )


# RFC 6750's b64token: what a bearer credential may hold. Anything else cannot go into a header as is.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9._~+/-]+=*")
MAX_TOKEN_CHARS = 1024


class InvalidTokenError(RunComfyError):
    pass


def check_token(token: str, source: str) -> str:
    """`token` if it can be sent as a bearer credential; `source` says where it came from, for the message."""
    if len(token) <= MAX_TOKEN_CHARS and _TOKEN_SHAPE.fullmatch(token):
        return token
    why = (
        f"it is over {MAX_TOKEN_CHARS} characters long"
        if len(token) > MAX_TOKEN_CHARS
        else ("it contains characters a token cannot have (spaces, quotes, control or non-ASCII characters)")
    )
    raise InvalidTokenError(
        f"The RunComfy API token {source} cannot be used: {why}, so nothing was sent. Copy the token again from "
        "your RunComfy profile (Profile → API keys), without quotes or extra text."
    )


class CallerTokenMissingError(RunComfyError):
    def __init__(self) -> None:
        super().__init__(
            "This server is shared over HTTP and runs jobs with each caller's own RunComfy token, and this request "
            "carried none, so nothing was sent. Add the header 'Authorization: Bearer <your RunComfy API token>' "
            "to the MCP server's entry in your client (its headers setting)."
        )


class MediaError(RunComfyError):
    """An input that cannot be used; `reason` completes '<field>: <the file> …'."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MediaTooLargeError(MediaError):
    def __init__(self, size_bytes: int, cap_bytes: int, hint: str) -> None:
        mib = 1024 * 1024
        super().__init__(f"is {size_bytes / mib:.1f} MB, over the {cap_bytes / mib:g} MB this input allows. {hint}")
        self.size_bytes = size_bytes


class FetchRefusedError(RunComfyError):
    """A fetch the guarded network will not do or finish; `reason` completes '<the URL> …'."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BlockedAddressError(FetchRefusedError):
    """A connection to an address this server will not open."""


class UnsupportedEncodingError(FetchRefusedError):
    def __init__(self, encoding: str) -> None:
        super().__init__(f"was sent with a content coding this server does not read ({encoding})")


class FetchesExhaustedError(FetchRefusedError):
    """Too many fetches in flight, for this caller or for everyone."""


class DownloadError(RunComfyError):
    pass


class PreviewError(RunComfyError):
    """The message completes 'No preview: …'."""


class UndecodableOutputError(PreviewError):
    pass


class RetryableError(RunComfyError):
    """A transient failure outside the API error tree (a file host's 5xx, say)."""


class SpecError(RunComfyError):
    """A spec file that cannot be used; the message names the file."""


class DialectError(RunComfyError):
    """A catalog schema this server cannot turn into a tool schema."""


class CatalogSchemaError(RunComfyError):
    """A catalog model whose schema cannot be used: the message names the model and why."""


class ModelNotInCatalogError(RunComfyError):
    pass


class ResourceNotFoundError(RunComfyError):
    pass


class StoreError(RunComfyError):
    """The history's database failed; the driver's own error is the cause."""


class SpendLimitError(RunComfyError):
    """The message names the limit, what is left of it, and when room frees up."""


class ConsentError(RunComfyError):
    """Declined, cancelled, unanswered, or no way to ask: in every case nothing was sent."""


class BalanceTooLowError(RunComfyError):
    pass


class APIConnectionError(RunComfyError):
    """The API could not be reached; for a submit, nothing reached it."""


class APITimeoutError(APIConnectionError):
    pass


class SubmitOutcomeUnknownError(RunComfyError):
    """The submit request may have reached RunComfy; resending could pay twice."""


class UnconfirmedSubmissionError(RunComfyError):
    """A history entry for a submit whose outcome is unknown: it has no RunComfy request id to follow."""

    def __init__(self, local_id: str, model_id: str, submitted_at: str) -> None:
        super().__init__(
            f"{local_id} is this server's record of a submission to {model_id} at {submitted_at} that RunComfy never "
            "confirmed, so there is no RunComfy request id to follow. Look for a job submitted at that time in the "
            "RunComfy dashboard's request list; if it is not there, it was not created and may be submitted again."
        )


class MalformedResponseError(RunComfyError):
    pass


class APIStatusError(RunComfyError):
    def __init__(self, message: str, *, status_code: int, error_code: str | None, upstream_message: str | None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_code = error_code
        self.upstream_message = upstream_message


class AuthenticationError(APIStatusError):
    pass


class PermissionDeniedError(APIStatusError):
    pass


class InsufficientBalanceError(APIStatusError):
    pass


class UnknownModelError(APIStatusError):
    pass


class RequestNotFoundError(APIStatusError):
    pass


class RateLimitError(APIStatusError):
    def __init__(self, message: str, *, retry_after_s: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after_s = retry_after_s


class UpstreamServerError(APIStatusError):
    pass


class BadRequestError(APIStatusError):
    pass


_MESSAGE_KEYS = ("error_message", "message", "error", "detail", "failure_reason", "reason")


def upstream_reason(body: Mapping[str, Any] | None) -> str | None:
    """The most specific human text an upstream error body carries, if any."""
    if not body:
        return None
    for key in _MESSAGE_KEYS:
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, Mapping):
            nested = upstream_reason(value)
            if nested:
                return nested
        if isinstance(value, list) and value:
            return "; ".join(str(v) for v in value[:5])
    return None


def error_from_response(
    status_code: int,
    body: Mapping[str, Any] | None,
    *,
    action: str,
    redact: Callable[[str], str],
    retry_after_s: float | None = None,
) -> APIStatusError:
    """Build the right error for an HTTP answer that refused `action` (e.g. "Submitting the job")."""
    raw_code = body.get("error_code") if body else None
    error_code = str(raw_code) if raw_code is not None else None
    reason = upstream_reason(body)
    reason = redact(reason)[:500] if reason else None
    said = f" RunComfy said: {reason}" if reason else ""
    code = f" (HTTP {status_code}{', code ' + error_code if error_code else ''})"
    kwargs: dict[str, Any] = {"status_code": status_code, "error_code": error_code, "upstream_message": reason}

    if error_code == "400004" or status_code == 401 or (status_code == 403 and error_code != "403001"):
        return AuthenticationError(
            f"{action} failed: RunComfy rejected the API token{code} — it is missing, expired or revoked, "
            f"or the account is inactive.{said} Create a new token in your RunComfy profile and set it as "
            "RUNCOMFY_API_TOKEN in the server's environment, then restart the server.",
            **kwargs,
        )
    if error_code == "403001":
        return PermissionDeniedError(
            f"{action} failed: that request belongs to another RunComfy account{code}.{said} "
            "Use a request_id from a job submitted with this token.",
            **kwargs,
        )
    if error_code == "400002" or status_code == 402:
        return InsufficientBalanceError(
            f"{action} failed: the RunComfy account has insufficient balance{code}.{said} "
            "Nothing was charged. Top up the balance on runcomfy.com, then try again.",
            **kwargs,
        )
    if error_code == "400001":
        return UnknownModelError(
            f"{action} failed: RunComfy does not know this model id{code}.{said} "
            "The tool spec may be out of date; check the model id on the RunComfy model page.",
            **kwargs,
        )
    if error_code == "404001" or status_code == 404:
        return RequestNotFoundError(
            f"{action} failed: RunComfy has no such request{code} — the id is wrong, or the job was deleted "
            f"or has expired.{said} Check the request_id (it is returned by the model tool when a job is "
            "submitted).",
            **kwargs,
        )
    if status_code == 429:
        wait = f" RunComfy asked to wait {retry_after_s:g} s." if retry_after_s else ""
        return RateLimitError(
            f"{action} failed: RunComfy is rate-limiting this token{code}.{said}{wait} "
            "Wait a little (30 s or more) before calling again, and poll less often.",
            retry_after_s=retry_after_s,
            **kwargs,
        )
    if status_code >= 500 or status_code == 408:
        return UpstreamServerError(
            f"{action} failed: RunComfy's API is having trouble{code}.{said} "
            "This is on RunComfy's side; try again in a minute.",
            **kwargs,
        )
    return BadRequestError(
        f"{action} failed: RunComfy refused the request{code}.{said} Check the arguments and try again.",
        **kwargs,
    )
