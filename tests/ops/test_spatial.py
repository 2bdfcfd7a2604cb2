"""Exactness of the spatial CPU kernels (uniform-grid / kd-tree kNN and Chamfer, bucket FPS).

The private ops ``torch.ops.recon._{knn,chamfer,fps}_{index,tree,grid,brute,spatial}`` (csrc/spatial/)
must return exactly what ``recon.ops.reference`` returns: same indices, same tie rule,
bit-identical distances, on every cloud shape that stresses the pruning bounds. ``index`` picks
grid or kd-tree per cloud; ``tree`` and ``grid`` force one, so both are proven on every cloud.
"""

from __future__ import annotations

import pytest
import torch

from recon.ops import reference as R

try:
    import recon._C  # noqa: F401

    HAVE_EXT = hasattr(torch.ops.recon, "_knn_index")
except ImportError:  # pragma: no cover - depends on the build
    HAVE_EXT = False

pytestmark = pytest.mark.skipif(
    not HAVE_EXT, reason="recon._C is not built (python setup.py build_ext --inplace)"
)
ops = torch.ops.recon if HAVE_EXT else None
INDEXES = ["index", "tree", "grid"]  # _knn_<x> / _chamfer_<x>_forward: auto choice, kd-tree, grid


def knn_ops():
    return [getattr(ops, f"_knn_{x}") for x in INDEXES] + [ops._knn_brute]


def chamfer_ops():
    return [getattr(ops, f"_chamfer_{x}_forward") for x in INDEXES] + [ops._chamfer_brute_forward]


def cloud(kind: str, B: int, N: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    """Point clouds that stress pruning bounds and tie rules."""
    g = torch.Generator().manual_seed(seed)
    if kind == "uniform":
        p = torch.rand(B, N, 3, generator=g)
    elif kind == "clustered":  # tight blobs far apart: very unbalanced boxes
        centers = torch.rand(B, 4, 3, generator=g) * 10
        which = torch.randint(0, 4, (B, N), generator=g)
        p = centers.gather(1, which[..., None].expand(-1, -1, 3)) + 1e-3 * torch.randn(B, N, 3, generator=g)
    elif kind == "planar":  # all z equal: zero extent on one axis
        p = torch.rand(B, N, 3, generator=g)
        p[..., 2] = 0.25
    elif kind == "line":  # zero extent on two axes
        t = torch.rand(B, N, 1, generator=g)
        p = torch.cat([t, 2 * t, -t], dim=-1)
    elif kind == "lattice":  # integer grid: exact distance ties across cell boundaries everywhere
        p = torch.randint(0, 5, (B, N, 3), generator=g).double()
    elif kind == "duplicated":  # few distinct points, each repeated many times
        base = torch.rand(B, 7, 3, generator=g)
        p = base[:, torch.randint(0, 7, (N,), generator=g)]
    elif kind == "identical":
        p = torch.full((B, N, 3), 0.5)
    elif kind == "large":  # 1e4 offset: float32 rounding far coarser than the point spacing
        p = 1e4 + torch.rand(B, N, 3, generator=g) * 3
    elif kind == "huge_range":
        p = (torch.rand(B, N, 3, generator=g) - 0.5) * 2e4
    else:
        raise ValueError(kind)
    return p.to(dtype)


KINDS = ["uniform", "clustered", "planar", "line", "lattice", "duplicated", "identical", "large", "huge_range"]
DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]


def assert_same(got, want):
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        # equal_nan: bit-identical values including the NaN positions
        assert torch.equal(g, w) or (g.is_floating_point() and torch.allclose(g, w, rtol=0, atol=0, equal_nan=True))


def queries(kind, B, M, seed, dtype):
    # Half of the queries are reference points themselves (distance-0 ties), half fresh ones.
    q = cloud(kind, B, M, seed + 1000, dtype)
    return q


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_knn_exact(kind, dtype):
    B, M, N = 2, 150, 700
    ref = cloud(kind, B, N, 1, dtype)
    q = torch.cat([cloud(kind, B, M, 2, dtype), ref[:, ::9]], dim=1)
    for k in (1, 5, 40):
        want = R.knn(q, ref, k)
        for op in knn_ops():
            assert_same(op(q, ref, k), want)


