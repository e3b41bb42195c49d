"""Films composed from real clips, decoded back: their length, streams, size, cut, crossfades and sound."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from runcomfy_mcp.errors import FilmError
from runcomfy_mcp.media.film import Clip, FilmPlan, Soundtrack, compose, plan_problems
from videos import frames_of, loudness, numbered_clip, read_colour, sound_of, tone_file

SOUNDTRACK_HZ, CLIP_HZ = 440.0, 1500.0


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three clips of different shapes and rates, each frame painted with its number and its clip's."""
    folder = tmp_path_factory.mktemp("clips")
    return [
        numbered_clip(folder / "wide.mp4", frames=48, clip=0, size=(160, 96), tone_hz=CLIP_HZ),  # 2 s, with sound
        numbered_clip(folder / "tall.mp4", frames=72, clip=1, size=(96, 160)),  # 3 s, portrait, silent
        numbered_clip(folder / "fast.mp4", frames=90, clip=2, size=(320, 192), fps=30),  # 3 s at 30 fps
    ]


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tone_file(tmp_path_factory.mktemp("music") / "music.mp3", 30.0, SOUNDTRACK_HZ)


def streams(path: Path) -> tuple[list[str], float, float]:
    """The stream kinds, and the video's and the sound's length in seconds."""
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
        seconds = [float(s.duration * s.time_base) for s in (video, audio)]
        return [s.type for s in container.streams], seconds[0], seconds[1]


