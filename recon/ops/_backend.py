"""Loads the compiled kernels ``recon._C`` and decides, per call, whether they can run.

Without the extension (not built, or built against another torch) every ``recon.ops`` function
falls back to the plain-PyTorch :mod:`recon.ops.reference` and warns once, with the command
that fixes it. ``RECON_REQUIRE_EXTENSION=1`` turns that fallback into an ``ImportError`` (CI
uses it to make sure the kernels are what gets tested).
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from typing import Any

import torch

__all__ = ["HAVE_C", "LOAD_ERROR", "ReconFallbackWarning", "backend_info", "use_kernels"]

_BUILD_INFO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_build_info.json")
_INSTALL = (
    "Build the kernels against the torch you have: `pip install --no-build-isolation .` "
    "(in a source checkout: `python setup.py build_ext --inplace`)."
)


class ReconFallbackWarning(UserWarning):
    """recon.ops is running the slow plain-PyTorch reference instead of the compiled kernels."""


def _read_build_info() -> dict[str, Any] | None:
    try:
        with open(_BUILD_INFO) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _load() -> tuple[bool, str | None]:
    built = _read_build_info()
    if built is not None and built.get("torch") not in (None, torch.__version__):
        # Loading a binary compiled against another torch can fail on a missing symbol or,
        # worse, load and crash later: do not try.
        return False, (
            f"recon._C was built against torch {built['torch']} but torch {torch.__version__} is "
            f"installed. Rebuild it: `pip install --no-build-isolation --force-reinstall --no-deps .` "
            f"(in a source checkout: `python setup.py build_ext --inplace`)."
        )
    try:
        importlib.import_module("recon._C")
    except ImportError as exc:
        if built is None:
            return False, f"recon._C (the compiled kernels) is not built ({exc}). {_INSTALL}"
        return False, (
            f"recon._C failed to load ({exc}); it was built against torch {built.get('torch')}, "
            f"torch {torch.__version__} is installed. {_INSTALL}"
        )
    return True, None


HAVE_C, LOAD_ERROR = _load()
if not HAVE_C and os.environ.get("RECON_REQUIRE_EXTENSION", "0") not in ("", "0"):
    raise ImportError(f"RECON_REQUIRE_EXTENSION is set and {LOAD_ERROR}")

_warned = False


def _has_kernel(device_type: str) -> bool:
    key = {"cpu": "CPU", "cuda": "CUDA"}.get(device_type)
    return key is not None and torch._C._dispatch_has_kernel_for_dispatch_key("recon::knn", key)


_DEVICE_OK = {"cpu": HAVE_C and _has_kernel("cpu"), "cuda": HAVE_C and _has_kernel("cuda")}


def use_kernels(t: torch.Tensor) -> bool:
    """Whether the compiled kernels serve tensors on ``t``'s device; warns once when not."""
    if _DEVICE_OK.get(t.device.type, False):
        return True
    global _warned
    if not _warned:
        _warned = True
        if HAVE_C:
            why = (
                f"recon._C has no {t.device.type} kernels (built with CUDA: "
                f"{_info().get('with_cuda')}). For CUDA, rebuild with "
                "`FORCE_CUDA=1 pip install --no-build-isolation .` on a machine with nvcc."
            )
        else:
            why = LOAD_ERROR
        warnings.warn(
            f"{why} recon.ops falls back to the plain-PyTorch reference ops (correct, but slow "
            f"and memory-hungry). This warning is shown once.",
            ReconFallbackWarning,
            stacklevel=3,
        )
    return False


def _info() -> dict[str, Any]:
    if not HAVE_C:
        return {}
    return json.loads(torch.ops.recon.build_info())


def backend_info() -> dict[str, Any]:
    """What the compiled extension provides, and whether recon.ops is on the fallback.

    Returns:
        A dict with keys ``compiled`` (``recon._C`` loaded), ``cpu`` / ``cuda`` (kernels
        registered for that device), ``cuda_arch_list`` (``TORCH_CUDA_ARCH_LIST`` at build time,
        or None), ``torch_built_against``, ``torch_running``, ``openmp``, ``cpu_simd``,
        ``fallback`` (True when the reference ops serve every call) and ``reason`` (why, or None).

    Example:
        >>> import recon.ops
        >>> recon.ops.backend_info()["cpu"]
        True
    """
    info = _info()
    built = _read_build_info() or {}
    return {
        "compiled": HAVE_C,
        "cpu": _DEVICE_OK["cpu"],
        "cuda": _DEVICE_OK["cuda"],
        "cuda_arch_list": info.get("cuda_arch_list") or built.get("arch_list"),
        "torch_built_against": info.get("torch", built.get("torch")),
        "torch_running": torch.__version__,
        "openmp": info.get("openmp"),
        "cpu_simd": info.get("cpu_simd"),
        "fallback": not HAVE_C,
        "reason": LOAD_ERROR,
    }
