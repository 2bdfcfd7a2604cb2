"""chamfer_distance and the Chamfer losses: values, indices, gradients, NaN."""

from __future__ import annotations

import pytest
import torch
from conftest import KINDS, assert_same, cloud

from recon.ops import ChamferDistanceL1, ChamferDistanceL2, chamfer_distance, reference


@pytest.mark.parametrize("kind", KINDS)
def test_matches_reference(kind, device, dtype):
    x = cloud(3, 230, kind=kind, dtype=dtype, device=device)
    y = cloud(3, 170, kind=kind, dtype=dtype, device=device, seed=1)
    got, want = chamfer_distance(x, y), reference.chamfer_distance(x, y)
    for a, b in zip(got, want):
        assert_same(a, b)
    assert got[0].shape == (3, 230) and got[1].shape == (3, 170) and got[2].dtype == torch.int64


@pytest.mark.parametrize("B,N,M", [(1, 1, 1), (1, 1, 50), (832, 32, 32), (2, 1000, 3), (1, 37, 1003)])
def test_shapes(B, N, M, device):
    x, y = cloud(B, N, device=device, seed=N), cloud(B, M, device=device, seed=M + 1)
    for a, b in zip(chamfer_distance(x, y), reference.chamfer_distance(x, y)):
        assert_same(a, b)


def test_identical_clouds_give_zero(device):
    x = cloud(2, 100, device=device)
    d_xy, d_yx, i_xy, i_yx = chamfer_distance(x, x.flip(1))
    assert (d_xy == 0).all() and (d_yx == 0).all()
    assert torch.equal(i_xy.cpu(), torch.arange(99, -1, -1).expand(2, 100))


def test_non_contiguous(device, dtype):
    x = cloud(2, 300, dtype=dtype, device=device)[:, ::3]
    y = cloud(3, 90, dtype=dtype, device=device, seed=2).permute(1, 0, 2).contiguous().permute(1, 0, 2)[:2]
    assert not x.is_contiguous()
    for a, b in zip(chamfer_distance(x, y), reference.chamfer_distance(x, y)):
        assert_same(a, b)


def test_nan_behaviour(device):
    x, y = cloud(1, 10, device=device), cloud(1, 12, device=device, seed=1)
    x[0, 2, 0] = float("nan")
    y[0, 5, 1] = float("nan")
    got, want = chamfer_distance(x, y), reference.chamfer_distance(x, y)
    for a, b in zip(got, want):
        assert_same(a, b)
    d_xy, d_yx, i_xy, i_yx = got
    assert torch.isnan(d_xy[0, 2]) and i_xy[0, 2] == 0  # a NaN point: NaN distance, index 0
    assert torch.isnan(d_yx[0, 5]) and i_yx[0, 5] == 0
    assert 5 not in i_xy[0].tolist() and 2 not in i_yx[0].tolist()  # NaN partners never chosen
    assert torch.isfinite(d_xy[0, torch.arange(10) != 2]).all()


def test_empty_batch(device):
    out = chamfer_distance(torch.zeros(0, 5, 3, device=device), torch.zeros(0, 7, 3, device=device))
    assert [tuple(t.shape) for t in out] == [(0, 5), (0, 7), (0, 5), (0, 7)]


def test_gradcheck(device):
    x = cloud(2, 9, dtype=torch.float64, device=device).requires_grad_()
    y = cloud(2, 13, dtype=torch.float64, device=device, seed=7).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: chamfer_distance(a, b)[:2], (x, y))


def test_gradients_match_reference(device, dtype):
    x0, y0 = cloud(3, 64, dtype=dtype, device=device), cloud(3, 48, dtype=dtype, device=device, seed=9)
    grads = []
    for fn in (chamfer_distance, reference.chamfer_distance):
        x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
        d_xy, d_yx, _, _ = fn(x, y)
        (d_xy.float().sum() * 0.7 + d_yx.float().mean()).backward()
        grads.append((x.grad, y.grad))
    tol = {torch.float16: 1e-2, torch.bfloat16: 5e-2}.get(dtype, 1e-6)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_losses(device):
    x = cloud(4, 50, dtype=torch.float64, device=device)
    y = cloud(4, 70, dtype=torch.float64, device=device, seed=3)
    d_xy, d_yx, _, _ = reference.chamfer_distance(x, y)
    l2, l1 = ChamferDistanceL2()(x, y), ChamferDistanceL1()(x, y)
    assert l2.dim() == 0 and l1.dim() == 0
    torch.testing.assert_close(l2, d_xy.mean() + d_yx.mean(), rtol=0, atol=0)
    torch.testing.assert_close(l1, (d_xy.sqrt().mean() + d_yx.sqrt().mean()) / 2, rtol=0, atol=0)
    xg = x.clone().requires_grad_()
    ChamferDistanceL2()(xg, y).backward()
    assert torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0


@pytest.mark.parametrize("low", [torch.bfloat16, torch.float16])
def test_losses_take_an_autocast_prediction_and_a_float32_target(device, low):
    """train.amp: the decoder's prediction is low precision, the target float32: the loss runs in float32
    and the gradient reaches the prediction in its own dtype; the raw op still refuses the mix."""
    x = cloud(2, 30, device=device)
    y = cloud(2, 40, device=device, seed=5)
    xl = x.to(low).requires_grad_()
    for loss in (ChamferDistanceL2(), ChamferDistanceL1()):
        got = loss(xl, y)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, loss(xl.detach().float(), y), rtol=0, atol=0)
        got.backward()
        assert xl.grad.dtype == low and torch.isfinite(xl.grad.float()).all()
        xl.grad = None
    with pytest.raises(TypeError, match="same dtype"):
        chamfer_distance(xl, y)


def test_double_backward_gradgradcheck(device):
    x = cloud(2, 9, dtype=torch.float64, device=device).requires_grad_()
    y = cloud(2, 13, dtype=torch.float64, device=device, seed=7).requires_grad_()
    assert torch.autograd.gradgradcheck(lambda a, b: chamfer_distance(a, b)[:2], (x, y))


def test_double_backward_matches_reference(device):
    """Second-order gradients (create_graph=True) equal the plain-PyTorch reference's, never zeros."""
    x0 = cloud(3, 40, dtype=torch.float64, device=device)
    y0 = cloud(3, 25, dtype=torch.float64, device=device, seed=4)
    w = torch.linspace(0.5, 2.0, 40, dtype=torch.float64, device=device)
    results = []
    for fn in (chamfer_distance, reference.chamfer_distance):
        x, y = x0.clone().requires_grad_(), y0.clone().requires_grad_()
        d_xy, d_yx, _, _ = fn(x, y)
        loss = (d_xy * w).sum() + d_yx.pow(2).sum()  # d_yx**2: a second order that mixes x and y
        gx, gy = torch.autograd.grad(loss, (x, y), create_graph=True)
        assert gx.requires_grad and gy.requires_grad
        hx, hy = torch.autograd.grad((gx * gx).sum() + gy.sum() * gx.mean(), (x, y))
        results.append((gx.detach(), gy.detach(), hx, hy))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert results[0][2].abs().sum() > 0 and results[0][3].abs().sum() > 0
