"""Media sources on their own: data URIs, local files and URLs through a MockTransport and a fake resolver."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from images import make_image
from runcomfy_mcp.domain.media_rules import MIB
from runcomfy_mcp.errors import MediaError, MediaTooLargeError
from runcomfy_mcp.media.guarded_http import FetchSlots
from runcomfy_mcp.media.sources import LoadedMedia, MediaLoader, MediaPolicy

pytestmark = pytest.mark.anyio

PNG = make_image(640, 480)
ADDRESSES = {"cdn.example.com": ["93.184.216.34"], "intranet.example.com": ["10.0.0.7"]}


async def resolve(host: str) -> list[str]:
    if host not in ADDRESSES:
        raise OSError("no such host")
    return ADDRESSES[host]


def loader(policy: MediaPolicy, handler: httpx.MockTransport | None = None) -> tuple[MediaLoader, list[str]]:
    asked: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if request.url.path == "/drop":
            raise httpx.ConnectError("connection reset")
        return httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"})

    http = httpx.AsyncClient(transport=handler or httpx.MockTransport(serve))
    return MediaLoader(http, policy, resolve, deadline_s=5, slots=FetchSlots(per_caller=2, total=4)), asked


async def load(media: MediaLoader, value: str, max_bytes: int = 10 * MIB) -> LoadedMedia:
    return await media.load(value, max_bytes=max_bytes, owner="alice", kind="image")


async def test_a_data_uri_is_read_for_its_facts_and_sent_as_it_came() -> None:
    media, asked = loader(MediaPolicy())
    uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    loaded = await load(media, uri)
    assert (loaded.facts.format, loaded.facts.width, loaded.facts.height) == ("png", 640, 480)
    assert loaded.send_as == uri and asked == []


async def test_a_data_uri_over_the_cap_is_refused_with_its_size() -> None:
    media, _ = loader(MediaPolicy())
    uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    with pytest.raises(MediaTooLargeError, match=r"is \d+ KB, over the 1000 bytes this input allows"):
        await load(media, uri, max_bytes=1000)


async def test_a_local_file_is_inlined_and_one_outside_the_roots_is_refused(tmp_path: Path) -> None:
    inside, outside = tmp_path / "in", tmp_path / "out"
    inside.mkdir(), outside.mkdir()
    (inside / "a.png").write_bytes(PNG), (outside / "b.png").write_bytes(PNG)
    media, _ = loader(MediaPolicy(input_roots=(inside,)))
    loaded = await load(media, str(inside / "a.png"))
    assert loaded.send_as.startswith("data:image/png;base64,") and loaded.facts.width == 640
    with pytest.raises(MediaError):
        await load(media, str(outside / "b.png"))


async def test_over_http_no_local_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    media, _ = loader(MediaPolicy(local_files=False, fetch_private_urls=False))
    with pytest.raises(MediaError):
        await load(media, str(tmp_path / "a.png"))


async def test_a_public_url_is_probed_and_passed_through() -> None:
    media, asked = loader(MediaPolicy())
    loaded = await load(media, "https://cdn.example.com/cat.png")
    assert loaded.send_as == "https://cdn.example.com/cat.png" and loaded.facts.height == 480
    assert asked and all(url.startswith("https://cdn.example.com/") for url in asked)


async def test_a_private_url_is_inlined_for_the_local_user_and_refused_to_strangers() -> None:
    mine, _ = loader(MediaPolicy())
    loaded = await load(mine, "https://intranet.example.com/cat.png")
    assert loaded.send_as.startswith("data:image/png;base64,") and loaded.note and "not reachable" in loaded.note
    shared, asked = loader(MediaPolicy(local_files=False, fetch_private_urls=False))
    with pytest.raises(MediaError, match="private network"):
        await load(shared, "https://intranet.example.com/cat.png")
    assert asked == []


async def test_a_dropped_connection_is_a_media_error_that_names_it() -> None:
    media, _ = loader(MediaPolicy())
    with pytest.raises(MediaError, match=r"cannot be fetched \(ConnectError\)"):
        await load(media, "https://cdn.example.com/drop")
