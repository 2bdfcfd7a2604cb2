"""recon.ops.compat.pytorch3d against oracles written from pytorch3d's documented semantics
(brute force over each cloud's slice, float64)."""

from __future__ import annotations

import pytest
import torch

from recon.ops.compat import pytorch3d as p3d

from conftest import cloud


def _d2(a, b):
    return ((a.double()[:, None, :] - b.double()[None, :, :]) ** 2).sum(-1)


def _knn_oracle(p1, p2, l1, l2, K):
    N, P1 = p1.shape[:2]
    dists, idx = torch.zeros(N, P1, K, dtype=torch.float64), torch.zeros(N, P1, K, dtype=torch.long)
    for n in range(N):
        m, k = int(l1[n]), min(K, int(l2[n]))
        if m and k:
            d, i = torch.sort(_d2(p1[n, :m], p2[n, : int(l2[n])]), dim=-1, stable=True)
            dists[n, :m, :k], idx[n, :m, :k] = d[:, :k], i[:, :k]
    return dists, idx


L1, L2 = torch.tensor([20, 9, 0]), torch.tensor([30, 2, 17])


@pytest.mark.parametrize("K", [1, 4, 40])
def test_knn_points_ragged(K, device):
    p1, p2 = cloud(3, 20, "dup", device=device), cloud(3, 30, "dup", device=device, seed=1)
    out = p3d.knn_points(p1, p2, L1.to(device), L2.to(device), K=K, return_nn=True)
    d, i = _knn_oracle(p1.cpu(), p2.cpu(), L1, L2, K)
    assert out.idx.tolist() == i.tolist()
    torch.testing.assert_close(out.dists.cpu().double(), d)
    want_nn = torch.stack([p2[n].cpu()[i[n]] for n in range(3)])
    want_nn = want_nn * (torch.arange(K)[None, :] < L2[:, None])[:, None, :, None]
    want_nn = want_nn * (torch.arange(20)[None, :] < L1[:, None])[:, :, None, None]
    torch.testing.assert_close(out.knn.cpu(), want_nn.float())
    assert out._fields == ("dists", "idx", "knn")


def test_knn_points_defaults_and_half(device):
    p1, p2 = cloud(2, 10, device=device), cloud(2, 12, device=device, seed=1)
    out = p3d.knn_points(p1.half(), p2.half(), K=3)
    assert out.knn is None and out.dists.dtype == torch.float16
    assert out.idx.tolist() == p3d.knn_points(p1, p2, K=3).idx.tolist()
    with pytest.raises(ValueError, match="norm"):
        p3d.knn_points(p1, p2, norm=1)


def test_knn_gather_zeroes_past_lengths():
    x = torch.arange(12.0).reshape(1, 4, 3)
    idx = torch.tensor([[[3, 1, 0]]])
    out = p3d.knn_gather(x, idx, torch.tensor([2]))
    assert out.tolist() == [[[[9.0, 10.0, 11.0], [3.0, 4.0, 5.0], [0.0, 0.0, 0.0]]]]


def test_ball_query_ragged(device):
    p1, p2 = cloud(3, 20, device=device), cloud(3, 30, device=device, seed=1)
    out = p3d.ball_query(p1, p2, L1.to(device), L2.to(device), K=6, radius=0.4)
    for n in range(3):
        m, nn = int(L1[n]), int(L2[n])
        for i in range(20):
            if i >= m:
                want = []
            else:
                d = _d2(p1[n, i : i + 1].cpu(), p2[n, :nn].cpu())[0]
                want = torch.nonzero(d < 0.4**2).flatten()[:6].tolist()
            got = out.idx[n, i].tolist()
            assert got == want + [-1] * (6 - len(want))
            assert (out.knn[n, i, len(want) :] == 0).all() and (out.dists[n, i, len(want) :] == 0).all()
            if want:
                torch.testing.assert_close(out.knn[n, i, : len(want)], p2[n, want])


def test_sample_farthest_points(device):
    pts = cloud(3, 50, device=device)
    lengths = torch.tensor([50, 4, 20], device=device)
    sampled, idx = p3d.sample_farthest_points(pts, lengths, K=[10, 10, 3])
    assert idx.shape == (3, 10) and sampled.shape == (3, 10, 3)
    assert (idx[1, 4:] == -1).all() and (idx[2, 3:] == -1).all() and (sampled[1, 4:] == 0).all()
    for n in range(3):
        k = min([10, 10, 3][n], int(lengths[n]))
        chosen = [0]
        mind = _d2(pts[n, : int(lengths[n])].cpu(), pts[n, :1].cpu())[:, 0]
        for _ in range(k - 1):
            chosen.append(int(torch.argmax(mind)))
            mind = torch.minimum(mind, _d2(pts[n, : int(lengths[n])].cpu(), pts[n, chosen[-1] : chosen[-1] + 1].cpu())[:, 0])
        assert idx[n, :k].tolist() == chosen
        torch.testing.assert_close(sampled[n, :k], pts[n, chosen])