@pytest.mark.parametrize("kind", ["uniform", "planar", "lattice", "identical"])
def test_knn_k_equals_n_and_tiny(kind):
    for N in (1, 2, 33, 130):
        ref = cloud(kind, 2, N, 3)
        q = cloud(kind, 2, 17, 4)
        for k in {1, N}:
            want = R.knn(q, ref, k)
            for op in knn_ops():
                assert_same(op(q, ref, k), want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_knn_dtypes(dtype):
    ref = cloud("uniform", 2, 500, 5, dtype)
    q = cloud("uniform", 2, 60, 6, dtype)
    want = R.knn(q, ref, 8)
    for op in knn_ops() + [ops._knn_spatial]:
        assert_same(op(q, ref, 8), want)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_chamfer_exact(kind, dtype):
    x = cloud(kind, 2, 600, 7, dtype)
    y = cloud(kind, 2, 450, 8, dtype)
    y = torch.cat([y, x[:, ::11]], dim=1)  # shared points: distance-0 ties
    want = R.chamfer_distance(x, y)
    for op in chamfer_ops():
        assert_same(op(x, y), want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["clustered", "uniform"])
def test_chamfer_dtypes(dtype, kind):
    x = cloud(kind, 3, 300, 9, dtype)
    y = cloud(kind, 3, 200, 10, dtype)
    want = R.chamfer_distance(x, y)
    for op in chamfer_ops() + [ops._chamfer_spatial_forward]:
        assert_same(op(x, y), want)


@pytest.mark.parametrize("kind", ["uniform", "planar", "lattice", "large"])
def test_grid_queries_far_outside_the_cloud(kind):
    """Queries beyond the grid's box start from a clamped border cell; the slab bound must hold."""
    ref = cloud(kind, 2, 500, 40)
    shift = torch.tensor([3.0, -2.0, 0.5], dtype=ref.dtype) * (ref.amax((0, 1)) - ref.amin((0, 1)) + 1)
    q = torch.cat([cloud(kind, 2, 40, 41) + shift, cloud(kind, 2, 40, 42) - 0.3 * shift], dim=1)
    for k in (1, 7, 64):
        want = R.knn(q, ref, k)
        for op in knn_ops():
            assert_same(op(q, ref, k), want)
    for op in chamfer_ops():
        assert_same(op(q, ref), R.chamfer_distance(q, ref))


def test_grid_boundaries_exact_float32():
    """Points exactly on (float32-rounded) cell boundaries and equidistant queries: ties across cells."""
    g = torch.Generator().manual_seed(43)
    ticks = torch.linspace(0, 1, 41)  # many values land exactly on lo + i * h (rounded)
    idx = torch.randint(0, 41, (2, 900, 3), generator=g)
    ref = ticks[idx]
    mid = (ticks[:-1] + ticks[1:]) / 2  # queries halfway: exact distance ties between neighbours
    q = mid[torch.randint(0, 40, (2, 200, 3), generator=g)]
    for k in (1, 6, 33):
        want = R.knn(q, ref, k)
        for op in knn_ops():
            assert_same(op(q, ref, k), want)
    for op in chamfer_ops():
        assert_same(op(q, ref), R.chamfer_distance(q, ref))


def test_index_choice_follows_crowding():
    """Spread clouds get the grid; tight clusters and lines (crowded cells) get the kd-tree."""
    uses = ops._spatial_uses_grid
    for op in ("knn", "chamfer"):
        assert uses(cloud("uniform", 2, 4000, 44, torch.float32), op).all()
        assert uses(cloud("planar", 2, 4000, 45), op).all()
        assert not uses(cloud("clustered", 2, 4000, 46), op).any()
        assert not uses(cloud("line", 2, 4000, 47), op).any()
    both = torch.cat([cloud("uniform", 1, 3000, 48), cloud("clustered", 1, 3000, 49)])
    assert uses(both, "knn").tolist() == [True, False]
    # A batch mixing both kinds: each cloud searched with its own index, one answer.
    q = cloud("uniform", 2, 100, 50)
    assert_same(ops._knn_index(q, both, 9), R.knn(q, both, 9))
    assert_same(ops._chamfer_index_forward(q, both), R.chamfer_distance(q, both))
    with pytest.raises(ValueError, match="op must be 'knn' or 'chamfer'"):
        uses(both, "fps")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fps_exact(kind, dtype):
    p = cloud(kind, 2, 900, 11, dtype)
    for start in (0, 517):
        want = R.furthest_point_sample(p, 120, start)
        assert torch.equal(ops._fps_bucket(p, 120, start), want)
        assert torch.equal(ops._fps_brute(p, 120, start), want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fps_dtypes_and_npoint_n(dtype):
    p = cloud("uniform", 2, 300, 12, dtype)
    for npoint in (1, 300):
        want = R.furthest_point_sample(p, npoint, 3)
        for op in (ops._fps_bucket, ops._fps_brute, ops._fps_spatial):
            assert torch.equal(op(p, npoint, 3), want)


def with_nonfinite(p: torch.Tensor, seed: int) -> torch.Tensor:
    p = p.clone()
    g = torch.Generator().manual_seed(seed)
    rows = torch.randperm(p.shape[1], generator=g)[:6]
    p[0, rows[0], 1] = float("nan")
    p[0, rows[1]] = float("nan")
    p[1, rows[2], 0] = float("inf")
    p[1, rows[3], 2] = float("-inf")
    p[1, rows[4], 1] = float("nan")
    return p


def test_nan_and_inf_points():
    ref = with_nonfinite(cloud("uniform", 2, 400, 13), 1)
    q = with_nonfinite(cloud("uniform", 2, 90, 14), 2)
    for k in (1, 6, 400):
        want = R.knn(q, ref, k)
        for op in knn_ops():
            assert_same(op(q, ref, k), want)
    want = R.chamfer_distance(q, ref)
    for op in chamfer_ops():
        assert_same(op(q, ref), want)
    for start in (0, 5):
        want = R.furthest_point_sample(ref, 60, start)
        assert torch.equal(ops._fps_bucket(ref, 60, start), want)
        assert torch.equal(ops._fps_brute(ref, 60, start), want)


def test_nan_start_point_and_all_nan():
    p = cloud("uniform", 1, 300, 15)
    p[0, 0] = float("nan")  # FPS starting at a NaN point: every running distance becomes NaN
    want = R.furthest_point_sample(p, 20, 0)
    assert torch.equal(ops._fps_bucket(p, 20, 0), want)
    allnan = torch.full((1, 50, 3), float("nan"), dtype=torch.float64)
    q = cloud("uniform", 1, 10, 16)
    for op in knn_ops():
        assert_same(op(q, allnan, 3), R.knn(q, allnan, 3))
    for op in chamfer_ops():
        assert_same(op(q, allnan), R.chamfer_distance(q, allnan))
    assert torch.equal(ops._fps_bucket(allnan, 5, 2), R.furthest_point_sample(allnan, 5, 2))


def test_batch_sizes_zero_and_one():
    for B in (0, 1):
        ref = cloud("uniform", B, 300, 17)
        q = cloud("uniform", B, 40, 18)
        for op in knn_ops():
            assert_same(op(q, ref, 4), R.knn(q, ref, 4))
        assert ops._chamfer_grid_forward(q, ref)[0].shape == (B, 40)
        assert ops._fps_bucket(ref, 10, 0).shape == (B, 10)
        if B:
            for op in chamfer_ops():
                assert_same(op(q, ref), R.chamfer_distance(q, ref))
            assert torch.equal(ops._fps_bucket(ref, 10, 0), R.furthest_point_sample(ref, 10, 0))


def test_cost_model_branches():
    prefers = ops._spatial_prefers_index
    # Small clouds (the 32-point groups of the reconstruction loss): brute force.
    assert not prefers("knn", 32, 64, 128, 32)
    assert not prefers("chamfer", 832, 32, 32, 0)
    assert not prefers("fps", 32, 1024, 1024, 64)
    assert not prefers("knn", 2, 512, 512, 256)  # k close to N: every leaf is visited anyway
    # Large clouds: the index.
    assert prefers("knn", 32, 1024, 8192, 32)
    assert prefers("chamfer", 32, 2048, 2048, 0)
    assert prefers("chamfer", 4, 16384, 16384, 0)
    assert prefers("fps", 32, 8192, 8192, 1024)
    with pytest.raises(ValueError, match="op must be one of"):
        prefers("sort", 1, 1, 1, 1)
    # Both sides of every model give the oracle's answer through the auto-dispatching ops.
    for M, N, k in ((20, 100, 4), (300, 2000, 8)):
        q, ref = cloud("lattice", 1, M, 19), cloud("lattice", 1, N, 20)
        assert_same(ops._knn_spatial(q, ref, k), R.knn(q, ref, k))
    for n in (32, 800):
        x, y = cloud("lattice", 2, n, 21), cloud("lattice", 2, n, 22)
        assert_same(ops._chamfer_spatial_forward(x, y), R.chamfer_distance(x, y))
    for n, npoint in ((500, 40), (2100, 40)):
        p = cloud("lattice", 1, n, 23)
        assert torch.equal(ops._fps_spatial(p, npoint, 0), R.furthest_point_sample(p, npoint, 0))


def test_non_contiguous_inputs():
    ref = cloud("uniform", 2, 400, 24).transpose(0, 1).contiguous().transpose(0, 1)
    q = cloud("uniform", 4, 50, 25)[::2]
    assert not ref.is_contiguous() and not q.is_contiguous()
    for op in knn_ops():
        assert_same(op(q, ref, 5), R.knn(q, ref, 5))
    for op in chamfer_ops():
        assert_same(op(q, ref), R.chamfer_distance(q, ref))
    assert torch.equal(ops._fps_bucket(ref, 30, 1), R.furthest_point_sample(ref, 30, 1))


def test_bad_inputs_raise():
    p = cloud("uniform", 2, 50, 26)
    with pytest.raises(ValueError, match="k must satisfy"):
        ops._knn_index(p, p, 51)
    with pytest.raises(ValueError, match="k must satisfy"):
        ops._knn_index(p, p, 0)
    with pytest.raises(ValueError, match=r"shape \(B, N, 3\)"):
        ops._knn_index(p[..., :2], p, 1)
    with pytest.raises(ValueError, match="same batch size"):
        ops._chamfer_index_forward(p, p[:1])
    with pytest.raises(TypeError, match="floating"):
        ops._fps_bucket(p.long(), 3, 0)
    with pytest.raises(ValueError, match="npoint"):
        ops._fps_bucket(p, 51, 0)
    with pytest.raises(ValueError, match="start_idx"):
        ops._fps_bucket(p, 5, 50)


@pytest.mark.parametrize("dtype", DTYPES)
def test_public_cpu_ops_route_through_the_index(dtype):
    """recon.ops' CPU kernels dispatch to the spatial paths above the cost model's thresholds."""
    import recon.ops as rops

    q, ref = cloud("lattice", 2, 64, 27, dtype), cloud("lattice", 2, 600, 28, dtype)
    assert ops._spatial_prefers_index("knn", 2, 64, 600, 8)
    assert_same(rops.knn(q, ref, 8), R.knn(q, ref, 8))
    x, y = cloud("clustered", 2, 400, 29, dtype), cloud("clustered", 2, 300, 30, dtype)
    assert ops._spatial_prefers_index("chamfer", 2, 400, 300, 0)
    assert_same(rops.chamfer_distance(x, y), R.chamfer_distance(x, y))
    p = cloud("uniform", 1, 2100, 31, dtype)
    assert ops._spatial_prefers_index("fps", 1, 2100, 2100, 40)
    assert torch.equal(rops.furthest_point_sample(p, 40, 7), R.furthest_point_sample(p, 40, 7))


def test_many_clouds_path():
    """B >= 2 * threads takes the fused build-and-query path; B < that the two-phase one."""
    torch_threads = torch.get_num_threads()
    B = 2 * torch_threads + 1
    ref = with_nonfinite(cloud("lattice", B, 300, 32), 3)
    q = with_nonfinite(cloud("lattice", B, 70, 33), 4)
    for k in (1, 9):
        for op in knn_ops():
            assert_same(op(q, ref, k), R.knn(q, ref, k))
    for op in chamfer_ops():
        assert_same(op(q, ref), R.chamfer_distance(q, ref))
