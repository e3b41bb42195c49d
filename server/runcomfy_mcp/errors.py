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
    │   ├── FetchInterruptedError     the connection failed, stalled or dropped (.transport names how)
    │   └── FetchesExhaustedError     too many fetches in flight
    ├── DownloadError                 an output file that could not be saved
    ├── PreviewError                  no preview of an output (never fails a result: it becomes a note)
    │   └── UndecodableOutputError    its bytes cannot be shown (remembered: not fetched again)
    ├── MediaFileError                a video or sound file that cannot be read (.reason)
    ├── FrameError                    no such frame in a video (a time past its end, no picture)
    ├── FilmError                     a film that could not be made (nothing half-written is left)
    ├── RetryableError                a transient failure outside the API (a file host's 5xx)
    ├── SpecError                     a tool spec file that cannot be used
    ├── DialectError                  a catalog schema that cannot be made standard
    ├── CatalogSchemaError            a catalog model that cannot be run from here
    ├── ModelNotInCatalogError        no such model id (the message names the closest)
    ├── ResourceNotFoundError         no such MCP resource
    ├── StoreError                    the job history could not be read or written (SQLite or PostgreSQL)
    ├── SpendLimitError               a job refused by a spending limit; nothing was sent
    ├── ConsentError                  a job above the confirmation threshold was not confirmed
    ├── AuthorizationRefusedError     the OAuth consent page could not grant access (.final: start again)
    ├── BalanceTooLowError            the balance is below the job's estimate; nothing was sent
    ├── APIConnectionError            the API could not be reached (nothing was sent)
    │   └── APITimeoutError
    ├── SubmitOutcomeUnknownError     a paid submit may or may not have reached RunComfy
    ├── SubmitNotSentError            a paid submit that failed before it left this machine
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

`upstream.statuses.error_from_response` is the one place an HTTP answer becomes one of these; `retrying` notes on an
error how many attempts it took (`attempts`), and `shown()` is the text the assistant reads.
"""

from __future__ import annotations

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


class InvalidTokenError(RunComfyError):
    pass


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
    def __init__(self, reason: str, size_bytes: int) -> None:
        super().__init__(reason)
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


class FetchInterruptedError(FetchRefusedError):
    """A transport failure on a media connection, mapped in one place (`guarded_http.transport_failures`)."""

    def __init__(self, reason: str, transport: str) -> None:
        super().__init__(reason)
        self.transport = transport


class FetchesExhaustedError(FetchRefusedError):
    """Too many fetches in flight, for this caller or for everyone."""


class DownloadError(RunComfyError):
    pass


class PreviewError(RunComfyError):
    """The message completes 'No preview: …'."""


class UndecodableOutputError(PreviewError):
    pass


class MediaFileError(RunComfyError):
    """A video or sound file that cannot be read; `reason` completes '<the file> …'."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FrameError(RunComfyError):
    pass


class FilmError(RunComfyError):
    pass


class RetryableError(RunComfyError):
    """A transient failure outside the API error tree (a file host's 5xx, say)."""


class SpecError(RunComfyError):
    """A spec file that cannot be used; the message names the file."""


class SetupError(RunComfyError):
    """A setting the server cannot start with; the message says what to install or change."""


class DialectError(RunComfyError):
    """A catalog schema this server cannot turn into a tool schema."""


class CatalogSchemaError(RunComfyError):
    """A catalog model whose schema cannot be used: the message names the model and why."""


class ModelNotInCatalogError(RunComfyError):
    pass


class ResourceNotFoundError(RunComfyError):
    pass


class StoreError(RunComfyError):
    """The history's database failed; the driver's own error is the cause (unless it would quote the password)."""


class SpendLimitError(RunComfyError):
    """The message names the limit, what is left of it, and when room frees up."""


class ConsentError(RunComfyError):
    """Declined, cancelled, unanswered, or no way to ask: in every case nothing was sent."""


class AuthorizationRefusedError(RunComfyError):
    """The person's answer on the consent page granted nothing; `final` when this sign-in cannot be retried."""

    def __init__(self, message: str, *, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


class BalanceTooLowError(RunComfyError):
    pass


class APIConnectionError(RunComfyError):
    """The API could not be reached; for a submit, nothing reached it."""


class APITimeoutError(APIConnectionError):
    pass


class SubmitOutcomeUnknownError(RunComfyError):
    """The submit request may have reached RunComfy; resending could pay twice."""


class SubmitNotSentError(RunComfyError):
    """The submit failed before the request left this machine: nothing was sent, nothing can be charged."""


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