def test_sample_farthest_points_random_start(device):
    pts = cloud(2, 30, device=device)
    torch.manual_seed(0)
    _, idx = p3d.sample_farthest_points(pts, torch.tensor([30, 5], device=device), K=6, random_start_point=True)
    assert (idx[1, 5:] == -1).all() and idx[1, :5].sort().values.tolist() == list(range(5))
    assert len(set(idx[0].tolist())) == 6


def _chamfer_oracle(x, y, xl, yl, point_reduction, batch_reduction, single, weights=None):
    cx, cy = [], []
    for n in range(x.shape[0]):
        a, b = x[n, : int(xl[n])], y[n, : int(yl[n])]
        d = _d2(a, b) if a.shape[0] and b.shape[0] else None
        fx = d.min(1).values if d is not None else torch.zeros(a.shape[0], dtype=torch.float64)
        fy = d.min(0).values if d is not None else torch.zeros(b.shape[0], dtype=torch.float64)
        w = 1.0 if weights is None else float(weights[n])
        red = {"mean": lambda v, l: v.sum() / max(l, 1), "sum": lambda v, l: v.sum(), "max": lambda v, l: v.max() if v.numel() else v.new_zeros(())}
        cx.append(red[point_reduction](fx * w, a.shape[0]))
        cy.append(red[point_reduction](fy * w, b.shape[0]))
    cx, cy = torch.stack(cx), torch.stack(cy)
    loss = cx if single else (torch.maximum(cx, cy) if point_reduction == "max" else cx + cy)
    if batch_reduction == "sum":
        return loss.sum()
    if batch_reduction == "mean":
        return loss.sum() / (x.shape[0] if weights is None else weights.sum())
    return loss


@pytest.mark.parametrize("point_reduction", ["mean", "sum", "max"])
@pytest.mark.parametrize("batch_reduction", ["mean", "sum", None])
@pytest.mark.parametrize("single", [False, True])
def test_chamfer_reductions(point_reduction, batch_reduction, single, device):
    x, y = cloud(3, 20, device=device), cloud(3, 30, device=device, seed=1)
    xl, yl = torch.tensor([20, 5, 8]), torch.tensor([30, 30, 1])
    loss, ln = p3d.chamfer_distance(
        x, y, xl.to(device), yl.to(device), batch_reduction=batch_reduction,
        point_reduction=point_reduction, single_directional=single,
    )
    assert ln is None
    want = _chamfer_oracle(x.cpu(), y.cpu(), xl, yl, point_reduction, batch_reduction, single)
    torch.testing.assert_close(loss.cpu().double(), want, rtol=1e-5, atol=1e-6)


def test_chamfer_weights_per_point_and_normals(device):
    x, y = cloud(2, 10, device=device), cloud(2, 12, device=device, seed=1)
    w = torch.tensor([1.0, 3.0], device=device)
    loss, _ = p3d.chamfer_distance(x, y, weights=w)
    want = _chamfer_oracle(x.cpu(), y.cpu(), [10, 10], [12, 12], "mean", "mean", False, w.cpu())
    torch.testing.assert_close(loss.cpu().double(), want, rtol=1e-5, atol=1e-6)
    (px, py), _ = p3d.chamfer_distance(x, y, batch_reduction=None, point_reduction=None)
    assert px.shape == (2, 10) and py.shape == (2, 12)
    only_x, _ = p3d.chamfer_distance(x, y, batch_reduction=None, point_reduction=None, single_directional=True)
    assert torch.equal(only_x, px)
    nx, ny = torch.randn(2, 10, 3, device=device), torch.randn(2, 12, 3, device=device)
    _, ln = p3d.chamfer_distance(x, y, x_normals=nx, y_normals=ny, abs_cosine=False)
    ix = _d2(x[0].cpu(), y[0].cpu()).argmin(1)
    iy = _d2(y[0].cpu(), x[0].cpu()).argmin(1)
    cos = lambda a, b: torch.nn.functional.cosine_similarity(a, b, dim=-1, eps=1e-6)  # noqa: E731
    per = [(1 - cos(nx[n].cpu(), ny[n].cpu()[_d2(x[n].cpu(), y[n].cpu()).argmin(1)])).mean()
           + (1 - cos(ny[n].cpu(), nx[n].cpu()[_d2(y[n].cpu(), x[n].cpu()).argmin(1)])).mean() for n in range(2)]
    torch.testing.assert_close(ln.cpu(), torch.stack(per).mean(), rtol=1e-5, atol=1e-6)
    assert ix.shape == (10,) and iy.shape == (12,)
    with pytest.raises(ValueError, match="max"):
        p3d.chamfer_distance(x, y, x_normals=nx, y_normals=ny, point_reduction="max")
    with pytest.raises(ValueError, match="batch_reduction"):
        p3d.chamfer_distance(x, y, point_reduction=None)


def test_chamfer_gradcheck(device):
    x = cloud(2, 6, dtype=torch.float64, device=device).requires_grad_()
    y = cloud(2, 7, dtype=torch.float64, device=device, seed=1).requires_grad_()
    xl, yl = torch.tensor([6, 3], device=device), torch.tensor([7, 4], device=device)
    assert torch.autograd.gradcheck(lambda a, b: p3d.chamfer_distance(a, b, xl, yl)[0], (x, y))
