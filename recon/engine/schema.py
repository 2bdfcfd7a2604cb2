"""The run config's sections as dataclasses: every key the loops read, its type and its default, once.

A YAML config (:mod:`recon.config`) is read, merged and overridden as a plain nested mapping; the loops
then read it through :func:`run_config`, which fills the defaults below, converts each value to its
field's type and refuses a key that no section declares (:class:`~recon.errors.ConfigError` naming
it), so a misspelt key in a YAML file fails as loudly as a misspelt override.

Free-form sections: ``model`` (keyword arguments of the model factory, checked by it), ``data.args``
(keyword arguments of the dataset class) and ``teachers`` (read by :mod:`.teacher_cache`).
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from recon.errors import ConfigError

__all__ = ["DataSection", "OptimizerSection", "SchedulerSection", "TrainSection", "PretrainTrainSection",
           "EvalSection", "LogSection", "RunConfig", "run_config", "section", "STRICT_TASKS"]


@dataclass
class DataSection:
    """``data``: a ``recon.data`` dataset (canonical or class name, or ``module:Class``) and its arguments."""

    name: str
    root: Optional[str] = None
    train_split: str = "train"
    test_split: str = "test"
    args: dict = field(default_factory=dict)


@dataclass
class OptimizerSection:
    """``optimizer``: AdamW (or SGD) over the official parameter groups (:mod:`.optim`)."""

    lr: float
    name: str = "adamw"
    weight_decay: float = 0.05
    cls_lr_mult: float = 1.0
    betas: tuple = (0.9, 0.999)
    momentum: float = 0.9
    impl: str = "auto"


@dataclass
class SchedulerSection:
    """``scheduler``: the lr schedule (:class:`~.optim.LRSchedule`); ``t_initial`` None = the run's epochs."""

    name: str = "cos_epoch"
    t_initial: Optional[int] = None
    warmup_epochs: int = 10
    lr_min: float = 1e-6
    warmup_lr_init: float = 1e-6


@dataclass
class TrainSection:
    """``train``: the training loop. ``batch_size`` is the global batch of one optimizer step;
    ``npoints`` / ``point_all``: points per cloud and the FPS pool they are drawn from (finetuning).
    ``ckpt_every``: write the resumable ``ckpt-last.pt`` every this many epochs (and always after the last
    one); 0 = only after the last epoch (short runs such as few-shot folds, where it costs more than the epoch)."""

    epochs: int
    batch_size: int
    ckpt_every: int = 1
    compile: bool = False
    compile_fullgraph: bool = True
    accum_steps: int = 1
    num_workers: int = 0
    grad_clip: Optional[float] = None
    amp: Any = "none"
    transform: Optional[str] = None
    sync_bn: Any = False
    max_steps: Optional[int] = None
    npoints: Optional[int] = None
    point_all: Optional[int] = None


@dataclass
class PretrainTrainSection(TrainSection):
    """``train`` of a pretraining run: the official augmentation is the rotation about y."""

    transform: Optional[str] = "rotate"


@dataclass
class EvalSection:
    """``eval``: model selection (``best_on`` val | test | last) and the voting test.
    ``batch_size`` None = ``train.batch_size``; ``point_all`` None = ``train.point_all``."""

    best_on: str = "val"
    val_fraction: float = 0.1
    start_epoch: int = 1
    every: int = 1
    batch_size: Optional[int] = None
    votes: int = 10
    vote_transform: Optional[str] = None
    vote_seed: int = 0
    vote_repeats: int = 1
    point_all: Optional[int] = None


@dataclass
class LogSection:
    """``log``: a ``train_step`` record every ``every`` optimizer steps (0: off), tqdm bars, TensorBoard."""

    every: int = 20
    progress: bool = True
    tensorboard: bool = True
    quiet: bool = False


@dataclass
class RunConfig:
    """A whole pretraining or finetuning config, typed. ``raw`` is the mapping it was read from."""

    model: dict
    data: DataSection
    optimizer: OptimizerSection
    scheduler: SchedulerSection
    train: TrainSection
    task: Optional[str] = None
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    output_dir: Optional[str] = None
    resume: Any = None
    pretrained: Any = None
    teachers: Optional[dict] = None
    eval: EvalSection = field(default_factory=EvalSection)
    log: LogSection = field(default_factory=LogSection)
    raw: Any = field(default=None, repr=False, compare=False)


