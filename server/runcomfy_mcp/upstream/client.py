"""The RunComfy Model API over httpx: typed answers, one error tree, the token kept to itself.

No MCP here. Tests hand in `transport=httpx.MockTransport(...)` or point `base_url` at a
loopback simulator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import httpx
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from runcomfy_mcp.domain.ids import check_model_id, check_request_id, check_token
from runcomfy_mcp.errors import (
    APIConnectionError,
    APITimeoutError,
    MalformedResponseError,
    MissingTokenError,
    RunComfyError,
    SubmitNotSentError,
    SubmitOutcomeUnknownError,
)
from runcomfy_mcp.upstream import bounded_json
from runcomfy_mcp.upstream.redaction import Redactor
from runcomfy_mcp.upstream.retries import RetryPolicy, retrying
from runcomfy_mcp.upstream.statuses import error_from_response, normalized_status, upstream_reason

WireModel = TypeVar("WireModel", bound=BaseModel)

# A few kept-alive connections carry any number of polls. httpcore scans every pooled connection
# (a syscall each) whenever a request starts or ends, so a wide pool makes 500 waits at once
# quadratic: with 100 connections a round of polls took seconds instead of a fraction of one.
API_CONNECTION_LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=16)
# It scans every request queued for a connection too, so requests beyond the pool's size wait
# their turn before it (a semaphore's queue costs nothing to wait in), never in it.
API_REQUESTS_IN_FLIGHT = 16


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class SubmitResponse(_Wire):
    request_id: str
    status_url: str | None = None
    result_url: str | None = None
    cancel_url: str | None = None


def _status_words(value: Any) -> Any:
    return normalized_status(value) if isinstance(value, str) else value


class StatusResponse(_Wire):
    request_id: str | None = None
    status: str
    queue_position: int | None = None

    _status = field_validator("status", mode="before")(_status_words)


class ResultResponse(_Wire):
    request_id: str | None = None
    status: str
    output: dict[str, Any] | None = None
    error: Any = None
    failure_reason: Any = None
    created_at: str | None = None
    finished_at: str | None = None
    cost: float | None = None

    _status = field_validator("status", mode="before")(_status_words)


class CatalogPage(_Wire):
    """One page of `GET /v1/models`. Entries stay raw dicts: the core parses each one tolerantly."""

    models: list[Any]
    total: int | None = None
    limit: int | None = None
    offset: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _tolerate(cls, data: Any) -> Any:
        if isinstance(data, dict) and "models" not in data:
            for other in ("data", "items", "results"):  # the listing's shape is not documented
                if isinstance(data.get(other), list):
                    return {**data, "models": data[other]}
        return data


class CancelResponse(_Wire):
    request_id: str | None = None
    status: str | None = None
    outcome: str

    _words = field_validator("status", "outcome", mode="before")(_status_words)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class RunComfyClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        token: str | None,
        redactor: Redactor,
        retry: RetryPolicy,
        in_flight: anyio.Semaphore | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._redact = redactor
        self.retry = retry
        self._in_flight = in_flight or anyio.Semaphore(API_REQUESTS_IN_FLIGHT)  # shared by `elsewhere`

    def require_token(self, token: str | None) -> None:
        """Raise what a request would, when there is no usable token for a job."""
        self._auth_headers(token)

    def elsewhere(self, base_url: str) -> RunComfyClient:
        """The same client (connection pool, token, retries) for another RunComfy API, such as the account API."""
        return RunComfyClient(
            self._http,
            base_url=base_url,
            token=self._token,
            redactor=self._redact,
            retry=self.retry,
            in_flight=self._in_flight,
        )

    @property
    def has_token(self) -> bool:
        """Whether this server has a token of its own (RUNCOMFY_API_TOKEN)."""
        return bool(self._token)

    def _auth_headers(self, token: str | None, *, optional: bool = False) -> dict[str, str]:
        """`optional`: the catalog, shared by every caller, so read with the server's own token when it has one and
        with `token` (a caller's, lent for the read) only when it has none; without either it is asked anyway."""
        if optional and self._token:
            token = None
        if not token:  # a caller's own token was checked where it arrived (mcp.callers)
            if not self._token:
                if optional:
                    return {}
                raise MissingTokenError()
            token = check_token(self._token, "in RUNCOMFY_API_TOKEN")
        return {"Authorization": f"Bearer {token}"}

    async def submit(self, model_id: str, arguments: Mapping[str, Any], *, token: str | None = None) -> SubmitResponse:
        """POST a paid job. Never retried: once the request may have been sent, a failure is ambiguous."""
        headers = self._auth_headers(token)
        url = f"{self._base_url}/v1/models/{model_id}"
        try:
            request = self._http.build_request("POST", url, json=dict(arguments), headers=headers)
        except (TypeError, ValueError) as exc:  # e.g. a NaN, which JSON cannot carry
            raise SubmitNotSentError(
                f"Submitting the job to {model_id} failed before anything was sent: its input could not be written "
                f"as JSON ({type(exc).__name__}: {str(exc)[:200]}). Nothing was sent or charged; fix the input."
            ) from exc
        response = await self._exchange(lambda: request, action="Submitting the job", paid_model=model_id)
        if response.status_code >= 500:
            reason = upstream_reason(self._json_or_none(response))
            raise SubmitOutcomeUnknownError(
                f"Submitting the job to {model_id} got a server error from RunComfy (HTTP {response.status_code}),"
                " so the job may or may not have been created."
                + (f" RunComfy said: {self._redact(reason)[:300]}." if reason else "")
                + " Do NOT submit it again blindly (that could pay twice): check the RunComfy dashboard's "
                "request list first, and resubmit only if it is not there."
            )
        body = self._checked_body(
            response,
            action=f"Submitting the job to {model_id}",
            submitted_model=model_id,
            callers_token=bool(token),
        )
        return self._parse(SubmitResponse, body, "the submit answer")

    async def status(self, request_id: str, *, token: str | None = None) -> StatusResponse:
        body = await self._send(
            "GET", f"/v1/requests/{self._path_id(request_id)}/status", action="Checking the status", token=token
        )
        return self._parse(StatusResponse, body, "the status answer")

    async def result(self, request_id: str, *, include_cost: bool = False, token: str | None = None) -> ResultResponse:
        params = {"include_cost": "true"} if include_cost else None
        body = await self._send(
            "GET",
            f"/v1/requests/{self._path_id(request_id)}/result",
            action="Fetching the result",
            params=params,
            token=token,
        )
        return self._parse(ResultResponse, body, "the result answer")

    async def cancel(self, request_id: str, *, token: str | None = None) -> CancelResponse:
        path = f"/v1/requests/{self._path_id(request_id)}/cancel"
        body = await self._send("POST", path, action="Cancelling the job", token=token)
        return self._parse(CancelResponse, body, "the cancel answer")

    async def fetch(self, model: type[WireModel], path: str, *, action: str, token: str | None = None) -> WireModel:
        """GET `path` (retried like every safe request) and read it as `model`."""
        return self._parse(model, await self._send("GET", path, action=action, token=token), action.lower())

    # ------------------------------------------------------------ the catalog

    async def list_models(
        self,
        *,
        search: str | None = None,
        category: str | None = None,
        kind: str | None = None,
        include_schema: bool = False,
        limit: int = 100,
        offset: int = 0,
        token: str | None = None,
    ) -> CatalogPage:
        params = {"limit": str(limit), "offset": str(offset)}
        if include_schema:
            params["include_schema"] = "true"
        for key, value in (("search", search), ("category", category), ("kind", kind)):
            if value:
                params[key] = value
        body = await self._send(
            "GET", "/v1/models", action="Listing RunComfy's models", params=params, token=token, optional_auth=True
        )
        return self._parse(CatalogPage, body, "the model listing")

    async def model_categories(self, *, token: str | None = None) -> list[str]:
        body = await self._send(
            "GET", "/v1/models/categories", action="Listing model categories", token=token, optional_auth=True
        )
        found = body.get("categories", [])
        names = (
            [
                c if isinstance(c, str) else c.get("name") or c.get("slug") or c.get("id")
                for c in found
                if isinstance(c, str | dict)
            ]
            if isinstance(found, list)
            else []
        )
        return [str(n) for n in names if n]

    async def model(self, model_id: str, *, token: str | None = None) -> dict[str, Any]:
        """One catalog entry with its input schema."""
        body = await self._send(
            "GET",
            f"/v1/models/{quote(check_model_id(model_id), safe='/')}",
            action=f"Reading model {model_id}",
            token=token,
            optional_auth=True,
        )
        return body.get("model", body) if isinstance(body.get("model"), dict) else body

    # ------------------------------------------------------------ plumbing

    @staticmethod
    def _path_id(request_id: str) -> str:
        return quote(check_request_id(request_id), safe="")

    async def _send(
        self,
        method: str,
        path: str,
        *,
        action: str,
        params: Mapping[str, str] | None = None,
        token: str | None = None,
        optional_auth: bool = False,
    ) -> dict[str, Any]:
        """A safe (repeatable) request, retried on transient failures."""
        headers = self._auth_headers(token, optional=optional_auth)
        callers = bool(token)  # None or empty: the server's own token
        return await retrying(self.retry, lambda: self._send_once(method, path, headers, action, params, callers))

    async def _send_once(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        action: str,
        params: Mapping[str, str] | None,
        callers_token: bool,
    ) -> dict[str, Any]:
        url = f"{self._base_url}{path}"
        response = await self._exchange(
            lambda: self._http.build_request(method, url, headers=headers, params=params), action=action
        )
        return self._checked_body(response, action=action, callers_token=callers_token)

    async def _exchange(
        self, request: Callable[[], httpx.Request], *, action: str, paid_model: str | None = None
    ) -> httpx.Response:
        """Send one request within the deadline, in its turn; every transport failure becomes one of our errors, here
        only. The request is made once its turn has come (a thousand polls due together wait as bare coroutines,
        not as built requests), and the wait for a turn is not part of its deadline: nothing was sent yet, so a
        paid submit still waiting is never reported as one that may have been sent."""
        async with self._in_flight:
            try:
                with anyio.fail_after(self.retry.deadline_s):
                    return await self._http.send(request())
            except (TimeoutError, httpx.TransportError) as exc:
                raise self._transport_error(exc, action, paid_model) from exc

    def _transport_error(self, exc: Exception, action: str, paid_model: str | None) -> RunComfyError:
        what = type(exc).__name__
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            # The request never left this machine (for a pool timeout: every connection stayed busy).
            where = (
                "this server's connections to RunComfy were all busy for too long"
                if isinstance(exc, httpx.PoolTimeout)
                else f"RunComfy's API at {self._base_url} could not be reached ({what})"
            )
            nothing = "Nothing was submitted or charged." if paid_model else "Nothing was changed."
            return APIConnectionError(f"{action} failed: {where}. {nothing} Check the network and try again.")
        if paid_model:
            how = (
                f"got no answer within {self.retry.deadline_s:g} s"
                if isinstance(exc, TimeoutError)
                else f"was interrupted after the request was sent ({what})"
            )
            return SubmitOutcomeUnknownError(
                f"Submitting the job to {paid_model} {how}, so the job may or may not exist at RunComfy. Do NOT submit "
                "it again blindly (that could pay twice): check list_jobs and the RunComfy dashboard's request list "
                "first."
            )
        if isinstance(exc, TimeoutError | httpx.TimeoutException):
            late = (
                f"did not finish answering within {self.retry.deadline_s:g} s"
                if isinstance(exc, TimeoutError)
                else f"did not answer in time ({what})"
            )
            return APITimeoutError(f"{action} failed: RunComfy's API {late}. Nothing was changed; try again shortly.")
        return APIConnectionError(
            f"{action} failed: RunComfy's API at {self._base_url} could not be reached ({what}). Nothing was "
            "changed; check the network and try again."
        )

    def _checked_body(
        self,
        response: httpx.Response,
        *,
        action: str,
        submitted_model: str | None = None,
        callers_token: bool = False,
    ) -> dict[str, Any]:
        """The answer's JSON body, or the error it carries; `callers_token`: sent with an HTTP caller's own token."""
        body = self._json_or_none(response)
        if response.is_error or (body is not None and body.get("error_code") not in (None, "", 0)):
            raise error_from_response(
                response.status_code,
                body,
                action=action,
                redact=self._redact,
                retry_after_s=_retry_after(response),
                submitted_model=submitted_model,
                callers_token=callers_token,
            )
        if body is None:
            kind = response.headers.get("content-type", "unknown content type").split(";")[0]
            raise MalformedResponseError(
                f"{action} failed: RunComfy answered HTTP {response.status_code} with {kind} instead of JSON. "
                "This is usually a temporary upstream problem; try again in a minute."
            )
        return body

    @staticmethod
    def _json_or_none(response: httpx.Response) -> dict[str, Any] | None:
        """The body as a JSON object (read to a bounded depth: see bounded_json), or None when it is not one."""
        try:
            body = bounded_json.loads(response.content)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _parse(self, model: type[WireModel], body: dict[str, Any], what: str) -> WireModel:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
            raise MalformedResponseError(
                f"RunComfy's API sent {what} without the expected fields ({fields}). "
                "This is likely a temporary upstream problem; try again in a minute."
            ) from exc
