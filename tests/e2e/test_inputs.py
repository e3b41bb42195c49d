"""Image inputs are checked the way RunComfy would check them, before anything is paid for."""

from __future__ import annotations

import base64
import math
import struct
import zlib
from pathlib import Path

import pytest

from conftest import TOKEN, ClientFactory
from helpers import local_file, structured, text_of
from images import PRIVATE_HOST, FakeImageHost, image_url, make_image, padded
from mcp import Client
from runcomfy_mcp.domain.media_rules import MIB
from runcomfy_mcp.sandbox.simulator import Simulator
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio

LITE = "seedance_1_0_lite_image_to_video"
DREAMINA = "dreamina_3_0_image_to_video"
REFERENCE = "seedance_1_0_lite_reference_to_video"
TOO_SMALL = "The uploaded image width and height must not be less than 300 pixels."
TOO_LARGE = "The uploaded image width and height must not exceed 6000 pixels."
RATIO = "The aspect ratio range should be between 0.4 and 2.5."


async def call_lite(client: Client, image: str) -> tuple[bool, str]:
    result = await client.call_tool(LITE, {"prompt": "a cat", "first_frame_image_url": image})
    return result.is_error, text_of(result)


async def call_dreamina(client: Client, image: str) -> tuple[bool, str]:
    result = await client.call_tool(DREAMINA, {"prompt": "waves", "image_urls": [image]})
    return result.is_error, text_of(result)


# Seedance 1.0 Lite: width/height > 300 and < 6000, 0.4 < width/height < 2.5.
LITE_BOUNDS = [
    (300, 400, TOO_SMALL), (301, 400, None), (400, 300, TOO_SMALL), (400, 301, None),
    (5999, 3000, None), (6000, 3000, TOO_LARGE), (3000, 5999, None), (3000, 6000, TOO_LARGE),
    (1000, 400, RATIO), (999, 400, None), (400, 1000, RATIO), (401, 1000, None),
]  # fmt: skip


@pytest.mark.parametrize(("width", "height", "error"), LITE_BOUNDS)
async def test_seedance_lite_pixel_and_ratio_bounds(
    client: Client, simulator: Simulator, tmp_path: Path, width: int, height: int, error: str | None
) -> None:
    failed, text = await call_lite(client, local_file(tmp_path, "in.png", make_image(width, height)))
    if error is None:
        assert not failed, text
        assert len(simulator.calls.submits) == 1
    else:
        assert failed and f"first_frame_image_url: {error} (got {width}×{height}" in text
        assert simulator.calls.count("POST") == 0


# Dreamina 3.0: sides <= 4096, shortest side >= 320, 0.33 < width/height <= 3.
DREAMINA_BOUNDS = [
    (4096, 2000, None), (4097, 2000, "Maximum resolution is 4096×4096."),
    (2000, 4096, None), (2000, 4097, "Maximum resolution is 4096×4096."),
    (320, 320, None), (319, 400, "The shortest side must be at least 320 px."),
    (960, 320, None), (963, 320, "The long-to-short side ratio must be within 3:1."),
    (331, 1000, None), (330, 1000, "The long-to-short side ratio must be greater than 0.33."),
]  # fmt: skip


@pytest.mark.parametrize(("width", "height", "error"), DREAMINA_BOUNDS)
async def test_dreamina_pixel_and_ratio_bounds(
    client: Client, tmp_path: Path, width: int, height: int, error: str | None
) -> None:
    failed, text = await call_dreamina(client, local_file(tmp_path, "in.jpg", make_image(width, height, "jpg")))
    if error is None:
        assert not failed, text
    else:
        assert failed and f"image_urls[0]: {error}" in text


@pytest.mark.parametrize(
    ("size", "ok"),
    [(math.ceil(4.7 * MIB) - 1, True), (math.ceil(4.7 * MIB), False), (math.ceil(4.7 * MIB) + 1, False)],
)
async def test_dreamina_file_size_bound(client: Client, tmp_path: Path, size: int, ok: bool) -> None:
    path = local_file(tmp_path, "big.jpg", padded(make_image(800, 600, "jpg"), size))
    failed, text = await call_dreamina(client, path)
    assert failed is not ok, text
    if not ok:
        assert "File size must be less than 4.7 MB." in text and "(got 4.7 MB)" in text


@pytest.mark.parametrize(("size", "ok"), [(30 * MIB - 1, True), (30 * MIB, False), (35 * MIB, False)])
async def test_seedance_file_size_bound_by_url(client: Client, image_host: FakeImageHost, size: int, ok: bool) -> None:
    url = image_url(1200, 800, "jpg", pad=size)
    failed, text = await call_lite(client, url)
    assert failed is not ok, text
    if not ok:
        assert "File size must be less than 30 MB." in text
    assert image_host.bytes_sent[url] < 256 * 1024, "the probe read more than it needed"


