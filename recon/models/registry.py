"""Model registry: ``register_model``, ``create_model``, ``load_model``, ``list_models`` (timm style).

Every entry is a factory function whose keyword defaults are the official configuration
values; :func:`model_defaults` reads them back. A model built by a factory carries
``model.config`` = ``{"name": ..., **kwargs}``, so ``create_model(**model.config)`` rebuilds it
(``pretrained`` is never recorded: weights travel in checkpoints, see ``recon.checkpoint``), and
:func:`load_model` rebuilds a model saved by ``recon.checkpoint.save_model`` that way.
"""

from __future__ import annotations

import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from recon.checkpoint import load_checkpoint, read_model_config

__all__ = ["register_model", "create_model", "load_model", "list_models", "model_defaults", "model_info", "ModelInfo"]


@dataclass(frozen=True)
class ModelInfo:
    """One registry entry.

    Attributes:
        name: registered name (the factory's ``__name__`` unless given).
        fn: the factory.
        kind: ``"classifier"``, ``"pretrain"``, ``"zeroshot"``.
        description: one line for tables.
        paper: figures the paper prints for this model (e.g. ``{"params_m": 43.6, "gflops": 5.3}``).
    """

    name: str
    fn: Callable[..., nn.Module]
    kind: str = "classifier"
    description: str = ""
    paper: dict = field(default_factory=dict)


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    fn: Callable | None = None,
    *,
    name: str | None = None,
    kind: str = "classifier",
    description: str = "",
    paper: dict | None = None,
):
    """Register a model factory; usable as ``@register_model`` or ``@register_model(kind=...)``.

    Raises:
        ValueError: when the name is already registered.
    """

    def wrap(f: Callable) -> Callable:
        key = name or f.__name__
        if key in _REGISTRY and _REGISTRY[key].fn is not f:
            raise ValueError(f"a model named {key!r} is already registered")
        doc = description or (inspect.getdoc(f) or "").split("\n")[0]
        _REGISTRY[key] = ModelInfo(key, f, kind, doc, dict(paper or {}))
        return f

    return wrap(fn) if fn is not None else wrap


def list_models(pattern: str = "*", kind: str | None = None) -> list[str]:
    """Sorted registered names matching a shell-style ``pattern`` (and ``kind`` when given)."""
    return sorted(
        n for n, info in _REGISTRY.items() if fnmatch.fnmatch(n, pattern) and (kind is None or info.kind == kind)
    )


def model_info(name: str) -> ModelInfo:
    """The registry entry of ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None


def model_defaults(name: str) -> dict[str, Any]:
    """The default keyword arguments (official configuration values) of a registered factory."""
    sig = inspect.signature(model_info(name).fn)
    return {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model: ``create_model("recon_base", num_classes=15, pretrained="ckpt.pth")``.

    Keyword arguments that are ``None`` are dropped so the factory defaults apply, except
    ``num_group`` whose ``None`` means "``npoints // 16``" anyway. Unknown keywords raise
    ``TypeError`` naming them and the accepted ones.
    """
    fn = model_info(name).fn
    params = inspect.signature(fn).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise TypeError(f"{name}() got unexpected keyword argument(s) {unknown}; accepted: {sorted(params)}")
    return fn(**{k: v for k, v in kwargs.items() if v is not None})


def load_model(path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model saved by ``recon.checkpoint.save_model``: ``create_model(**config)`` from the
    file's config, then its weights loaded strictly.

    Args:
        path: the prefix given to ``save_model`` (``"runs/best"``) or its ``.safetensors``/``.json``.
        map_location: device the model is moved to.
    """
    config, weights = read_model_config(path)
    model = create_model(**config)
    load_checkpoint(model, weights, strict=True)
    return model.to(map_location)
