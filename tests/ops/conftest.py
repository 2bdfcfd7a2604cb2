"""Shared parameters for the recon.ops tests: devices and dtypes, the one cloud generator, an
equality helper."""

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


def _layout(kind: str, B: int, N: int, g: torch.Generator) -> torch.Tensor:
    """``(B, N, 3)`` float64 points of one layout, drawn from ``g``."""
    if kind == "uniform":  # the unit cube
        return torch.rand(B, N, 3, generator=g, dtype=torch.float64)
    if kind == "normal":  # standard normal
        return torch.randn(B, N, 3, generator=g, dtype=torch.float64)
    if kind == "lattice":  # integer coordinates in [0, 5): exact distance ties everywhere
        return torch.randint(0, 5, (B, N, 3), generator=g).double()
    if kind == "dup":  # about N/4 distinct points, each about four times
        base = torch.rand(B, max(N // 4, 1), 3, generator=g, dtype=torch.float64)
        return base[:, torch.randint(0, base.shape[1], (N,), generator=g)]
    if kind == "few":  # 7 distinct points, each repeated many times
        base = torch.rand(B, 7, 3, generator=g, dtype=torch.float64)
        return base[:, torch.randint(0, 7, (N,), generator=g)]
    if kind == "same":  # every point identical
        return torch.rand(B, 1, 3, generator=g, dtype=torch.float64).expand(B, N, 3).clone()
    if kind == "large":  # offset 1e4: float32 rounding far coarser than the point spacing
        return 1e4 + 3 * torch.rand(B, N, 3, generator=g, dtype=torch.float64)
    if kind == "huge_range":  # spread over [-1e4, 1e4]: squared distances up to ~1e9
        return (torch.rand(B, N, 3, generator=g, dtype=torch.float64) - 0.5) * 2e4
    if kind == "clustered":  # 4 tight blobs far apart: very unbalanced boxes, crowded grid cells
        centers = 10 * torch.rand(B, 4, 3, generator=g, dtype=torch.float64)
        which = torch.randint(0, 4, (B, N), generator=g)
        blob = 1e-3 * torch.randn(B, N, 3, generator=g, dtype=torch.float64)
        return centers.gather(1, which[..., None].expand(-1, -1, 3)) + blob
    if kind == "planar":  # all z equal: zero extent on one axis
        p = torch.rand(B, N, 3, generator=g, dtype=torch.float64)
        p[..., 2] = 0.25
        return p
    if kind == "line":  # zero extent on two axes
        t = torch.rand(B, N, 1, generator=g, dtype=torch.float64)
        return torch.cat([t, 2 * t, -t], dim=-1)
    if kind == "nan":  # a fifth of the points with one NaN coordinate; the last cloud all NaN
        p = torch.randn(B, N, 3, generator=g, dtype=torch.float64)
        rows = torch.randperm(N, generator=g)[: max(N // 5, 1)]
        p[:, rows, int(torch.randint(0, 3, (1,), generator=g))] = float("nan")
        if B > 1:
            p[-1] = float("nan")
        return p
    raise ValueError(f"unknown cloud kind {kind!r}")


CLOUD_KINDS = ("uniform", "normal", "lattice", "dup", "few", "same", "large", "huge_range",
               "clustered", "planar", "line", "nan")
# The layouts every public op is tested on, on every device and dtype.
KINDS = ["uniform", "lattice", "dup", "same", "huge_range"]


def cloud(
    B: int,
    N: int,
    kind: str = "uniform",
    *,
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
    seed: int = 0,
    contiguous: bool = True,
) -> torch.Tensor:
    """A seeded ``(B, N, 3)`` batch of clouds of one layout (see ``CLOUD_KINDS`` / ``_layout``).

    The points are drawn on the CPU in float64 and then converted, so every device and dtype
    sees the same cloud. ``contiguous=False`` returns the same values as a strided view.
    """
    p = _layout(kind, B, N, torch.Generator().manual_seed(seed)).to(dtype=dtype, device=device)
    if not contiguous:
        p = p.transpose(0, 1).contiguous().transpose(0, 1)
        assert not p.is_contiguous() or B <= 1 or N <= 1
    return p


def assert_same(a: torch.Tensor, b: torch.Tensor) -> None:
    """Bit-for-bit equal (NaN == NaN), same dtype and shape."""
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


def assert_all_same(got, want) -> None:
    """``assert_same`` over the tensors of two tuples (an op's outputs and the reference's)."""
    got, want = tuple(got), tuple(want)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert_same(a, b)
