"""Films already made, read back: the history says whose they are, and beside it are kept each film's facts
(its shots, size, where its file is) and its contact sheet, so get_result shows a film as it was made.

The film itself stays in the output folder; a film whose file was moved or deleted is still listed, and
says so when it is asked for.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from runcomfy_mcp.domain.films import FILM_TOOL, FilmResult, is_film_id
from runcomfy_mcp.domain.ids import check_request_id
from runcomfy_mcp.domain.views import Caller
from runcomfy_mcp.errors import FilmError, StoreError

if TYPE_CHECKING:
    from runcomfy_mcp.store.base import Store

logger = logging.getLogger(__name__)


class FilmArchive:
    def __init__(self, store: Store, folder: Path) -> None:
        """`folder`: where the facts and sheets are kept (beside the history)."""
        self.store = store
        self.folder = folder

    def _facts_path(self, film_id: str) -> Path:
        return self.folder / f"{check_request_id(film_id)}.json"

    async def keep(self, view: FilmResult, path: Path, sheet_jpeg: bytes | None) -> None:
        """Remembers a film just made. A failure is logged: the film exists all the same."""
        facts = {"view": view.model_dump(mode="json"), "path": str(path)}

        def write() -> None:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            for suffix, data in ((".json", json.dumps(facts).encode()), (".jpg", sheet_jpeg)):
                if data is None:
                    continue
                target = self.folder / f"{view.request_id}{suffix}"
                partial = target.with_name(f".{target.name}.{os.getpid()}.part")
                partial.write_bytes(data)
                partial.chmod(0o600)
                os.replace(partial, target)

        try:
            await anyio.to_thread.run_sync(write)
        except OSError as exc:
            logger.warning("could not keep the facts of film %s: %s", view.request_id, exc)

    async def find(self, film_id: str, caller: Caller) -> tuple[FilmResult, Path]:
        """The caller's film and where its file is (which may be gone); FilmError when it is not theirs or unknown."""
        check_request_id(film_id)
        try:
            record = await self.store.get(film_id, caller.owner) if is_film_id(film_id) else None
        except StoreError as exc:
            raise FilmError(f"The history cannot be read, so film {film_id} cannot be found ({exc.message})") from exc
        if record is None or record.tool != FILM_TOOL:
            raise FilmError(
                f"There is no film {film_id} in your history on this server. list_jobs shows your films (their tool "
                "is compose_video); films made by other callers of this server cannot be seen."
            )
        if record.status != "succeeded":
            raise FilmError(f"Film {film_id} was not made: {record.error or record.status}.")
        try:
            facts = json.loads(await anyio.Path(self._facts_path(film_id)).read_text())
            view, path = FilmResult.model_validate(facts["view"]), Path(facts["path"])
        except (OSError, ValueError, KeyError) as exc:
            raise FilmError(f"Film {film_id} is in the history, but its facts beside it are gone ({exc}).") from exc
        try:
            sheet: bytes | None = await anyio.Path(self.folder / f"{film_id}.jpg").read_bytes()
        except OSError:
            sheet = None
        if sheet:
            view.attach_preview([s.at_s for s in view.shots], sheet)
        return view, path

    async def file(self, film_id: str, caller: Caller) -> Path:
        """The caller's film file; FilmError when it is not theirs, or no longer on disk."""
        _, path = await self.find(film_id, caller)
        if not await anyio.Path(path).is_file():
            raise FilmError(f"Film {film_id}'s file is no longer in the output folder (it was moved or deleted).")
        return path
