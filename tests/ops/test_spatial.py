"""Exactness of the CPU kernels' two paths (SIMD brute force and spatial index) and their choice.

The private ops ``torch.ops.recon._knn_path`` / ``_chamfer_forward_path`` / ``_fps_path`` run
the public kernels with the path forced ("brute", "index" = the per-cloud grid or kd-tree
choice, "tree", "grid", or "auto" = the cost model); every path must return exactly what
``recon.ops.reference`` returns: same indices, same tie rule, bit-identical distances, on every
cloud shape that stresses the pruning bounds. ``_path_choice`` and ``_index_uses_grid`` show
what the cost models choose.
"""

from __future__ import annotations

import pytest
import torch
from conftest import assert_all_same, cloud

import recon._C  # noqa: F401  (registers the private ops, which exist only compiled)
from recon.ops import reference as R

ops = torch.ops.recon
F64 = torch.float64
SEARCH_PATHS = ["index", "tree", "grid", "brute"]  # "index": grid or kd-tree, chosen per cloud
FPS_PATHS = ["index", "brute"]  # "index": kd-tree buckets


def knn_paths(q, ref, k, paths=SEARCH_PATHS):
    return [ops._knn_path(q, ref, k, p) for p in paths]


def chamfer_paths(x, y, paths=SEARCH_PATHS):
    return [ops._chamfer_forward_path(x, y, p) for p in paths]


def assert_knn(q, ref, k, paths=SEARCH_PATHS):
    want = R.knn(q, ref, k)
    for got in knn_paths(q, ref, k, paths):
        assert_all_same(got, want)


def assert_chamfer(x, y, paths=SEARCH_PATHS):
    want = R.chamfer_distance(x, y)
    for got in chamfer_paths(x, y, paths):
        assert_all_same(got, want)


def assert_fps(p, npoint, start, paths=FPS_PATHS):
    want = R.furthest_point_sample(p, npoint, start)
    for path in paths:
        assert torch.equal(ops._fps_path(p, npoint, start, path), want), path


KINDS = ["uniform", "clustered", "planar", "line", "lattice", "few", "same", "large", "huge_range"]
DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_knn_exact(kind, dtype):
    B, M, N = 2, 150, 700
    ref = cloud(B, N, kind, seed=1, dtype=dtype)
    q = torch.cat([cloud(B, M, kind, seed=2, dtype=dtype), ref[:, ::9]], dim=1)
    for k in (1, 5, 40):
        assert_knn(q, ref, k)


@pytest.mark.parametrize("kind", ["uniform", "planar", "lattice", "same"])
def test_knn_k_equals_n_and_tiny(kind):
    for N in (1, 2, 33, 130):
        ref = cloud(2, N, kind, seed=3, dtype=F64)
        q = cloud(2, 17, kind, seed=4, dtype=F64)
        for k in {1, N}:
            assert_knn(q, ref, k)


@pytest.mark.parametrize("dtype", DTYPES)
def test_knn_dtypes(dtype):
    ref = cloud(2, 500, seed=5, dtype=dtype)
    q = cloud(2, 60, seed=6, dtype=dtype)
    assert_knn(q, ref, 8, SEARCH_PATHS + ["auto"])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_chamfer_exact(kind, dtype):
    x = cloud(2, 600, kind, seed=7, dtype=dtype)
    y = cloud(2, 450, kind, seed=8, dtype=dtype)
    y = torch.cat([y, x[:, ::11]], dim=1)  # shared points: distance-0 ties
    assert_chamfer(x, y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["clustered", "uniform"])
def test_chamfer_dtypes(dtype, kind):
    x = cloud(3, 300, kind, seed=9, dtype=dtype)
    y = cloud(3, 200, kind, seed=10, dtype=dtype)
    assert_chamfer(x, y, SEARCH_PATHS + ["auto"])


@pytest.mark.parametrize("kind", ["uniform", "planar", "lattice", "large"])
def test_grid_queries_far_outside_the_cloud(kind):
    """Queries beyond the grid's box start from a clamped border cell; the slab bound must hold."""
    ref = cloud(2, 500, kind, seed=40, dtype=F64)
    shift = torch.tensor([3.0, -2.0, 0.5], dtype=ref.dtype) * (ref.amax((0, 1)) - ref.amin((0, 1)) + 1)
    near, far = cloud(2, 40, kind, seed=41, dtype=F64), cloud(2, 40, kind, seed=42, dtype=F64)
    q = torch.cat([near + shift, far - 0.3 * shift], dim=1)
    for k in (1, 7, 64):
        assert_knn(q, ref, k)
    assert_chamfer(q, ref)


def test_grid_boundaries_exact_float32():
    """Points exactly on (float32-rounded) cell boundaries and equidistant queries: ties across cells."""
    g = torch.Generator().manual_seed(43)
    ticks = torch.linspace(0, 1, 41)  # many values land exactly on lo + i * h (rounded)
    idx = torch.randint(0, 41, (2, 900, 3), generator=g)
    ref = ticks[idx]
    mid = (ticks[:-1] + ticks[1:]) / 2  # queries halfway: exact distance ties between neighbours
    q = mid[torch.randint(0, 40, (2, 200, 3), generator=g)]
    for k in (1, 6, 33):
        assert_knn(q, ref, k)
    assert_chamfer(q, ref)


