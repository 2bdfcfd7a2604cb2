"""``recon pretrain CONFIG [key=value ...] [--resume [PATH]]``: a pretraining run (configs/pretrain/*.yaml)."""

from __future__ import annotations

from ._args import add_run_args, load_run_config, with_compile

NAME = "pretrain"


def add_parser(sub):
    p = sub.add_parser(NAME, help="pretrain a ReCon model (configs/pretrain/*.yaml)")
    add_run_args(p)
    p.set_defaults(_run=run)
    return p


def run(config: str, overrides=(), out: str | None = None, resume: str | None = None, compile: bool = False) -> dict:
    """Pretrain ``config``; returns the run's summary."""
    from recon.engine.train_pretrain import pretrain

    return pretrain(load_run_config(config, with_compile(overrides, compile), out=out, resume=resume))
