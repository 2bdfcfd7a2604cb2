"""Optional dependencies: one place that knows which ``pip install 'recon[extra]'`` provides what.

A plain ``pip install .`` installs what ``recon demo`` and the training commands need. Everything
else is an extra, and importing it through :func:`require` fails with one line naming the extra::

    sklearn = require("sklearn", extra="eval", purpose="the linear-SVM probe")
"""

from __future__ import annotations

import importlib
import importlib.util

from .errors import ReconError

__all__ = ["OptionalDependencyError", "require", "available", "EXTRAS"]

# extra -> (import name -> pip distribution); setup.py builds extras_require from this table
EXTRAS = {
    "teachers": {"open_clip": "open_clip_torch"},
    "eval": {"sklearn": "scikit-learn", "matplotlib": "matplotlib"},
    "data": {"h5py": "h5py"},
    "tensorboard": {"tensorboard": "tensorboard"},
}


class OptionalDependencyError(ReconError, ImportError):
    """An optional package is missing; the message names the extra that installs it."""


def _extra_of(module: str) -> str | None:
    top = module.split(".", 1)[0]
    return next((extra for extra, mods in EXTRAS.items() if top in mods), None)


def available(module: str) -> bool:
    """Whether ``module`` (its top-level package) can be imported, without importing it."""
    return importlib.util.find_spec(module.split(".", 1)[0]) is not None


def require(module: str, extra: str | None = None, purpose: str = ""):
    """Import and return ``module``; if it is not installed, raise one line naming the extra.

    Args:
        module: the import name (``"sklearn.svm"``, ``"open_clip.tokenizer"``).
        extra: the ``recon[...]`` extra that installs it (default: looked up in :data:`EXTRAS`).
        purpose: what needs it, for the message (``"the linear-SVM probe"``).
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".", 1)[0]
        if exc.name is None or exc.name.split(".", 1)[0] != top:
            raise  # the package is there but one of ITS imports is missing: a real error, keep it
        extra = extra or _extra_of(module)
        dist = EXTRAS.get(extra, {}).get(top, top)
        need = f" for {purpose}" if purpose else ""
        how = f"pip install 'recon[{extra}]'" if extra else f"pip install {dist}"
        raise OptionalDependencyError(f"recon needs the optional package {dist!r}{need}: {how}") from None
