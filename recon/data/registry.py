"""One vocabulary for datasets: every name a command, a config or a protocol gives a dataset.

A *canonical name* (``scan_hardest``, ``modelnet40``, ``synthetic`` ...) names a dataset class together
with the arguments that pick one of its variants; the dataset classes themselves (``ScanObjectNN``,
``ModelNet40``, ``ShapeNet55`` ...) are also accepted by name, as the configs' ``data.name`` gives them.

    build_dataset("scan_objbg", root, "test")                   # ScanObjectNN(root, variant="objbg", ...)
    build_dataset("ScanObjectNN", root, "test", variant="objbg") # the same
    canonical_name("ModelNet40", {"num_category": 10})          # "modelnet10"
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

from recon.errors import ConfigError

__all__ = ["DatasetSpec", "DATASETS", "DATASET_NAMES", "check_name", "spec", "dataset_class",
           "canonical_name", "build_dataset", "load_npoints"]


@dataclass(frozen=True)
class DatasetSpec:
    """One canonical dataset.

    Attributes:
        name: the canonical name.
        cls: the ``recon.data`` class that reads it.
        args: the class arguments that select this dataset (a variant, a category count).
        official: the official code's name for it (the key of its per-dataset tables such as the
            zero-shot ratios); the synthetic set borrows ModelNet40's, the closest in kind.
        subsamples: whether the class takes ``npoints`` and subsamples on load.
    """

    name: str
    cls: str
    args: Mapping = field(default_factory=dict)
    official: str = ""
    subsamples: bool = True


DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec("synthetic", "SyntheticShapes", {}, "modelnet40"),
    DatasetSpec("modelnet10", "ModelNet40", {"num_category": 10}, "modelnet10"),
    DatasetSpec("modelnet40", "ModelNet40", {"num_category": 40}, "modelnet40"),
    DatasetSpec("scan_hardest", "ScanObjectNN", {"variant": "hardest"}, "scanobjectnn_hardest", False),
    DatasetSpec("scan_objbg", "ScanObjectNN", {"variant": "objbg"}, "scanobjectnn_objbg", False),
    DatasetSpec("scan_objonly", "ScanObjectNN", {"variant": "objonly"}, "scanobjectnn_objonly", False),
    DatasetSpec("shapenet55", "ShapeNet55", {}, "shapenet55"),
    DatasetSpec("modelnet_fewshot", "ModelNetFewShot", {}, "modelnet40_fewshot", False),
    DatasetSpec("shapenetpart", "ShapeNetPart", {}, "shapenetpart"),
    DatasetSpec("synthetic_parts", "SyntheticParts", {}, "shapenetpart"),
)}
# the evaluation protocols' datasets (labelled test splits), in the order the commands list them
DATASET_NAMES = ("synthetic", "modelnet10", "modelnet40", "scan_hardest", "scan_objbg", "scan_objonly")
_DEFAULT_NPOINTS = 1024  # what ModelNet and the synthetic set read when the caller names no count


def _is_class_name(name) -> bool:
    """Whether ``name`` is spelled as a dataset class (``ModelNet40``), not as a canonical name (``modelnet40``)."""
    return any(s.cls == name for s in DATASETS.values())


def check_name(name: str, allowed=DATASET_NAMES) -> str:
    """``name`` lower-cased when it is one of ``allowed``; else a ConfigError naming the choices."""
    key = str(name).lower()
    if key not in allowed:
        raise ConfigError(f"dataset: expected one of {', '.join(allowed)}, got {name!r}")
    return key


def spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of a canonical name."""
    return DATASETS[check_name(name, tuple(DATASETS))]


def dataset_class(name: str) -> type:
    """The ``recon.data`` class of a canonical name or of a class name (any dataset ``recon.data`` exports)."""
    import recon.data as data
    from torch.utils.data import Dataset

    key = str(name).lower()
    cls_name = DATASETS[key].cls if key in DATASETS and not _is_class_name(name) else str(name)
    cls = getattr(data, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Dataset)):
        valid = sorted(n for n in getattr(data, "__all__", ()) if isinstance(getattr(data, n, None), type)
                       and issubclass(getattr(data, n), Dataset))
        raise ConfigError(f"data.name={name!r} is not a dataset of recon.data; valid: {valid} "
                          f"or a canonical name {sorted(DATASETS)}")
    return cls


def canonical_name(name: str, args: Mapping | None = None) -> str:
    """The canonical name of a config's ``data`` section (a class name and its ``args``).

    A canonical name is returned as it is; a class whose arguments match no canonical dataset
    gives its own name lower-cased.
    """
    key = str(name).lower()
    if key in DATASETS and not _is_class_name(name):
        return key
    args = dict(args or {})
    for s in DATASETS.values():
        if s.cls != name:
            continue
        defaults = {"variant": "hardest", "num_category": 40}
        if all(str(args.get(k, defaults.get(k))) == str(v) for k, v in s.args.items()):
            return s.name
    return key


def build_dataset(name: str, root: str | os.PathLike | None, split: str, npoints: int | None = None, **kwargs):
    """Construct a dataset by canonical or class name.

    Args:
        name: a canonical name (``"scan_hardest"``) or a class name (``"ScanObjectNN"``).
        root: the dataset folder in its real layout (the synthetic set is generated there).
        split: ``"train"`` or ``"test"``.
        npoints: points per sample for the datasets that subsample on load (ModelNet, synthetic;
            default 1024); ScanObjectNN always yields its stored 2048 points. An ``npoints`` in
            ``kwargs`` wins.
        **kwargs: passed to the class (``num_per_class`` of the synthetic set, ``variant`` ...).

    Returns:
        a ``torch.utils.data.Dataset`` of dicts with ``points`` and ``label``.
    """
    key = str(name).lower()
    cls = dataset_class(name)
    splits = getattr(cls, "SPLITS", ("train", "test"))  # part segmentation also has val / trainval
    if split not in splits:
        raise ConfigError(f"split: expected one of {list(splits)}, got {split!r}")
    if key in DATASETS and not _is_class_name(name):
        s = DATASETS[key]
        kwargs = {**dict(s.args), **kwargs}
        given = kwargs.pop("npoints", npoints)
        if s.subsamples:
            kwargs["npoints"] = given or _DEFAULT_NPOINTS
    elif npoints is not None:
        kwargs.setdefault("npoints", npoints)
    return cls(str(root) if root is not None else root, split=split, **kwargs)


def load_npoints(name: str, fps_npoints: int) -> int | None:
    """Points to read per sample for a protocol that then takes ``fps(cloud, fps_npoints)``.

    ModelNet's files are stored in FPS order from index 0, so their first ``fps_npoints`` rows are
    the official ``fps(points, fps_npoints)`` and reading just those is exact and cheap;
    ScanObjectNN always yields its 2048 stored points (None); the synthetic set reads 2048 random
    points of its 8192 (then FPS runs on those).
    """
    key = check_name(name)
    if key.startswith("modelnet"):
        return int(fps_npoints)
    return None if key.startswith("scan_") else max(2048, int(fps_npoints))
