"""What a job made, for the assistant's eyes: a contact sheet of frames across a video, or an image scaled down.

One JPEG, long edge at most 1024 px and at most 300 KB. It is made from the downloaded file, or from
one streamed fetch of the output into a temporary file (never the whole video in memory), and kept
beside the history, so a job's output is fetched for a preview at most once; a file that cannot be
shown is remembered as such too.

Outputs are upstream data: each is decoded in a worker process of its own (preview_worker) within
fixed limits of pixels, frames, time and memory (thumbnails). At most two previews are made at once
per server. A result whose preview finds both turns taken goes out at once without it: its preview
queues behind the others in the background (a few at most; beyond that none) and a later get_result
shows it, so previews never hold a result's URLs back.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import secrets
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from subprocess import PIPE

import anyio
import httpx
from anyio.abc import ByteReceiveStream, TaskGroup

from runcomfy_mcp.domain.amounts import MIB
from runcomfy_mcp.domain.outputs import Output
from runcomfy_mcp.errors import FetchInterruptedError, FetchRefusedError, PreviewError, UndecodableOutputError
from runcomfy_mcp.media.downloads import OutputHosts
from runcomfy_mcp.media.guarded_http import plain_chunks, transport_failures
from runcomfy_mcp.media.thumbnails import DecodeLimits, Preview

logger = logging.getLogger(__name__)

WORKER = "runcomfy_mcp.media.preview_worker"
WORKER_NICENESS = 10  # below the server's own, for previews made for later: they run when the server can spare the CPU
_ANSWER_MAX_BYTES = 2 * MIB  # a JPEG of at most 300 KB, in base64, and its facts
_STDERR_KEPT_BYTES = 4096


@dataclass(frozen=True)
class PreviewLimits:
    """What previews may cost the server: decoding limits, the worker's memory, turns and waits."""

    decode: DecodeLimits = field(default_factory=DecodeLimits)
    memory_mb: float = 200.0  # the worker's address space beyond its interpreter and libraries
    at_once: int = 2  # previews made at the same time by this server
    waiting: int = 8  # previews queued in the background for a turn; any more are made by a later get_result
    fetch_s: float = 30.0  # longest a preview's fetch may take (a download's deadline, if shorter)
    start_s: float = 10.0  # on top of the decoding's CPU time, before the worker is stopped by the clock


