"""The ``recon`` command.

    recon demo [--out DIR] [--epochs N]                 # synthetic set → pretrain → finetune → vote test
    recon pretrain CONFIG [key=value ...] [--resume [PATH]]
    recon finetune CONFIG [key=value ...] [--pretrained PATH] [--resume [PATH]]
    recon test CONFIG --ckpt PATH [--votes 10] [--repeats 1] [key=value ...]
    recon zoo [--npoints 1024]

CONFIG is a YAML file or the name of a shipped config (``finetune/scan_hardest``, ``demo/pretrain``;
``recon configs`` lists them). Overrides are dotted ``key=value`` pairs (``optimizer.lr=1e-4``).
Distributed: ``torchrun --nproc_per_node=N -m recon.cli pretrain CONFIG``.
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["main", "build_parser"]


def _add_run_args(p: argparse.ArgumentParser, resume: bool = True) -> None:
    p.add_argument("config", help="YAML file or shipped config name (see `recon configs`)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    p.add_argument("--out", help="output folder (sets output_dir)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (sets train.compile=true)")
    if resume:
        p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="PATH",
                       help="continue from PATH, or from <output_dir>/ckpt-last.pt when no PATH is given")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recon", description="ReCon point-cloud pretraining and finetuning",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("demo", help="the whole pipeline on the built-in synthetic shapes (≈10 min on 2 cores)")
    p.add_argument("--out", default=os.path.join("runs", "demo"), help="output folder (default runs/demo)")
    p.add_argument("--epochs", type=int, default=None,
                   help="pretrain and finetune epochs (default: the demo configs'; 1 = a smoke run)")
    p.add_argument("--num-per-class", type=int, default=None, help="synthetic shapes per class and split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("pretrain", help="pretrain a ReCon model (configs/pretrain/*.yaml)")
    _add_run_args(p)
    p = sub.add_parser("finetune", help="finetune a classifier (configs/finetune/*.yaml)")
    _add_run_args(p)
    p.add_argument("--pretrained", help="pretrained checkpoint (recon or official .pth); sets `pretrained`")

    p = sub.add_parser("test", help="voting test of a finetuned checkpoint")
    _add_run_args(p, resume=False)
    p.add_argument("--ckpt", default=None, help="finetuned checkpoint (recon or official .pth); not with --seeds")
    p.add_argument("--votes", type=int, default=None, help="votes per pass (default eval.votes, official 10)")
    p.add_argument("--repeats", type=int, default=None,
                   help="vote passes; the official reports the max of 299 (optimistic); default 1")
    p.add_argument("--seed", type=int, default=None, help="vote seed (default eval.vote_seed)")
    from recon.eval.voting import add_voting_args

    add_voting_args(p)  # --official-voting, --seeds N, --result

    p = sub.add_parser("zoo", help="list the models with parameters and FLOPs")
    p.add_argument("--npoints", type=int, default=1024, help="points per cloud for the FLOP count")
    p.add_argument("--num-classes", type=int, default=15)
    p.add_argument("--no-flops", action="store_true", help="skip the FLOP count (faster)")

    sub.add_parser("configs", help="list the shipped configs")

    from recon.eval import PARSERS  # fewshot, zeroshot, svm, visualize, report

    for add in PARSERS:
        add(sub)
    return parser


def _load(args, extra: list[str]):
    from recon.config import load_config

    overrides = list(args.overrides) + extra
    if getattr(args, "out", None):
        overrides.append(f"output_dir={args.out}")
    if getattr(args, "resume", None):
        overrides.append(f"resume={args.resume}")
    if getattr(args, "pretrained", None):
        overrides.append(f"pretrained={args.pretrained}")
    if getattr(args, "compile", False):
        overrides.append("train.compile=true")
    return load_config(args.config, overrides)


def _cmd_configs() -> int:
    from recon.config import config_dir

    root = config_dir()
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            if name.endswith(".yaml"):
                print(os.path.relpath(os.path.join(folder, name), root)[: -len(".yaml")])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``recon`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "configs":
            return _cmd_configs()
        if args.command == "zoo":
            from recon.engine.zoo import print_zoo

            print_zoo(npoints=args.npoints, num_classes=args.num_classes, flops=not args.no_flops)
            return 0
        if args.command == "demo":
            from recon.engine.demo import run_demo

            summary = run_demo(out=args.out, epochs=args.epochs, num_per_class=args.num_per_class,
                               seed=args.seed, threads=args.threads, quiet=args.quiet)
            return 0 if summary else 1
        if args.command == "pretrain":
            from recon.engine.train_pretrain import pretrain

            pretrain(_load(args, []))
            return 0
        if args.command == "finetune":
            from recon.engine.train_finetune import finetune

            finetune(_load(args, []))
            return 0
        if args.command == "test":
            from recon.eval.voting import run_test

            if not args.seeds and not args.ckpt:
                raise ValueError("recon test needs --ckpt PATH (a finetuned checkpoint), or --seeds N")
            run_test(args, _load(args, []))
            return 0
        if getattr(args, "func", None):
            args.func(args)
            return 0
    except (KeyError, ValueError, FileNotFoundError) as exc:
        # user mistakes: one readable line, no traceback (RECON_DEBUG=1 shows it)
        if os.environ.get("RECON_DEBUG"):
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"recon {args.command}: error: {msg}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
