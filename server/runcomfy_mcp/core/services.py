"""What the MCP layer needs of the core: the services, built on first use (listing tools needs none of them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from runcomfy_mcp.core.catalog import Catalog
    from runcomfy_mcp.core.films import FilmService
    from runcomfy_mcp.core.frame_inputs import FrameInputs
    from runcomfy_mcp.core.jobs import JobService


class Services(Protocol):
    def jobs(self) -> JobService: ...

    def catalog(self) -> Catalog: ...

    def films(self) -> FilmService: ...

    def frames(self) -> FrameInputs: ...