DEVICES = ("auto", "cpu", "cuda")
_SECTIONS = {"data": DataSection, "optimizer": OptimizerSection, "scheduler": SchedulerSection,
             "train": TrainSection, "eval": EvalSection, "log": LogSection}


def _convert(where: str, hint, value):
    """``value`` as the field type ``hint`` asks (int, float, bool, str, tuple, dict; Optional allowed)."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        hint = args[0]
    if hint is dict and value is None:  # `args: null` in a YAML file: no arguments
        return {}
    if hint is Any or value is None and hint is str:
        return value
    try:
        if hint is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if hint is str:
            return str(value)
        if hint is tuple:
            return tuple(value)
        if hint is dict:
            if not isinstance(value, Mapping):
                raise TypeError
            return dict(value)
    except (TypeError, ValueError):
        name = getattr(hint, "__name__", str(hint))
        raise ConfigError(f"{where} must be {'an' if name[0] in 'aeiou' else 'a'} {name}, got {value!r}") from None
    return value


def section(cls, data: Mapping | None, where: str, strict: bool = True):
    """One section dataclass from a mapping: defaults filled, values converted, unknown keys refused
    (``strict``) or left to the caller (the mapping keeps them)."""
    if isinstance(data, cls):
        return data
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "raw"}
    for key in data if strict else ():
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown config key '{where}.{key}'. Valid keys there: {sorted(fields)}.{hint}"
                              if where else f"unknown config key {key!r}. Valid keys: {sorted(fields)}.{hint}")
    values = {}
    for name, f in fields.items():
        full = f"{where}.{name}" if where else name
        if name in data:
            values[name] = _convert(full, hints[name], data[name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"config key {full!r} is required and missing")
    return cls(**values)


STRICT_TASKS = ("pretrain", "finetune")


def run_config(cfg, task: str | None = None) -> RunConfig:
    """The typed view of a run config (a :class:`recon.config.Config` or any nested mapping).

    Args:
        cfg: the merged config, or a :class:`RunConfig` (returned as it is).
        task: ``"pretrain"`` gives ``train.transform`` the pretraining default (``rotate``). The tasks of
            :data:`STRICT_TASKS` (this module describes every key they read) refuse unknown keys; another
            task's loop (one with keys of its own) gets the shared keys typed and reads its own from ``raw``.
    """
    if isinstance(cfg, RunConfig):
        return cfg
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"a run config must be a mapping, got {type(cfg).__name__}")
    strict = (task or cfg.get("task") or "finetune") in STRICT_TASKS
    top = {k: v for k, v in cfg.items() if k not in _SECTIONS}
    rc = section(_TopLevel, top, "", strict)
    if rc.device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {rc.device!r}")
    train_cls = PretrainTrainSection if (task or rc.task) == "pretrain" else TrainSection
    for key in ("model",):
        if key not in cfg or not isinstance(cfg[key], Mapping) or "name" not in cfg[key]:
            raise ConfigError(f"config section {key!r} with a 'name' is required")
    for name in ("data", "optimizer", "scheduler", "train"):
        if name not in cfg:
            raise ConfigError(f"config section {name!r} is required and missing")
    sections = {name: section(train_cls if name == "train" else cls, cfg.get(name), name, strict)
                for name, cls in _SECTIONS.items() if name in cfg or name in ("eval", "log")}
    return RunConfig(model=dict(cfg["model"]), teachers=cfg.get("teachers"), raw=cfg, task=rc.task, seed=rc.seed,
                     deterministic=rc.deterministic, device=rc.device, output_dir=rc.output_dir, resume=rc.resume,
                     pretrained=rc.pretrained, **sections)


@dataclass
class _TopLevel:
    """The top-level keys of a run config (the sections are read separately)."""

    model: Any = None
    teachers: Any = None
    task: Optional[str] = None
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    output_dir: Optional[str] = None
    resume: Any = None
    pretrained: Any = None