def test_index_choice_follows_crowding():
    """Spread clouds get the grid; tight clusters and lines (crowded cells) get the kd-tree."""
    uses = ops._index_uses_grid
    for op in ("knn", "chamfer"):
        assert uses(cloud(2, 4000, "uniform", seed=44), op).all()
        assert uses(cloud(2, 4000, "planar", seed=45, dtype=F64), op).all()
        assert not uses(cloud(2, 4000, "clustered", seed=46, dtype=F64), op).any()
        assert not uses(cloud(2, 4000, "line", seed=47, dtype=F64), op).any()
    both = torch.cat([cloud(1, 3000, "uniform", seed=48, dtype=F64), cloud(1, 3000, "clustered", seed=49, dtype=F64)])
    assert uses(both, "knn").tolist() == [True, False]
    # A batch mixing both kinds: each cloud searched with its own index, one answer.
    q = cloud(2, 100, seed=50, dtype=F64)
    assert_knn(q, both, 9, ["index"])
    assert_chamfer(q, both, ["index"])
    with pytest.raises(ValueError, match="op must be 'knn' or 'chamfer'"):
        uses(both, "fps")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fps_exact(kind, dtype):
    p = cloud(2, 900, kind, seed=11, dtype=dtype)
    for start in (0, 517):
        assert_fps(p, 120, start)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fps_dtypes_and_npoint_n(dtype):
    p = cloud(2, 300, seed=12, dtype=dtype)
    for npoint in (1, 300):
        assert_fps(p, npoint, 3, FPS_PATHS + ["auto"])


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
    ref = with_nonfinite(cloud(2, 400, seed=13, dtype=F64), 1)
    q = with_nonfinite(cloud(2, 90, seed=14, dtype=F64), 2)
    for k in (1, 6, 400):
        assert_knn(q, ref, k)
    assert_chamfer(q, ref)
    for start in (0, 5):
        assert_fps(ref, 60, start)


def test_nan_start_point_and_all_nan():
    p = cloud(1, 300, seed=15, dtype=F64)
    p[0, 0] = float("nan")  # FPS starting at a NaN point: every running distance becomes NaN
    assert_fps(p, 20, 0)
    allnan = torch.full((1, 50, 3), float("nan"), dtype=F64)
    q = cloud(1, 10, seed=16, dtype=F64)
    assert_knn(q, allnan, 3)
    assert_chamfer(q, allnan)
    assert_fps(allnan, 5, 2)


@pytest.mark.parametrize("kind", ["uniform", "clustered", "lattice", "same"])
@pytest.mark.parametrize("B", [1, 2])
def test_fps_buckets_lockstep_small_batch(kind, B):
    # Fewer clouds than threads: the clouds advance in lock step, each step split over
    # (cloud, bucket range) tasks; non-finite points stay on the side.
    p = cloud(B, 33000, kind, seed=31, dtype=F64)
    p[:, 17] = float("nan")
    p[:, 400, 1] = float("inf")
    old = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        assert_fps(p, 40, 5, ["index", "auto"])
    finally:
        torch.set_num_threads(old)


def test_batch_sizes_zero_and_one():
    for B in (0, 1):
        ref = cloud(B, 300, seed=17, dtype=F64)
        q = cloud(B, 40, seed=18, dtype=F64)
        assert_knn(q, ref, 4)
        assert ops._chamfer_forward_path(q, ref, "grid")[0].shape == (B, 40)
        assert ops._fps_path(ref, 10, 0, "index").shape == (B, 10)
        if B:
            assert_chamfer(q, ref)
            assert_fps(ref, 10, 0)


def test_cost_model_branches():
    def choice(op, B, M, N, k):
        return ops._path_choice(op, B, M, N, k)

    # Small clouds (the 32-point groups of the reconstruction loss): brute force.
    assert choice("knn", 32, 64, 128, 32) == "brute"
    assert choice("chamfer", 832, 32, 32, 0) == "brute"
    assert choice("fps", 32, 1024, 1024, 64) == "brute"
    assert choice("knn", 2, 512, 512, 256) == "brute"  # k close to N: every leaf is visited anyway
    assert choice("chamfer", 32, 512, 512, 0) == "brute"  # one sweep serves both directions
    assert choice("chamfer", 4, 128, 16384, 0) == "brute"  # a thin side
    # Large clouds: the index.
    assert choice("knn", 32, 1024, 8192, 32) == "index"
    assert choice("chamfer", 32, 2048, 2048, 0) == "index"
    assert choice("chamfer", 4, 16384, 16384, 0) == "index"
    assert choice("fps", 32, 8192, 8192, 1024) == "index"
    with pytest.raises(ValueError, match="op must be one of"):
        choice("sort", 1, 1, 1, 1)
    # Both sides of every model give the oracle's answer through the auto path.
    for M, N, k in ((20, 100, 4), (300, 2000, 8)):
        q, ref = cloud(1, M, "lattice", seed=19, dtype=F64), cloud(1, N, "lattice", seed=20, dtype=F64)
        assert_knn(q, ref, k, ["auto"])
    for n in (32, 1100):
        assert_chamfer(cloud(2, n, "lattice", seed=21, dtype=F64), cloud(2, n, "lattice", seed=22, dtype=F64), ["auto"])
    for n, npoint in ((500, 40), (2100, 40)):
        assert_fps(cloud(1, n, "lattice", seed=23, dtype=F64), npoint, 0, ["auto"])


