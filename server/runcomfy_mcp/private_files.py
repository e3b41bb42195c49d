"""Folders that will hold what is the user's alone (a token, the job history) are created owner-only."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FOLDER = 0o700


def private_folders(folder: Path) -> Path:
    """Create `folder` and each missing parent owner-only (0700), whatever the umask; existing ones are left as
    they are (the user chose them)."""
    missing = []
    walk = folder
    while not walk.exists() and walk != walk.parent:
        missing.append(walk)
        walk = walk.parent
    for made in reversed(missing):
        try:
            made.mkdir(mode=PRIVATE_FOLDER)
        except FileExistsError:  # made meanwhile by another process: theirs to keep as it is
            continue
        os.chmod(made, PRIVATE_FOLDER)  # mkdir's mode passes through the umask, which could only narrow it
    return folder
