"""RunComfy's HTTP answers as errors of the one tree: the status map lives beside the client that reads them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from runcomfy_mcp.domain.bounds import clipped
from runcomfy_mcp.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InsufficientBalanceError,
    PermissionDeniedError,
    RateLimitError,
    RequestNotFoundError,
    UnknownModelError,
    UpstreamServerError,
)

_MESSAGE_KEYS = ("error_message", "message", "msg", "error", "detail", "failure_reason", "reason")
MAX_REASON_CHARS = 1_000  # upstream text, shown and kept in the history: cut
_MAX_NESTING = 4  # an error body is upstream data: its reason is looked for this deep, no deeper

# Status words RunComfy's own clients have met besides the documented ones, in this server's words: the CLI ends
# on `canceled` (one l) as on `cancelled`; the partner nodes keep polling on the others.
_STATUS_SYNONYMS = {
    "canceled": "cancelled",
    "pending": "in_queue",
    "waiting": "in_queue",
    "starting": "in_progress",
    "processing": "in_progress",
}


def normalized_status(raw: str) -> str:
    """A job status in this server's vocabulary (in_queue, in_progress, completed, succeeded, failed, cancelled);
    a word it does not know is kept as it is, so it is reported rather than guessed at."""
    word = raw.strip().lower()
    return _STATUS_SYNONYMS.get(word, word)


def upstream_reason(body: Mapping[str, Any] | None, _depth: int = 0) -> str | None:
    """The most specific human text an upstream error body carries, if any."""
    if not body or _depth > _MAX_NESTING:
        return None
    for key in _MESSAGE_KEYS:
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, Mapping):
            nested = upstream_reason(value, _depth + 1)
            if nested:
                return nested
        if isinstance(value, list) and value:
            return "; ".join(_item_words(v, _depth + 1) for v in value[:5])
    return None


def _item_words(item: Any, depth: int) -> str:
    """One entry of a list of problems; `{"loc": ["body", "duration"], "msg": "…"}` reads 'duration: …'."""
    if not isinstance(item, Mapping):
        return str(item)[:200]
    reason = upstream_reason(item, depth) or str(dict(item))[:200]
    where = item.get("loc") or item.get("field") or item.get("path")
    if isinstance(where, list):
        where = ".".join(str(p) for p in where if p != "body")
    return f"{where}: {reason}" if isinstance(where, str) and where else reason


def error_from_response(
    status_code: int,
    body: Mapping[str, Any] | None,
    *,
    action: str,
    redact: Callable[[str], str],
    retry_after_s: float | None = None,
    submitted_model: str | None = None,
    callers_token: bool = False,
) -> APIStatusError:
    """Build the right error for an HTTP answer that refused `action` (e.g. "Submitting the job");
    `submitted_model`: the model a refused submit was for (a 404 then means no such model, a 400 or 422 the input);
    `callers_token`: the request carried the token of the caller over HTTP, not the server's own."""
    raw_code = body.get("error_code") if body else None
    error_code = str(raw_code) if raw_code is not None else None
    reason = upstream_reason(body)
    reason = redact(reason)[:500] if reason else None
    said = f" RunComfy said: {reason}{'' if reason.endswith(('.', '!', '?')) else '.'}" if reason else ""
    code = f" (HTTP {status_code}{', code ' + error_code if error_code else ''})"
    kwargs: dict[str, Any] = {"status_code": status_code, "error_code": error_code, "upstream_message": reason}

    if error_code == "400004" or status_code == 401 or (status_code == 403 and error_code != "403001"):
        if callers_token:  # a caller cannot change the server's settings; their own header they can
            return AuthenticationError(
                f"{action} failed: RunComfy rejected the token in your Authorization header{code} — it is "
                f"expired or revoked, or the account is inactive.{said} Nothing was sent on your behalf. Create a new "
                "token in your RunComfy profile (Profile → API keys) and put it in your client's entry for this "
                "server as the header 'Authorization: Bearer <your token>', then reconnect.",
                **kwargs,
            )
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
    if error_code == "400001" or (submitted_model and status_code == 404):
        model = f" {submitted_model}" if submitted_model else " id"
        return UnknownModelError(
            f"{action} failed: RunComfy has no such model{code}: it does not know the model{model}.{said} "
            "Nothing was charged. Find the current id with find_models (the model may have been renamed or "
            "withdrawn); a tool spec of your own may be out of date.",
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
    if submitted_model and status_code in (400, 422):
        return BadRequestError(
            f"{action} failed: RunComfy refused the input{code}.{said or ' It gave no detail.'} Nothing was "
            f"charged. Fix that input and submit again; describe_model {submitted_model} shows every field it "
            "takes and its limits.",
            **kwargs,
        )
    return BadRequestError(
        f"{action} failed: RunComfy refused the request{code}.{said} Check the arguments and try again.",
        **kwargs,
    )


def failure_reason(error: Any, failure: Any) -> str:
    """Why a job failed, from a result's `error` (string or object) or `failure_reason`."""
    reason = upstream_reason({"error": error, "failure_reason": failure})
    if reason:
        return clipped(reason, MAX_REASON_CHARS)
    shapeless = next((v for v in (error, failure) if isinstance(v, Mapping) and v), None)
    return clipped(str(dict(shapeless)), MAX_REASON_CHARS) if shapeless else "RunComfy gave no reason."
