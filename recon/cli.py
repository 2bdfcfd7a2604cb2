"""The ``recon`` command: parses the arguments and dispatches to :mod:`recon.apps`.

    recon demo [--out DIR] [--epochs N]                 # synthetic set → pretrain → finetune → vote test
    recon pretrain CONFIG [key=value ...] [--resume [PATH]]
    recon finetune CONFIG [key=value ...] [--pretrained PATH] [--resume [PATH]]
    recon test CONFIG --ckpt PATH [--votes 10] [--repeats 1] [key=value ...]
    recon zoo [--npoints 1024]

CONFIG is a YAML file or the name of a shipped config (``finetune/scan_hardest``, ``demo/pretrain``;
``recon configs`` lists them). Overrides are dotted ``key=value`` pairs (``optimizer.lr=1e-4``).
Distributed: ``torchrun --nproc_per_node=N -m recon.cli pretrain CONFIG``.

A mistake the user can fix (an argument, a config key, a missing or malformed data or weights file)
is reported as one line and exit status 2; ``RECON_DEBUG=1`` shows its traceback. Anything else is a
bug in recon and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["main", "build_parser", "parse"]


def build_parser() -> argparse.ArgumentParser:
    from recon.apps import commands

    parser = argparse.ArgumentParser(prog="recon", description="ReCon point-cloud pretraining and finetuning",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in commands():
        command.add_parser(sub)
    return parser


def parse(argv: list[str] | None = None) -> dict:
    """The arguments as a dict (``command``, ``_run`` and the command's own). ``key=value`` overrides may
    stand before or after the options (``recon finetune CONFIG --pretrained P data.root=D``): argparse
    alone would stop at the first option, so the command's own parser reads its arguments intermixed."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    ns, extra = parser.parse_known_args(argv)
    if not extra:
        return vars(ns)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[ns.command]
    args = vars(sub.parse_intermixed_args(argv[argv.index(ns.command) + 1:]))
    args["command"] = ns.command
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``recon`` console script; returns the exit status."""
    from recon.apps.console import setup_logging
    from recon.errors import ReconError

    args = parse(argv)
    command, run = args.pop("command"), args.pop("_run")
    setup_logging()
    try:
        run(**args)
    except ReconError as exc:
        if os.environ.get("RECON_DEBUG"):
            raise
        # one line naming the problem (a data-layout error adds the expected layout below it)
        print(f"recon {command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of our stdout went away (`recon zoo | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
