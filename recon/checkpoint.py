"""Checkpoints: recon's own format, and the official ReCon / Point-MAE ``.pth`` files.

recon format (written by :func:`save_model`), for a path prefix ``run/best``::

    run/best.safetensors   the weights: model.state_dict() keys (= official key names),
                           header metadata {"format": "recon", "config": <JSON of model.config>}
    run/best.json          {"format": "recon", "format_version": 1, "recon_version": ...,
                            "config": model.config, "weights": "best.safetensors",
                            "num_parameters": ...}
    run/best.pth           optional: optimizer state and anything else passed to save_model
                           (torch.save dict, read back with load_training_state)

``recon.models.load_model("run/best")`` rebuilds the model from the config and loads the weights
(strict). This module is a leaf below ``recon.models``: it reads, remaps and writes state dicts and
never builds a model itself.

Official files (docs/official.md §10) are ``torch.save`` dicts with the weights under
``base_model``; keys may start with ``module.`` (DataParallel). Pretrain files put the backbone
under ``MAE_encoder.`` and may hold the frozen teachers (``img_encoder.*``, ``text_encoder.*``),
which are dropped. :func:`load_checkpoint` applies the official remapping (strip ``module.``,
then a leading ``MAE_encoder.`` or ``base_model.``) when the target model has no
``MAE_encoder`` of its own, always with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from recon.errors import CheckpointError, MissingFileError

__all__ = [
    "LoadReport",
    "CheckpointMismatchError",
    "check_complete",
    "guess_family",
    "save_model",
    "load_checkpoint",
    "read_checkpoint",
    "read_model_config",
    "load_training_state",
]

FORMAT_VERSION = 1
TEACHER_PREFIXES = ("img_encoder.", "text_encoder.")
HEAD_PREFIXES = ("cls_head_finetune.",)
_SUFFIXES = (".safetensors", ".json", ".pth")

logger = logging.getLogger("recon.checkpoint")


class CheckpointMismatchError(CheckpointError):
    """Raised by ``load_checkpoint(strict=True)`` when keys are missing or unexpected."""


@dataclass
class LoadReport:
    """What :func:`load_checkpoint` did; ``str(report)`` is a readable table.

    Attributes:
        source: the path (or ``"<state_dict>"``).
        source_format: ``recon``, ``official-pretrain``, ``official-finetune``, ``state_dict``.
        loaded: model keys filled from the checkpoint.
        missing: model keys the checkpoint lacks (left as initialised).
        unexpected: checkpoint keys the model lacks (ignored).
        dropped: frozen-teacher keys of a pretrain file (never loaded).
        reset: head keys skipped because of ``reset_head=True``.
        notes: remapping steps applied (e.g. ``"stripped 'module.'"``).
        family: what the file looks like from its keys (:func:`guess_family`).
    """

    source: str
    source_format: str
    loaded: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    reset: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    family: str = ""

    @property
    def ok(self) -> bool:
        """True when nothing is missing or unexpected."""
        return not self.missing and not self.unexpected

    def __str__(self) -> str:
        head = f"checkpoint {self.source} ({self.source_format}" + (f", {self.family}" if self.family else "")
        head += f"; {', '.join(self.notes)})" if self.notes else ")"
        rows = [("loaded", self.loaded), ("missing", self.missing), ("unexpected", self.unexpected),
                ("dropped teacher", self.dropped), ("reset head", self.reset)]
        lines = [head, f"  {'status':<16}{'count':>6}  keys"]
        for name, keys in rows:
            if keys or name in ("loaded", "missing", "unexpected"):
                lines.append(f"  {name:<16}{len(keys):>6}  {_summarise(keys) if name != 'loaded' else ''}".rstrip())
        return "\n".join(lines)


def _architecture(keys: list) -> str | None:
    if any(k.startswith("contrastive.") for k in keys):
        return "two-tower ablation"
    if any("_contrast." in k for k in keys):  # the query stream of ReCon's two-stream blocks
        return "ReCon"
    if "img_token" in keys:
        return "vanilla multi-task ablation"
    if any(k.startswith("blocks.") for k in keys):
        return "Point-MAE"
    return None


def guess_family(keys) -> str:
    """What a checkpoint holds, judged from its key names, for messages: ``"ReCon pretraining"``,
    ``"Point-MAE finetune (classifier)"``, ``"ReCon zero-shot"``, ``"ReCon backbone (no head)"``,
    ``"ReCon part segmentation"`` or ``"no ReCon / Point-MAE model"``."""
    keys = [k[len("module."):] if k.startswith("module.") else k for k in map(str, keys)]
    encoder = [k[len("MAE_encoder."):] for k in keys if k.startswith("MAE_encoder.")]
    if encoder:
        return f"{_architecture(encoder) or 'unknown'} pretraining"
    arch = _architecture(keys)
    if arch is None:
        return "no ReCon / Point-MAE model"
    for prefixes, task in ((("cls_head_finetune.",), "finetune (classifier)"),
                           (("label_conv.", "propagation_0."), "part segmentation"),
                           (("text_proj.", "img_proj."), "zero-shot")):
        if any(k.startswith(prefixes) for k in keys):
            return f"{arch} {task}"
    return f"{arch} backbone (no head)"


def check_complete(report: "LoadReport", optional: tuple = (), target: str = "the model") -> None:
    """Refuse a partial load: raise :class:`~recon.errors.CheckpointError` when nothing was loaded, or
    when a model key that does not start with one of the ``optional`` prefixes (the task head) is missing.

    The message is one line: the file, the family it looks like, what is missing, and the way out
    (``strict=False`` loads it anyway).
    """
    needed = [k for k in report.missing if not k.startswith(tuple(optional))]
    if report.loaded and not needed:
        return
    what = (f"no key of it matches {target}" if not report.loaded else
            f"{len(needed)} of {len(report.loaded) + len(report.missing)} weights outside the task head "
            f"are missing ({_summarise(needed)})")
    raise CheckpointError(
        f"pretrained={report.source!r} looks like a {report.family or 'unknown'} checkpoint and does not fit "
        f"{target}: {what}; pass a checkpoint of this model's family, or strict=False to load what matches "
        "(the load report is then logged)"
    )


def _summarise(keys: list, limit: int = 8) -> str:
    """Short lists in full; longer ones grouped by first component: ``MAE_decoder.* (49), mask_token``."""
    if len(keys) <= 4:
        return ", ".join(keys)
    groups: dict[str, int] = {}
    for k in keys:
        g = k.split(".", 1)[0] + (".*" if "." in k else "")
        groups[g] = groups.get(g, 0) + 1
    parts = [f"{g} ({n})" if g.endswith(".*") else g for g, n in groups.items()]
    return ", ".join(parts[:limit]) + (f", ... ({len(parts) - limit} more groups)" if len(parts) > limit else "")


def _prefix(path) -> str:
    path = os.fspath(path)
    for s in _SUFFIXES:
        if path.endswith(s):
            return path[: -len(s)]
    return path


def _is_recon(path) -> bool:
    path = os.fspath(path)
    return path.endswith((".safetensors", ".json")) or (
        not os.path.isfile(path) and os.path.isfile(_prefix(path) + ".safetensors")
    )


def save_model(model: nn.Module, path, optimizer: torch.optim.Optimizer | None = None, **extra) -> str:
    """Write ``model`` in recon format (see the module docstring); returns the path prefix.

    Args:
        model: a model built by a registered factory (it carries ``model.config``).
        path: prefix such as ``"runs/best"`` (a ``.safetensors``/``.json``/``.pth`` suffix is dropped).
        optimizer: also write ``<prefix>.pth`` with ``{"optimizer": state_dict, **extra}``.
        extra: plain values (epoch, metrics, ...) for ``<prefix>.pth``.
    """
    from safetensors.torch import save_file

    from recon.atomic import atomic_save, atomic_write, atomic_write_json

    config = getattr(model, "config", None)
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError("save_model needs a model built by recon.models (it has no model.config dict with 'name')")
    prefix = _prefix(path)
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    config_json = json.dumps(config, sort_keys=True)
    # each file is replaced atomically, so a run killed mid-save keeps a loadable previous model
    atomic_write(prefix + ".safetensors",
                 lambda tmp: save_file(state, tmp, metadata={"format": "recon", "config": config_json}))
    from recon import __version__

    meta = {
        "format": "recon",
        "format_version": FORMAT_VERSION,
        "recon_version": __version__,
        "config": config,
        "weights": os.path.basename(prefix) + ".safetensors",
        "num_parameters": sum(p.numel() for p in model.parameters()),
    }
    atomic_write_json(prefix + ".json", meta, indent=2, sort_keys=True)
    if optimizer is not None or extra:
        payload = dict(extra)
        if optimizer is not None:
            payload["optimizer"] = optimizer.state_dict()
        atomic_save(payload, prefix + ".pth")
    return prefix


def _first_line(err: BaseException, limit: int = 160) -> str:
    text = str(err).strip().splitlines()
    text = text[0] if text else ""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _require_file(path: str) -> None:
    if not os.path.isfile(path):
        raise MissingFileError(f"checkpoint not found: {path}" + (" (a folder)" if os.path.isdir(path) else ""))
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path} is empty (0 bytes), not a checkpoint: was its save interrupted?")


def _load_safetensors(file: str) -> dict:
    from safetensors.torch import load_file

    _require_file(file)
    try:
        return load_file(file)
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for every kind of damage
        raise CheckpointError(f"{file} is not a readable safetensors file, truncated or corrupt "
                              f"({_first_line(e)})") from None


def _recon_config(prefix: str) -> dict:
    file = prefix + ".json"
    try:
        if os.path.isfile(file):
            with open(file) as f:
                meta = json.load(f)
            if not isinstance(meta, dict) or meta.get("format") != "recon" or not isinstance(meta.get("config"), dict):
                raise CheckpointError(f"{file} is not a recon model file (no format 'recon' / config)")
            return meta["config"]
        from safetensors import safe_open

        file = prefix + ".safetensors"
        with safe_open(file, framework="pt") as f:
            meta = f.metadata() or {}
        if "config" not in meta:
            raise CheckpointError(f"{file} carries no recon config and {prefix}.json is missing")
        return json.loads(meta["config"])
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - JSON or safetensors damage: one line naming the file
        raise CheckpointError(f"{file} cannot be read as a recon model file ({_first_line(e)})") from None


def read_model_config(path) -> tuple[dict, str]:
    """The model config of a file written by :func:`save_model` and its weights file.

    Returns:
        ``(config, weights)``: ``create_model(**config)`` rebuilds the model, ``weights`` is the
        ``.safetensors`` path to load into it (``recon.models.load_model`` does both).

    Raises:
        MissingFileError: no ``<prefix>.safetensors``.
        CheckpointError: the ``.json`` / header is unreadable or holds no recon config.
    """
    prefix = _prefix(path)
    if not os.path.isfile(prefix + ".safetensors"):
        raise MissingFileError(f"no recon weights at {prefix}.safetensors")
    return _recon_config(prefix), prefix + ".safetensors"


def load_training_state(path) -> dict:
    """The ``<prefix>.pth`` written by ``save_model(..., optimizer=..., **extra)``."""
    file = _prefix(path) + ".pth"
    if not os.path.isfile(file):
        raise MissingFileError(f"no training state at {file}")
    return _torch_load(file)


def _torch_load(path: str) -> object:
    """``torch.load(weights_only=True)``; every way a file can fail becomes one line naming it."""
    _require_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e):  # a well-formed pickle of arbitrary objects
            found = next((ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln), "")
            raise CheckpointError(
                f"{path} holds Python objects that torch.load(weights_only=True) refuses to unpickle ({found}); "
                "if you trust the file, load it yourself with torch.load(path, weights_only=False) and pass "
                "the resulting dict to load_checkpoint"
            ) from None
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: corrupt or not a torch.save file "
                              "(its pickle stream is garbled)") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {_first_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - zip, EOF, key and decode errors of a damaged file
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: truncated, corrupt or not a "
                              f"torch.save file ({_first_line(e)})") from None


def _check_state_dict(state: Mapping, where: str) -> dict:
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        shown = ", ".join(f"{k!r}: {type(state[k]).__name__}" for k in bad[:3]) + (", ..." if len(bad) > 3 else "")
        raise CheckpointError(f"{where}: {len(bad)} of {len(state)} state-dict entries are not (str, tensor) "
                              f"pairs ({shown}); a state dict maps parameter names to tensors")
    return dict(state)


def read_checkpoint(source) -> tuple[dict, str]:
    """Read a checkpoint into a flat ``{key: tensor}`` dict and name its format.

    Args:
        source: a recon prefix / ``.safetensors``, an official or raw ``.pth``, or an already
            loaded dict (checkpoint or state_dict).

    Returns:
        ``(state_dict, format)`` with format ``recon``, ``official`` (a ``base_model`` dict),
        ``state_dict`` (``model`` / ``state_dict`` entries or a raw dict).

    Raises:
        MissingFileError: no such file.
        CheckpointError: an empty, truncated, corrupt or non-checkpoint file, a file of pickled
            Python objects (``torch.load`` runs with ``weights_only=True``), no weights in it, or
            entries that are not tensors; always one line naming the file.
        TypeError: ``source`` is neither a path nor a dict.
    """
    if isinstance(source, Mapping):
        obj, where = source, "the given dict"
    elif isinstance(source, (str, os.PathLike)):
        path = where = os.fspath(source)
        if _is_recon(path):
            return _load_safetensors(_prefix(path) + ".safetensors"), "recon"
        obj = _torch_load(path)
    else:
        raise TypeError(f"checkpoint must be a path or a dict (state_dict), got {type(source).__name__}")
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{where}: expected a dict in the checkpoint, got {type(obj).__name__}")
    for key, fmt in (("base_model", "official"), ("model", "state_dict"), ("state_dict", "state_dict")):
        if isinstance(obj.get(key), Mapping):
            return _check_state_dict(obj[key], f"{where}[{key!r}]"), fmt
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return _check_state_dict(obj, where), "state_dict"
    raise CheckpointError(
        f"no weights found in {where}: expected a 'base_model', 'model' or 'state_dict' entry or a flat "
        f"state_dict of tensors; top-level keys are {sorted(map(str, obj))[:10]}"
    )


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix):] if key.startswith(prefix) else key


def load_checkpoint(model: nn.Module, path, strict: bool = False, reset_head: bool = False) -> LoadReport:
    """Load weights from any supported checkpoint into ``model``.

    Args:
        model: the target (a recon model; official key names).
        path: recon prefix / ``.safetensors``, official pretrain or finetune ``.pth``, raw
            state_dict ``.pth``, or an in-memory dict.
        strict: raise :class:`CheckpointMismatchError` when keys are missing or unexpected
            (dropped teacher keys and reset head keys do not count).
        reset_head: do not load ``cls_head_finetune.*``; keep the model's own head (e.g. to
            finetune a 15-class checkpoint on 40 classes).

    Returns:
        :class:`LoadReport`.

    Raises:
        CheckpointError: a checkpoint tensor's shape differs from the model's (names the key and
            both shapes), or the file cannot be read (see :func:`read_checkpoint`); a
            ``ValueError`` subclass.
        MissingFileError: no such file (a ``FileNotFoundError`` subclass).

    Loading never refuses a partial match by itself (unless ``strict``); :func:`check_complete`
    is the rule that ``pretrained=`` applies.
    """
    raw, fmt = read_checkpoint(path)
    source = "<state_dict>" if isinstance(path, Mapping) else os.fspath(path)
    target = model.state_dict()
    model_has_mae = any(k.startswith("MAE_encoder.") for k in target)
    notes = []
    state, dropped = {}, []
    stripped_module = False
    for k, v in raw.items():
        k2 = k
        while k2.startswith("module."):
            k2, stripped_module = k2[len("module."):], True
        if k2.startswith(TEACHER_PREFIXES):
            dropped.append(k2)
            continue
        state[k2] = v
    if stripped_module:
        notes.append("stripped 'module.'")
    is_pretrain = any(k.startswith("MAE_encoder.") for k in state)
    if fmt == "official":
        fmt = "official-pretrain" if is_pretrain else "official-finetune"
    if not model_has_mae:
        remapped = {}
        for k, v in state.items():
            k2 = k[len("MAE_encoder."):] if k.startswith("MAE_encoder.") else _strip(k, "base_model.")
            remapped[k2] = v
        if is_pretrain:
            notes.append("stripped 'MAE_encoder.'")
        state = remapped
    report = LoadReport(source, fmt, dropped=dropped, notes=notes, family=guess_family(raw))
    to_load = {}
    for k, v in state.items():
        if k not in target:
            report.unexpected.append(k)
            continue
        if reset_head and k.startswith(HEAD_PREFIXES):
            report.reset.append(k)
            continue
        if tuple(v.shape) != tuple(target[k].shape):
            hint = (
                " The classifier head differs (another number of classes?): pass reset_head=True to keep the "
                "model's freshly initialised head." if k.startswith(HEAD_PREFIXES) else ""
            )
            raise CheckpointError(
                f"shape mismatch for {k!r}: checkpoint has {tuple(v.shape)}, model has {tuple(target[k].shape)} "
                f"(from {source}).{hint}"
            )
        to_load[k] = v
    report.loaded = list(to_load)
    report.missing = [k for k in target if k not in to_load and k not in report.reset]
    if strict and not report.ok:
        raise CheckpointMismatchError(
            f"strict loading of {source} failed: {len(report.missing)} missing ({_summarise(report.missing)}), "
            f"{len(report.unexpected)} unexpected ({_summarise(report.unexpected)}); details via "
            "load_checkpoint(model, path, strict=False)"
        )
    model.load_state_dict(to_load, strict=False)
    return report
