"""A real, playable MP4 made from the job's own image: a slow zoom, at the requested length, small.

Uses PyAV and Pillow (the server's own dependencies); imported only when the sandbox makes its first video.
"""

from __future__ import annotations

import base64
import io
from typing import Any

FPS = 12
WIDTH = 320
ZOOM = 0.18  # how far the camera pushes in over the clip
MAX_SECONDS = 12.0


def first_image(arguments: dict[str, Any]) -> bytes | None:
    """The bytes of the job's first image, when it was sent inline (as local files and the demo's are)."""
    for key in ("first_frame_image_url", "image_url", "image_urls", "images"):
        value = arguments.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str) and value[:5].lower() == "data:" and "," in value:
            return base64.b64decode(value.split(",", 1)[1])
    return None


def requested_seconds(arguments: dict[str, Any]) -> float:
    duration = arguments.get("duration")
    if isinstance(duration, str) and duration.strip().isdigit():  # some catalog models take "5"
        duration = int(duration)
    if isinstance(duration, int | float):
        return min(MAX_SECONDS, max(1.0, float(duration)))
    if isinstance(arguments.get("number_of_frames"), int):
        return min(MAX_SECONDS, max(1.0, float(arguments["number_of_frames"]) / 24))
    return 5.0


def make_video(image: bytes | None, seconds: float) -> bytes:
    import av
    from PIL import Image, ImageDraw

    if image is not None:
        picture = Image.open(io.BytesIO(image)).convert("RGB")
    else:  # no inline image: a plain gradient stands in
        picture = Image.linear_gradient("L").resize((640, 360)).convert("RGB")
        ImageDraw.Draw(picture).text((20, 20), "runcomfy-mcp sandbox", fill=(255, 255, 255))
    height = max(2, round(WIDTH * picture.height / picture.width / 2) * 2)
    frames = max(1, round(seconds * FPS))
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "28"}
        for index in range(frames):
            zoom = 1 + ZOOM * index / max(1, frames - 1)
            w, h = picture.width / zoom, picture.height / zoom
            left, top = (picture.width - w) / 2, (picture.height - h) / 2
            frame = picture.resize((WIDTH, height), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h))
            picture_frame = av.VideoFrame.from_image(frame)  # type: ignore[no-untyped-call]
            for packet in stream.encode(picture_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def video_for_job(arguments: dict[str, Any]) -> bytes:
    return make_video(first_image(arguments), requested_seconds(arguments))
