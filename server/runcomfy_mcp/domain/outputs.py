"""A result's outputs: every file URL under an output key, with its kind, and never an echoed input."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel

OutputKind = Literal["video", "image", "audio", "file"]

# Output keys, and the kind of file each holds. Other keys (inputs echoed back, seeds, timings) are not outputs.
_KEY_KINDS: dict[str, OutputKind] = {
    "video": "video",
    "videos": "video",
    "image": "image",
    "images": "image",
    "audio": "audio",
    "audios": "audio",
    "file": "file",
    "files": "file",
}
SUFFIX_KINDS: dict[str, OutputKind] = {
    **dict.fromkeys((".mp4", ".mov", ".webm", ".mkv", ".m4v", ".gif"), "video"),
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".webp", ".avif", ".bmp"), "image"),
    **dict.fromkeys((".mp3", ".wav", ".m4a", ".aac", ".flac", ".ogg", ".opus"), "audio"),
}


class Output(BaseModel):
    url: str
    kind: OutputKind


def kind_of_url(url: str, default: OutputKind) -> OutputKind:
    """A `file` output whose name says what it is gets that kind; other keys' kinds are trusted."""
    if default != "file":
        return default
    return SUFFIX_KINDS.get(PurePosixPath(urlsplit(url).path).suffix.lower(), "file")


def collect_outputs(output: Mapping[str, Any] | None, inputs: Iterable[Any] = ()) -> list[Output]:
    """Every URL under an output key, in order, without repeats, leaving out any URL that was sent as an input."""
    if not output:
        return []
    sent = {v for v in _strings(inputs)}
    found: list[Output] = []
    seen: set[str] = set()

    def collect(value: Any, kind: OutputKind) -> None:
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            if value not in seen and value not in sent:
                seen.add(value)
                found.append(Output(url=value, kind=kind_of_url(value, kind)))
        elif isinstance(value, Mapping):
            collect(value.get("url"), kind)
        elif isinstance(value, list):
            for item in value:
                collect(item, kind)

    for key, kind in _KEY_KINDS.items():
        collect(output.get(key), kind)
    return found


def _strings(values: Iterable[Any]) -> Iterable[str]:
    """Every string sent, at any depth (a media URL may sit in an object inside an array)."""
    pending = list(values)
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, list | tuple):
            pending.extend(value)
        elif isinstance(value, Mapping):
            pending.extend(value.values())


def digest_data_uris(value: Any) -> Any:
    """The value with every data: URI replaced by its media type, size and a SHA-256 prefix: what the history keeps
    of inlined inputs, and what a result shows of an input it echoes (often most of its bytes)."""
    if isinstance(value, str) and value[:5].lower() == "data:":
        header = value.split(",", 1)[0]
        sha = hashlib.sha256(value.encode()).hexdigest()[:16]
        return f"{header},<{len(value)} chars, sha256:{sha}>"
    if isinstance(value, list):
        return [digest_data_uris(v) for v in value]
    if isinstance(value, Mapping):
        return {k: digest_data_uris(v) for k, v in value.items()}
    return value