def test_a_crossfaded_film_lasts_the_trimmed_clips_minus_the_crossfades_at_one_size(
    clips: list[Path], music: Path, tmp_path: Path
) -> None:
    plan = FilmPlan(
        (Clip(clips[0], "a"), Clip(clips[1], "b", 0.5, 2.5), Clip(clips[2], "c", end_s=2.5)),
        transition="crossfade",
        transition_s=0.4,
        soundtrack=Soundtrack(music, "music"),
    )
    film = compose(plan, tmp_path / "film.mp4")
    expected = 2.0 + 2.0 + 2.5 - 2 * 0.4
    kinds, video_s, audio_s = streams(film.path)
    assert kinds == ["video", "audio"]
    assert video_s == pytest.approx(expected, abs=1 / 24) and audio_s == pytest.approx(expected, abs=1 / 24)
    assert film.duration_s == pytest.approx(expected, abs=1 / 24) and film.size_bytes == film.path.stat().st_size
    pictures = frames_of(film.path)
    assert len(pictures) == round(expected * 24) and {p.size for p in pictures} == {(160, 96)}
    assert [(s.source, s.at_s, s.duration_s) for s in film.shots] == [("a", 0.0, 2.0), ("b", 1.6, 2.0), ("c", 3.2, 2.5)]
    assert len(film.stills) == 3 and [read_colour(still, (70, 40, 90, 56))[1] for still in film.stills] == [0, 1, 2]
    with av.open(str(film.path)) as container:  # +faststart: the index is before the data
        assert container.format.name.startswith("mov")
    head = film.path.read_bytes()[:4096]
    assert head.find(b"moov") != -1 and (head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat"))


def test_a_cut_starts_each_shot_on_its_trim_point_and_converts_the_frame_rate(
    clips: list[Path], tmp_path: Path
) -> None:
    plan = FilmPlan((Clip(clips[0], "a", 0.5, 1.5), Clip(clips[2], "c", 1.0, 2.0)), fps=Fraction(12))
    film = compose(plan, tmp_path / "cut.mp4")
    pictures = frames_of(film.path)
    assert len(pictures) == 24 and film.fps == 12
    shown = [read_colour(p) for p in pictures]
    assert shown[0] == (12, 0) and shown[11] == (12 + 22, 0)  # clip a's frames at 0.5 s and 0.5 + 11/12 s (24 fps)
    assert shown[12] == (30, 2) and shown[23] == (30 + 27, 2)  # clip c's frames at 1.0 s and 1.0 + 11/12 s (30 fps)


def test_a_crossfade_blends_the_two_shots_and_a_cut_does_not(clips: list[Path], tmp_path: Path) -> None:
    two = (Clip(clips[0], "a"), Clip(clips[2], "c"))
    faded = frames_of(compose(FilmPlan(two, "crossfade", 1.0), tmp_path / "fade.mp4").path)
    cut = frames_of(compose(FilmPlan(two, "cut"), tmp_path / "cut.mp4").path)
    blue = [np.asarray(p)[..., 2].mean() for p in faded]
    start, middle, end = blue[round(1.0 * 24)], blue[round(1.5 * 24)], blue[round(2.0 * 24)]
    assert start < middle < end  # a's blue (40) turning into c's (120) over the second they overlap
    assert abs(middle - 80) < 10
    cut_blue = [np.asarray(p)[..., 2].mean() for p in cut]
    assert all(abs(b - 40) < 6 or abs(b - 120) < 6 for b in cut_blue)


def test_clips_of_another_shape_are_fitted_inside_with_black_bars_never_stretched(
    clips: list[Path], tmp_path: Path
) -> None:
    film = compose(FilmPlan((Clip(clips[1], "tall"),), size=(320, 180)), tmp_path / "fitted.mp4")
    picture = np.asarray(frames_of(film.path)[0]).astype(int)
    assert picture.shape == (180, 320, 3)
    lit_columns = np.flatnonzero(picture.sum(axis=(0, 2)) > 180 * 3 * 20)
    width = lit_columns[-1] - lit_columns[0] + 1
    assert abs(width - 180 * 96 / 160) <= 3  # the 96×160 clip is 108 px wide at 180 px high: its shape kept
    assert picture[:, :100].max() < 30 and picture[:, -100:].max() < 30  # black bars either side


def test_the_soundtrack_replaces_or_mixes_with_the_clips_sound_and_fades_out(
    clips: list[Path], music: Path, tmp_path: Path
) -> None:
    only_a = (Clip(clips[0], "a"), Clip(clips[0], "a again"))
    replaced = compose(FilmPlan(only_a, soundtrack=Soundtrack(music, "m", 0.8, "replace")), tmp_path / "r.mp4")
    mixed = compose(FilmPlan(only_a, soundtrack=Soundtrack(music, "m", 0.8, "mix")), tmp_path / "m.mp4")
    own = compose(FilmPlan(only_a), tmp_path / "own.mp4")
    for path, music_in, clip_in in ((replaced.path, True, False), (mixed.path, True, True), (own.path, False, True)):
        samples, rate = sound_of(path)
        assert len(samples) / rate == pytest.approx(4.0, abs=0.05)
        middle = samples[rate : 2 * rate]
        assert (loudness(middle, SOUNDTRACK_HZ, rate) > 0.2) is music_in, path.name
        assert (loudness(middle, CLIP_HZ, rate) > 0.2) is clip_in, path.name
    samples, rate = sound_of(replaced.path)
    level = [np.sqrt(np.mean(samples[int(t * rate) : int((t + 0.1) * rate)] ** 2)) for t in (1.0, 3.0, 3.85)]
    assert level[0] > 0.2 and level[1] < level[0] and level[2] < level[0] / 8  # faded out over the last second


def test_a_film_of_silent_clips_still_has_one_silent_sound(clips: list[Path], tmp_path: Path) -> None:
    film = compose(FilmPlan((Clip(clips[1], "tall"),)), tmp_path / "silent.mp4")
    assert streams(film.path)[0] == ["video", "audio"]
    samples, _ = sound_of(film.path)
    assert np.abs(samples).max() < 1e-3


def test_every_problem_with_a_plan_is_named_before_any_work(clips: list[Path], music: Path, tmp_path: Path) -> None:
    video_as_audio = Soundtrack(clips[0], "a clip")
    bad = FilmPlan(
        (Clip(clips[0], "a", 1.0, 9.0), Clip(music, "music"), Clip(clips[1], "b", 2.0, 1.0), Clip(clips[2], "c")),
        transition="crossfade",
        transition_s=1.5,
        size=(321, 180),
        soundtrack=video_as_audio,
    )
    problems = plan_problems(bad)
    assert any("clips[0] (a): the trim 1–9 s is outside the clip, which is 2.00 s long" in p for p in problems)
    assert any("clips[1] (music): is a 30.0 s sound, not a video" in p for p in problems)
    assert any("clips[2] (b): end_s (1) must be after start_s (2)" in p for p in problems)
    assert any("audio (a clip): is a 2.0 s 160×96 video with sound; give a sound file" in p for p in problems)
    assert any("resolution: 321×180 has an odd side" in p for p in problems)
    assert len(problems) == 5, problems
    many = FilmPlan(tuple(Clip(clips[0], f"shot {i}") for i in range(21)))
    assert plan_problems(many) == ["clips: 21 given; a film takes 1 to 20 clips."]
    with pytest.raises(FilmError) as refused:
        compose(bad, tmp_path / "never.mp4")
    assert "The film cannot be made" in refused.value.message and not list(tmp_path.iterdir())


def test_a_crossfade_longer_than_half_a_shot_is_refused(clips: list[Path]) -> None:
    plan = FilmPlan((Clip(clips[0], "a", 0, 1.0), Clip(clips[2], "c")), "crossfade", 0.6)
    assert plan_problems(plan) == [
        "transition_s: a 0.6 s crossfade is longer than half of clips[0] (1.00 s after trimming); use at most "
        "0.50 s or trim less."
    ]


def test_a_film_stopped_half_way_leaves_nothing_behind(clips: list[Path], tmp_path: Path) -> None:
    frames = 0

    def stop() -> bool:
        nonlocal frames
        frames += 1
        return frames > 10

    with pytest.raises(FilmError) as stopped:
        compose(FilmPlan((Clip(clips[0], "a"),)), tmp_path / "film.mp4", stop=stop)
    assert "stopped" in stopped.value.message and list(tmp_path.iterdir()) == []
