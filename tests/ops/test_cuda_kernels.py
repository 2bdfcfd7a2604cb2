"""CUDA kernels of recon._C against the plain-PyTorch oracle ``recon.ops.reference``.

The kernels must return exactly what the reference returns: the same indices (ties -> lowest
index, NaN distances as +inf) and bit-identical distances in every dtype; where the CPU kernels
are registered too, CUDA and CPU must agree bit for bit.  The ops are called through
``torch.ops.recon`` directly, so these tests exercise the CUDA registrations themselves.
"""

from __future__ import annotations

import pytest
import torch
from conftest import cloud

from recon.ops import reference as ref

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
OPS = ["furthest_point_sample", "knn", "chamfer_forward", "chamfer_backward"]


def _has_kernel(name: str, key: str) -> bool:
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"recon::{name}", key)


@pytest.fixture(scope="module", autouse=True)
def cuda_ops():
    import recon._C  # noqa: F401  (registers the ops; a CUDA machine must have it built)

    missing = [name for name in OPS if not _has_kernel(name, "CUDA")]
    assert not missing, f"recon._C was built without CUDA kernels for {missing} (FORCE_CUDA=1?)"


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _cloud(B: int, N: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """A standard-normal (B, N, 3) cloud on the GPU (conftest.cloud, drawn on the CPU)."""
    return cloud(B, N, "normal", dtype=dtype, device="cuda", seed=seed)


def _adversarial(kind: str, B: int, N: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    return cloud(B, N, kind, dtype=dtype, device="cuda", seed=seed)


KINDS = ["normal", "dup", "same", "lattice", "huge_range", "nan"]


def _same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    torch.testing.assert_close(actual.cpu(), expected.cpu(), rtol=0, atol=0, equal_nan=True)


def _cpu_check(name: str, cuda_out, *args) -> None:
    """Where the CPU kernel exists, it must agree with the CUDA one bit for bit."""
    if not _has_kernel(name, "CPU"):
        return
    cpu_args = [a.cpu() if isinstance(a, torch.Tensor) else a for a in args]
    cpu_out = getattr(torch.ops.recon, name)(*cpu_args)
    if isinstance(cpu_out, torch.Tensor):
        cpu_out, cuda_out = (cpu_out,), (cuda_out,)
    for c, g in zip(cpu_out, cuda_out):
        _same(g, c)


# --------------------------------------------------------------------------------------------
# Farthest point sampling


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "B,N,npoint",
    [
        (1, 1, 1),
        (3, 31, 31),
        (4, 1024, 64),
        (2, 1025, 100),
        (2, 4097, 64),
        (1, 8192, 32),
        (2, 9000, 64),
        (1, 16384, 48),
    ],
)
def test_fps_random_sizes(dtype, B, N, npoint):
    # Sizes cross every kernel variant: 1, 4 and 16 points per thread and the global path.
    xyz = _cloud(B, N, dtype, seed=N)
    out = torch.ops.recon.furthest_point_sample(xyz, npoint, 0)
    _same(out, ref.furthest_point_sample(xyz, npoint, 0))
    _cpu_check("furthest_point_sample", out, xyz, npoint, 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_fps_adversarial(dtype, kind):
    for N, npoint, start in [(40, 40, 0), (300, 77, 5), (2000, 128, 1999)]:
        xyz = _adversarial(kind, 3, N, dtype, seed=N)
        out = torch.ops.recon.furthest_point_sample(xyz, npoint, start)
        _same(out, ref.furthest_point_sample(xyz, npoint, start))
        _cpu_check("furthest_point_sample", out, xyz, npoint, start)


def test_fps_many_small_clouds():
    xyz = _cloud(832, 32, torch.float32, seed=7)
    out = torch.ops.recon.furthest_point_sample(xyz, 8, 0)
    _same(out, ref.furthest_point_sample(xyz, 8, 0))


def test_fps_empty_batch():
    out = torch.ops.recon.furthest_point_sample(torch.empty(0, 10, 3, device="cuda"), 4, 0)
    assert out.shape == (0, 4) and out.dtype == torch.long and out.is_cuda


# --------------------------------------------------------------------------------------------
# kNN


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 16, 32, 64, 128])
def test_knn_random(dtype, k):
    # M = 200 queries: a full 128-thread tile, a partial one; N = 1500: a partial reference tile.
    q, r = _cloud(2, 200, dtype, seed=1), _cloud(2, 1500, dtype, seed=2)
    dist, idx = torch.ops.recon.knn(q, r, k)
    rd, ri = ref.knn(q, r, k)
    _same(idx, ri)
    _same(dist, rd)
    _cpu_check("knn", (dist, idx), q, r, k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", [1, 5, 32, 33, 100, 128])
def test_knn_adversarial(dtype, kind, k):
    q = _adversarial(kind, 2, 70, dtype, seed=3)
    r = _adversarial(kind, 2, 300, dtype, seed=4)
    dist, idx = torch.ops.recon.knn(q, r, k)
    rd, ri = ref.knn(q, r, k)
    _same(idx, ri)
    _same(dist, rd)
    _cpu_check("knn", (dist, idx), q, r, k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", [1, 8, 64])
def test_knn_split_reference(dtype, kind, k):
    # 64 queries among 1025 points: the reference cloud is split across blocks (its last chunk
    # holds a single point, fewer than k) and the chunks' lists merged.
    q = _adversarial(kind, 2, 64, dtype, seed=13)
    r = _adversarial(kind, 2, 1025, dtype, seed=14)
    dist, idx = torch.ops.recon.knn(q, r, k)
    rd, ri = ref.knn(q, r, k)
    _same(idx, ri)
    _same(dist, rd)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 16, 64, 128])
