"""A simulator of the RunComfy Model API: the same paths, shapes and errors, on loopback.

Jobs move `in_queue` → `in_progress` → `completed` on a clock the caller controls: real time
scaled by `time_scale` for a demo, or a `ManualClock` that tests advance by hand. A prompt
containing "[fail]" makes the job fail; one containing "[refuse]" is refused on submit (HTTP 422, with
a detail naming the field, as RunComfy's input checks answer). Output files are served from `/files/…` without a token,
like RunComfy's CDN. `GET /v1/models` serves a catalog (see `sandbox.catalog`): the four bundled
models and others, whose outputs are videos, images or sounds.

Jobs and the balance live in memory, or in a `SimulatorState` file (sandbox mode) so that they outlive the
process. Given no token to check, it accepts any bearer token, as sandbox mode does for its HTTP callers.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import math
import secrets
import struct
import time
import wave
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from runcomfy_mcp.sandbox.state import SimulatorState, StoredJob

FAIL_MARKER = "[fail]"
REFUSE_MARKER = "[refuse]"
QUEUE_SECONDS = 3.0
RUN_SECONDS = 6.0
OPENING_BALANCE_USD = 25.0


class ManualClock:
    """A clock tests move by hand, so job states change exactly when a test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class SimulatedJob:
    request_id: str
    model_id: str
    arguments: dict[str, Any]
    submitted_at: float
    queue_s: float
    run_s: float
    sequence: int = 0
    cancelled: bool = False
    video: bytes | None = None  # its output file (a video, or music), made once when first fetched
    cost: float = 0.0
    created_at: float = field(default_factory=time.time)  # wall clock, for the result's dates

    @classmethod
    def stored(cls, job: StoredJob) -> SimulatedJob:
        return cls(
            request_id=job.request_id,
            model_id=job.model_id,
            arguments=job.arguments,
            submitted_at=job.submitted_at,
            queue_s=job.queue_s,
            run_s=job.run_s,
            sequence=job.sequence,
            cancelled=job.cancelled,
            cost=job.cost,
            created_at=job.created_at,
        )

    @property
    def prompt(self) -> str:
        return _prompt(self.arguments)

    def status_at(self, now: float) -> str:
        if self.cancelled:
            return "cancelled"
        elapsed = now - self.submitted_at
        if elapsed < self.queue_s:
            return "in_queue"
        if elapsed < self.queue_s + self.run_s:
            return "in_progress"
        return "completed"

    @property
    def fails(self) -> bool:
        return _asks_to_fail(self.arguments)


def _prompt(arguments: dict[str, Any]) -> str:
    for key in ("prompt", "text"):
        value = arguments.get(key)
        if isinstance(value, str):
            return value
    return ""


def _asks_to_fail(arguments: dict[str, Any]) -> bool:
    return FAIL_MARKER in _prompt(arguments)


VideoMaker = Callable[[SimulatedJob], bytes]


@dataclass
class SimulatorCalls:
    """What the simulator was asked, for tests that count (e.g. "no POST was sent")."""

    submits: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    credentials: list[str] = field(default_factory=list)  # each request's Authorization header, as sent
    last_at: float | None = None  # when the last request came, on the simulator's clock

    def count(self, method: str, path_part: str = "") -> int:
        return sum(1 for m, p in self.requests if m == method and path_part in p)

    def sent_with(self, method: str, path_part: str = "") -> list[str]:
        """The Authorization header of each such request."""
        return [c for (m, p), c in zip(self.requests, self.credentials, strict=True) if m == method and path_part in p]


