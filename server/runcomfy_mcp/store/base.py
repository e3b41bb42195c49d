"""The job history's one interface. Two backends implement it: SQLite (one machine) and PostgreSQL (a team's
replicas sharing one history). The same contract suite runs against both (`tests/store/test_store_contract.py`).

Every method raises StoreError when its database fails. `reserve` is the one that must be atomic: it checks
an owner's ledger and records the new job in one transaction that no other writer for that owner can
interleave with, so limits hold across processes and replicas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from runcomfy_mcp.domain.spending import LedgerRow
from runcomfy_mcp.domain.views import HistoryStatus, JobRecord
from runcomfy_mcp.store.grants import GrantStore

LedgerCheck = Callable[[list[LedgerRow]], None]


class Store(GrantStore, Protocol):
    """The job history, and the OAuth grants kept beside it (`GrantStore`)."""

    async def record_submission(
        self,
        *,
        request_id: str,
        model_id: str,
        tool: str,
        arguments: Mapping[str, Any],
        owner: str = "",
        status: str = "in_queue",
        estimated_cost: float | None = None,
    ) -> None: ...

    async def reserve(
        self,
        *,
        local_id: str,
        model_id: str,
        tool: str,
        arguments: Mapping[str, Any],
        owner: str,
        estimated_cost: float | None,
        since: float,
        check: LedgerCheck | None = None,
    ) -> None: ...

    async def confirm(self, local_id: str, request_id: str) -> None: ...

    async def discard(self, local_id: str) -> None: ...

    async def ledger(self, owner: str, since: float) -> list[LedgerRow]: ...

    async def update(
        self,
        request_id: str,
        *,
        status: str,
        video_urls: list[str] | None = None,
        output: Mapping[str, Any] | None = None,
        error: str | None = None,
        cost: float | None = None,
    ) -> None: ...

    async def set_local_files(self, request_id: str, paths: list[str]) -> None: ...

    async def get(self, request_id: str, owner: str = "") -> JobRecord | None: ...

    async def list(
        self, *, owner: str = "", status: HistoryStatus | None = None, limit: int = 20
    ) -> list[JobRecord]: ...

    async def aclose(self) -> None: ...
