"""Atomic file writes: a reader (or a resume after ``kill -9``) sees the old file or the new one,
never a torn one.

Every write goes to a temporary file in the destination's folder, is flushed and fsynced, then
renamed over the destination (``os.replace`` is atomic within one filesystem), and the folder is
fsynced so the rename itself survives a power loss. A write that fails or is interrupted leaves
the old file in place and removes its temporary (a ``kill -9`` can leave a ``.tmp-<name>-*`` file
behind, never a damaged destination).

Used for every file a run or a resume reads back: training checkpoints, the best/last model
files, the pretrained-backbone export, ``summary.json`` and ``config.yaml``.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Callable

__all__ = ["atomic_write", "atomic_save", "atomic_write_text", "atomic_write_json"]


def _fsync_path(path: str, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Create or replace ``path`` atomically with what ``write(tmp_path)`` writes to ``tmp_path``.

    Args:
        path: the destination file.
        write: writes the complete new content to the temporary path it is given (a path, not a
            file object, so writers that only take a filename, like safetensors' ``save_file``,
            work too).
    """
    folder = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path) + "-", dir=folder)
    os.close(fd)
    try:
        write(tmp)
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        _fsync_path(folder)
    except OSError:  # some filesystems refuse to fsync a folder; the data itself is synced
        pass


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save(obj, path)``, atomically."""
    import torch

    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


def atomic_write_json(path: str, obj: Any, **dump_kwargs) -> None:
    """``json.dump(obj, path, **dump_kwargs)``, atomically (serialised first: a value that does not
    serialise leaves the old file untouched)."""
    atomic_write_text(path, json.dumps(obj, **dump_kwargs))
