"""Hostile output files made in the tests: huge pictures in small files, and a clip with a single keyframe."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

_ADLER_MOD = 65521


def black_png(width: int, height: int) -> bytes:
    """A valid RGB PNG of one colour at any size, made in milliseconds: a 20000×20000 one is ~1 MB.

    Its pixel data is all zero bytes, so the zlib stream is one compressed megabyte of zeros repeated
    (each piece ends on a full flush, so the pieces stand alone) and the Adler-32 of n zeros is (n, 1).
    """
    total = height * (1 + 3 * width)  # each row: filter type 0, then RGB
    piece = 1 << 20
    pieces, rest = divmod(total, piece)
    compressor = zlib.compressobj(9)
    head = compressor.compress(b"\0" * piece) + compressor.flush(zlib.Z_FULL_FLUSH) if pieces else b""
    again = compressor.compress(b"\0" * piece) + compressor.flush(zlib.Z_FULL_FLUSH) if pieces > 1 else b""
    tail = compressor.compress(b"\0" * rest) + compressor.flush()
    if not pieces:
        stream = tail
    else:
        checksum = struct.pack(">I", ((total % _ADLER_MOD) << 16) | 1)
        stream = head + again * (pieces - 1) + tail[:-4] + checksum
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def write_video(
    path: Path, width: int, height: int, *, frames: int, fps: int, keyframe_every: int | None = None
) -> Path:
    """An H.264 clip at the lowest quality (tiny on disk whatever its size); each frame a flat shade of its own.

    `keyframe_every`: the GOP length; `frames` makes one keyframe for the whole clip.
    """
    import av

    options = {"preset": "ultrafast", "crf": "51", "threads": "1"}
    if keyframe_every:
        options["x264-params"] = f"keyint={keyframe_every}:min-keyint={keyframe_every}:scenecut=0"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = options
        frame = av.VideoFrame(width, height, "yuv420p")
        for index in range(frames):
            for plane, value in zip(frame.planes, (16 + (index * 7) % 220, 128, 128), strict=True):
                plane.update(bytes([value]) * plane.buffer_size)
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