async def test_a_35_mb_local_file_gets_the_page_words_without_being_read(client: Client, tmp_path: Path) -> None:
    path = local_file(tmp_path, "huge.png", padded(make_image(1200, 800), 35 * MIB))
    failed, text = await call_lite(client, path)
    assert failed and "File size must be less than 30 MB. (got 35 MB)" in text


async def test_all_problems_of_a_call_are_reported_together(client: Client, tmp_path: Path) -> None:
    small = local_file(tmp_path, "small.png", make_image(200, 180))
    result = await client.call_tool(
        LITE, {"prompt": "x", "first_frame_image_url": small, "last_frame_image_url": small, "duration": 7}
    )
    text = text_of(result)
    assert result.is_error
    assert f"first_frame_image_url: {TOO_SMALL} (got 200×180)" in text
    assert f"last_frame_image_url: {TOO_SMALL} (got 200×180)" in text
    assert "duration: 7 is not allowed" in text


async def test_a_panorama_is_refused_in_the_page_words(client: Client, tmp_path: Path) -> None:
    failed, text = await call_lite(client, local_file(tmp_path, "pano.jpg", make_image(3000, 1000, "jpg")))
    assert failed and f"{RATIO} (got 3000×1000, an aspect ratio of 3.00)" in text


async def test_webp_is_refused_by_dreamina_but_accepted_by_seedance(client: Client, tmp_path: Path) -> None:
    webp = local_file(tmp_path, "photo.webp", make_image(800, 600, "webp"))
    failed, text = await call_dreamina(client, webp)
    assert failed and "accepts JPEG or PNG images only" in text and "is WebP" in text
    failed, text = await call_lite(client, webp)
    assert not failed, text


async def test_format_comes_from_the_bytes_not_the_name(client: Client, simulator: Simulator, tmp_path: Path) -> None:
    disguised = local_file(tmp_path, "photo.png", make_image(800, 600, "jpg"))
    failed, text = await call_lite(client, disguised)
    assert not failed, text
    assert simulator.calls.submits[0]["arguments"]["first_frame_image_url"].startswith("data:image/jpeg;base64,")
    failed, text = await call_lite(client, local_file(tmp_path, "anim.png", make_image(800, 600, "gif")))
    assert failed and "GIF image; only JPEG, PNG and WebP are accepted" in text


async def test_local_files_are_sent_as_data_uris(
    client: Client, simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_image(640, 480)
    path = Path(local_file(tmp_path, "cat.png", data))
    monkeypatch.setenv("HOME", str(tmp_path))
    for reference in (str(path), "~/cat.png", path.as_uri()):
        result = await client.call_tool(LITE, {"prompt": "a cat", "first_frame_image_url": reference})
        assert not result.is_error, text_of(result)
        assert "sent inline as a data URI" in text_of(result)
    for submit in simulator.calls.submits:
        sent = submit["arguments"]["first_frame_image_url"]
        assert sent == "data:image/png;base64," + base64.b64encode(data).decode()


async def test_data_uris_are_checked_and_passed_through(client: Client, simulator: Simulator) -> None:
    uri = "data:image/png;base64," + base64.b64encode(make_image(640, 480)).decode()
    failed, text = await call_lite(client, uri)
    assert not failed, text
    assert simulator.calls.submits[0]["arguments"]["first_frame_image_url"] == uri
    small = "data:image/png;base64," + base64.b64encode(make_image(100, 100)).decode()
    failed, text = await call_lite(client, small)
    assert failed and "(got 100×100)" in text and "base64" not in text.split("(got")[0][-200:]


async def test_https_urls_are_probed_and_passed_through(
    client: Client, simulator: Simulator, image_host: FakeImageHost
) -> None:
    url = image_url(1920, 1080, "jpg")
    failed, text = await call_lite(client, url)
    assert not failed, text
    assert simulator.calls.submits[0]["arguments"]["first_frame_image_url"] == url


async def test_size_is_counted_when_the_host_sends_no_length(client: Client, image_host: FakeImageHost) -> None:
    failed, text = await call_lite(client, image_url(1200, 800, "png", pad=31 * MIB, nolength=1))
    assert failed and "File size must be less than 30 MB." in text


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/private.png", "needs a login"),
        ("/page.html", "is a web page, not an image"),
        ("/missing.png", "was not found (HTTP 404)"),
        ("/garbage.png", "damaged or truncated PNG"),
    ],
)
async def test_unusable_urls_are_explained(client: Client, path: str, words: str) -> None:
    failed, text = await call_lite(client, f"https://images.example.com{path}")
    assert failed and words in text, text


