"""recon.ops against recon.ops.reference on generated clouds, and clear errors for bad arguments."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.ops import (ChamferDistanceL1, ChamferDistanceL2, chamfer_distance, furthest_point_sample, gather_points,
                       group_points, knn, reference)
from strategies import DTYPES, assert_same, clouds, examples

sizes = st.integers(1, 24)
batches = st.integers(0, 3)
dtypes = st.sampled_from(DTYPES)


@settings(max_examples=examples(60))
@given(st.data())
def test_fps_equals_reference(data):
    B, N, dtype = data.draw(batches), data.draw(sizes), data.draw(dtypes)
    xyz = data.draw(clouds(B, N, dtype))
    npoint = data.draw(st.integers(1, N))  # includes 1 and N
    start = data.draw(st.integers(0, N - 1))
    assert_same(furthest_point_sample(xyz, npoint, start), reference.furthest_point_sample(xyz, npoint, start))


@settings(max_examples=examples(60))
@given(st.data())
def test_knn_equals_reference(data):
    B, M, N, dtype = data.draw(batches), data.draw(sizes), data.draw(sizes), data.draw(dtypes)
    query, ref = data.draw(clouds(B, M, dtype)), data.draw(clouds(B, N, dtype))
    k = data.draw(st.integers(1, N))  # includes k = N
    (d, i), (rd, ri) = knn(query, ref, k), reference.knn(query, ref, k)
    assert_same(i, ri)
    assert_same(d, rd)


@settings(max_examples=examples(60))
@given(st.data())
def test_gather_and_group_equal_reference(data):
    B, N, dtype = data.draw(batches), data.draw(sizes), data.draw(dtypes)
    C = data.draw(st.integers(1, 5))
    pts = data.draw(clouds(B, N, dtype, channels=C))
    idx_dtype = data.draw(st.sampled_from([torch.int64, torch.int32]))
    M, k = data.draw(st.integers(0, 6)), data.draw(st.integers(1, 4))
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1)))
    idx2 = torch.randint(0, N, (B, M), generator=g).to(idx_dtype)
    idx3 = torch.randint(0, N, (B, M, k), generator=g).to(idx_dtype)
    assert_same(gather_points(pts, idx2), reference.gather_points(pts, idx2.long()))
    assert_same(group_points(pts, idx3), reference.group_points(pts, idx3.long()))


@settings(max_examples=examples(60))
@given(st.data())
def test_chamfer_equals_reference(data):
    B, N, M, dtype = data.draw(batches), data.draw(sizes), data.draw(sizes), data.draw(dtypes)
    x, y = data.draw(clouds(B, N, dtype)), data.draw(clouds(B, M, dtype))
    for got, want in zip(chamfer_distance(x, y), reference.chamfer_distance(x, y)):
        assert_same(got, want)
    if B:
        for ours, ref in ((ChamferDistanceL2(), reference.ChamferDistanceL2()),
                          (ChamferDistanceL1(), reference.ChamferDistanceL1())):
            assert_same(ours(x, y), ref(x, y))


@settings(max_examples=examples(25))
@given(st.data())
def test_first_order_gradients_equal_reference(data):
    """Finite float64 clouds: gradients of kNN and Chamfer distances equal the reference's autograd."""
    B, N, M = data.draw(st.integers(1, 2)), data.draw(sizes), data.draw(sizes)
    x = data.draw(clouds(B, N, torch.float64, specials=False)).detach().requires_grad_()
    y = data.draw(clouds(B, M, torch.float64, specials=False)).detach().requires_grad_()
    k = data.draw(st.integers(1, M))
    w = torch.rand(B, N, k, dtype=torch.float64)
    for ours, theirs in (((knn(x, y, k)[0] * w).sum(), (reference.knn(x, y, k)[0] * w).sum()),
                         (sum(d.sum() for d in chamfer_distance(x, y)[:2]),
                          sum(d.sum() for d in reference.chamfer_distance(x, y)[:2]))):
        for a, b in zip(torch.autograd.grad(ours, (x, y)), torch.autograd.grad(theirs, (x, y))):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# (call, argument the message must name, accepted exception types)
def _bad_calls(xyz: torch.Tensor):
    B, N = xyz.shape[:2]
    ints = torch.zeros(B, N, 3, dtype=torch.int32)
    return [
        (lambda: furthest_point_sample(xyz, 0), "npoint", ValueError),
        (lambda: furthest_point_sample(xyz, N + 1), "npoint", ValueError),
        (lambda: furthest_point_sample(xyz, 1.5), "npoint", TypeError),
        (lambda: furthest_point_sample(xyz, 1, N), "start_idx", ValueError),
        (lambda: furthest_point_sample(xyz, 1, -1), "start_idx", ValueError),
        (lambda: furthest_point_sample(ints, 1), "xyz", TypeError),
        (lambda: furthest_point_sample(xyz[..., :2], 1), "xyz", ValueError),
        (lambda: furthest_point_sample(xyz[:, :0], 1), "xyz", ValueError),
        (lambda: furthest_point_sample(xyz.tolist(), 1), "xyz", TypeError),
        (lambda: knn(xyz, xyz, 0), "k", ValueError),
        (lambda: knn(xyz, xyz, N + 1), "k", ValueError),
        (lambda: knn(xyz, xyz.double() if xyz.dtype != torch.float64 else xyz.float(), 1), "ref", TypeError),
        (lambda: knn(xyz, torch.cat([xyz, xyz]), 1), "ref", ValueError),
        (lambda: knn(xyz[..., :2], xyz, 1), "query", ValueError),
        (lambda: chamfer_distance(xyz, ints), "y", TypeError),
        (lambda: chamfer_distance(xyz[:, :0], xyz), "x", ValueError),
        (lambda: chamfer_distance(xyz, torch.cat([xyz, xyz])), "y", ValueError),
        (lambda: gather_points(xyz, torch.full((B, 2), N)), "idx", ValueError),
        (lambda: gather_points(xyz, torch.full((B, 2), -1)), "idx", ValueError),
        (lambda: gather_points(xyz, torch.zeros(B, 2)), "idx", TypeError),
        (lambda: gather_points(xyz, torch.zeros(B, 2, 2, dtype=torch.long)), "idx", ValueError),
        (lambda: group_points(xyz, torch.zeros(B, 2, dtype=torch.long)), "idx", ValueError),
        (lambda: group_points(xyz, torch.full((B, 1, 2), N)), "idx", ValueError),
        (lambda: group_points(xyz[0], torch.zeros(B, 1, 2, dtype=torch.long)), "points", ValueError),
    ]


@settings(max_examples=examples(40))
@given(st.data())
def test_bad_arguments_raise_naming_the_argument(data):
    B, N, dtype = data.draw(st.integers(1, 3)), data.draw(sizes), data.draw(dtypes)
    xyz = data.draw(clouds(B, N, dtype))
    calls = _bad_calls(xyz)
    call, name, exc = calls[data.draw(st.integers(0, len(calls) - 1))]
    with pytest.raises(exc) as e:
        call()
    assert name in str(e.value), (name, str(e.value))