def _write_private(path: Path, data: bytes) -> None:
    """`data` in `path`, created owner-only (0600) whatever the umask."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(data)


class Previewer:
    """Makes and keeps one preview per job, in `folder` (beside the history), a few at a time."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        folder: Path,
        *,
        max_bytes: int,
        deadline_s: float,
        hosts: OutputHosts | None = None,
        limits: PreviewLimits | None = None,
        background: TaskGroup | None = None,
    ) -> None:
        """`deadline_s`: a download's deadline; a preview's fetch gets at most `limits.fetch_s` of it.
        `background`: where previews that found no free turn are made later (None: they are not)."""
        self._http = http
        self.folder = folder
        self.max_bytes = max_bytes
        self.limits = limits or PreviewLimits()
        self.deadline_s = min(deadline_s, self.limits.fetch_s)
        self.hosts = hosts or OutputHosts()
        self._turns: anyio.CapacityLimiter | None = None  # made on first use, inside the event loop
        self._background = background
        self._queued: set[str] = set()  # jobs whose previews wait in the background

    async def preview(self, request_id: str, output: Output, local_file: Path | None = None) -> Preview:
        """The job's preview, made once; raises PreviewError saying why there is none."""
        if output.kind not in ("video", "image"):
            raise PreviewError(f"a {output.kind} output has nothing to show")
        jpeg_path, facts_path = self.folder / f"{request_id}.jpg", self.folder / f"{request_id}.json"
        kept = await self._kept(jpeg_path, facts_path)
        if kept is not None:
            return kept
        turns = self._free_turns()
        try:
            turns.acquire_nowait()
        except anyio.WouldBlock:
            raise self._later(request_id, output, local_file) from None
        try:
            return await self._make(request_id, output, local_file)
        finally:
            turns.release()

    async def _make(
        self, request_id: str, output: Output, local_file: Path | None, *, give_way: bool = False
    ) -> Preview:
        """Made and kept, within a turn the caller holds; `give_way`: made for later, no answer waits (see decode)."""
        jpeg_path, facts_path = self.folder / f"{request_id}.jpg", self.folder / f"{request_id}.json"
        kept = await self._kept(jpeg_path, facts_path)  # made by another wait on the same job meanwhile
        if kept is not None:
            return kept
        try:
            if local_file is not None and local_file.is_file():
                preview = await self.decode(local_file, output.kind, give_way=give_way)
            else:
                preview = await self._from_url(output, give_way=give_way)
        except UndecodableOutputError as exc:
            await anyio.to_thread.run_sync(self._remember_failure, facts_path, exc.message)
            raise
        await anyio.to_thread.run_sync(self._keep, jpeg_path, facts_path, preview)
        return preview

    def _free_turns(self) -> anyio.CapacityLimiter:
        if self._turns is None:
            self._turns = anyio.CapacityLimiter(self.limits.at_once)
        return self._turns

    def _later(self, request_id: str, output: Output, local_file: Path | None) -> PreviewError:
        """Both turns are taken: the preview queues in the background (when there is room) and the result goes out
        now. Returns the error that says so."""
        busy = f"other previews were being made (at most {self.limits.at_once} at once), so this result did not wait"
        if request_id in self._queued:
            return PreviewError(f"{busy}; its preview is being made, and get_result shows it in a moment")
        if self._background is None or len(self._queued) >= self.limits.waiting:
            return PreviewError(f"{busy} for its own; get_result shows it later")
        self._queued.add(request_id)
        self._background.start_soon(self._make_later, request_id, output, local_file)
        return PreviewError(f"{busy}; its preview is being made, and get_result shows it in a moment")

    async def _make_later(self, request_id: str, output: Output, local_file: Path | None) -> None:
        """A queued preview, made in its turn; a failure is kept (undecodable) or logged, never raised."""
        try:
            async with self._free_turns():
                await self._make(request_id, output, local_file, give_way=True)
        except PreviewError as exc:
            logger.info("no preview for %s: %s", request_id, exc.message)
        except Exception:
            logger.exception("a preview made in the background failed")
        finally:
            self._queued.discard(request_id)

    async def _kept(self, jpeg_path: Path, facts_path: Path) -> Preview | None:
        try:
            facts = json.loads(await anyio.Path(facts_path).read_text())
            if "undecodable" in facts:  # decided before: the same bytes would fail the same way
                raise PreviewError(str(facts["undecodable"]))
            jpeg = await anyio.Path(jpeg_path).read_bytes()
            return Preview(jpeg, [float(t) for t in facts["frames_at_s"]], bool(facts.get("cut_short")))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # not made yet

    async def decode(self, path: Path, kind: str, *, give_way: bool = False) -> Preview:
        """The preview of a local file, made by a worker process within `limits` (killed at its deadline).
        `give_way`: made for later, with no answer waiting for it, so the worker runs at a lower priority than the
        server: a thousand waits ending together queue previews whose workers (each a process start) must not take
        the CPU those answers need. A preview an answer waits for runs at the server's own priority."""
        request = json.dumps(
            {
                "kind": kind,
                "path": str(path),
                "limits": asdict(self.limits.decode),
                "memory_mb": self.limits.memory_mb,
            }
        ).encode()
        allowed_s = self.limits.decode.seconds + self.limits.start_s
        # One malloc arena: each extra one reserves 64 MB of address space, which the worker's cap counts.
        environment = {**os.environ, "MALLOC_ARENA_MAX": "1"}
        try:
            process = await anyio.open_process(
                [sys.executable, "-m", WORKER], stdin=PIPE, stdout=PIPE, stderr=PIPE, env=environment
            )
        except OSError as exc:
            raise PreviewError(f"the preview worker could not be started ({exc.strerror or exc})") from exc
        if give_way:
            _give_way(process.pid)
        try:
            with anyio.move_on_after(allowed_s) as scope:
                answer, complaints = await _exchange(process, request)
                returncode = await process.wait()
            if scope.cancelled_caught:  # a busy machine, not a verdict on the file: the next call tries again
                raise PreviewError(f"making it took longer than {allowed_s:g} s; get_result tries again")
        finally:
            if process.returncode is None:
                process.kill()
                with anyio.CancelScope(shield=True):
                    await process.wait()
        return _preview_from(answer, returncode, complaints)

    async def _from_url(self, output: Output, *, give_way: bool) -> Preview:
        if not self.hosts.allows(output.url):
            raise PreviewError(f"the output is not on RunComfy's file hosts ({self.hosts.describe()})")
        await anyio.to_thread.run_sync(self._make_folder)
        temporary = self.folder / f".fetch-{secrets.token_hex(6)}.part"
        try:
            try:
                with anyio.fail_after(self.deadline_s), transport_failures():
                    await self._fetch(output.url, temporary)
            except TimeoutError as exc:
                raise PreviewError(f"fetching the output took longer than {self.deadline_s:g} s") from exc
            except FetchInterruptedError as exc:
                raise PreviewError(f"the output could not be fetched ({exc.transport})") from exc
            except FetchRefusedError as exc:
                raise PreviewError(f"the output could not be fetched ({type(exc).__name__})") from exc
            return await self.decode(temporary, output.kind, give_way=give_way)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.Path(temporary).unlink(missing_ok=True)

    async def _fetch(self, url: str, into: Path) -> None:
        async with self._http.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response:
            if response.status_code != 200:
                raise PreviewError(f"the file host answered HTTP {response.status_code}")
            size = 0
            async with await anyio.open_file(into, "wb") as out:
                async for chunk in plain_chunks(response):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise PreviewError(
                            f"the output is over {self.max_bytes / MIB:g} MB (RUNCOMFY_PREVIEW_MAX_MB), too big to "
                            "fetch for a preview; download it to see it"
                        )
                    await out.write(chunk)

    def _make_folder(self) -> None:
        """Owner-only: what the user's jobs made is theirs alone (an earlier version's folder is tightened)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.folder.stat().st_mode & 0o077:
            os.chmod(self.folder, 0o700)

    def _remember_failure(self, facts_path: Path, reason: str) -> None:
        try:
            self._make_folder()
            _write_private(facts_path, json.dumps({"undecodable": reason}).encode())
        except OSError as exc:
            logger.warning("could not keep the preview's failure %s: %s", facts_path, exc)

    def _keep(self, jpeg_path: Path, facts_path: Path, preview: Preview) -> None:
        try:
            self._make_folder()
            partial = jpeg_path.with_suffix(f".{os.getpid()}.part")
            _write_private(partial, preview.jpeg)
            os.replace(partial, jpeg_path)
            facts = {"frames_at_s": preview.frames_at_s, "cut_short": preview.cut_short}
            _write_private(facts_path, json.dumps(facts).encode())
        except OSError as exc:  # a preview not kept is made again next time; never a reason to fail
            logger.warning("could not keep the preview %s: %s", jpeg_path, exc)


def _give_way(pid: int) -> None:
    """The worker runs WORKER_NICENESS levels below the server; where priorities cannot be set (Windows), as it is."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, pid, min(19, os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICENESS))


