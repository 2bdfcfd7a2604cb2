"""``train.compile``: run a model's forward through ``torch.compile`` without changing what it saves.

The model's ``forward`` is replaced, on the instance, by its compiled version. Nothing is wrapped, so
``state_dict()`` keys stay plain (no ``_orig_mod.``), DDP wraps the same module object (its hooks
run eagerly around the compiled forward), and the evaluation loops, which take the unwrapped
model, run compiled as well (``eval()`` gives one more graph, guarded on ``training``).

Keys (section ``train``):

* ``compile``: false (default) | true.
* ``compile_fullgraph``: true (default): a graph break is an error, so a model that stops tracing
  fully is noticed; false lets dynamo split the graph (e.g. a model that takes Python strings).

Batch sizes: the training loaders drop their last incomplete batch; elsewhere (an evaluation split's
smaller last batch) torch's automatic dynamic shapes recompile once with a symbolic batch dimension,
and never again in later epochs.

The first compiled call (tracing and code generation) is timed and logged once through the
``recon`` logger (or the run logger passed in).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import torch

from recon.errors import ConfigError

__all__ = ["compile_model", "compile_options"]

_log = logging.getLogger("recon.compile")


def compile_options(train_cfg) -> dict | None:
    """``None`` when ``train.compile`` is off, else the keyword arguments of :func:`compile_model`.
    ``train_cfg``: the ``train`` section as a mapping or as the engine's typed section (or None)."""

    def get(key, default):
        if train_cfg is None:
            return default
        if isinstance(train_cfg, Mapping):
            return train_cfg.get(key, default)
        return getattr(train_cfg, key, default)

    value = get("compile", False)
    if value in (None, False):
        return None
    if value is not True:
        raise ConfigError(f"train.compile must be true or false, got {value!r}")
    fullgraph = get("compile_fullgraph", True)
    if not isinstance(fullgraph, bool):
        raise ConfigError(f"train.compile_fullgraph must be true or false, got {fullgraph!r}")
    return {"fullgraph": fullgraph}


def compile_model(model: torch.nn.Module, fullgraph: bool = True, dynamic: bool | None = None,
                  logger=None) -> torch.nn.Module:
    """Compile ``model.forward`` in place and return ``model`` (the same object).

    Call it before DDP wrapping. The compile time of the first call is logged once (``logger.info``
    when given, else the ``recon.compile`` logger).
    """
    if getattr(model, "_recon_compiled", False):
        return model
    compiled = torch.compile(model.forward, fullgraph=fullgraph, dynamic=dynamic)
    state = {"first": True}
    say = logger.info if logger is not None else _log.info

    def forward(*args, **kwargs):
        if not state["first"]:
            return compiled(*args, **kwargs)
        state["first"] = False
        t0 = time.perf_counter()
        out = compiled(*args, **kwargs)
        say(f"[compile] {type(model).__name__}: first compiled call (fullgraph={fullgraph}, dynamic={dynamic}) "
            f"took {time.perf_counter() - t0:.1f}s")
        return out

    model.forward = forward
    model._recon_compiled = True
    return model
