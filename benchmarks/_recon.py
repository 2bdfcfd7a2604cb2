"""The recon every benchmark measures: the one Python imports (installed, or on PYTHONPATH), with its
compiled kernels. A benchmark of the pure-PyTorch fallback would be a wrong number, so it refuses.

Run from a checkout, ``python benchmarks/X.py`` imports the *installed* recon (the script's folder,
not the checkout, is on ``sys.path``): install it first (README: ``pip install .``).
"""

from __future__ import annotations

import os
import sys

BUILD = ("build the kernels: `pip install .` (README), or in a source checkout "
         "`python setup.py build_ext --inplace` and PYTHONPATH=<checkout>")


def require_compiled(allow_fallback: bool = False) -> str:
    """Imports recon and checks that ``recon._C`` loaded; returns a header line naming what is timed.

    Exits with a message saying how to build when recon is not importable or runs the fallback
    (unless ``allow_fallback``, then the header says so loudly).
    """
    try:
        import recon
        from recon.ops import backend_info
    except ImportError as exc:
        sys.exit(f"benchmarks: cannot import recon ({exc}); {BUILD}")
    where = os.path.dirname(os.path.abspath(recon.__file__))
    info = backend_info()
    if not info["compiled"]:
        msg = f"recon at {where} has no compiled kernels: {info['reason']}"
        if not allow_fallback:
            sys.exit(f"benchmarks: refusing to time the pure-PyTorch fallback. {msg}")
        banner = "!" * 78
        print(f"{banner}\nTIMING THE PURE-PYTORCH FALLBACK (--allow-fallback): {msg}\n{banner}", flush=True)
        return f"recon {recon.__version__} at {where}: FALLBACK (reference ops, not the kernels)"
    return (f"recon {recon.__version__} at {where}: compiled kernels (cpu {info['cpu']}, cuda {info['cuda']}, "
            f"built against torch {info['torch_built_against']}, running {info['torch_running']})")


def child_env() -> dict:
    """Environment for a child Python process that must import the same recon as this one."""
    import recon

    parent = os.path.dirname(os.path.dirname(os.path.abspath(recon.__file__)))
    path = [parent] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