async def _exchange(process: anyio.abc.Process, request: bytes) -> tuple[bytes, bytes]:
    """Send the request, and read the answer and the end of what the worker said on stderr, both bounded."""
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    answer, complaints = bytearray(), bytearray()
    async with anyio.create_task_group() as group:
        group.start_soon(_drain, process.stdout, answer, _ANSWER_MAX_BYTES, False)
        group.start_soon(_drain, process.stderr, complaints, _STDERR_KEPT_BYTES, True)
        async with process.stdin:
            await process.stdin.send(request)
    return bytes(answer), bytes(complaints)


async def _drain(stream: ByteReceiveStream, into: bytearray, keep: int, tail: bool) -> None:
    """Read to the end (so the worker never blocks on a full pipe), keeping `keep` bytes: the first, or the last."""
    async for chunk in stream:
        into.extend(chunk)
        if len(into) > keep and tail:
            del into[: len(into) - keep]
        elif len(into) > keep:
            del into[keep:]


def _preview_from(answer: bytes, returncode: int, complaints: bytes) -> Preview:
    if returncode < 0:  # killed by a signal: a crash in a decoder, or its CPU cap (a decoder stuck in one call)
        raise UndecodableOutputError(f"decoding it stopped the decoder (signal {-returncode})")
    try:
        facts = json.loads(answer.strip().rsplit(b"\n", 1)[-1])  # the worker's answer is its last line
        if "undecodable" in facts:
            raise UndecodableOutputError(str(facts["undecodable"]))
        return Preview(
            base64.b64decode(facts["jpeg"], validate=True),
            [float(t) for t in facts["frames_at_s"]],
            bool(facts.get("cut_short")),
        )
    except (ValueError, KeyError, TypeError) as exc:  # binascii.Error is a ValueError
        logger.warning(
            "the preview worker ended with %s and no answer: %s", returncode, complaints.decode(errors="replace")
        )
        raise PreviewError(f"the preview worker failed (exit status {returncode})") from exc
