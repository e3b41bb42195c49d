"""An httpx.AsyncClient made on first use.

Building a client loads a TLS context and CA bundle (~25 ms), and a stdio server is started by
the chat client at every launch; most launches list tools long before any request is made.
"""

from __future__ import annotations

from typing import Any, cast

import httpx


class LazyAsyncClient:
    def __init__(self, **options: Any) -> None:
        self._options = options
        self._client: httpx.AsyncClient | None = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = httpx.AsyncClient(**self._options)
        return getattr(self._client, name)

    def as_client(self) -> httpx.AsyncClient:
        """This object where an httpx.AsyncClient is expected (it forwards every attribute to one)."""
        return cast(httpx.AsyncClient, self)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
