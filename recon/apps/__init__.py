"""The applications: one module per ``recon`` command, built from the engine's and eval's primitives.

Each command module has ``NAME``, ``add_parser(subparsers)`` (its arguments; it sets ``_run``) and a
``run``-like function taking those arguments as plain keywords, so it is as usable from Python as from
the shell. :mod:`recon.cli` only parses and dispatches. :mod:`.console` routes the library's log lines.
"""

from . import configs, demo, fewshot, finetune, pretrain, report, svm, test, visualize, zeroshot, zoo

COMMANDS = (demo, pretrain, finetune, test, zoo, configs, fewshot, zeroshot, svm, visualize, report)

__all__ = ["COMMANDS"]
