"""The preview worker: one output file (hostile until proven otherwise) in, one JPEG out, in a process of its own.

The server runs `python -m runcomfy_mcp.media.preview_worker` for each preview with a JSON request
on stdin — {"kind", "path", "limits", "memory_mb"} — and reads one JSON answer on stdout:
{"jpeg": base64, "frames_at_s": [...], "cut_short": bool}, or {"undecodable": why}. Decoding follows
the limits (see thumbnails); what they cannot foresee — a decoder that crashes, spins inside one call,
or a container whose index alone is huge — takes only this process with it: its address space and CPU
time are capped where the system allows, and the server kills it at its deadline.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import sys
import warnings
from pathlib import Path

from runcomfy_mcp.domain.amounts import MIB
from runcomfy_mcp.errors import UndecodableOutputError
from runcomfy_mcp.media.thumbnails import DecodeLimits, make_preview

MAX_REQUEST_BYTES = 64 * 1024


def cap_resources(memory_mb: float, seconds: float) -> None:
    """Address space: what is mapped now (the interpreter, PyAV, Pillow) plus `memory_mb`; CPU: `seconds` and 5 more.

    Decoding stops itself after `seconds` of CPU time; only a decoder stuck inside one call reaches the
    CPU cap, and is killed by it (SIGXCPU), with no core file.
    """
    try:
        import resource
    except ImportError:  # Windows: the server's deadline is the bound
        return
    mapped = _mapped_bytes()
    caps = [(resource.RLIMIT_CPU, math.ceil(seconds) + 5), (resource.RLIMIT_CORE, 0)]
    if mapped is not None:
        caps.append((resource.RLIMIT_AS, mapped + int(memory_mb * MIB)))
    for which, value in caps:
        with contextlib.suppress(ValueError, OSError):  # not enforceable here (macOS refuses some caps)
            resource.setrlimit(which, (value, value))


def _mapped_bytes() -> int | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def answer(request: dict[str, object]) -> dict[str, object]:
    kind = str(request["kind"])
    limits_given = request.get("limits")
    limits = DecodeLimits(**limits_given) if isinstance(limits_given, dict) else DecodeLimits()
    import av  # imported before the cap, so that their own mappings do not count against it
    from PIL import Image

    av.logging.set_level(None)  # FFmpeg's complaints about a broken file are not the server's log
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # sizes are checked against our own limit
    given = request.get("memory_mb")
    memory_mb = float(given) if isinstance(given, int | float) else 200.0
    cap_resources(memory_mb, limits.seconds)
    try:
        preview = make_preview(kind, Path(str(request["path"])), limits)
    except UndecodableOutputError as exc:
        return {"undecodable": exc.message}
    except (MemoryError, BlockingIOError):  # BlockingIOError: a decoder thread could not be made (the cap)
        return {"undecodable": f"decoding it needed more memory than a preview may use ({memory_mb:g} MB)"}
    except Exception as exc:  # every decoder failure is a verdict on the file, never a crash of the server
        return {"undecodable": f"the {kind} could not be decoded ({type(exc).__name__})"}
    return {
        "jpeg": base64.b64encode(preview.jpeg).decode("ascii"),
        "frames_at_s": preview.frames_at_s,
        "cut_short": preview.cut_short,
    }


def main() -> int:
    request = json.loads(sys.stdin.buffer.read(MAX_REQUEST_BYTES))
    sys.stdout.write("\n" + json.dumps(answer(request)) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
