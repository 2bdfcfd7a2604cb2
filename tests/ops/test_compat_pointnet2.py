"""recon.ops.compat.pointnet2 against oracles written from pointnet2_ops' documented
semantics (channel-first features, int32 indices, ball query padded with its first hit)."""

from __future__ import annotations

import pytest
import torch

from recon.ops.compat import pointnet2 as p2

from conftest import cloud


def _d2(a, b):
    return ((a.double()[:, None, :] - b.double()[None, :, :]) ** 2).sum(-1)


def test_furthest_point_sample_int32(device):
    xyz = cloud(2, 64, device=device)
    idx = p2.furthest_point_sample(xyz, 8)
    assert idx.dtype == torch.int32 and idx.shape == (2, 8) and (idx[:, 0] == 0).all()
    for b in range(2):
        chosen, mind = [0], _d2(xyz[b].cpu(), xyz[b, :1].cpu())[:, 0]
        for _ in range(7):
            chosen.append(int(torch.argmax(mind)))
            mind = torch.minimum(mind, _d2(xyz[b].cpu(), xyz[b, chosen[-1] : chosen[-1] + 1].cpu())[:, 0])
        assert idx[b].tolist() == chosen


def test_gather_and_grouping(device):
    feats = torch.randn(2, 5, 30, device=device, requires_grad=True)
    idx = torch.randint(0, 30, (2, 7), device=device, dtype=torch.int32)
    out = p2.gather_operation(feats, idx)
    assert out.shape == (2, 5, 7)
    assert torch.equal(out[1, :, 3], feats[1, :, int(idx[1, 3])])
    gidx = torch.randint(0, 30, (2, 7, 4), device=device, dtype=torch.int32)
    grouped = p2.grouping_operation(feats, gidx)
    assert grouped.shape == (2, 5, 7, 4) and torch.equal(grouped[0, :, 2, 1], feats[0, :, int(gidx[0, 2, 1])])
    grouped.sum().backward()
    want = torch.zeros(2, 30).scatter_add_(1, gidx.reshape(2, -1).long().cpu(), torch.ones(2, 28))
    torch.testing.assert_close(feats.grad.cpu(), want[:, None, :].expand(-1, 5, -1))


def test_ball_query_pads_with_first_hit(device):
    xyz = cloud(2, 100, device=device)
    new_xyz = torch.cat([xyz[:, :10], torch.full((2, 1, 3), 50.0, device=device)], dim=1)
    idx = p2.ball_query(0.25, 16, xyz, new_xyz)
    assert idx.dtype == torch.int32 and idx.shape == (2, 11, 16)
    for b in range(2):
        for i in range(11):
            hits = torch.nonzero(_d2(new_xyz[b, i : i + 1].cpu(), xyz[b].cpu())[0] < 0.25**2).flatten()[:16].tolist()
            want = hits + [hits[0]] * (16 - len(hits)) if hits else [0] * 16
            assert idx[b, i].tolist() == want


def test_three_nn_and_interpolate(device):
    known, unknown = cloud(2, 20, device=device), cloud(2, 9, device=device, seed=1)
    dist, idx = p2.three_nn(unknown, known)
    assert idx.dtype == torch.int32 and dist.shape == (2, 9, 3)
    for b in range(2):
        d, i = torch.sort(_d2(unknown[b].cpu(), known[b].cpu()), dim=-1, stable=True)
        assert idx[b].tolist() == i[:, :3].tolist()
        torch.testing.assert_close(dist[b].cpu().double(), d[:, :3].sqrt(), rtol=1e-5, atol=1e-6)
    feats = torch.randn(2, 4, 20, dtype=torch.float64, device=device, requires_grad=True)
    w = torch.rand(2, 9, 3, dtype=torch.float64, device=device, requires_grad=True)
    out = p2.three_interpolate(feats, idx, w)
    assert out.shape == (2, 4, 9)
    want = sum(w[:, None, :, j] * torch.gather(feats, 2, idx[:, None, :, j].long().expand(-1, 4, -1)) for j in range(3))
    torch.testing.assert_close(out, want)
    assert torch.autograd.gradcheck(lambda f, ww: p2.three_interpolate(f, idx, ww), (feats, w))


def test_three_nn_with_fewer_than_three_known(device):
    dist, idx = p2.three_nn(cloud(1, 4, device=device), cloud(1, 2, device=device, seed=1))
    assert torch.isinf(dist[..., 2]).all() and (idx[..., 2] == 0).all()


@pytest.mark.parametrize("use_xyz", [True, False])
def test_query_and_group_and_group_all(use_xyz, device):
    xyz, feats = cloud(2, 50, device=device), torch.randn(2, 6, 50, device=device)
    new_xyz = xyz[:, :8]
    out = p2.QueryAndGroup(0.3, 5, use_xyz=use_xyz)(xyz, new_xyz, feats)
    idx = p2.ball_query(0.3, 5, xyz, new_xyz)
    grouped = p2.grouping_operation(feats, idx)
    if use_xyz:
        rel = p2.grouping_operation(xyz.transpose(1, 2).contiguous(), idx) - new_xyz.transpose(1, 2)[..., None]
        assert out.shape == (2, 9, 8, 5)
        torch.testing.assert_close(out, torch.cat([rel, grouped], 1))
    else:
        torch.testing.assert_close(out, grouped)
    ga = p2.GroupAll(use_xyz)(xyz, None, feats)
    assert ga.shape == ((2, 9, 1, 50) if use_xyz else (2, 6, 1, 50))
    assert p2.GroupAll()(xyz).shape == (2, 3, 1, 50)
    assert p2.QueryAndGroup(0.3, 5)(xyz, new_xyz).shape == (2, 3, 8, 5)
