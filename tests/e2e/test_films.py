"""From clips to a film, through a real MCP client: a shot continued from the last frame of the one before, the
shots cut together with crossfades and music, the film in the history; every bad input named before any work."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path

import av
import mcp_types as types
import numpy as np
import pytest
from PIL import Image

from conftest import TOKEN, ClientFactory
from helpers import SEEDANCE_LITE_ARGS, structured, text_of
from images import make_image
from mcp import Client
from runcomfy_mcp.sandbox.simulator import QUEUE_SECONDS, RUN_SECONDS, ManualClock, Simulator
from runcomfy_mcp.settings import Settings
from videos import difference, frames_of, numbered_clip, sound_of, tone_file

pytestmark = pytest.mark.anyio

LITE = "seedance_1_0_lite_image_to_video"
MUSIC = "minimax/music-1-5/text-to-music"
OTHER_TOKEN = "rc-other-caller-9d81c3aa"
INLINE_IMAGE = "data:image/png;base64," + base64.b64encode(make_image(640, 480)).decode()  # nothing to fetch


@pytest.fixture
async def studio(connect: ClientFactory, video_api: tuple[str, Simulator]) -> AsyncIterator[Client]:
    async with connect(Settings(api_token=TOKEN, base_url=video_api[0])) as client:
        yield client


async def submit(client: Client, tool: str = LITE, **arguments: object) -> str:
    result = await client.call_tool(tool, {**SEEDANCE_LITE_ARGS, **arguments})
    assert not result.is_error, text_of(result)
    return str(structured(result)["request_id"])


async def music(client: Client, seconds: int) -> str:
    result = await client.call_tool(
        "run_model", {"model_id": MUSIC, "input": {"prompt": "calm piano", "duration": seconds}}
    )
    assert not result.is_error, text_of(result)
    return str(structured(result)["request_id"])


def done(clock: ManualClock) -> None:
    clock.advance(QUEUE_SECONDS + RUN_SECONDS + 1)


async def test_a_shot_continues_from_the_last_frame_of_the_one_before(
    studio: Client, video_api: tuple[str, Simulator], clock: ManualClock
) -> None:
    _, simulator = video_api
    first = await submit(studio, duration=5)
    done(clock)
    frame_uri = f"runcomfy://jobs/{first}/frames/last"
    second_job = await studio.call_tool(LITE, {"prompt": "the same, closer", "first_frame_image_url": frame_uri})
    assert not second_job.is_error, text_of(second_job)
    assert f"the last frame of job {first}" in text_of(second_job)  # what was sent, in words
    sent = simulator.calls.submits[-1]["arguments"]["first_frame_image_url"]
    assert sent.startswith("data:image/png;base64,")  # the frame itself, not a URI RunComfy cannot read
    second = str(structured(second_job)["request_id"])
    done(clock)
    saved = []
    for request_id in (first, second):
        result = await studio.call_tool("get_result", {"request_id": request_id, "download": True})
        saved.append(Path(structured(result)["local_files"][0]))
    shown = frames_of(saved[1])[0]
    assert difference(shown, frames_of(saved[0])[-1]) < 6  # the second shot starts where the first ended
    assert difference(shown, frames_of(saved[0])[0]) > 3  # and not where the first began

    read = await studio.read_resource(frame_uri)
    contents = read.contents[0]
    assert isinstance(contents, types.BlobResourceContents) and contents.mime_type == "image/png"
    picture = Image.open(io.BytesIO(base64.b64decode(contents.blob)))
    assert picture.size == shown.size and difference(picture, frames_of(saved[0])[-1]) < 1


async def test_shots_are_cut_into_one_film_with_crossfades_and_music(
    studio: Client, video_api: tuple[str, Simulator], clock: ManualClock
) -> None:
    _, simulator = video_api
    shots = [await submit(studio, duration=5) for _ in range(3)]
    track = await music(studio, 15)
    done(clock)
    submitted = len(simulator.calls.submits)
    result = await studio.call_tool(
        "compose_video",
        {
            "clips": [{"source": shots[0]}, {"source": shots[1], "start_s": 0.5, "end_s": 3.5}, {"source": shots[2]}],
            "transition": "crossfade",
            "transition_s": 0.5,
            "audio": {"source": track, "volume": 0.8},
            "name": "three shots",
        },
    )
    assert not result.is_error, text_of(result)
    assert len(simulator.calls.submits) == submitted  # nothing sent, nothing paid
    sheet = result.content[0]
    assert isinstance(sheet, types.ImageContent) and sheet.mime_type == "image/jpeg"  # the cut, one tile per shot
    film = structured(result)
    assert film["kind"] == "film" and film["status"] == "succeeded" and film["cost"] == 0
    assert [(s["source"], s["at_s"], s["duration_s"]) for s in film["shots"]] == [
        (shots[0], 0.0, 5.0),
        (shots[1], 4.5, 3.0),
        (shots[2], 7.0, 5.0),
    ]
    assert film["duration_s"] == pytest.approx(12.0, abs=1 / 12) and (film["width"], film["height"]) == (640, 360)
    path = Path(film["local_files"][0])
    assert path.name == "three-shots.mp4" and f"Saved to:\n- {path}" in text_of(result)
    link = result.content[-1]
    assert isinstance(link, types.ResourceLink) and link.uri == path.as_uri()
    with av.open(str(path)) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
        assert float(container.duration or 0) / 1e6 == pytest.approx(12.0, abs=0.1)
    samples, rate = sound_of(path)
    assert np.sqrt(np.mean(samples[rate : 2 * rate] ** 2)) > 0.05  # the music is under it

    history = structured(await studio.call_tool("list_jobs", {}))["jobs"]
    assert history[0]["request_id"] == film["request_id"] and history[0]["tool"] == "compose_video"
    assert history[0]["status"] == "succeeded" and history[0]["local_files"] == [str(path)]
    again = await studio.call_tool("get_result", {"request_id": film["request_id"]})
    assert not again.is_error and structured(again)["shots"] == film["shots"]
    assert isinstance(again.content[0], types.ImageContent)
    status = structured(await studio.call_tool("get_status", {"request_id": film["request_id"]}))
    assert status["finished"] is True
    account = structured(await studio.call_tool("get_account", {}))
    assert all(m["model_id"] != "runcomfy-mcp/compose-video" for m in account["by_model"])  # a film is not spending


async def test_every_problem_is_named_before_any_work(
    studio: Client, video_api: tuple[str, Simulator], clock: ManualClock
) -> None:
    _, simulator = video_api
    finished = await submit(studio, duration=5)
    done(clock)
    running = await submit(studio)
    clips = [{"source": finished}] * 18 + [
        {"source": running},
        {"source": finished, "start_s": 1, "end_s": 9},
        {"source": "sim-000999-nosuchjob"},
    ]
    result = await studio.call_tool("compose_video", {"clips": clips, "audio": {"source": finished}})
    assert result.is_error
    text = text_of(result)
    assert "clips: 21 given; a film takes 1 to 20 clips" in text
    assert f"clips[18] ({running}): job {running} is still in queue" in text and "wait_for_result" in text
    assert f"clips[19] ({finished}): the trim 1–9 s is outside the clip, which is 5.00 s long" in text
    assert f"audio ({finished}): job {finished} made a video, not a sound" in text
    assert "clips[20]" not in text  # past the twentieth, clips are not looked at
    history = structured(await studio.call_tool("list_jobs", {}))["jobs"]
    assert all(job["tool"] != "compose_video" for job in history)  # nothing was made or recorded

    unknown = await studio.call_tool("compose_video", {"clips": [{"source": "sim-000999-nosuchjob"}]})
    assert unknown.is_error and "clips[0] (sim-000999-nosuchjob)" in text_of(unknown)

    past_end = await studio.call_tool(
        LITE, {"prompt": "x", "first_frame_image_url": f"runcomfy://jobs/{finished}/frames/7"}
    )
    assert past_end.is_error and "no frame at 7 s" in text_of(past_end) and "5.00 s long" in text_of(past_end)
    unfinished = await studio.call_tool(
        LITE, {"prompt": "x", "first_frame_image_url": f"runcomfy://jobs/{running}/frames/last"}
    )
    assert unfinished.is_error and "still in queue" in text_of(unfinished)
    assert len(simulator.calls.submits) == 2  # neither was sent


async def test_local_files_cut_together_over_stdio(studio: Client, tmp_path: Path) -> None:
    """A person's own clips and sound, from their disk (inside the input folders)."""
    wide = numbered_clip(tmp_path / "wide.mp4", frames=48, size=(320, 180))
    tall = numbered_clip(tmp_path / "tall.mp4", frames=48, size=(180, 320), clip=1)
    sound = tone_file(tmp_path / "voice.m4a", 5.0)
    result = await studio.call_tool(
        "compose_video",
        {
            "clips": [{"source": str(wide)}, {"source": str(tall), "end_s": 1.5}],
            "audio": {"source": str(sound), "mode": "mix"},
            "resolution": "640x360",
            "fps": 12,
        },
    )
    assert not result.is_error, text_of(result)
    film = structured(result)
    assert (film["width"], film["height"], film["fps"]) == (640, 360, 12) and film["duration_s"] == 3.5
    pictures = frames_of(Path(film["local_files"][0]))
    assert len(pictures) == 42 and {p.size for p in pictures} == {(640, 360)}

    outside = await studio.call_tool("compose_video", {"clips": [{"source": "/etc/hostname"}]})
    assert outside.is_error and "outside the folders this server may read" in text_of(outside)


