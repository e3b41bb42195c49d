"""Contact sheets and scaled images from files that may be hostile: read, planned and decoded within limits."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest
from PIL import Image

from hostile_media import black_png, write_video
from runcomfy_mcp.errors import UndecodableOutputError
from runcomfy_mcp.media.thumbnails import (
    GAP,
    DecodeLimits,
    SheetLayout,
    image_preview,
    video_preview,
)


@pytest.fixture(scope="module")
def one_keyframe_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 s at 24 fps, one keyframe: reaching any frame means decoding every frame before it."""
    path = tmp_path_factory.mktemp("clips") / "one-keyframe.mp4"
    return write_video(path, 320, 180, frames=720, fps=24, keyframe_every=720)


@pytest.fixture(scope="module")
def keyframe_each_second(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("clips") / "gop24.mp4", 320, 180, frames=240, fps=24, keyframe_every=24)


def sunset_tiles(count: int, width: int, height: int) -> list[tuple[str, Image.Image]]:
    """Slices of one smooth sunset gradient: side by side, without gaps, they read as one panorama."""
    wide = width * count
    panorama = Image.new("RGB", (wide, height))
    panorama.putdata([(255 - x * 60 // wide, 120 + y * 40 // height, 40) for y in range(height) for x in range(wide)])
    return [("", panorama.crop((i * width, 0, (i + 1) * width, height))) for i in range(count)]


def test_tiles_are_set_apart_by_a_gap_that_differs_from_their_content() -> None:
    layout = SheetLayout.fit(6, 1920, 1080)
    sheet = layout.draw(sunset_tiles(6, *layout.cell))
    width, height = layout.cell
    assert sheet.width <= 1024 and sheet.height <= 1024 and (layout.columns, layout.rows) == (3, 2)
    for index in range(6):
        x, y = layout.origin(index)
        if index % layout.columns:  # the gap between this tile and the one on its left
            left_edge = sheet.getpixel((x - GAP - 1, y + height // 2))  # the last column of the tile before
            for gap_x in range(x - GAP + 1, x - 1):
                gap = sheet.getpixel((gap_x, y + height // 2))
                assert gap != left_edge and gap != sheet.getpixel((x, y + height // 2))
                assert max(gap) < 60  # dark: nothing like a sunset
        if index >= layout.columns:  # the gap above
            for gap_y in range(y - GAP + 1, y - 1):
                assert max(sheet.getpixel((x + width // 2, gap_y))) < 60
    # Each tile is framed: a line brighter than the gap and unlike the tile's own edge.
    x, y = layout.origin(0)
    frame = sheet.getpixel((x - 1, y + height // 2))
    assert frame != sheet.getpixel((x, y + height // 2)) and min(frame) > 100


def test_a_tall_clip_fits_the_sheet_by_its_height() -> None:
    layout = SheetLayout.fit(6, 1080, 1920)
    assert layout.size()[1] <= 1024 and layout.size()[0] <= 1024 and layout.cell[1] > layout.cell[0]


def test_a_clip_with_one_keyframe_is_decoded_once_not_once_per_tile(one_keyframe_clip: Path) -> None:
    preview = video_preview(one_keyframe_clip, DecodeLimits())
    assert preview.frames_at_s == pytest.approx([2.5, 7.5, 12.5, 17.5, 22.5, 27.5], abs=0.05)
    assert not preview.cut_short
    # Reaching each tile from the previous one costs 5 s of frames (120), never the clip from its start:
    # with a budget of 130 frames a tile, every tile is still reached.
    again = video_preview(one_keyframe_clip, DecodeLimits(frames_per_tile=130))
    assert again.frames_at_s == preview.frames_at_s and not again.cut_short


def test_a_tile_that_costs_too_many_frames_shows_the_last_frame_reached(one_keyframe_clip: Path) -> None:
    preview = video_preview(one_keyframe_clip, DecodeLimits(frames_per_tile=48))
    targets = [2.5, 7.5, 12.5, 17.5, 22.5, 27.5]
    assert preview.cut_short and "decoding stopped there" in preview.words()
    assert preview.frames_at_s == sorted(set(preview.frames_at_s))  # honest times, no frame shown twice
    assert all(at <= target + 0.05 for at, target in zip(preview.frames_at_s, targets, strict=False))
    assert preview.frames_at_s[0] == pytest.approx(2.0, abs=0.05)  # 48 frames in: 2 s of the first 2.5


def test_a_clip_with_keyframes_is_reached_by_seeking(keyframe_each_second: Path) -> None:
    preview = video_preview(keyframe_each_second, DecodeLimits(frames_per_tile=30))
    assert preview.frames_at_s == pytest.approx([0.83, 2.5, 4.17, 5.83, 7.5, 9.17], abs=0.05)
    assert not preview.cut_short


def test_decoding_stops_at_its_deadline(one_keyframe_clip: Path) -> None:
    with pytest.raises(UndecodableOutputError, match="no frame could be decoded within 0 s"):
        video_preview(one_keyframe_clip, DecodeLimits(seconds=0))


def test_frames_over_the_budget_are_refused_before_decoding(one_keyframe_clip: Path) -> None:
    with pytest.raises(UndecodableOutputError, match=r"frames are 320×180 \(yuv420p\), more than a preview decodes"):
        video_preview(one_keyframe_clip, DecodeLimits(video_frame_bytes=320 * 180))


def test_a_playlist_naming_other_files_is_not_followed(tmp_path: Path, one_keyframe_clip: Path) -> None:
    """An HLS playlist would have the decoder read another file on the server (another caller's output)."""
    playlist = tmp_path / "output.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:30\n#EXTINF:30,\nfile://{one_keyframe_clip}\n#EXT-X-ENDLIST\n")
    with pytest.raises(av.error.ArgumentError):  # refused when opened (no such format here): nothing is read
        video_preview(playlist, DecodeLimits())


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # (the worker process ignores it)
@pytest.mark.parametrize(
    ("size", "mode", "allowed"),
    [((6000, 4000), "RGB", True), ((13000, 13000), "RGB", False), ((4200, 3100), "RGBA", False)],
)
def test_an_image_is_decoded_only_when_its_header_fits_the_budget(
    tmp_path: Path, size: tuple[int, int], mode: str, allowed: bool
) -> None:
    path = tmp_path / "output.png"
    if mode == "RGB":
        path.write_bytes(black_png(*size))
    else:
        Image.new(mode, size, (0, 0, 0, 0)).save(path)
    if allowed:
        picture = Image.open(io.BytesIO(image_preview(path, DecodeLimits()).jpeg))
        assert max(picture.size) == 1024
    else:
        with pytest.raises(UndecodableOutputError, match=rf"the image is {size[0]}×{size[1]} .* more than a preview"):
            image_preview(path, DecodeLimits())


def test_a_jpeg_is_decoded_at_a_reduced_scale(tmp_path: Path) -> None:
    """Decoded whole, this JPEG would be over the budget; its decoder can produce 1/4 of it, within it."""
    path = tmp_path / "big.jpg"
    Image.new("RGB", (6000, 4000), (200, 120, 40)).save(path, quality=30)
    picture = Image.open(io.BytesIO(image_preview(path, DecodeLimits(image_bytes=20_000_000)).jpeg))
    assert picture.size == (1024, 683)