def test_path_argument():
    p = cloud(2, 50, seed=26, dtype=F64)
    with pytest.raises(ValueError, match="path must be one of 'auto', 'brute', 'index', 'tree', 'grid'"):
        ops._knn_path(p, p, 3, "kdtree")
    with pytest.raises(ValueError, match="path must be one of"):
        ops._chamfer_forward_path(p, p, "")
    with pytest.raises(ValueError, match=r"path must be one of 'auto', 'brute', 'index', got 'tree'"):
        ops._fps_path(p, 3, 0, "tree")


def test_non_contiguous_inputs():
    """The public ops accept any strides, on both paths; the kernels themselves require contiguous."""
    import recon.ops as rops

    ref = cloud(2, 400, seed=24, dtype=F64, contiguous=False)
    q = cloud(4, 50, seed=25, dtype=F64)[::2]
    assert not ref.is_contiguous() and not q.is_contiguous()
    assert ops._path_choice("knn", 2, 50, 400, 5) == "index"
    assert_all_same(rops.knn(q, ref, 5), R.knn(q, ref, 5))
    assert_all_same(rops.knn(q, ref, 200), R.knn(q, ref, 200))  # k > N / 4: brute force
    x = cloud(2, 2800, seed=26, dtype=F64, contiguous=False)
    assert ops._path_choice("chamfer", 2, 2800, 400, 0) == "index"
    assert_all_same(rops.chamfer_distance(x, ref), R.chamfer_distance(x, ref))
    assert_all_same(rops.chamfer_distance(q, ref), R.chamfer_distance(q, ref))
    big = cloud(3, 2100, seed=27, dtype=F64)[::2]
    assert ops._path_choice("fps", 2, 2100, 2100, 40) == "index"
    assert torch.equal(rops.furthest_point_sample(big, 40, 1), R.furthest_point_sample(big, 40, 1))
    with pytest.raises(ValueError, match="must be contiguous"):
        ops._knn_path(q, ref, 5, "index")


def test_bad_inputs_raise():
    p = cloud(2, 50, seed=26, dtype=F64)
    for path in ("index", "brute"):
        with pytest.raises(ValueError, match="k must satisfy"):
            ops._knn_path(p, p, 51, path)
        with pytest.raises(ValueError, match="k must satisfy"):
            ops._knn_path(p, p, 0, path)
        with pytest.raises(ValueError, match=r"shape \(B, N, 3\)"):
            ops._knn_path(p[..., :2].contiguous(), p, 1, path)
        with pytest.raises(ValueError, match="same batch size"):
            ops._chamfer_forward_path(p, p[:1], path)
        with pytest.raises(TypeError, match="floating"):
            ops._fps_path(p.long(), 3, 0, path)
        with pytest.raises(ValueError, match="npoint"):
            ops._fps_path(p, 51, 0, path)
        with pytest.raises(ValueError, match="start_idx"):
            ops._fps_path(p, 5, 50, path)


@pytest.mark.parametrize("dtype", DTYPES)
def test_public_cpu_ops_route_through_the_index(dtype):
    """recon.ops' CPU kernels take the index path above the cost model's thresholds."""
    import recon.ops as rops

    q, ref = cloud(2, 64, "lattice", seed=27, dtype=dtype), cloud(2, 600, "lattice", seed=28, dtype=dtype)
    assert ops._path_choice("knn", 2, 64, 600, 8) == "index"
    assert_all_same(rops.knn(q, ref, 8), R.knn(q, ref, 8))
    x, y = cloud(2, 1100, "clustered", seed=29, dtype=dtype), cloud(2, 1000, "clustered", seed=30, dtype=dtype)
    assert ops._path_choice("chamfer", 2, 1100, 1000, 0) == "index"
    assert_all_same(rops.chamfer_distance(x, y), R.chamfer_distance(x, y))
    p = cloud(1, 2100, seed=31, dtype=dtype)
    assert ops._path_choice("fps", 1, 2100, 2100, 40) == "index"
    assert torch.equal(rops.furthest_point_sample(p, 40, 7), R.furthest_point_sample(p, 40, 7))


def test_many_clouds_path():
    """B >= 2 * threads takes the fused build-and-query path; B < that the two-phase one."""
    B = 2 * torch.get_num_threads() + 1
    ref = with_nonfinite(cloud(B, 300, "lattice", seed=32, dtype=F64), 3)
    q = with_nonfinite(cloud(B, 70, "lattice", seed=33, dtype=F64), 4)
    for k in (1, 9):
        assert_knn(q, ref, k)
    assert_chamfer(q, ref)
