"""The job history's one interface. Two backends implement it: SQLite (one machine) and PostgreSQL (a team's
replicas sharing one history). The same contract suite runs against both (`tests/store/test_store_contract.py`).

Every method raises StoreError when its database fails. Two must be atomic. `reserve` checks an owner's
ledger and records the new job in one transaction that no other writer for that owner can interleave
with, so limits hold across processes and replicas. `share_poll` reads a job's last shared status and
claims the next poll in one, so waits on one job (on any replica) poll RunComfy as one wait would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from runcomfy_mcp.domain.spending import LedgerRow
from runcomfy_mcp.domain.views import HistoryStatus, JobRecord, SharedPoll
from runcomfy_mcp.store.grants import GrantStore
from runcomfy_mcp.store.records import CLAIM_STANDS_S

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

    async def use_once(self, mark: str, expires_at: float) -> bool:
        """True only the first time `mark` is used, across every process and replica on this history; a mark is
        kept until `expires_at` (what it guards is refused after that anyway)."""
        ...

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

    async def share_poll(
        self, request_id: str, owner: str, *, seen: float | None, fresh_s: float, claim_s: float = CLAIM_STANDS_S
    ) -> SharedPoll:
        """A wait's look before it polls RunComfy: a status another wait (on any replica) got since `seen`, or
        the turn to ask, claimed in the same transaction so that two waits never both get it. A claim left
        unanswered for `claim_s` (its replica went away) is taken over."""
        ...

    async def record_poll(self, request_id: str, owner: str, *, status: str, queue_position: int | None) -> float:
        """What RunComfy answered the claimed poll, for the other waits; returns when, on the history's clock."""
        ...

    async def aclose(self) -> None: ...
