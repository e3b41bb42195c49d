"""Slow clients, run as a process of their own (an attacker is not the victim's event loop): each connection sends a
request's head (or body) a few bytes at a time and never finishes. Prints one JSON list of [outcome, seconds held].

    python tests/slow_clients.py PORT COUNT SECONDS head|body SOURCE_PREFIX [HEADER ...]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


async def trickle(port: int, source: str, seconds: float, start: bytes, drip: bytes) -> tuple[str, float]:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    except OSError:
        return "not accepted", 0.0
    started = time.monotonic()
    outcome = "still open"
    try:
        writer.write(start)
        while time.monotonic() - started < seconds:
            writer.write(drip)
            await writer.drain()
            try:
                answer = await asyncio.wait_for(reader.read(200), 0.5)
            except TimeoutError:
                continue
            outcome = answer.split(b"\r\n")[0].decode(errors="replace") or "closed"
            break
    except OSError:
        outcome = "closed"
    finally:
        writer.close()
    return outcome, time.monotonic() - started


async def main(port: int, count: int, seconds: float, phase: str, prefix: str, headers: list[str]) -> None:
    # The Host a real client sends (with the port): the server's DNS-rebinding check refuses any other before the body
    # is read, which would end a slow body early for the wrong reason.
    head = f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode() + "".join(f"{h}\r\n" for h in headers).encode()
    if phase == "head":
        start, drip = head, b"X-Slow: 1\r\n"
    else:
        start, drip = head + b"Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n", b"["
    sources = [f"{prefix}.{1 + i % 11}" for i in range(count)]
    results = await asyncio.gather(*(trickle(port, s, seconds, start, drip) for s in sources))
    print(json.dumps(results))


if __name__ == "__main__":
    port, count, seconds, phase, prefix, *headers = sys.argv[1:]
    asyncio.run(main(int(port), int(count), float(seconds), phase, prefix, headers))
