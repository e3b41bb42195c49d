"""A throwaway PostgreSQL server: initdb and pg_ctl into a temporary folder, on a free loopback port.

For the tests, the benchmarks, and trying the team set-up on one machine:
`python -m runcomfy_mcp.sandbox.postgres` prints the URL of a fresh database and removes everything
when stopped. The programs come from Debian's `postgresql` package (`scripts/ensure-postgres`
installs it when missing). PostgreSQL refuses to run as root, so as root the server runs as the
`postgres` user the package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _program(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise RuntimeError(f"PostgreSQL's {name} is missing: run scripts/ensure-postgres (the test set-up does)")
    return found[-1]


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def postgres_server() -> Iterator[str]:
    """A running server; yields its base URL (`postgresql://postgres@127.0.0.1:PORT`), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="runcomfy-pg-"))
    data = folder / "data"
    port = _free_port()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")

    def run(command: list[str]) -> None:
        subprocess.run(_as_server_user(command), check=True, capture_output=True)

    run([_program("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} -c fsync=off"
    run([_program("pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "-t", "30", "start"])
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_server_user([_program("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """A new, empty database on the server; its URL."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server_url}/{name}"


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends it like Ctrl-C: the server stopped, its folder removed


def main() -> None:
    """Serves a fresh database until stopped (Ctrl-C or SIGTERM); its URL is the first line on stdout."""
    import signal
    import sys

    signal.signal(signal.SIGTERM, _stop)
    try:
        with postgres_server() as server:
            # Not an MCP server: this stdout only tells the person (or a script) where to connect.
            sys.stdout.write(fresh_database(server) + "\n")
            sys.stdout.flush()
            print("PostgreSQL runs until Ctrl-C; then it and its data are removed.", file=sys.stderr)
            signal.pause()
    except KeyboardInterrupt:
        pass
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"python -m runcomfy_mcp.sandbox.postgres: PostgreSQL could not be started: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
