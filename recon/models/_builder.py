"""How every zoo factory builds its model: the normalised config, the official encoder init and the
``pretrained=`` load. One copy for all families (ReCon, Point-MAE, the ablations), so a factory is a
signature plus one call.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from collections.abc import Mapping

from torch import nn

from recon.checkpoint import check_complete, load_checkpoint
from recon.errors import CheckpointError

logger = logging.getLogger("recon.models")

__all__ = ["init_vit_weights", "as_int", "resolve_num_group", "classifier_config", "pretrain_config", "build"]


def init_vit_weights(module: nn.Module) -> None:
    """The official encoder init: trunc_normal(0.02) Linear/Conv1d weights, zero bias, LN (1, 0)."""
    if isinstance(module, (nn.Linear, nn.Conv1d)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def as_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an ``int`` >= ``minimum``: ``TypeError`` for a non-number (or a bool), ``ValueError``
    for a fraction such as ``num_classes=2.5`` (which ``int()`` would silently truncate) or a small value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if not isinstance(value, numbers.Integral) and not (math.isfinite(value) and float(value).is_integer()):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def resolve_num_group(npoints: int, num_group: int | None) -> int:
    """``num_group``, or ``npoints // 16`` when it is ``None``; both checked against ``npoints``."""
    npoints = as_int("npoints", npoints)
    g = npoints // 16 if num_group is None else as_int("num_group", num_group)
    if g < 1 or g > npoints:
        raise ValueError(f"num_group must be in [1, npoints={npoints}], got {g}")
    return g


def classifier_config(name, num_classes, npoints, num_group, group_size, drop_path_rate, head, depth, embed_dim,
                      num_heads, **extra) -> dict:
    """The normalised ``model.config`` of a classifier factory (``num_group`` resolved)."""
    return dict(
        name=name,
        num_classes=as_int("num_classes", num_classes, 0),
        npoints=as_int("npoints", npoints),
        num_group=resolve_num_group(npoints, num_group),
        group_size=as_int("group_size", group_size),
        drop_path_rate=float(drop_path_rate),
        head=head,
        depth=as_int("depth", depth, 0),
        embed_dim=as_int("embed_dim", embed_dim),
        num_heads=as_int("num_heads", num_heads),
        **extra,
    )


# integer settings of the pretraining factories and their smallest value (0: "none", e.g. no img projection)
_PRETRAIN_INTS = dict(npoints=1, num_group=1, group_size=1, depth=0, embed_dim=1, num_heads=1, decoder_depth=0,
                      decoder_num_heads=1, img_dim=0, text_dim=0)


def pretrain_config(name: str, **kw) -> dict:
    """The ``model.config`` of a pretraining factory: ``decoder_num_heads=None`` follows ``num_heads``."""
    if kw.get("decoder_num_heads") is None:  # follow an overridden num_heads
        kw["decoder_num_heads"] = kw["num_heads"]
    for key, minimum in _PRETRAIN_INTS.items():
        if key in kw:
            kw[key] = as_int(key, kw[key], minimum)
    if kw["num_group"] > kw["npoints"]:
        raise ValueError(f"num_group ({kw['num_group']}) must not exceed npoints ({kw['npoints']})")
    return dict(name=name, **kw)


def build(cls, config: dict, pretrained, strict: bool = True) -> nn.Module:
    """Instantiate ``cls`` from ``config`` (minus ``name``/``npoints``), attach ``model.config`` and load
    ``pretrained`` through ``recon.checkpoint.load_checkpoint`` (report in ``model.load_report``).

    With ``strict`` (the factories' default) a partial load is refused with a
    :class:`~recon.errors.CheckpointError`: nothing matched, or a key outside the model's
    ``task_keys`` (its task head; the file's extra keys never count) is missing. ``strict=False``
    loads whatever matches and logs the report as a warning.
    """
    model = cls(**{k: v for k, v in config.items() if k not in ("name", "npoints")})
    model.config = config
    if pretrained is None or pretrained is False or (isinstance(pretrained, str) and not pretrained):
        return model
    if pretrained is True:
        raise CheckpointError(
            "pretrained=True: recon hosts no weights to download; pass the path of a checkpoint (an official "
            "ReCon / Point-MAE .pth, or a file written by recon.checkpoint.save_model) or a state_dict"
        )
    if not isinstance(pretrained, (str, os.PathLike, Mapping)):
        raise TypeError(f"pretrained must be a path or a state_dict, got {type(pretrained).__name__}")
    report = model.load_report = load_checkpoint(model, pretrained)
    name = config.get("name", cls.__name__)
    try:
        check_complete(report, getattr(model, "task_keys", ()), name)
    except CheckpointError:
        if strict:
            raise
        logger.warning("%s: partial load of pretrained weights accepted (strict=False)\n%s", name, report)
    else:
        logger.info("%s: loaded pretrained weights\n%s", name, report)
    return model
