"""Argument pieces several commands share, and the checks that turn a bad argument into one clear line."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from recon.errors import ConfigError

__all__ = ["add_run_args", "with_compile", "load_run_config", "add_model_args", "parse_kv", "positive", "check_out_path"]


def add_run_args(p: argparse.ArgumentParser, resume: bool = True) -> None:
    """CONFIG, ``key=value`` overrides, ``--out`` (and ``--resume``) of the commands that run a config."""
    p.add_argument("config", help="YAML file or shipped config name (see `recon configs`)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    p.add_argument("--out", help="output folder (sets output_dir)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (sets train.compile=true)")
    if resume:
        p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="PATH",
                       help="continue from PATH, or from <output_dir>/ckpt-last.pt when no PATH is given")


def with_compile(overrides, compile: bool = False) -> list[str]:
    """``overrides`` plus ``train.compile=true`` for ``--compile``."""
    return list(overrides) + (["train.compile=true"] if compile else [])


def load_run_config(config: str, overrides=(), out: str | None = None, resume: str | None = None,
                    pretrained: str | None = None):
    """Load ``config`` with its overrides; ``out``/``resume``/``pretrained`` set those keys."""
    from recon.config import load_config

    extra = [f"{k}={v}" for k, v in (("output_dir", out), ("resume", resume), ("pretrained", pretrained)) if v]
    return load_config(config, list(overrides) + extra)


def add_model_args(p: argparse.ArgumentParser, model: str) -> None:
    """``--model``, ``--model-args`` and ``--data-args`` of the frozen-feature protocols."""
    p.add_argument("--model", default=model, help=f"registry model (default {model})")
    p.add_argument("--model-args", nargs="*", default=[], metavar="KEY=VALUE",
                   help="extra model keyword arguments, e.g. depth=2 (must match the checkpoint)")
    p.add_argument("--data-args", nargs="*", default=[], metavar="KEY=VALUE",
                   help="extra dataset keyword arguments, e.g. num_per_class=10 for the synthetic set")


def parse_kv(items, what: str) -> dict:
    """``["depth=2", "head=linear"]`` -> ``{"depth": 2, "head": "linear"}`` (values parsed as YAML)."""
    import yaml

    out = {}
    for item in items or ():
        key, sep, text = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what}: expected key=value, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError:
            out[key.strip()] = text
    return out


def positive(value: int | None, what: str, minimum: int = 1) -> int | None:
    """``value`` when it is None or an integer >= ``minimum``; else a ConfigError naming ``what``."""
    if value is not None and value < minimum:
        raise ConfigError(f"{what} must be an integer >= {minimum}, got {value}")
    return value


def check_out_path(path: str | os.PathLike | None, what: str = "--out") -> None:
    """Refuse, before any work, an output file whose folder cannot exist (a file in the way, no permission)."""
    if not path:
        return
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"{what} {str(path)!r}: {str(folder)!r} is not a folder, so the file cannot be written")
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"{what} {str(path)!r}: no permission to write in {str(folder)!r}")
    if Path(path).is_dir():
        raise ConfigError(f"{what} {str(path)!r} is a folder; give a file path")
