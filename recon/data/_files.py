"""Error messages shared by the loaders: name the file, the expected layout and the origin."""

from __future__ import annotations

import os


class CorruptSampleError(ValueError):
    """A sample exists but cannot be read; the message names its index and file."""


def missing(path: str, dataset: str, layout: str, origin: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{dataset}: missing file or folder {path!r}.\n"
        f"Expected layout:\n{layout}\n"
        f"Where it comes from: {origin}"
    )


def malformed(path: str, dataset: str, what: str, layout: str, origin: str) -> ValueError:
    return ValueError(
        f"{dataset}: malformed file {path!r}: {what}.\n"
        f"Expected layout:\n{layout}\n"
        f"Where it comes from: {origin}"
    )


def require(path: str, dataset: str, layout: str, origin: str) -> str:
    """Returns ``path`` if it exists, else raises the dataset's missing-file error."""
    if not os.path.exists(path):
        raise missing(path, dataset, layout, origin)
    return path


def corrupt(dataset: str, index: int, path: str, err: BaseException) -> CorruptSampleError:
    return CorruptSampleError(
        f"{dataset}: sample {index} ({path!r}) is corrupt or unreadable: {type(err).__name__}: {err}"
    )


def read_lines(path: str) -> list[str]:
    """Non-empty stripped lines of a text list file."""
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip()]
