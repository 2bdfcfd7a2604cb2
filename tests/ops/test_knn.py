"""knn: equal to the reference (values and indices), ties, NaN, gradients of the distances."""

from __future__ import annotations

import pytest
import torch
from conftest import KINDS, assert_same, cloud

from recon.ops import knn, reference


@pytest.mark.parametrize("kind", KINDS)
def test_matches_reference(kind, device, dtype):
    ref = cloud(3, 257, kind=kind, dtype=dtype, device=device)
    query = cloud(3, 41, kind=kind, dtype=dtype, device=device, seed=1)
    for k in (1, 8, 32):
        d, i = knn(query, ref, k)
        assert d.dtype == dtype and i.dtype == torch.int64 and d.shape == i.shape == (3, 41, k)
        rd, ri = reference.knn(query, ref, k)
        assert_same(i, ri)
        assert_same(d, rd)


@pytest.mark.parametrize("B,M,N,k", [(1, 1, 1, 1), (2, 30, 30, 30), (1, 100, 1000, 1), (4, 7, 19, 19), (1, 5, 3001, 64)])
def test_shapes_k_equal_n(B, M, N, k, device):
    query, ref = cloud(B, M, device=device, seed=M), cloud(B, N, device=device, seed=N)
    d, i = knn(query, ref, k)
    rd, ri = reference.knn(query, ref, k)
    assert_same(i, ri)
    assert_same(d, rd)
    if k == N:
        assert torch.equal(i.sort(dim=-1).values.cpu(), torch.arange(N).expand(B, M, N))


def test_self_query_returns_point_first(device):
    xyz = cloud(2, 500, device=device)
    d, i = knn(xyz, xyz, 4)
    assert torch.equal(i[..., 0].cpu(), torch.arange(500).expand(2, 500))
    assert (d[..., 0] == 0).all()
    assert (d[..., 1:] >= d[..., :-1]).all()


def test_ties_go_to_lower_index(device):
    ref = torch.tensor([[[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, 0, 0], [0, -1, 0]]], device=device)
    d, i = knn(torch.zeros(1, 1, 3, device=device), ref, 5)
    assert i.tolist() == [[[3, 0, 1, 2, 4]]]
    assert d.tolist() == [[[0.0, 1.0, 1.0, 1.0, 1.0]]]


def test_non_contiguous(device, dtype):
    ref = cloud(2, 400, dtype=dtype, device=device).transpose(0, 1).contiguous().transpose(0, 1)
    query = cloud(2, 60, dtype=dtype, device=device, seed=2)[:, ::2]
    assert not ref.is_contiguous() and not query.is_contiguous()
    d, i = knn(query, ref, 5)
    rd, ri = reference.knn(query, ref, 5)
    assert_same(i, ri)
    assert_same(d, rd)


def test_nan_reference_points_come_last_as_inf(device):
    ref = cloud(1, 20, device=device)
    ref[0, 3, 0] = float("nan")
    ref[0, 11, 2] = float("nan")
    query = cloud(1, 5, device=device, seed=4)
    query[0, 2, 1] = float("nan")  # a NaN query: every distance is +inf, neighbours in index order
    d, i = knn(query, ref, 20)
    rd, ri = reference.knn(query, ref, 20)
    assert_same(i, ri)
    assert_same(d, rd)
    assert i[0, 0, -2:].tolist() == [3, 11] and torch.isinf(d[0, 0, -2:]).all()
    assert i[0, 2].tolist() == list(range(20)) and torch.isinf(d[0, 2]).all()


def test_empty_batch(device):
    d, i = knn(torch.zeros(0, 4, 3, device=device), torch.zeros(0, 9, 3, device=device), 3)
    assert d.shape == i.shape == (0, 4, 3) and i.dtype == torch.int64


def test_gradcheck_distances(device):
    query = cloud(2, 6, dtype=torch.float64, device=device).requires_grad_()
    ref = cloud(2, 15, dtype=torch.float64, device=device, seed=5).requires_grad_()
    assert torch.autograd.gradcheck(lambda q, r: knn(q, r, 4)[0], (query, ref))


def test_gradients_match_reference(device, dtype):
    q0, r0 = cloud(2, 30, dtype=dtype, device=device), cloud(2, 80, dtype=dtype, device=device, seed=3)
    grads = []
    for fn in (knn, reference.knn):
        q, r = q0.clone().requires_grad_(), r0.clone().requires_grad_()
        d, _ = fn(q, r, 6)
        (d.float() * torch.linspace(0.5, 2, 6, device=device)).sum().backward()
        grads.append((q.grad, r.grad))
    tol = {torch.float16: 1e-2, torch.bfloat16: 5e-2}.get(dtype, 1e-6)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