def test_knn_k_equals_n(dtype, k):
    q = _adversarial("dup", 3, 50, dtype, seed=5)
    r = _adversarial("dup", 3, k, dtype, seed=6)
    dist, idx = torch.ops.recon.knn(q, r, k)
    rd, ri = ref.knn(q, r, k)
    _same(idx, ri)
    _same(dist, rd)
    # k == N: every row is a permutation of range(N)
    assert torch.equal(idx.sort(dim=-1).values.cpu(), torch.arange(k).expand(3, 50, k))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_knn_large_cloud(dtype):
    q, r = _cloud(1, 64, dtype, seed=8), _cloud(1, 16384, dtype, seed=9)
    for k in (32, 128):
        dist, idx = torch.ops.recon.knn(q, r, k)
        rd, ri = ref.knn(q, r, k)
        _same(idx, ri)
        _same(dist, rd)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_knn_huge_k(dtype):
    # k beyond what a shared-memory list holds: the global-memory fallback.
    q, r = _adversarial("lattice", 1, 9, dtype, seed=10), _adversarial("lattice", 1, 4000, dtype, seed=11)
    for k in (1000, 4000):
        dist, idx = torch.ops.recon.knn(q, r, k)
        rd, ri = ref.knn(q, r, k)
        _same(idx, ri)
        _same(dist, rd)


def test_knn_group_shapes():
    # Point-MAE grouping: 64 centres among 1024 points, k = 32, B = 32.
    pts = _cloud(32, 1024, torch.float32, seed=12)
    centers = pts[:, :64].contiguous()
    dist, idx = torch.ops.recon.knn(centers, pts, 32)
    rd, ri = ref.knn(centers, pts, 32)
    _same(idx, ri)
    _same(dist, rd)
    assert torch.equal(idx[..., 0].cpu(), torch.arange(64).expand(32, 64))  # a centre is its own NN


def test_knn_empty():
    r = torch.randn(2, 5, 3, device="cuda")
    dist, idx = torch.ops.recon.knn(torch.empty(2, 0, 3, device="cuda"), r, 3)
    assert dist.shape == (2, 0, 3) and idx.shape == (2, 0, 3) and idx.dtype == torch.long
    q, r = torch.empty(0, 4, 3, device="cuda"), torch.empty(0, 5, 3, device="cuda")
    dist, idx = torch.ops.recon.knn(q, r, 3)
    assert dist.shape == (0, 4, 3) and idx.shape == (0, 4, 3)


