"""``recon finetune CONFIG [key=value ...] [--pretrained PATH] [--resume [PATH]]``: a finetuning run."""

from __future__ import annotations

from ._args import add_run_args, load_run_config, with_compile

NAME = "finetune"


def add_parser(sub):
    p = sub.add_parser(NAME, help="finetune a classifier (configs/finetune/*.yaml)")
    add_run_args(p)
    p.add_argument("--pretrained", help="pretrained checkpoint (recon or official .pth); sets `pretrained`")
    p.set_defaults(_run=run)
    return p


def run(config: str, overrides=(), out: str | None = None, resume: str | None = None, compile: bool = False,
        pretrained: str | None = None) -> dict:
    """Finetune ``config`` (from ``pretrained`` when given); returns the run's summary."""
    from recon.engine.train_finetune import finetune

    return finetune(load_run_config(config, with_compile(overrides, compile), out=out, resume=resume,
                                    pretrained=pretrained))
