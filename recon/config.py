"""Experiment configs: YAML files with ``_base_`` inheritance and dotted ``key=value`` overrides.

A config is a nested dict. A file may name one or more parent files in ``_base_`` (paths relative
to the file); parents are merged first, in order, and the file's own keys win, recursively for
nested mappings (a mapping marked ``_replace_: true`` replaces its parent's instead). Command-line overrides use dotted keys (``optimizer.lr=1e-4``); their values are
parsed as YAML (``1e-4`` → float, ``[1, 2]`` → list, ``null`` → None). Overriding a key that no
file declares is an error whose message lists the valid keys, so a typo never goes unnoticed;
prefix the key with ``+`` (``+model.depth=4``) to add a new key on purpose.

Example:
    >>> cfg = load_config("configs/finetune/scan_hardest.yaml", ["optimizer.lr=1e-5"])
    >>> cfg.optimizer.lr
    1e-05
"""

from __future__ import annotations

import copy
import difflib
import os
from typing import Any, Iterable, Mapping

import yaml

from recon.errors import ConfigError, MissingFileError

__all__ = ["Config", "ConfigKeyError", "load_config", "apply_overrides", "merge", "config_dir",
           "resolve_config_path"]


class ConfigKeyError(ConfigError, KeyError):
    """An override names a key the config does not have (also a ``KeyError``, as a lookup miss is)."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class Config(dict):
    """A dict whose keys also read as attributes (``cfg.optimizer.lr``); nested dicts are Configs."""

    def __init__(self, data: Mapping | None = None):
        super().__init__()
        for key, value in (data or {}).items():
            self[key] = value

    def __setitem__(self, key, value):
        super().__setitem__(key, _wrap(value))

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(
                f"config has no key {key!r}; valid keys: {sorted(self.keys())}"
            ) from None

    def __setattr__(self, key, value):
        self[key] = value

    def __deepcopy__(self, memo):
        return Config(copy.deepcopy(dict(self), memo))

    def to_dict(self) -> dict:
        """A plain-dict deep copy (for YAML/JSON dumps and checkpoints)."""
        return {k: v.to_dict() if isinstance(v, Config) else copy.deepcopy(v) for k, v in self.items()}

    def get_path(self, dotted: str, default: Any = None) -> Any:
        """``cfg.get_path("a.b.c")``: the nested value, or ``default`` when a level is missing."""
        node: Any = self
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node


def _wrap(value):
    if isinstance(value, Config):
        return value
    if isinstance(value, Mapping):
        return Config(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def config_dir() -> str:
    """The folder holding the shipped YAML configs: ``recon/configs`` (installed with the package;
    the repository's top-level ``configs`` is a link to it)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def resolve_config_path(path: str) -> str:
    """``path`` itself when it exists, else the shipped config of that name (``demo/pretrain``)."""
    if os.path.isfile(path):
        return path
    name = path if path.endswith((".yaml", ".yml")) else path + ".yaml"
    shipped = os.path.join(config_dir(), name)
    if os.path.isfile(shipped):
        return shipped
    raise MissingFileError(
        f"config {path!r} not found (neither as a file nor as {shipped!r}); "
        f"shipped configs live in {config_dir()!r}"
    )


def merge(base: Mapping, override: Mapping) -> dict:
    """Recursive merge: mappings merge key by key, anything else in ``override`` replaces.

    A mapping in ``override`` with ``_replace_: true`` replaces the base mapping instead of
    merging into it (e.g. a dataset's ``args`` that must not inherit the parent's keys).
    """
    out = {k: copy.deepcopy(v) for k, v in base.items()}
    for key, value in override.items():
        if isinstance(value, Mapping) and value.get("_replace_"):
            out[key] = {k: copy.deepcopy(v) for k, v in value.items() if k != "_replace_"}
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: str, _seen: tuple = ()) -> dict:
    path = os.path.abspath(path)
    if path in _seen:
        raise ConfigError(f"config {path!r}: _base_ cycle through {list(_seen)}")
    if not os.path.isfile(path):
        raise MissingFileError(f"config file {path!r} does not exist")
    with open(path) as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config {path!r} is not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"config {path!r} must hold a mapping at the top level, got {type(data).__name__}")
    bases = data.pop("_base_", None) or []
    if isinstance(bases, str):
        bases = [bases]
    merged: dict = {}
    for base in bases:
        merged = merge(merged, _read_yaml(os.path.join(os.path.dirname(path), base), _seen + (path,)))
    return merge(merged, data)


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(cfg: Mapping, overrides: Iterable[str]) -> Config:
    """Apply ``key.sub=value`` overrides; unknown keys raise :class:`ConfigKeyError` listing the valid ones.

    Args:
        cfg: the config to start from (left unchanged).
        overrides: strings ``dotted.key=value``; a leading ``+`` allows creating a new key.

    Returns:
        A new :class:`Config`.
    """
    out = Config(copy.deepcopy(dict(cfg)))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. optimizer.lr=1e-4)")
        key, text = item.split("=", 1)
        key = key.strip()
        create = key.startswith("+")
        key = key.lstrip("+")
        if not key or any(not p for p in key.split(".")):
            raise ConfigError(f"override {item!r}: empty key part in {key!r}")
        parts = key.split(".")
        node = out
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if not isinstance(node, Mapping):
                where = ".".join(parts[:depth])
                raise ConfigKeyError(f"override {item!r}: {where!r} is a value ({node!r}), not a section")
            if part not in node:
                if not create:
                    where = ".".join(parts[:depth]) or "<top level>"
                    close = difflib.get_close_matches(part, [str(k) for k in node], n=1)
                    hint = f" Did you mean {close[0]!r}?" if close else ""
                    raise ConfigKeyError(
                        f"unknown config key {key!r}: {where} has no {part!r}. "
                        f"Valid keys there: {sorted(node)}.{hint} (prefix with + to add a new key)"
                    )
                if not last:
                    node[part] = Config()
            if last:
                node[part] = _parse_value(text)
            else:
                node = node[part]
    return out


def load_config(path: str, overrides: Iterable[str] = ()) -> Config:
    """Read a YAML config (resolving ``_base_``) and apply overrides.

    Args:
        path: a YAML file, or the name of a shipped config such as ``"demo/finetune"``.
        overrides: ``dotted.key=value`` strings.
    """
    return apply_overrides(_read_yaml(resolve_config_path(path)), overrides)
