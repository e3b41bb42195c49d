"""A finished job's outputs brought to the person: saved to disk when asked, and seen as a preview image."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from runcomfy_mcp.domain.views import JobRecord, JobResult
from runcomfy_mcp.errors import PreviewError
from runcomfy_mcp.media.downloads import Downloader

if TYPE_CHECKING:
    from runcomfy_mcp.media.previews import Previewer


class OutputDelivery:
    def __init__(self, downloader: Downloader, previewer: Previewer | None) -> None:
        """`previewer` None: previews are off (RUNCOMFY_PREVIEWS=0)."""
        self.downloader = downloader
        self.previewer = previewer

    async def deliver(
        self, view: JobResult, record: JobRecord | None, *, download: bool, preview: bool
    ) -> list[str] | None:
        """Saves (when `download`) and previews (when `preview`) a succeeded job's outputs into `view`. Returns what
        the history should remember as saved, or None when nothing was saved in this call."""
        paths: list[Path] = []  # saved in this call: the preview's source, when there are any
        saved: list[str] | None = None
        if download:
            paths = await self.downloader.save_all(view.request_id, view.outputs)
            if self.downloader.reveal_paths:
                saved = view.local_files = [str(p) for p in paths]
            else:  # a remote caller: the server's disk is not theirs, so no path of it is handed out
                saved = [p.name for p in paths]
                view.notes.append(
                    f"Saved on the server as {', '.join(saved)}, not on your machine: this server runs remotely. "
                    "To keep your own copy, fetch the URL above (result URLs may expire)."
                )
            view.saved_as = [p.name for p in paths]
        if preview and self.previewer is not None:
            await self._add_preview(self.previewer, view, paths, record)
        return saved

    async def _add_preview(
        self, previewer: Previewer, view: JobResult, saved: list[Path], record: JobRecord | None
    ) -> None:
        """The first video (else image) output, seen: never an error, at worst a note that says why not."""
        shown = next((o for o in view.outputs if o.kind == "video"), None) or next(
            (o for o in view.outputs if o.kind == "image"), None
        )
        if shown is None:
            return
        index = view.outputs.index(shown)
        local = saved[index] if index < len(saved) else None
        if local is None and record is not None and index < len(record.local_files):
            candidate = Path(record.local_files[index])
            local = candidate if candidate.is_absolute() else self.downloader.output_dir.expanduser() / candidate
        try:
            made = await previewer.preview(view.request_id, shown, local)
        except PreviewError as exc:
            view.notes.append(f"No preview: {exc.message}.")
            return
        view.attach_preview(made.frames_at_s, made.jpeg)
        view.notes.insert(0, made.words())
