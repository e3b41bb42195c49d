"""A frame taken from a real video: the right one, as a PNG of the video's size, or a clear refusal."""

from __future__ import annotations

import io
from importlib import resources
from pathlib import Path

import pytest
from PIL import Image

from runcomfy_mcp.domain.films import parse_position
from runcomfy_mcp.errors import FrameError, MediaFileError
from runcomfy_mcp.media.frames import take_frame
from runcomfy_mcp.media.probe import MAX_FRAME_PIXELS
from videos import numbered_clip, read_colour, tone_file


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 s at 24 fps, a keyframe every half second, B-frames: frame i is painted with its number."""
    return numbered_clip(tmp_path_factory.mktemp("frames") / "clip.mp4", frames=120, keyint=12)


def shown(clip: Path, position: str) -> tuple[int, float, Image.Image]:
    frame = take_frame(clip, parse_position(position))
    picture = Image.open(io.BytesIO(frame.png))
    assert picture.format == "PNG" and (frame.width, frame.height) == picture.size
    return read_colour(picture)[0], frame.at_s, picture


@pytest.mark.parametrize(
    ("position", "index"),
    [("first", 0), ("last", 119), ("0", 0), ("2.5", 60), ("2.52", 60), ("2.54", 60), ("2.55", 61), ("4.99", 119)],
)
def test_the_frame_showing_at_a_position_is_the_one_taken(clip: Path, position: str, index: int) -> None:
    found, at_s, picture = shown(clip, position)
    assert found == index and at_s == pytest.approx(index / 24, abs=1e-3)
    assert picture.size == (160, 96)


def test_the_end_of_the_clip_shows_the_last_frame_and_past_it_is_refused_with_the_length(clip: Path) -> None:
    assert shown(clip, "5")[0] == 119
    with pytest.raises(FrameError) as refused:
        take_frame(clip, parse_position("5.5"))
    assert "5.00 s long" in refused.value.message and "no frame at 5.5 s" in refused.value.message
    assert "'last'" in refused.value.message


def test_the_last_frame_of_a_clip_with_one_keyframe_is_found_too(tmp_path: Path) -> None:
    long_gop = numbered_clip(tmp_path / "one-keyframe.mp4", frames=90, keyint=250)
    assert shown(long_gop, "last")[0] == 89
    assert shown(long_gop, "3")[0] == 72


@pytest.mark.parametrize("text", ["-1", "nan", "inf", "middle", "1e400", "", "9" * 40])
def test_a_position_that_is_not_first_last_or_seconds_is_refused(text: str) -> None:
    with pytest.raises(FrameError) as refused:
        parse_position(text)
    assert "'first', 'last', or the seconds" in refused.value.message


def test_a_sound_has_no_frame(tmp_path: Path) -> None:
    with pytest.raises(FrameError) as refused:
        take_frame(tone_file(tmp_path / "music.m4a", 1.0), "last")
    assert "a 1.0 s sound, not a video" in refused.value.message


def test_bytes_that_are_no_video_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x17" * 5000)
    with pytest.raises(MediaFileError) as refused:
        take_frame(junk, "first")
    assert "is not a video or sound file that can be read" in refused.value.reason


def test_a_picture_too_large_to_decode_is_refused_before_decoding(tmp_path: Path) -> None:
    width, height = 4352, 2448  # just over the cap
    assert width * height > MAX_FRAME_PIXELS
    big = numbered_clip(tmp_path / "big.mp4", frames=1, size=(width, height))
    with pytest.raises(MediaFileError) as refused:
        take_frame(big, "last")
    assert f"{width}×{height} frames" in refused.value.reason and "megapixels" in refused.value.reason


def test_frames_found_by_skipping_are_pixel_identical_to_a_full_decode(tmp_path: Path) -> None:
    """Only frames nothing is predicted from are skipped on the way, so the frame taken is exactly the frame."""
    import av
    import numpy as np

    from runcomfy_mcp.sandbox.video import make_video

    sample = resources.files("runcomfy_mcp.sandbox") / "sample.jpg"
    clip = tmp_path / "moving.mp4"
    clip.write_bytes(make_video(sample.read_bytes(), 6.0))  # one keyframe, B-frames, real motion
    with av.open(str(clip)) as container:
        every = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    for position, index in (("last", len(every) - 1), (3.0, 36), (0.6, 7)):
        frame = take_frame(clip, position)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(frame.png)).convert("RGB")), every[index]), position
