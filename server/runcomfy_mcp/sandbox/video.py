"""A real, playable MP4 made from the job's own images: a slow push-in at the requested length, small.

Its first frame is the job's first image itself, and when a last frame is given the clip dissolves
into it and ends on it: so a shot continued from the previous one's last frame visibly continues it.
Frames are 640 px wide, enough for the models' media rules (sides over 300 px) when a frame of a
sandbox clip is sent as the next shot's first frame. Uses PyAV and Pillow (the server's own
dependencies); imported only when the sandbox makes its first video.
"""

from __future__ import annotations

import base64
import functools
import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL.Image import Image

FPS = 12
WIDTH = 640
ZOOM = 0.18  # how far the camera pushes in over the clip
MAX_SECONDS = 12.0
FIRST_FRAME_FIELDS = ("first_frame_image_url", "image_url", "image_urls", "images", "image")
LAST_FRAME_FIELDS = ("last_frame_image_url", "tail_image_url", "end_image_url")


def inline_image(arguments: dict[str, Any], fields: tuple[str, ...]) -> bytes | None:
    """The bytes of the first of `fields` sent inline (as local files, frames of jobs and the demo's are)."""
    for key in fields:
        value = arguments.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str) and value[:5].lower() == "data:" and "," in value:
            return base64.b64decode(value.split(",", 1)[1])
    return None


def first_image(arguments: dict[str, Any]) -> bytes | None:
    return inline_image(arguments, FIRST_FRAME_FIELDS)


def requested_seconds(arguments: dict[str, Any]) -> float:
    duration = arguments.get("duration")
    if isinstance(duration, str) and duration.strip().isdigit():  # some catalog models take "5"
        duration = int(duration)
    if isinstance(duration, int | float):
        return min(MAX_SECONDS, max(1.0, float(duration)))
    if isinstance(arguments.get("number_of_frames"), int):
        return min(MAX_SECONDS, max(1.0, float(arguments["number_of_frames"]) / 24))
    return 5.0


def _view(picture: Image, width: int, height: int, zoom: float) -> Image:
    """The centre of `picture` at the clip's shape, `zoom` times closer, at width×height."""
    from PIL import Image as Images

    aspect = width / height
    box_w, box_h = min(picture.width, picture.height * aspect), min(picture.height, picture.width / aspect)
    box_w, box_h = box_w / zoom, box_h / zoom
    left, top = (picture.width - box_w) / 2, (picture.height - box_h) / 2
    return picture.resize((width, height), Images.Resampling.BILINEAR, box=(left, top, left + box_w, top + box_h))


@functools.lru_cache(maxsize=8)  # a thousand jobs from one image make one clip, not a thousand
def make_video(image: bytes | None, seconds: float, last: bytes | None = None) -> bytes:
    import av
    from PIL import Image, ImageDraw

    if image is not None:
        picture = Image.open(io.BytesIO(image)).convert("RGB")
    else:  # no inline image: a plain gradient stands in
        picture = Image.linear_gradient("L").resize((640, 360)).convert("RGB")
        ImageDraw.Draw(picture).text((20, 20), "runcomfy-mcp sandbox", fill=(255, 255, 255))
    ending = Image.open(io.BytesIO(last)).convert("RGB") if last is not None else None
    height = max(2, round(WIDTH * picture.height / picture.width / 2) * 2)
    frames = max(1, round(seconds * FPS))
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for index in range(frames):
            progress = index / max(1, frames - 1)
            frame = _view(picture, WIDTH, height, 1 + ZOOM * progress)
            if ending is not None:  # dissolve into the last frame, which is reached exactly at the end
                weight = progress * progress * (3 - 2 * progress)
                frame = Image.blend(frame, _view(ending, WIDTH, height, 1 + ZOOM * (1 - progress)), weight)
            for packet in stream.encode(av.VideoFrame.from_image(frame)):  # type: ignore[no-untyped-call]
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def video_for_job(arguments: dict[str, Any]) -> bytes:
    return make_video(first_image(arguments), requested_seconds(arguments), inline_image(arguments, LAST_FRAME_FIELDS))
