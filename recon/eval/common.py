"""Pieces every evaluation protocol shares: model loading, dataset names, sampling, result files.

Results of every protocol are written as one JSON object per run (see :func:`write_result`); the
``recon report`` command collects them.  The schema:

``{"protocol": str, "dataset": str, "setting": str, "value": float (accuracy in %),
"std": float | null, "n": int | null, "model": str, "checkpoint": str | null, "notes": [str], ...}``
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

# Dataset names the protocols accept, and the class that reads each (import is lazy: the data package
# is only needed when a real dataset is asked for).
DATASET_NAMES = ("synthetic", "modelnet10", "modelnet40", "scan_hardest", "scan_objbg", "scan_objonly")
_SCAN_VARIANTS = {"scan_hardest": "hardest", "scan_objbg": "objbg", "scan_objonly": "objonly"}


def log(msg: str) -> None:
    """Print a protocol's progress line to stderr (stdout is kept for tables)."""
    print(f"[recon] {msg}", file=sys.stderr, flush=True)


def check_dataset_name(name: str) -> str:
    """Return ``name`` lower-cased if it is a known dataset, else raise ValueError naming the choices."""
    key = str(name).lower()
    if key not in DATASET_NAMES:
        raise ValueError(f"dataset: expected one of {', '.join(DATASET_NAMES)}, got {name!r}")
    return key


def build_dataset(name: str, root: str | os.PathLike, split: str, npoints: int | None = None, **kwargs):
    """Construct the dataset ``name`` (one of :data:`DATASET_NAMES`) reading ``root``.

    Args:
        name: dataset key, e.g. ``"modelnet40"`` or ``"scan_hardest"``.
        root: directory in the real format (DESIGN.md, Data); the synthetic set is generated there.
        split: ``"train"`` or ``"test"``.
        npoints: points per sample for the datasets that subsample on load (ModelNet, synthetic);
            ScanObjectNN always yields its stored 2048 points.
        **kwargs: passed to the dataset class (e.g. ``num_per_class`` of the synthetic set).

    Returns:
        a ``torch.utils.data.Dataset`` whose items are dicts with ``points`` [N, 3] and ``label``.
    """
    key = check_dataset_name(name)
    npoints = kwargs.pop("npoints", npoints)  # an explicit --data-args npoints=... wins
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    import recon.data as data

    if key == "synthetic":
        return data.SyntheticShapes(root, split=split, npoints=npoints or 1024, **kwargs)
    if key in ("modelnet10", "modelnet40"):
        return data.ModelNet40(root, split=split, npoints=npoints or 1024, num_category=int(key[8:]), **kwargs)
    return data.ScanObjectNN(root, variant=_SCAN_VARIANTS[key], split=split, **kwargs)


def load_npoints(name: str, fps_npoints: int) -> int | None:
    """Points to read per sample for a protocol that then takes ``fps(cloud, fps_npoints)``.

    ModelNet's files are stored in FPS order from index 0, so their first ``fps_npoints`` rows ARE
    the official ``fps(points, fps_npoints)`` and reading just those is exact and cheap;
    ScanObjectNN always yields its 2048 stored points (None); the synthetic set reads 2048 random
    points of its 8192 (then FPS runs on those).
    """
    key = check_dataset_name(name)
    if key.startswith("modelnet"):
        return int(fps_npoints)
    return None if key.startswith("scan_") else max(2048, int(fps_npoints))


def build_model(name: str, checkpoint: str | None = None, seed: int = 0, **kwargs) -> torch.nn.Module:
    """Create registry model ``name`` and load ``checkpoint`` into it (strict=False, head reset).

    With no checkpoint the weights stay random (seeded by ``seed``) and a line says so.

    Args:
        name: registry name, e.g. ``"recon_tiny"``.
        checkpoint: a recon or official checkpoint file, or None.
        seed: torch seed used before construction, so random-weight runs are reproducible.
        **kwargs: forwarded to ``create_model`` (``num_classes``, ``npoints``, ``num_group``, ...).
    """
    from recon.models import create_model

    torch.manual_seed(seed)
    model = create_model(name, **kwargs)
    if checkpoint is None:
        log(f"no checkpoint given: {name} runs with RANDOM weights (seed {seed})")
    else:
        if not Path(checkpoint).is_file():
            raise FileNotFoundError(f"checkpoint: no file at {checkpoint!r}")
        from recon.checkpoint import load_checkpoint

        load_checkpoint(model, checkpoint, strict=False, reset_head=True)
    return model.eval()


def parse_kv(items, what: str) -> dict:
    """``["depth=2", "head=linear"]`` -> ``{"depth": 2, "head": "linear"}`` (values parsed as YAML)."""
    import yaml

    out = {}
    for item in items or ():
        key, sep, text = str(item).partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what}: expected key=value, got {item!r}")
        out[key.strip()] = yaml.safe_load(text)
    return out


def add_common_args(p, model: str) -> None:
    """Arguments every protocol shares: model, checkpoint, extra model/dataset keyword arguments."""
    p.add_argument("--model", default=model, help=f"registry model (default {model})")
    p.add_argument("--model-args", nargs="*", default=[], metavar="KEY=VALUE",
                   help="extra model keyword arguments, e.g. depth=2 (must match the checkpoint)")
    p.add_argument("--data-args", nargs="*", default=[], metavar="KEY=VALUE",
                   help="extra dataset keyword arguments, e.g. num_per_class=10 for the synthetic set")


def file_digest(path: str | os.PathLike, length: int = 16) -> str:
    """First ``length`` hex digits of the SHA-256 of a file's bytes (used as a cache key)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]


def path_tag(text: str | os.PathLike, length: int = 8) -> str:
    """Short hash of a resolved path (or of any text): a cache-key part, so that two dataset roots or
    two model settings never share cache entries."""
    if isinstance(text, Path) or os.path.sep in str(text) or os.path.exists(str(text)):
        text = str(Path(text).resolve())
    return hashlib.sha256(str(text).encode()).hexdigest()[:length]


def fps_points(points: torch.Tensor, npoints: int) -> torch.Tensor:
    """Deterministic furthest-point subsample ``[B, N, 3] -> [B, npoints, 3]`` (start index 0).

    Clouds that already hold ``npoints`` points or fewer are returned unchanged, as the official
    ``misc.fps`` callers only ever downsample.
    """
    from recon.ops import furthest_point_sample, gather_points

    if points.dim() != 3 or points.shape[-1] != 3:
        raise ValueError(f"points: expected [B, N, 3], got {tuple(points.shape)}")
    if points.shape[1] <= npoints:
        return points
    idx = furthest_point_sample(points.contiguous(), npoints)
    return gather_points(points, idx)


def iterate_batches(dataset, batch_size: int, num_workers: int = 0):
    """Yield ``(points [B, N, 3] float32, labels [B] int64)`` over a dataset of dict items in order."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, drop_last=False
    )
    for batch in loader:
        labels = torch.as_tensor(batch["label"]).reshape(-1).long()
        yield batch["points"].float(), labels


def write_result(path: str | os.PathLike, result: dict[str, Any]) -> Path:
    """Write ``result`` as JSON atomically (tmp file + rename), so an interrupted run leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return path


def run_main(fn: Callable[[Any], Any], parser, argv) -> int:
    """Parse ``argv`` with ``parser`` and run ``fn(args)``; user errors become one line and exit code 2."""
    args = parser.parse_args(argv)
    try:
        fn(args)
    except (ValueError, TypeError, FileNotFoundError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def warn_once(msg: str) -> None:
    """A visible warning for an optimistic or unusual setting."""
    warnings.warn(msg, stacklevel=2)
