"""The catalog through a real MCP client: find, describe and run any model, offline from the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import TOKEN, ClientFactory
from helpers import structured, text_of
from images import make_image, make_media
from mcp import Client
from runcomfy_mcp.sandbox.catalog import sandbox_catalog, synthetic_catalog
from runcomfy_mcp.sandbox.serving import serve_on_loopback
from runcomfy_mcp.sandbox.simulator import QUEUE_SECONDS, RUN_SECONDS, ManualClock, Simulator
from runcomfy_mcp.settings import Settings

pytestmark = pytest.mark.anyio

KLING_PRO = "kling/kling-v2-1/pro/image-to-video"
FLUX = "blackforestlabs/flux-2/flash/text-to-image"
SPEECH = "minimax/speech-2-6/hd/text-to-speech"
MODIFY = "luma/ray-2/flash/modify-video"
BROKEN = "acme/holo-1/text-to-3d"


def listing_requests(simulator: Simulator) -> int:
    return sum(1 for method, path in simulator.calls.requests if method == "GET" and path == "/v1/models")


async def test_kling_image_to_video_ranks_klings_image_to_video_models_first(
    client: Client, simulator: Simulator
) -> None:
    found = structured(await client.call_tool("find_models", {"query": "a kling image to video model", "limit": 5}))
    ids = [row["model_id"] for row in found["models"]]
    assert set(ids[:2]) == {KLING_PRO, "kling/kling-v2-1/standard/image-to-video"}
    first = found["models"][0]
    assert first["base_price_usd"] > 0 and first["price_unit"] == "second" and first["categories"] == ["image-to-video"]
    assert found["source"] == "live" and listing_requests(simulator) == 1


async def test_rows_name_the_tool_of_a_model_that_is_one(client: Client) -> None:
    found = structured(await client.call_tool("find_models", {"query": "seedance 1.5 pro"}))
    assert found["models"][0]["model_id"] == "bytedance/seedance-v1.5-pro/image-to-video"
    assert found["models"][0]["tool"] == "seedance_v1_5_pro_image_to_video"


async def test_category_filters_and_an_unknown_category_lists_the_real_ones(client: Client) -> None:
    found = structured(await client.call_tool("find_models", {"category": "text-to-image"}))
    assert [row["model_id"] for row in found["models"]] == [FLUX]
    missing = await client.call_tool("find_models", {"category": "text-to-smell"})
    assert not missing.is_error and "text-to-video" in text_of(missing) and structured(missing)["models"] == []


async def test_the_cache_answers_a_warm_start_and_an_unreachable_catalog_with_its_age(
    connect: ClientFactory, api_url: str, simulator: Simulator
) -> None:
    settings = Settings(api_token=TOKEN, base_url=api_url)
    async with connect(settings) as client:
        await client.call_tool("find_models", {"query": "wan"})
    assert listing_requests(simulator) == 1
    async with connect(settings) as client:  # a restart within the TTL reads the cache only
        found = structured(await client.call_tool("find_models", {"query": "wan"}))
    assert listing_requests(simulator) == 1 and found["source"] == "cache" and found["note"] is None

    simulator.catalog_open = False  # RunComfy unreachable, and the cache past its TTL
    async with connect(settings.model_copy(update={"catalog_ttl_s": 0})) as client:
        result = await client.call_tool("find_models", {"query": "wan text to video"})
    found = structured(result)
    assert found["source"] == "cache" and found["models"][0]["model_id"] == "wan-ai/wan-2-2/a14b/text-to-video"
    assert "cached on this machine" in text_of(result) and " s old" in text_of(result)


async def test_with_no_cache_and_no_catalog_the_bundled_models_are_found(
    connect: ClientFactory, api_url: str, simulator: Simulator
) -> None:
    simulator.catalog_open = False
    async with connect(Settings(api_token=TOKEN, base_url=api_url)) as client:
        result = await client.call_tool("find_models", {"query": "dreamina"})
    assert structured(result)["source"] == "bundled"
    assert structured(result)["models"][0]["model_id"] == "bytedance/dreamina-3-0/image-to-video"
    assert "none is cached yet" in text_of(result)


async def test_a_refresh_on_demand_reads_the_catalog_again(client: Client, simulator: Simulator) -> None:
    await client.call_tool("find_models", {"query": "kling"})
    await client.call_tool("find_models", {"query": "kling"})
    assert listing_requests(simulator) == 1
    simulator.catalog["vidu/vidu-q2/image-to-video"] = {
        "model_id": "vidu/vidu-q2/image-to-video",
        "display_name": "Vidu Q2",
        "input_schema": {"type": "object", "properties": {"prompt": {"type": "string"}}},
    }
    # The last fetch was under a minute ago: an on-demand refresh waits, so a loop cannot hammer RunComfy.
    await client.call_tool("find_models", {"query": "vidu", "refresh": True})
    assert listing_requests(simulator) == 1


async def test_describe_model_shows_a_portable_schema_with_media_rules_in_words(client: Client) -> None:
    result = await client.call_tool("describe_model", {"model_id": KLING_PRO})
    model = structured(result)
    schema = model["input_schema"]
    assert model["runnable"] and model["base_price_usd"] == 0.09 and model["model_url"].endswith(KLING_PRO)
    assert schema["properties"]["cfg_scale"] == {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5}
    assert "default" not in schema["properties"]["negative_prompt"]  # "default": null is not a default
    image = schema["properties"]["image_url"]
    assert "format" not in image and "validations" not in image
    assert "shortest side at least 300 px" in image["description"]
    assert "Animated images are not supported." in image["description"]  # a rule it cannot check, in words
    assert "image_url*" in text_of(result) and "$0.09/second" in text_of(result)


async def test_a_schema_that_cannot_be_understood_is_explained_and_the_rest_works(
    client: Client, simulator: Simulator
) -> None:
    described = structured(await client.call_tool("describe_model", {"model_id": BROKEN}))
    assert described["runnable"] is False and "'mesh'" in described["problem"] and "tensor" in described["problem"]
    run = await client.call_tool("run_model", {"model_id": BROKEN, "input": {"prompt": "a teapot"}})
    assert run.is_error and BROKEN in text_of(run) and "tensor" in text_of(run)
    ok = await client.call_tool("run_model", {"model_id": FLUX, "input": {"prompt": "a teapot"}})
    assert not ok.is_error
    assert [s["model_id"] for s in simulator.calls.submits] == [FLUX]


async def test_run_model_checks_every_input_first_and_sends_nothing_on_bad_input(
    client: Client, simulator: Simulator
) -> None:
    result = await client.call_tool(
        "run_model",
        {"model_id": KLING_PRO, "input": {"image_url": "/nope.png", "cfg_scale": 3, "duration": "7", "fps": 30}},
    )
    text = text_of(result)
    assert result.is_error
    for field in ("prompt: missing", "cfg_scale: 3", 'duration: "7"', "fps: not a parameter"):
        assert field in text, text
    assert simulator.calls.submits == []


async def test_an_unknown_model_id_names_the_closest(client: Client, simulator: Simulator) -> None:
    result = await client.call_tool("run_model", {"model_id": "kling/kling-v2-1/pro/image-to-vid", "input": {}})
    assert result.is_error and KLING_PRO in text_of(result)
    hostile = await client.call_tool("run_model", {"model_id": "../requests/x/cancel", "input": {}})
    assert hostile.is_error and "not a RunComfy model id" in text_of(hostile)
    assert simulator.calls.submits == []


async def test_a_five_second_kling_clip_of_a_local_photo(
    client: Client, simulator: Simulator, clock: ManualClock, tmp_path: Path
) -> None:
    photo = tmp_path / "dog.png"
    photo.write_bytes(make_image(800, 600))
    found = structured(await client.call_tool("find_models", {"query": "kling image to video"}))
    model_id = found["models"][0]["model_id"]
    describe = structured(await client.call_tool("describe_model", {"model_id": model_id}))
    assert "image_url" in describe["input_schema"]["required"]
    submitted = await client.call_tool(
        "run_model",
        {"model_id": model_id, "input": {"prompt": "the dog jumps", "image_url": str(photo), "duration": "5"}},
    )
    assert not submitted.is_error, text_of(submitted)
    job = structured(submitted)
    assert job["tool"] == "run_model" and job["model_id"] == model_id
    sent = simulator.calls.submits[0]["arguments"]
    assert sent["image_url"].startswith("data:image/png;base64,") and sent["duration"] == "5"
    clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
    done = structured(await client.call_tool("wait_for_result", {"request_id": job["request_id"], "download": True}))
    # The result echoes the input image beside the video: only the video is an output.
    assert [o["kind"] for o in done["outputs"]] == ["video"] and len(done["video_urls"]) == 1
    assert Path(done["local_files"][0]).suffix == ".mp4"
    # The echoed photo is shortened in `output` as in `inputs`, not sent back whole (it was most of the result).
    echoed = done["output"]["image"]
    assert echoed == done["inputs"]["image_url"] and "sha256:" in echoed and len(echoed) < 100
    assert sent["image_url"] not in json.dumps(done)
    history = structured(await client.call_tool("list_jobs", {}))["jobs"][0]
    assert history["tool"] == "run_model" and history["model_id"] == model_id and len(history["outputs"]) == 1


@pytest.mark.parametrize(
    ("model_id", "arguments", "kind", "suffix"),
    [
        (FLUX, {"prompt": "a red kite", "guidance_scale": "4.5"}, "image", ".png"),
        (SPEECH, {"text": "hello there", "voice_id": "calm_woman"}, "audio", ".wav"),
    ],
)
async def test_image_and_sound_outputs_are_listed_and_saved_with_their_extension(
    client: Client, clock: ManualClock, model_id: str, arguments: dict[str, str], kind: str, suffix: str
) -> None:
    job = structured(await client.call_tool("run_model", {"model_id": model_id, "input": arguments}))
    clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)
    result = structured(await client.call_tool("get_result", {"request_id": job["request_id"], "download": True}))
    assert [o["kind"] for o in result["outputs"]] == [kind] and result["video_urls"] == []
    saved = Path(result["local_files"][0])
    assert saved.suffix == suffix and saved.stat().st_size > 40


async def test_video_and_audio_inputs_from_disk_and_urls(client: Client, simulator: Simulator, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(make_media("video"))
    result = await client.call_tool(
        "run_model", {"model_id": MODIFY, "input": {"video_url": str(clip), "prompt": "make it snow"}}
    )
    assert not result.is_error, text_of(result)
    assert simulator.calls.submits[-1]["arguments"]["video_url"].startswith("data:video/mp4;base64,")

    lipsync = {"video_url": "https://images.example.com/clip.mp4", "audio_url": "https://images.example.com/voice.wav"}
    result = await client.call_tool("run_model", {"model_id": "kling/lipsync/audio-to-video", "input": lipsync})
    assert not result.is_error, text_of(result)
    assert simulator.calls.submits[-1]["arguments"] == lipsync  # public URLs pass through, probed only

    wrong = await client.call_tool(
        "run_model",
        {"model_id": "kling/lipsync/audio-to-video", "input": {"video_url": str(clip), "audio_url": str(clip)}},
    )
    assert wrong.is_error and "audio_url:" in text_of(wrong)
    assert "is a video (mp4) file, not an audio file" in text_of(wrong)


async def test_a_large_local_video_asks_for_a_public_url(client: Client, simulator: Simulator, tmp_path: Path) -> None:
    big = tmp_path / "long.mp4"
    with big.open("wb") as file:
        file.write(make_media("video", 1000))
        file.truncate(40 * 1024 * 1024)  # sparse: 40 MB on paper
    result = await client.call_tool("run_model", {"model_id": MODIFY, "input": {"video_url": str(big), "prompt": "x"}})
    assert result.is_error and "public (https)" in text_of(result) and "32 MB" in text_of(result)
    assert simulator.calls.submits == []


async def test_runcomfy_models_become_tools_of_their_own(
    connect: ClientFactory, api_url: str, simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    models = f"{KLING_PRO}, {FLUX}, bytedance/dreamina-3-0/image-to-video, no/such/model, {BROKEN}"
    settings = Settings(api_token=TOKEN, base_url=api_url, models=models)
    async with connect(settings) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "kling_v2_1_pro_image_to_video" in tools and "blackforestlabs_flux_2_flash_text_to_image" in tools
        assert not any(name.startswith(("no_such", "acme")) for name in tools)  # left out, with a warning
        assert (
            tools["blackforestlabs_flux_2_flash_text_to_image"].input_schema["properties"]["guidance_scale"]["type"]
            == "number"
        )
        result = await client.call_tool("blackforestlabs_flux_2_flash_text_to_image", {"prompt": "a kite"})
        assert not result.is_error and structured(result)["tool"] == "blackforestlabs_flux_2_flash_text_to_image"
        found = structured(await client.call_tool("find_models", {"query": "flux"}))
        assert found["models"][0]["tool"] == "blackforestlabs_flux_2_flash_text_to_image"
    assert "no/such/model is left out" in caplog.text and "acme/holo-1/text-to-3d is left out" in caplog.text


async def test_a_cold_fetch_pages_through_a_large_catalog(connect: ClientFactory, clock: ManualClock) -> None:
    big = Simulator(token=TOKEN, catalog=sandbox_catalog() + synthetic_catalog(1000), clock=clock)
    async with serve_on_loopback(big.app()) as url:
        big.base_url = url
        async with connect(Settings(api_token=TOKEN, base_url=url)) as client:
            found = structured(await client.call_tool("find_models", {"query": "vidu text to image", "limit": 3}))
    assert listing_requests(big) == 3  # 1,013 models, 500 a page
    assert found["total"] > 3 and all("vidu" in row["model_id"] for row in found["models"])


async def test_the_cache_file_is_kept_per_api(client: Client, api_url: str, tmp_path: Path) -> None:
    await client.call_tool("find_models", {})
    (cache,) = (p for p in (tmp_path / "data").glob("catalog-*.json") if not p.name.endswith(".prices.json"))
    data = json.loads(cache.read_text())
    assert len(data["models"]) == len(sandbox_catalog()) and data["models"][0]["input_schema"]


def test_sample_media_really_are_what_they_claim() -> None:
    import filetype  # type: ignore[import-untyped]

    assert filetype.guess(make_media("video")).mime == "video/mp4"
    assert filetype.guess(make_media("audio")).mime.startswith("audio/")


@pytest.mark.parametrize("server_token", [None, "server-token-0001"])
async def test_the_shared_catalog_is_read_with_the_servers_token_else_a_callers(server_token: str | None) -> None:
    """Over HTTP the catalog is shared. A server with a token reads it with its own; a team server without one
    borrows the token of the caller who needs it (RunComfy wants one on every call), and keeps nothing of it."""
    import httpx

    from runcomfy_mcp.domain.views import Caller
    from runcomfy_mcp.runtime import catalog_path, open_runtime

    seen: list[tuple[str, str | None]] = []
    entry = {
        "model_id": "acme/sketch/text-to-image",
        "input_schema": {"type": "object", "required": ["prompt"], "properties": {"prompt": {"type": "string"}}},
    }

    def api(request: httpx.Request) -> httpx.Response:
        seen.append((f"{request.method} {request.url.path}", request.headers.get("authorization")))
        if request.headers.get("authorization") is None:
            return httpx.Response(401, json={"error_code": "400004", "error_message": "token required"})
        if request.method == "GET":
            return httpx.Response(200, json={"models": [entry], "total": 1})
        return httpx.Response(200, json={"request_id": "req-1"})

    async def no_progress(progress: float, message: str) -> None:
        return None

    alice, bob = Caller.with_token("alice-token-123"), Caller.with_token("bob-token-456")
    settings = Settings(base_url="https://api.test", api_token=server_token)
    async with open_runtime(settings, serving="http", transport=httpx.MockTransport(api)) as runtime:
        found = await runtime.tools.call("find_models", {"query": "sketch"}, no_progress, alice)
        submitted = await runtime.tools.call(
            "run_model", {"model_id": entry["model_id"], "input": {"prompt": "x"}}, no_progress, bob
        )
    assert not found.is_error and not submitted.is_error, text_of(submitted)
    reader = f"Bearer {server_token}" if server_token else "Bearer alice-token-123"
    assert [s for s in seen if s[0] == "GET /v1/models"] == [("GET /v1/models", reader)]  # read once, then shared
    assert ("POST /v1/models/acme/sketch/text-to-image", "Bearer bob-token-456") in seen  # his job, his token
    cache = catalog_path(settings).read_text()
    assert "alice-token" not in cache and "bob-token" not in cache and "key:" not in cache


WORKFLOW = "runcomfy/workflows/portrait-relight"
MASTER = "kling/kling-v2-1/master/text-to-video"


async def test_only_model_entries_are_runnable_models(client: Client, simulator: Simulator) -> None:
    """The listing also carries workflows (`kind`); RunComfy's own catalog updater keeps only `model` entries."""
    found = structured(await client.call_tool("find_models", {"query": "portrait relight"}))
    assert WORKFLOW not in [row["model_id"] for row in found["models"]]
    described = await client.call_tool("describe_model", {"model_id": WORKFLOW})
    assert structured(described)["runnable"] is False and "a RunComfy workflow, not a model" in text_of(described)
    run = await client.call_tool("run_model", {"model_id": WORKFLOW, "input": {"image_url": "https://x.test/a.png"}})
    assert run.is_error and "workflow" in text_of(run) and simulator.calls.submits == []


async def test_a_pricing_note_is_shown_beside_the_price(client: Client) -> None:
    found = await client.call_tool("find_models", {"query": "kling master"})
    row = structured(found)["models"][0]
    assert row["model_id"] == MASTER and row["pricing_note"] == "Double with audio on."
    assert "$0.28/second; Double with audio on." in text_of(found)
    described = await client.call_tool("describe_model", {"model_id": MASTER})
    assert structured(described)["pricing_note"] == "Double with audio on."
    assert "($0.28/second; Double with audio on.)" in text_of(described)