async def test_over_http_films_and_frames_are_each_callers_own(
    video_api: tuple[str, Simulator], clock: ManualClock
) -> None:
    from http_servers import http_client, http_server

    url, simulator = video_api
    simulator.tokens.add(OTHER_TOKEN)
    async with http_server(url, token=None) as mcp_url:
        async with http_client(mcp_url, TOKEN) as alice:
            shot = await submit(alice, duration=5, first_frame_image_url=INLINE_IMAGE)
            done(clock)
            made = await alice.call_tool("compose_video", {"clips": [{"source": shot, "end_s": 2}]})
            assert not made.is_error, text_of(made)
            film = structured(made)
            assert film["local_files"] == [] and "/" not in text_of(made).split("Saved on the server as ")[1][:40]
            link = made.content[-1]
            assert isinstance(link, types.ResourceLink) and str(link.uri) == f"runcomfy://films/{film['request_id']}"
            read = (await alice.read_resource(str(link.uri))).contents[0]
            assert isinstance(read, types.BlobResourceContents) and read.mime_type == "video/mp4"
            with av.open(io.BytesIO(base64.b64decode(read.blob))) as container:
                assert float(container.duration or 0) / 1e6 == pytest.approx(2.0, abs=0.1)
        async with http_client(mcp_url, OTHER_TOKEN) as bob:
            for source in (shot, film["request_id"]):
                taken = await bob.call_tool("compose_video", {"clips": [{"source": source}]})
                assert taken.is_error and "in your history" in text_of(taken), source
            frame = await bob.call_tool(
                LITE, {"prompt": "x", "first_frame_image_url": f"runcomfy://jobs/{shot}/frames/last"}
            )
            assert frame.is_error and "no job" in text_of(frame) and "in your history" in text_of(frame)
            with pytest.raises(Exception, match="no film"):
                await bob.read_resource(f"runcomfy://films/{film['request_id']}")
            with pytest.raises(Exception, match="no job"):
                await bob.read_resource(f"runcomfy://jobs/{shot}/frames/last")
            local = await bob.call_tool("compose_video", {"clips": [{"source": "/etc/hostname"}]})
            assert local.is_error and "reads no files from its host" in text_of(local)
    assert len(simulator.calls.submits) == 1  # only alice's shot was ever sent


async def test_a_film_too_big_for_a_resource_read_is_refused_with_the_setting_to_change(
    connect: ClientFactory, video_api: tuple[str, Simulator], clock: ManualClock
) -> None:
    settings = Settings(api_token=TOKEN, base_url=video_api[0], film_resource_max_mb=0.001)
    async with connect(settings) as client:
        shot = await submit(client, duration=5)
        done(clock)
        film = structured(await client.call_tool("compose_video", {"clips": [{"source": shot}]}))
        with pytest.raises(Exception, match="RUNCOMFY_FILM_RESOURCE_MAX_MB"):
            await client.read_resource(film["film_uri"])
