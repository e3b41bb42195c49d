"""A PostgreSQL history that cannot be used says why at once, names where it looked, and never shows the password."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from runcomfy_mcp.errors import StoreError
from runcomfy_mcp.store.postgres import PostgresStore

pytestmark = pytest.mark.anyio

PASSWORD = "hunter2-Swordfish"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once it is closed


async def failure(url: str) -> tuple[str, float]:
    store = PostgresStore(url)
    started = time.monotonic()
    try:
        with pytest.raises(StoreError) as raised:
            await store.list(owner="alice")
    finally:
        await store.aclose()
    return raised.value.message, time.monotonic() - started


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://bob:{PASSWORD} extra@127.0.0.1:5432/jobs",  # a space libpq refuses, quoting the password
        f"postgresql://bob:{PASSWORD}%zz@127.0.0.1:5432/jobs",  # a broken percent escape
        f"host=127.0.0.1 password={PASSWORD} extra",  # key=value form with a stray word
    ],
)
async def test_an_unparseable_url_is_named_without_its_password(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    message, took = await failure(url)
    assert "RUNCOMFY_DATABASE_URL" in message and "postgresql://user:password@host:port/dbname" in message
    assert took < 2, f"{took:.1f} s to say the URL is unreadable"
    assert PASSWORD not in message and "extra" not in message
    assert PASSWORD not in caplog.text


async def test_an_unreachable_server_fails_fast_naming_host_and_port(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    port = closed_port()
    message, took = await failure(f"postgresql://bob:{PASSWORD}@127.0.0.1:{port}/jobs")
    assert took < 3, f"{took:.1f} s before saying the database is unreachable"
    assert f"127.0.0.1:{port}" in message and "refused" in message.lower() and "PoolTimeout" not in message
    assert PASSWORD not in message and PASSWORD not in caplog.text


async def test_a_refused_login_is_said_without_the_password(postgres_server: str) -> None:
    """The server answers but will not let us in (here: no such database; a wrong password reads the same)."""
    host_port = postgres_server.rsplit("@", 1)[1]
    url = f"postgresql://postgres:{PASSWORD}@{host_port}/no_such_history"
    message, took = await failure(url)
    assert host_port in message and "no_such_history" in message and "does not exist" in message
    assert PASSWORD not in message and took < 5
