"""Atomic file writes: a reader (or a resume after ``kill -9``) sees the old file or the new one,
never a torn one.

Every write goes to a temporary file in the destination's folder, is flushed and fsynced, then
renamed over the destination (``os.replace`` is atomic within one filesystem), and the folder is
fsynced so the rename itself survives a power loss. A write that fails or is interrupted leaves
the old file in place and removes its temporary (a ``kill -9`` can leave a ``.tmp-<name>-*`` file
behind, never a damaged destination).

Used for every file a run or a resume reads back: training checkpoints, the best/last model
files, the pretrained-backbone export, ``summary.json`` and ``config.yaml``.

Files made on first use (the synthetic set, the teacher-feature cache, the ModelNet FPS cache) go
through :func:`build_once`: an inter-process lock beside the target lets exactly one process build
while every other process (another rank, or another job sharing the folder) waits, then reads.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from typing import Any, Callable, Iterator

__all__ = ["atomic_write", "atomic_save", "atomic_write_text", "atomic_write_json", "file_lock", "build_once"]


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _fsync_path(path: str, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, write: Callable[[str], None], durable: bool = True) -> None:
    """Create or replace ``path`` atomically with what ``write(tmp_path)`` writes to ``tmp_path``.

    Args:
        path: the destination file.
        write: writes the complete new content to the temporary path it is given (a path, not a
            file object, so writers that only take a filename, like safetensors' ``save_file``,
            work too).
        durable: fsync the file and its folder (survives a power loss). ``False`` keeps the
            temporary + rename (a killed writer still never leaves a torn file in place) but skips
            the fsyncs, which cost ~20 ms per file: for the many small files of a rebuildable
            cache, where a killed process, not a power loss, is the failure to survive.
    """
    folder = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path) + "-", dir=folder)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; others sharing the folder must read it
        write(tmp)
        if durable:
            _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if not durable:
        return
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


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """Hold an exclusive inter-process lock for ``path`` (``fcntl.flock`` on ``<path>.lock``).

    The kernel releases the lock when its holder exits, ``kill -9`` included, so a crashed holder
    never blocks the others. The ``.lock`` file stays (removing it would let two processes lock two
    different files of the same name). On network filesystems the lock is as good as the mount's
    ``flock`` support (NFSv4: yes; Lustre: mounted with ``-o flock``). Not re-entrant: taking the
    same lock twice in one process blocks.
    """
    lock = path + ".lock"
    os.makedirs(os.path.dirname(os.path.abspath(lock)) or ".", exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def build_once(path: str, is_complete: Callable[[], bool], build: Callable[[], Any]) -> bool:
    """Make ``path`` (a file or a folder) once among all processes that share it.

    A complete ``path`` is used as is, without locking. Otherwise the first process to take
    :func:`file_lock` (``path`` + ``.lock``) runs ``build()``; the others wait for the lock, find
    ``is_complete()`` true and return. ``build`` must write through :func:`atomic_write` (or write
    a completion marker last), so that a builder killed half-way leaves ``is_complete()`` false and
    the next process builds again.

    Returns:
        whether this process ran ``build``.
    """
    if is_complete():
        return False
    with file_lock(path):
        if is_complete():
            return False
        build()
    return True
