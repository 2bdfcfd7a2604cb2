"""Inverse-distance interpolation (PointNet++ feature propagation) against an oracle written
from its definition: out = sum_j w_j f[idx_j] / sum_j w_j, w_j = 1 / (d_j + eps)."""

from __future__ import annotations

import pytest
import torch

import recon.ops as ops

from conftest import cloud


def _oracle(query, ref, features, k, squared, eps):
    """Brute force in float64: all pairwise distances, stable sort, the k first."""
    q, r, f = query.double(), ref.double(), features.double()
    d2 = ((q[:, :, None, :] - r[:, None, :, :]) ** 2).sum(-1)
    d2, idx = torch.sort(d2, dim=-1, stable=True)
    d2, idx = d2[..., :k], idx[..., :k]
    d = d2 if squared else d2.sqrt()
    w = 1.0 / (d + eps)
    w = w / w.sum(-1, keepdim=True)
    nb = torch.gather(f, 1, idx.reshape(idx.shape[0], -1, 1).expand(-1, -1, f.shape[-1]))
    return (nb.reshape(*idx.shape, -1) * w[..., None]).sum(2)


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_matches_oracle(squared, k, device, dtype):
    ref = cloud(2, 50, dtype=dtype, device=device)
    query = cloud(2, 20, dtype=dtype, device=device, seed=1)
    feats = torch.randn(2, 50, 6, generator=torch.Generator().manual_seed(2)).to(dtype=dtype, device=device)
    got = ops.three_nn_interpolate(query, ref, feats, k=k, squared=squared)
    assert got.dtype == dtype and got.shape == (2, 20, 6)
    want = _oracle(query, ref, feats, k, squared, 1e-8)
    tol = dict(rtol=2e-2, atol=2e-2) if dtype in (torch.float16, torch.bfloat16) else dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got.double(), want, **tol)


def test_fewer_reference_points_than_k(device):
    ref = cloud(1, 2, device=device)
    query = cloud(1, 4, device=device, seed=1)
    feats = torch.tensor([[[1.0], [3.0]]], device=device)
    got = ops.three_nn_interpolate(query, ref, feats)
    torch.testing.assert_close(got.double(), _oracle(query, ref, feats, 2, False, 1e-8))


def test_coincident_point_takes_its_feature(device):
    ref = cloud(1, 10, device=device)
    feats = torch.arange(10.0, device=device).reshape(1, 10, 1)
    got = ops.three_nn_interpolate(ref[:, 3:4], ref, feats, eps=1e-12)
    torch.testing.assert_close(got, torch.tensor([[[3.0]]], device=device))


def test_ragged_batch(device):
    ref, query = cloud(2, 30, device=device), cloud(2, 8, device=device, seed=1)
    feats = torch.randn(2, 30, 4, device=device)
    ql, rl = torch.tensor([8, 5], device=device), torch.tensor([30, 2], device=device)
    got = ops.three_nn_interpolate(query, ref, feats, query_lengths=ql, ref_lengths=rl)
    assert (got[1, 5:] == 0).all()
    want = _oracle(query[1:, :5], ref[1:, :2], feats[1:, :2], 2, False, 1e-8)
    torch.testing.assert_close(got[1:, :5].double(), want)
    torch.testing.assert_close(got[:1].double(), _oracle(query[:1], ref[:1], feats[:1], 3, False, 1e-8))
    # A cloud without reference points interpolates to zeros.
    empty = ops.three_nn_interpolate(query, ref, feats, ref_lengths=torch.tensor([30, 0], device=device))
    assert (empty[1] == 0).all()


def test_gradcheck_features_weights_and_points(device):
    ref = cloud(2, 12, dtype=torch.float64, device=device).requires_grad_()
    query = cloud(2, 5, dtype=torch.float64, device=device, seed=1).requires_grad_()
    feats = torch.randn(2, 12, 3, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda q, r, f: ops.three_nn_interpolate(q, r, f), (query, ref, feats))
    _, idx = ops.knn(query, ref, 3)
    weight = torch.rand(2, 5, 3, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f, w: ops.interpolate(f, idx, w), (feats, weight))


def test_interpolate_skips_padding_slots(device):
    feats = torch.tensor([[[1.0], [10.0]]], device=device)
    idx = torch.tensor([[[1, -1]]], device=device)
    w = torch.tensor([[[0.5, 0.5]]], device=device)
    assert ops.interpolate(feats, idx, w).item() == 5.0
    wn = ops.inverse_distance_weights(torch.tensor([[[1.0, 4.0]]], device=device), idx)
    torch.testing.assert_close(wn, torch.tensor([[[1.0, 0.0]]], device=device))


def test_errors():
    feats = torch.rand(1, 4, 2)
    with pytest.raises(ValueError, match="idx and weight"):
        ops.interpolate(feats, torch.zeros(1, 3, 3, dtype=torch.long), torch.rand(1, 3, 2))
    with pytest.raises(TypeError, match="idx"):
        ops.interpolate(feats, torch.zeros(1, 3, 3), torch.rand(1, 3, 3))
    with pytest.raises(ValueError, match="features"):
        ops.three_nn_interpolate(cloud(1, 3), cloud(1, 5), feats)