class Simulator:
    def __init__(
        self,
        *,
        token: str | Iterable[str] | None,
        catalog: Iterable[dict[str, Any]] | None = None,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.time,
        video_maker: VideoMaker | None = None,
        state: SimulatorState | None = None,
    ) -> None:
        """`token`: the tokens it accepts, or None for any bearer token. `state`: where jobs and the balance are
        kept beyond this process (its times are then the wall clock's: keep `clock` the default)."""
        self.tokens = set() if token is None else {token} if isinstance(token, str) else set(token)
        self.any_token = token is None
        if (not self.any_token and not self.tokens) or "" in self.tokens:
            raise ValueError("the simulator needs non-empty tokens to check (or None to accept any)")
        from runcomfy_mcp.sandbox.catalog import sandbox_catalog

        self.catalog: dict[str, dict[str, Any]] = {e["model_id"]: e for e in (catalog or sandbox_catalog())}
        self.catalog_open = True  # False: the listing answers 503 (RunComfy unreachable)
        # Other words for the same states, as RunComfy's own clients have met them ({"cancelled": "canceled"} …)
        self.status_words: dict[str, str] = {}
        self.state = state
        # the account's wallet: each job's cost is taken from it when submitted (read from `state` when kept there)
        self.balance_usd = OPENING_BALANCE_USD
        self.unlimited_balance = False  # True: jobs cost nothing here, so a benchmark's thousands never run out
        self.time_scale = time_scale
        self.clock = clock
        self.video_maker = video_maker
        self.jobs: dict[str, SimulatedJob] = {}
        self.calls = SimulatorCalls()
        self._ids = itertools.count(1)
        self.base_url = ""  # set by whoever serves it, so output URLs point back here
        self.video_maker_failures = 0  # answer this many file requests with 503 first (a flaky CDN)
        self.file_base_url: str | None = None  # where output URLs point, when not here (a hostile upstream)
        self.stream_files = False  # serve files without a length, in 64 KB pieces
        self.file_chunk_delay_s = 0.0  # pause between those pieces (a slow file host)

    # ------------------------------------------------------------ job logic

    async def _queue_position(self, job: SimulatedJob, now: float) -> int:
        if self.state is not None:  # other processes' jobs wait in the same queue
            return max(1, await anyio.to_thread.run_sync(self.state.queued_up_to, job.sequence, now))
        ahead = [j for j in self.jobs.values() if j.sequence <= job.sequence and j.status_at(now) == "in_queue"]
        return max(1, len(ahead))

    async def _status_body(self, job: SimulatedJob) -> dict[str, Any]:
        now = self.clock()
        status = job.status_at(now)
        body: dict[str, Any] = {
            "request_id": job.request_id,
            "status": self.status_words.get(status, status),
            "status_url": f"{self.base_url}/v1/requests/{job.request_id}/status",
            "result_url": f"{self.base_url}/v1/requests/{job.request_id}/result",
        }
        if status == "in_queue":
            body["queue_position"] = await self._queue_position(job, now)
        return body

    def _result_body(self, job: SimulatedJob, include_cost: bool) -> dict[str, Any]:
        status = job.status_at(self.clock())
        body: dict[str, Any] = {"request_id": job.request_id, "created_at": _iso(job.created_at)}
        if status == "completed":
            body["finished_at"] = _iso(job.created_at + job.queue_s + job.run_s)
            if job.fails:
                body["status"] = "failed"
                body["error"] = "Simulated failure: the prompt asked for it with [fail]."
            else:
                body["status"] = "succeeded"
                body["output"] = self._output(job)
            if include_cost:
                body["cost"] = job.cost
        else:
            body["status"] = self.status_words.get(status, status)
        return body

    def output_kind(self, model_id: str) -> str:
        return str(self.catalog.get(model_id, {}).get("output_kind", "video"))

    def _output(self, job: SimulatedJob) -> dict[str, Any]:
        kind = self.output_kind(job.model_id)
        url = f"{self.file_base_url or self.base_url}/files/{job.request_id}.{_SUFFIX[kind]}"
        output: dict[str, Any] = {"images": [url]} if kind == "image" else {kind: url}
        echoed = self.catalog[job.model_id].get("echo_input")
        if echoed and isinstance(job.arguments.get(echoed), str):
            output["image"] = job.arguments[echoed]
        return output

    def cost_of(self, model_id: str, arguments: dict[str, Any]) -> float:
        """What RunComfy would charge: the catalog price applied to the arguments (the base price when its unit
        cannot be applied)."""
        from runcomfy_mcp.domain.pricing import Price, estimate_cost

        entry = self.catalog.get(model_id, {})
        price = entry.get("base_price_usd")
        if price is None:
            return 0.0
        estimate = estimate_cost(Price(price, entry.get("price_unit")), arguments, entry.get("input_schema") or {})
        return estimate.usd if estimate.usd is not None else float(price)

    async def _balance(self, request: Request) -> Response:
        self._record(request)
        if not self._authorized(request):
            return _error(401, "400004", "Invalid or missing API token.")
        usd = await self._read_balance()
        return JSONResponse({"balance_usd": usd, "balance_microdollars": round(usd * 1_000_000), "currency": "USD"})

    # ------------------------------------------------------------ the catalog

    def _public(self, entry: dict[str, Any], include_schema: bool) -> dict[str, Any]:
        shown = {k: v for k, v in entry.items() if k not in ("output_kind", "echo_input", "input_schema")}
        schema = entry.get("input_schema") or {}
        shown["inputs"] = list(schema.get("properties", {}))
        shown["required_inputs"] = list(schema.get("required", []))
        shown["model_url"] = f"https://www.runcomfy.com/models/{entry['model_id']}"
        if include_schema:
            shown["input_schema"] = entry.get("input_schema")
        return shown

    async def _list_models(self, request: Request) -> Response:
        self._record(request)
        if not self._authorized(request):  # RunComfy wants a token on the catalog too
            return _error(401, "400004", "Invalid or missing API token.")
        if not self.catalog_open:
            return _error(503, "500000", "Service temporarily unavailable.")
        query = request.query_params
        try:
            limit, offset = int(query.get("limit", "100")), int(query.get("offset", "0"))
        except ValueError:
            return _error(400, "400000", "limit and offset must be integers.")
        if not 1 <= limit <= 500 or offset < 0:
            return _error(400, "400000", "limit must be 1-500 and offset at least 0.")
        search = query.get("search", "").lower()
        category = query.get("category")
        found = [
            e
            for e in self.catalog.values()
            if (
                not search
                or search in f"{e['model_id']} {e.get('display_name', '')} {e.get('description', '')}".lower()
            )
            and (not category or category in e.get("categories", []))
            and query.get("kind", e.get("kind", "model")) == e.get("kind", "model")
        ]
        include_schema = query.get("include_schema") == "true"
        page = [self._public(e, include_schema) for e in found[offset : offset + limit]]
        return JSONResponse({"models": page, "total": len(found), "limit": limit, "offset": offset})

    async def _categories(self, request: Request) -> Response:
        self._record(request)
        if not self._authorized(request):
            return _error(401, "400004", "Invalid or missing API token.")
        names = sorted({c for e in self.catalog.values() for c in e.get("categories", [])})
        return JSONResponse({"categories": names})

    async def _model(self, request: Request) -> Response:
        self._record(request)
        if not self._authorized(request):
            return _error(401, "400004", "Invalid or missing API token.")
        if not self.catalog_open:
            return _error(503, "500000", "Service temporarily unavailable.")
        entry = self.catalog.get(request.path_params["model_id"])
        if entry is None:
            return _error(400, "400001", f"Model {request.path_params['model_id']} not found.")
        return JSONResponse(self._public(entry, include_schema=True))

    # ------------------------------------------------------------ HTTP

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/prod/v2/balance", self._balance, methods=["GET"]),
                Route("/v1/models", self._list_models, methods=["GET"]),
                Route("/v1/models/categories", self._categories, methods=["GET"]),
                Route("/v1/models/{model_id:path}", self._model, methods=["GET"]),
                Route("/v1/models/{model_id:path}", self._submit, methods=["POST"]),
                Route("/v1/requests/{request_id}/status", self._status, methods=["GET"]),
                Route("/v1/requests/{request_id}/result", self._result, methods=["GET"]),
                Route("/v1/requests/{request_id}/cancel", self._cancel, methods=["POST"]),
                Route("/files/{name}", self._file, methods=["GET"]),
                Route("/simulator/requests", self._requests, methods=["GET"]),
            ]
        )

    async def _requests(self, request: Request) -> Response:
        """Not RunComfy's: what the simulator was asked, for a benchmark in another process to count."""
        kinds = Counter(_kind(method, path) for method, path in self.calls.requests)
        ends = [job.submitted_at + job.queue_s + job.run_s for job in self.jobs.values()]
        return JSONResponse(
            {
                "requests": kinds,
                "clock": self.clock(),
                "last_job_ends_at": max(ends, default=None),
                "last_request_at": self.calls.last_at,
            }
        )

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if self.any_token:
            scheme, _, token = header.partition(" ")
            return scheme == "Bearer" and bool(token.strip())
        return any(secrets.compare_digest(header, f"Bearer {token}") for token in self.tokens)

    async def _read_balance(self) -> float:
        if self.state is not None:
            self.balance_usd = await anyio.to_thread.run_sync(self.state.balance)
        return self.balance_usd

    async def _take(self, usd: float) -> bool:
        """Takes a job's cost from the balance; False, taking nothing, when the balance holds less."""
        if self.state is not None:
            after = await anyio.to_thread.run_sync(self.state.take, usd)
            if after is None:
                return False
            self.balance_usd = after
            return True
        if usd > self.balance_usd + 1e-9:
            return False
        self.balance_usd = round(self.balance_usd - usd, 6)
        return True

    def _record(self, request: Request) -> None:
        self.calls.requests.append((request.method, request.url.path))
        self.calls.credentials.append(request.headers.get("authorization", ""))
        self.calls.last_at = self.clock()

    async def _submit(self, request: Request) -> Response:
        self._record(request)
        if not self._authorized(request):
            return _error(401, "400004", "Invalid or missing API token.")
        model_id = request.path_params["model_id"]
        if model_id not in self.catalog:
            return JSONResponse({"detail": f"Model {model_id} not found."}, status_code=404)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "400000", "Request body must be a JSON object.")
        if not isinstance(body, dict):
            return _error(400, "400000", "Request body must be a JSON object.")
        refused = [k for k, v in body.items() if isinstance(v, str) and REFUSE_MARKER in v]
        if refused:
            problems = [
                {"loc": ["body", k], "msg": "flagged by the content filter", "type": "value_error"} for k in refused
            ]
            return JSONResponse({"detail": problems}, status_code=422)
        cost = self.cost_of(model_id, body)
        if not self.unlimited_balance and not await self._take(cost):
            return _error(402, "400002", f"Insufficient balance: this job costs ${cost:.4g}.")
        if _asks_to_fail(body):  # a job that fails is not charged (and reports a cost of 0)
            await self._take(-cost)
            cost = 0.0
        self.calls.submits.append({"model_id": model_id, "arguments": body})
        job = await self._new_job(model_id, body, cost)
        self.jobs[job.request_id] = job
        request_id = job.request_id
        base = f"{self.base_url}/v1/requests/{request_id}"
        return JSONResponse(
            {
                "request_id": request_id,
                "status_url": f"{base}/status",
                "result_url": f"{base}/result",
                "cancel_url": f"{base}/cancel",
            }
        )

    async def _new_job(self, model_id: str, arguments: dict[str, Any], cost: float) -> SimulatedJob:
        queue_s, run_s = QUEUE_SECONDS * self.time_scale, RUN_SECONDS * self.time_scale
        if self.state is not None:
            stored = await anyio.to_thread.run_sync(
                functools.partial(
                    self.state.add,
                    model_id=model_id,
                    arguments=arguments,
                    submitted_at=self.clock(),
                    created_at=time.time(),
                    queue_s=queue_s,
                    run_s=run_s,
                    cost=cost,
                )
            )
            return SimulatedJob.stored(stored)
        sequence = next(self._ids)
        return SimulatedJob(
            request_id=f"sim-{sequence:06d}-{secrets.token_hex(4)}",
            model_id=model_id,
            arguments=arguments,
            submitted_at=self.clock(),
            queue_s=queue_s,
            run_s=run_s,
            sequence=sequence,
            cost=cost,
        )

    async def _find(self, request_id: str) -> SimulatedJob | None:
        """The job, from this process or (with a state file) any earlier or concurrent one."""
        job = self.jobs.get(request_id)
        if self.state is None:
            return job
        stored = await anyio.to_thread.run_sync(self.state.get, request_id)
        if stored is None:
            return None
        if job is None:  # submitted by another process: its output is made here when first fetched
            job = self.jobs[request_id] = SimulatedJob.stored(stored)
        job.cancelled = stored.cancelled  # another process may have cancelled it
        return job

    async def _job(self, request: Request) -> SimulatedJob | Response:
        self._record(request)
        if not self._authorized(request):
            return _error(401, "400004", "Invalid or missing API token.")
        job = await self._find(request.path_params["request_id"])
        if job is None:
            return _error(404, "404001", "Request not found.")
        return job

    async def _status(self, request: Request) -> Response:
        job = await self._job(request)
        return job if isinstance(job, Response) else JSONResponse(await self._status_body(job))

    async def _result(self, request: Request) -> Response:
        job = await self._job(request)
        if isinstance(job, Response):
            return job
        include_cost = request.query_params.get("include_cost") == "true"
        return JSONResponse(self._result_body(job, include_cost))

    async def _cancel(self, request: Request) -> Response:
        job = await self._job(request)
        if isinstance(job, Response):
            return job
        status = job.status_at(self.clock())
        if status == "in_queue":
            job.cancelled = True
            refund = True
            if self.state is not None:
                refund = await anyio.to_thread.run_sync(self.state.cancel, job.request_id)
            if refund:  # it never ran: what it was charged goes back, once
                await self._take(-job.cost)
                job.cost = 0.0
            cancelled = self.status_words.get("cancelled", "cancelled")
            return JSONResponse({"request_id": job.request_id, "status": cancelled, "outcome": cancelled}, 202)
        shown = self.status_words.get(status, status)
        return JSONResponse({"request_id": job.request_id, "status": shown, "outcome": "not_cancellable"}, 202)

    async def _file(self, request: Request) -> Response:
        self._record(request)
        name: str = request.path_params["name"]
        job = await self._find(name.rsplit(".", 1)[0])
        if job is None or job.fails or job.status_at(self.clock()) != "completed":
            return Response("not found", status_code=404)
        kind = self.output_kind(job.model_id)
        if kind == "audio" and "text-to-music" in self.catalog[job.model_id].get("categories", []):
            if job.video is None:
                from runcomfy_mcp.sandbox.music import music_for_job

                job.video = await anyio.to_thread.run_sync(music_for_job, job.arguments)
            return Response(job.video, media_type=_MIME[kind])
        if kind != "video":
            return Response(still_image() if kind == "image" else tone(), media_type=_MIME[kind])
        if self.video_maker is None:
            return Response("not found", status_code=404)
        if self.video_maker_failures > 0:
            self.video_maker_failures -= 1
            return Response("busy", status_code=503)
        if job.video is None:
            job.video = await anyio.to_thread.run_sync(self.video_maker, job)
        if self.stream_files:
            return StreamingResponse(self._pieces(job.video), media_type="video/mp4")
        return Response(job.video, media_type="video/mp4")

    async def _pieces(self, data: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]
            await anyio.sleep(self.file_chunk_delay_s)


def _kind(method: str, path: str) -> str:
    """`submit`, `status`, `result`, `cancel`, `file` or `other`: what a request to this API was."""
    if method == "POST" and path.startswith("/v1/models/"):
        return "submit"
    if path.startswith("/v1/requests/"):
        return path.rsplit("/", 1)[-1]
    return "file" if path.startswith("/files/") else "other"


_SUFFIX = {"video": "mp4", "image": "png", "audio": "wav"}
_MIME = {"video": "video/mp4", "image": "image/png", "audio": "audio/wav"}


def still_image(width: int = 64, height: int = 48) -> bytes:
    """A small, valid PNG: a gradient, so it is not blank."""
    pixels = (bytes(v for x in range(width) for v in (x * 4 % 256, y * 5 % 256, 160)) for y in range(height))
    rows = b"".join(b"\x00" + row for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def tone(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A short WAV: one second of a 440 Hz tone."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(
            bytes(int(128 + 100 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(rate * seconds)))
        )
    return buffer.getvalue()


def _searchable(entry: dict[str, Any]) -> str:
    return f"{entry['model_id']} {entry.get('display_name', '')} {entry.get('description', '')}".lower()


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "error_message": message}, status_code=status)


def _iso(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))
