"""Helpers shared by the loaders: errors that name the file, the expected layout and the
origin of the data; index, label and item plumbing."""

from __future__ import annotations

import os

import numpy as np
import torch

from recon.errors import DataFormatError, MissingFileError


class CorruptSampleError(DataFormatError):
    """A sample exists but cannot be read; the message names its index and file."""


def missing(path: str, dataset: str, layout: str, origin: str) -> MissingFileError:
    return MissingFileError(
        f"{dataset}: missing file or folder {path!r}.\n"
        f"Expected layout:\n{layout}\n"
        f"Where it comes from: {origin}"
    )


def malformed(path: str, dataset: str, what: str, layout: str, origin: str) -> DataFormatError:
    return DataFormatError(
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
    """Non-empty stripped lines of a UTF-8 text list file; :class:`DataFormatError` names a file that is not text."""
    try:
        with open(path, encoding="utf-8") as f:
            return [ln.strip() for ln in f if ln.strip()]
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: not a UTF-8 text list ({exc.reason} at byte {exc.start})") from None


def wrap_index(index: int, n: int) -> int:
    """Python-style index into ``n`` samples; ``IndexError`` outside ``[-n, n)``."""
    if not -n <= index < n:
        raise IndexError(f"index {index} out of range for {n} samples")
    return index % n


def check_labels(labels: np.ndarray, num_classes: int, dataset: str, path: str) -> None:
    """Raises :class:`CorruptSampleError` for the first label outside ``[0, num_classes)``."""
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise corrupt(dataset, i, path, ValueError(f"label {labels[i]} outside [0, {num_classes})"))


def point_item(pc: np.ndarray, label: int, index: int, shuffle: bool, transform) -> dict:
    """The item dict of a point dataset; ``shuffle`` permutes the point order (official train)."""
    if shuffle:
        pc = pc[torch.randperm(pc.shape[0]).numpy()]
    points = torch.from_numpy(np.array(pc, dtype=np.float32))
    if transform is not None:
        points = transform(points)
    return {"points": points, "label": int(label), "index": index}
