"""The applications: one module per ``recon`` command, built from the engine's and eval's primitives.

Each command module has ``NAME``, ``add_parser(subparsers)`` (its arguments; it sets ``_run``) and a
``run``-like function taking those arguments as plain keywords, so it is as usable from Python as from
the shell. :mod:`recon.cli` only parses and dispatches. :mod:`.console` routes the library's log lines.
A new command is a new module here with those two names: :func:`commands` finds it.
"""

from __future__ import annotations

import importlib
import pkgutil

__all__ = ["commands"]

# the order of `recon --help`; a command module not listed here follows, by name
ORDER = ("demo", "pretrain", "finetune", "test", "zoo", "configs", "fewshot", "zeroshot", "svm", "visualize",
         "report")


def commands() -> list:
    """Every command module of this package (those defining ``NAME`` and ``add_parser``), in help order."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_") and m.name != "console")
    names = [n for n in ORDER if n in names] + [n for n in names if n not in ORDER]
    modules = [importlib.import_module(f"{__name__}.{n}") for n in names]
    return [m for m in modules if hasattr(m, "NAME") and hasattr(m, "add_parser")]
