"""recon.ops.ball_query against the plain-PyTorch oracle: layouts, dtypes, ragged batches,
the CPU strategies, gradients, registration and errors."""

from __future__ import annotations

import pytest
import torch

import recon.ops as ops
from recon.ops import reference

from conftest import CUDA_SKIP, KINDS, assert_all_same, cloud

RADII = [0.05, 0.3, 2.0]


@pytest.mark.parametrize("kind", KINDS + ["clustered", "planar", "nan"])
@pytest.mark.parametrize("radius", RADII)
def test_matches_reference(kind, radius, device, dtype):
    ref = cloud(2, 300, kind, dtype=dtype, device=device)
    query = cloud(2, 40, kind, dtype=dtype, device=device, seed=1)
    got = ops.ball_query(query, ref, radius, 16)
    assert_all_same(got, reference.ball_query(query, ref, radius, 16))


@pytest.mark.parametrize("kind", ["uniform", "clustered", "line", "planar", "dup", "nan", "large"])
@pytest.mark.parametrize("radius", [0.01, 0.1, 0.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_paths_agree(kind, radius, dtype):
    ref = cloud(3, 2000, kind, dtype=dtype)
    query = torch.cat([cloud(3, 50, kind, dtype=dtype, seed=2), ref[:, :50]], dim=1)
    lengths = (torch.tensor([100, 0, 80]), torch.tensor([2000, 700, 3]))
    for ql, rl in [(None, None), lengths]:
        want = reference.ball_query(query, ref, radius, 40, query_lengths=ql, ref_lengths=rl)
        for path in ("auto", "grid", "brute"):
            got = torch.ops.recon._ball_query_path(query, ref, radius, 40, ql, rl, path)
            assert_all_same(got, want)


def test_first_hits_in_index_order_not_nearest(device):
    ref = torch.tensor([[[0.9, 0, 0], [0.5, 0, 0], [0.1, 0, 0], [5.0, 0, 0], [0.0, 0, 0]]], device=device)
    query = torch.zeros(1, 1, 3, device=device)
    dist2, idx = ops.ball_query(query, ref, 1.0, 2)
    assert idx.tolist() == [[[0, 1]]]
    torch.testing.assert_close(dist2, torch.tensor([[[0.81, 0.25]]], device=device))


def test_radius_is_strict_and_empty_balls_are_padded(device):
    ref = torch.tensor([[[1.0, 0, 0], [0.0, 2.0, 0]]], device=device)
    query = torch.tensor([[[0.0, 0, 0], [10.0, 10, 10]]], device=device)
    dist2, idx = ops.ball_query(query, ref, 1.0, 3)  # |ref[0]|^2 == 1.0 is not < 1.0
    assert idx.tolist() == [[[-1, -1, -1], [-1, -1, -1]]]
    assert dist2.abs().sum() == 0


def test_k_larger_than_cloud_and_duplicates(device):
    ref = cloud(2, 5, "same", device=device)
    dist2, idx = ops.ball_query(ref, ref, 0.1, 8)
    assert idx[..., :5].tolist() == [[list(range(5))] * 5] * 2
    assert (idx[..., 5:] == -1).all() and (dist2 == 0).all()


def test_ragged_matches_per_cloud_slices(device, dtype):
    ref = cloud(3, 200, dtype=dtype, device=device)
    query = cloud(3, 30, dtype=dtype, device=device, seed=3)
    ql = torch.tensor([30, 7, 0], device=device)
    rl = torch.tensor([150, 0, 200], device=device)
    got = ops.ball_query(query, ref, 0.3, 12, query_lengths=ql, ref_lengths=rl)
    for b in range(3):
        m, n = int(ql[b]), int(rl[b])
        d, i = got[0][b], got[1][b]
        assert (i[m:] == -1).all() and (d[m:] == 0).all()
        if n == 0:
            assert (i == -1).all()
            continue
        want = reference.ball_query(query[b : b + 1, :m], ref[b : b + 1, :n], 0.3, 12)
        assert_all_same((d[None, :m], i[None, :m]), want)


def test_ragged_equal_lengths_is_the_padded_call(device):
    ref, query = cloud(2, 100, device=device), cloud(2, 20, device=device, seed=1)
    full = torch.tensor([20, 20], device=device), torch.tensor([100, 100], device=device)
    got = ops.ball_query(query, ref, 0.3, 8, query_lengths=full[0], ref_lengths=full[1])
    assert_all_same(got, ops.ball_query(query, ref, 0.3, 8))


def test_gradcheck(device):
    ref = cloud(2, 30, dtype=torch.float64, device=device).requires_grad_()
    query = cloud(2, 10, dtype=torch.float64, device=device, seed=1).requires_grad_()
    ql, rl = torch.tensor([10, 4], device=device), torch.tensor([30, 12], device=device)
    assert torch.autograd.gradcheck(lambda q, r: ops.ball_query(q, r, 0.6, 6)[0], (query, ref))
    assert torch.autograd.gradcheck(
        lambda q, r: ops.ball_query(q, r, 0.6, 6, query_lengths=ql, ref_lengths=rl)[0], (query, ref)
    )


def test_gradients_match_reference(device, dtype):
    ref = cloud(2, 60, dtype=dtype, device=device).requires_grad_()
    query = cloud(2, 12, dtype=dtype, device=device, seed=1).requires_grad_()
    g = torch.rand(2, 12, 8, device=device).to(dtype)
    got = torch.autograd.grad((ops.ball_query(query, ref, 0.4, 8)[0] * g).sum(), (query, ref))
    want = torch.autograd.grad((reference.ball_query(query, ref, 0.4, 8)[0] * g).sum(), (query, ref))
    tol = dict(rtol=1e-2, atol=1e-2) if dtype in (torch.float16, torch.bfloat16) else {}
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(device, dtype):
    ref = cloud(2, 40, dtype=dtype, device=device)
    query = cloud(2, 9, dtype=dtype, device=device, seed=1)
    ql, rl = torch.tensor([9, 3], device=device), torch.tensor([40, 11], device=device)
    op = torch.ops.recon.ball_query.default
    torch.library.opcheck(op, (query, ref, 0.5, 7))
    torch.library.opcheck(op, (query, ref, 0.5, 7, ql, rl))
    torch.library.opcheck(op, (query.requires_grad_(), ref.requires_grad_(), 0.5, 7, ql, rl))


def _grouping(xyz, lengths, centers, center_lengths):
    dist2, idx = ops.ball_query(centers, xyz, 0.3, 8, query_lengths=center_lengths, ref_lengths=lengths)
    nd, nidx = ops.knn(centers, xyz, 4, query_lengths=center_lengths, ref_lengths=lengths)
    return dist2.sum() + nd.sum(), idx, nidx


def test_compile_fullgraph_ball_query_and_ragged_knn(device):
    xyz, centers = cloud(2, 64, device=device), cloud(2, 8, device=device, seed=1)
    lengths, cl = torch.tensor([64, 20], device=device), torch.tensor([8, 5], device=device)
    compiled = torch.compile(_grouping, fullgraph=True, backend="aot_eager")
    for got, want in zip(compiled(xyz, lengths, centers, cl), _grouping(xyz, lengths, centers, cl)):
        torch.testing.assert_close(got, want)


def test_errors_name_the_argument():
    x = cloud(1, 10)
    with pytest.raises(ValueError, match="radius"):
        ops.ball_query(x, x, 0.0, 4)
    with pytest.raises(ValueError, match="radius"):
        ops.ball_query(x, x, float("nan"), 4)
    with pytest.raises(TypeError, match="radius"):
        ops.ball_query(x, x, "0.1", 4)
    with pytest.raises(ValueError, match="k"):
        ops.ball_query(x, x, 0.1, 0)
    with pytest.raises(TypeError, match="ref_lengths"):
        ops.ball_query(x, x, 0.1, 4, ref_lengths=torch.tensor([1.0]))
    with pytest.raises(ValueError, match="ref_lengths"):
        ops.ball_query(x, x, 0.1, 4, ref_lengths=torch.tensor([11]))
    with pytest.raises(ValueError, match="query_lengths"):
        ops.ball_query(x, x, 0.1, 4, query_lengths=torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="dtype"):
        ops.ball_query(x, x.double(), 0.1, 4)
    with pytest.raises(ValueError, match="radius"):  # the kernel's own check, same type
        torch.ops.recon.ball_query(x, x, -1.0, 4)
    with pytest.raises(ValueError, match="lengths2"):
        torch.ops.recon.ball_query(x, x, 1.0, 4, None, torch.tensor([1, 2]))


@CUDA_SKIP
@pytest.mark.parametrize("kind", ["uniform", "clustered", "nan", "dup"])
def test_cuda_matches_cpu(kind):
    ref, query = cloud(3, 3000, kind), cloud(3, 300, kind, seed=1)
    ql, rl = torch.tensor([300, 17, 0]), torch.tensor([3000, 5, 1000])
    for dtype in (torch.float32, torch.float64, torch.float16):
        r, q = ref.to(dtype), query.to(dtype)
        want = ops.ball_query(q, r, 0.2, 32, query_lengths=ql, ref_lengths=rl)
        got = ops.ball_query(q.cuda(), r.cuda(), 0.2, 32, query_lengths=ql.cuda(), ref_lengths=rl.cuda())
        assert_all_same([t.cpu() for t in got], want)


@CUDA_SKIP
def test_cuda_errors_match_cpu():
    x = cloud(1, 10, device="cuda")
    with pytest.raises(ValueError, match="radius"):
        torch.ops.recon.ball_query(x, x, -1.0, 4)
    with pytest.raises(TypeError, match="dtype"):
        torch.ops.recon.ball_query(x, x.double(), 1.0, 4)