async def test_redirects_are_followed(client: Client) -> None:
    failed, text = await call_lite(client, "https://images.example.com/moved.png")
    assert not failed, text


async def test_unresolvable_hosts_and_non_references_are_explained(client: Client) -> None:
    failed, text = await call_lite(client, "https://no-such-host.invalid/a.png")
    assert failed and "does not resolve" in text
    failed, text = await call_lite(client, "a photo of my cat")
    assert failed and "is not an image reference" in text


async def test_private_urls_are_fetched_and_inlined_in_stdio_mode(
    client: Client, simulator: Simulator, image_host: FakeImageHost
) -> None:
    for url in (f"https://{PRIVATE_HOST}/640x480.png", "http://images.example.com/640x480.png"):
        failed, text = await call_lite(client, url)
        assert not failed, text
        assert "not reachable by RunComfy" in text
    sent = [s["arguments"]["first_frame_image_url"] for s in simulator.calls.submits]
    assert all(v.startswith("data:image/png;base64,") for v in sent)


async def test_http_mode_refuses_private_urls_and_local_files(
    connect: ClientFactory, api_url: str, simulator: Simulator, image_host: FakeImageHost, tmp_path: Path
) -> None:
    settings = Settings(api_token=TOKEN, base_url=api_url)
    local = local_file(tmp_path, "cat.png", make_image(640, 480))
    async with connect(settings, serving="http") as client:
        for image, words in [
            (f"https://{PRIVATE_HOST}/640x480.png", "does not fetch internal addresses"),
            ("http://127.0.0.1:8080/640x480.png", "does not fetch internal addresses"),
            (local, "does not read files from its host"),
        ]:
            failed, text = await call_lite(client, image)
            assert failed and words in text, text
    assert image_host.requests == [] and simulator.calls.count("POST") == 0


def png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


async def test_hostile_files_get_clear_errors(client: Client, tmp_path: Path) -> None:
    bomb = local_file(tmp_path, "bomb.png", png_header(100_000, 100_000) + b"\0" * 100 + b"IEND")
    failed, text = await call_lite(client, bomb)
    assert failed and f"{TOO_LARGE} (got 100000×100000)" in text
    for name, data in [
        ("truncated.png", make_image(640, 480)[:20]),
        ("truncated.jpg", make_image(640, 480, "jpg")[:300]),
        ("empty.png", b""),
        ("text.png", b"hello, I am not an image at all, just some text in a file" * 10),
    ]:
        failed, text = await call_lite(client, local_file(tmp_path, name, data))
        assert failed and ("truncated" in text or "not an image" in text), (name, text)


async def test_missing_and_unreadable_local_files(client: Client, tmp_path: Path) -> None:
    failed, text = await call_lite(client, str(tmp_path / "nope.png"))
    assert failed and "does not exist" in text
    failed, text = await call_lite(client, str(tmp_path))
    assert failed and "is a folder" in text


async def test_each_item_of_an_array_is_checked_and_named(client: Client, tmp_path: Path, simulator: Simulator) -> None:
    good = local_file(tmp_path, "good.png", make_image(640, 480))
    result = await client.call_tool(
        REFERENCE, {"text": "friends", "images": [good, "https://images.example.com/missing.png", good]}
    )
    assert result.is_error and "images[1]: https://images.example.com/missing.png was not found" in text_of(result)
    assert "images[0]" not in text_of(result) and simulator.calls.count("POST") == 0


async def test_a_whole_request_stays_under_64_mib(client: Client, tmp_path: Path) -> None:
    big = local_file(tmp_path, "big.png", padded(make_image(1000, 800), 17 * MIB))
    result = await client.call_tool(REFERENCE, {"text": "friends", "images": [big, big, big]})
    assert result.is_error and "over the 64 MB a request may carry" in text_of(result)
    result = await client.call_tool(REFERENCE, {"text": "friends", "images": [big, big]})
    assert not result.is_error, text_of(result)
    assert structured(result)["request_id"]


async def test_local_files_must_be_inside_the_input_roots(
    connect: ClientFactory, api_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    outside = Path(local_file(tmp_path, "secret.png", make_image(640, 480)))
    (allowed / "link.png").symlink_to(outside)
    inside = local_file(allowed, "ok.png", make_image(640, 480))
    monkeypatch.setenv("RUNCOMFY_INPUT_ROOTS", str(allowed))
    async with connect(Settings(api_token=TOKEN, base_url=api_url)) as client:
        for image in (str(outside), str(allowed / "link.png"), f"{allowed}/../secret.png"):
            failed, text = await call_lite(client, image)
            assert failed and "outside the folders this server may read" in text, image
        failed, text = await call_lite(client, inside)
        assert not failed, text
