"""Shared parameters for the recon.ops tests: devices and dtypes, clouds, an equality helper."""

from __future__ import annotations

import pytest
import torch

CUDA_SKIP = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=CUDA_SKIP)]
DTYPES = [
    pytest.param(torch.float32, id="f32"),
    pytest.param(torch.float64, id="f64"),
    pytest.param(torch.float16, id="f16"),
    pytest.param(torch.bfloat16, id="bf16"),
]


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


@pytest.fixture(params=DTYPES)
def dtype(request) -> torch.dtype:
    return request.param


def cloud(B: int, N: int, *, kind: str = "uniform", dtype=torch.float32, device="cpu", seed: int = 0):
    """A seeded ``(B, N, 3)`` batch of clouds; ``kind`` picks an adversarial layout.

    uniform: unit cube. grid: integer coordinates in [0, 4) (many exact distance ties).
    dup: every point twice. same: all points identical. large: unit cube scaled to ~1e4.
    """
    g = torch.Generator().manual_seed(seed)
    if kind == "uniform":
        p = torch.rand(B, N, 3, generator=g, dtype=torch.float64)
    elif kind == "grid":
        p = torch.randint(0, 4, (B, N, 3), generator=g).double()
    elif kind == "dup":
        half = torch.rand(B, (N + 1) // 2, 3, generator=g, dtype=torch.float64)
        p = half.repeat_interleave(2, dim=1)[:, :N]
    elif kind == "same":
        p = torch.rand(B, 1, 3, generator=g, dtype=torch.float64).expand(B, N, 3).clone()
    elif kind == "large":
        p = 1e4 * torch.rand(B, N, 3, generator=g, dtype=torch.float64) - 5e3
    else:
        raise ValueError(kind)
    return p.to(dtype=dtype, device=device)


KINDS = ["uniform", "grid", "dup", "same", "large"]


def assert_same(a: torch.Tensor, b: torch.Tensor) -> None:
    """Bit-for-bit equal (NaN == NaN), same dtype and shape."""
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)