# --------------------------------------------------------------------------------------------
# Chamfer


def _check_chamfer_forward(x, y):
    out = torch.ops.recon.chamfer_forward(x, y)
    expected = ref.chamfer_distance(x, y)
    for name, a, e in zip(("d_xy", "d_yx", "idx_xy", "idx_yx"), out, expected):
        assert a.dtype == e.dtype, name
        _same(a, e)
    _cpu_check("chamfer_forward", out, x, y)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "B,N,M", [(1, 1, 1), (2, 1000, 700), (64, 32, 32), (3, 129, 5), (1, 4096, 3000)]
)
def test_chamfer_forward_random(dtype, B, N, M):
    _check_chamfer_forward(_cloud(B, N, dtype, seed=N), _cloud(B, M, dtype, seed=M + 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_chamfer_forward_adversarial(dtype, kind):
    x = _adversarial(kind, 3, 300, dtype, seed=20)
    y = _adversarial(kind, 3, 170, dtype, seed=21)
    _check_chamfer_forward(x, y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_chamfer_forward_split_targets(dtype, kind):
    # Few query tiles and a long target cloud: the target is split across blocks and the chunk
    # minima merged; ties, NaN rows and all-identical clouds must still give the first minimum.
    x = _adversarial(kind, 2, 600, dtype, seed=24)
    y = _adversarial(kind, 2, 2100, dtype, seed=25)
    _check_chamfer_forward(x, y)


def test_chamfer_forward_large():
    x, y = _cloud(1, 16384, torch.float32, seed=22), _cloud(1, 1024, torch.float32, seed=23)
    _check_chamfer_forward(x, y)


def test_chamfer_forward_empty():
    x = torch.empty(0, 7, 3, device="cuda")
    out = torch.ops.recon.chamfer_forward(x, torch.empty(0, 5, 3, device="cuda"))
    assert [t.shape for t in out] == [(0, 7), (0, 5), (0, 7), (0, 5)]
    with pytest.raises(ValueError, match="x and y"):
        x, y = torch.randn(1, 4, 3, device="cuda"), torch.empty(1, 0, 3, device="cuda")
        torch.ops.recon.chamfer_forward(x, y)


def _assert_grad_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Gradients that sum several contributions differ from autograd's order in the last bits.

    The error of such a sum scales with its terms, not with the result (which may cancel), so
    the absolute tolerance is relative to the largest finite gradient.
    """
    assert actual.dtype == expected.dtype
    rtol = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
    tol = rtol[expected.dtype]
    finite = expected[torch.isfinite(expected)].double().abs()
    scale = finite.max().item() if finite.numel() else 1.0
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol * max(scale, 1e-3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["normal", "dup", "huge_range"])
def test_chamfer_backward_matches_autograd(dtype, kind):
    x = _adversarial(kind, 2, 257, dtype, seed=30)
    y = _adversarial(kind, 2, 130, dtype, seed=31)  # fewer y: many x share a neighbour (scatter)
    gxy = torch.randn(2, 257, generator=_gen(32), dtype=torch.float64).to(dtype).cuda()
    gyx = torch.randn(2, 130, generator=_gen(33), dtype=torch.float64).to(dtype).cuda()
    _, _, idx_xy, idx_yx = torch.ops.recon.chamfer_forward(x, y)
    grad_x, grad_y = torch.ops.recon.chamfer_backward(gxy, gyx, x, y, idx_xy, idx_yx)

    xr, yr = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    d_xy, d_yx, _, _ = ref.chamfer_distance(xr, yr)
    torch.autograd.backward([d_xy, d_yx], [gxy, gyx])
    _assert_grad_close(grad_x, xr.grad)
    _assert_grad_close(grad_y, yr.grad)


def test_chamfer_backward_expanded_grads():
    # The gradient of a mean arrives as an expanded (stride-0) view.
    x, y = _cloud(2, 50, torch.float64, seed=34), _cloud(2, 40, torch.float64, seed=35)
    _, _, idx_xy, idx_yx = torch.ops.recon.chamfer_forward(x, y)
    g1 = torch.full((), 0.5, dtype=torch.float64, device="cuda").expand(2, 50)
    g2 = torch.full((), 2.0, dtype=torch.float64, device="cuda").expand(2, 40)
    grad_x, grad_y = torch.ops.recon.chamfer_backward(g1, g2, x, y, idx_xy, idx_yx)
    xr, yr = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    d_xy, d_yx, _, _ = ref.chamfer_distance(xr, yr)
    (0.5 * d_xy.sum() + 2.0 * d_yx.sum()).backward()
    _assert_grad_close(grad_x, xr.grad)
    _assert_grad_close(grad_y, yr.grad)


def test_chamfer_backward_single_contribution_exact():
    # When every point receives at most one term per direction, the sums have no order to differ in.
    x = _cloud(1, 1, torch.float32, seed=36)
    y = _cloud(1, 1, torch.float32, seed=37)
    g = torch.tensor([[1.5]], device="cuda")
    _, _, idx_xy, idx_yx = torch.ops.recon.chamfer_forward(x, y)
    grad_x, grad_y = torch.ops.recon.chamfer_backward(g, g, x, y, idx_xy, idx_yx)
    xr, yr = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    d_xy, d_yx, _, _ = ref.chamfer_distance(xr, yr)
    torch.autograd.backward([d_xy, d_yx], [g, g])
    _same(grad_x, xr.grad)
    _same(grad_y, yr.grad)


# --------------------------------------------------------------------------------------------
# Streams, devices, errors


def test_ops_run_on_the_current_stream():
    # The input is written on a side stream after a long sleep; an op launched on any other
    # stream would read it before the copy lands.
    src = _cloud(4, 2048, torch.float32, seed=40)
    x = torch.zeros_like(src)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.cuda._sleep(100_000_000)
        x.copy_(src)
        fps = torch.ops.recon.furthest_point_sample(x, 64, 0)
        dist, idx = torch.ops.recon.knn(x, x, 16)
        cd = torch.ops.recon.chamfer_forward(x, x.flip(1).contiguous())
    side.synchronize()
    _same(fps, ref.furthest_point_sample(src, 64, 0))
    rd, ri = ref.knn(src, src, 16)
    _same(idx, ri)
    _same(dist, rd)
    for a, e in zip(cd, ref.chamfer_distance(src, src.flip(1).contiguous())):
        _same(a, e)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_ops_follow_the_input_device():
    x = _cloud(2, 100, torch.float32, seed=41).to("cuda:1")
    out = torch.ops.recon.furthest_point_sample(x, 10, 0)
    assert out.device == x.device
    _same(out, ref.furthest_point_sample(x, 10, 0))


def test_errors_name_the_argument():
    x = torch.randn(2, 10, 3, device="cuda")
    with pytest.raises(ValueError, match="ref must be a CUDA tensor"):
        torch.ops.recon.knn(x, x.cpu(), 1)  # a CUDA argument dispatches to the CUDA kernel
    with pytest.raises(ValueError, match="npoint"):
        torch.ops.recon.furthest_point_sample(x, 11, 0)
    with pytest.raises(ValueError, match="start_idx"):
        torch.ops.recon.furthest_point_sample(x, 2, 10)
    with pytest.raises(ValueError, match=r"k must satisfy"):
        torch.ops.recon.knn(x, x, 11)
    with pytest.raises(ValueError, match=r"k must satisfy"):
        torch.ops.recon.knn(x, x, 0)
    with pytest.raises(ValueError, match="ref must have shape"):
        torch.ops.recon.knn(x, torch.randn(2, 10, 2, device="cuda"), 1)
    with pytest.raises(ValueError, match="same batch size"):
        torch.ops.recon.knn(x, torch.randn(3, 10, 3, device="cuda"), 1)
    with pytest.raises(TypeError, match="same dtype"):
        torch.ops.recon.chamfer_forward(x, x.double())
    with pytest.raises(TypeError, match="floating"):
        torch.ops.recon.chamfer_forward(x.long(), x.long())
    with pytest.raises(ValueError, match="contiguous"):
        torch.ops.recon.knn(x.transpose(0, 1).contiguous().transpose(0, 1), x, 1)
