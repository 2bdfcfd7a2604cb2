"""gather_points / group_points: values, gradients, integer index dtypes."""

from __future__ import annotations

import torch
from conftest import cloud

from recon.ops import gather_points, group_points, reference


def test_gather_values(device, dtype):
    pts = cloud(3, 40, dtype=dtype, device=device)
    idx = torch.randint(0, 40, (3, 17), generator=torch.Generator().manual_seed(0)).to(device)
    out = gather_points(pts, idx)
    assert out.shape == (3, 17, 3) and out.dtype == dtype
    for b in range(3):
        assert torch.equal(out[b], pts[b, idx[b]])
    assert torch.equal(out, reference.gather_points(pts, idx))
    assert torch.equal(gather_points(pts, idx.int()), out)


def test_group_values_features(device):
    feats = torch.randn(2, 30, 7, device=device)
    idx = torch.randint(0, 30, (2, 5, 4), generator=torch.Generator().manual_seed(1)).to(device)
    out = group_points(feats, idx)
    assert out.shape == (2, 5, 4, 7)
    assert torch.equal(out[1, 3, 2], feats[1, idx[1, 3, 2]])
    assert torch.equal(out, reference.group_points(feats, idx))


def test_gradcheck(device):
    pts = torch.randn(2, 12, 5, dtype=torch.float64, device=device, requires_grad=True)
    idx2 = torch.tensor([[0, 3, 3, 11], [5, 5, 5, 1]], device=device)  # repeats accumulate
    idx3 = torch.randint(0, 12, (2, 3, 4), generator=torch.Generator().manual_seed(2)).to(device)
    assert torch.autograd.gradcheck(lambda p: gather_points(p, idx2), (pts,))
    assert torch.autograd.gradcheck(lambda p: group_points(p, idx3), (pts,))


def test_non_contiguous_and_empty(device):
    pts = torch.randn(2, 3, 50, device=device).transpose(1, 2)
    idx = torch.arange(10, device=device).expand(2, 10)
    assert torch.equal(gather_points(pts, idx), pts[:, :10])
    assert gather_points(torch.zeros(0, 4, 3, device=device), torch.zeros(0, 2, dtype=torch.long, device=device)).shape == (0, 2, 3)
