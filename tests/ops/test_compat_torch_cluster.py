"""recon.ops.compat.torch_cluster against oracles written from torch_cluster's documented
semantics (packed points, sorted batch vector, edge_index = [y index, x index])."""

from __future__ import annotations

import math

import pytest
import torch

from recon.ops.compat import torch_cluster as tc


def _packed(sizes, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(sum(sizes), 3, generator=g).to(device)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes)).to(device)
    return x, batch


def _d2(a, b):
    return ((a.double()[:, None, :] - b.double()[None, :, :]) ** 2).sum(-1)


def _edges_oracle(x, y, bx, by, pick):
    rows, cols = [], []
    for j in range(y.shape[0]):
        cand = torch.nonzero(bx == by[j]).flatten()
        chosen = pick(_d2(y[j : j + 1], x[cand])[0], cand)
        rows += [j] * len(chosen)
        cols += chosen
    return [rows, cols]


@pytest.mark.parametrize("k", [1, 4, 12])
def test_knn(k, device):
    x, bx = _packed([10, 3, 7], device=device)
    y, by = _packed([4, 5, 2], seed=1, device=device)
    got = tc.knn(x, y, k, bx, by)

    def pick(d, cand):
        order = torch.sort(d, stable=True).indices[:k]
        return cand[order].tolist()

    assert got.tolist() == _edges_oracle(x.cpu(), y.cpu(), bx.cpu(), by.cpu(), pick)


def test_radius(device):
    x, bx = _packed([40, 3, 25], device=device)
    y, by = _packed([4, 5, 6], seed=1, device=device)
    got = tc.radius(x, y, 0.4, bx, by, max_num_neighbors=5)

    def pick(d, cand):
        return cand[torch.nonzero(d < 0.4**2).flatten()][:5].tolist()

    assert got.tolist() == _edges_oracle(x.cpu(), y.cpu(), bx.cpu(), by.cpu(), pick)


def test_graphs(device):
    x, b = _packed([12, 9], device=device)
    edge = tc.knn_graph(x, 3, b)
    knn = tc.knn(x, x, 4, b, b)
    keep = knn[0] != knn[1]
    assert edge.tolist() == [knn[1][keep].tolist(), knn[0][keep].tolist()]
    assert edge.shape[1] == 21 * 3
    assert tc.knn_graph(x, 3, b, loop=True, flow="target_to_source").tolist() == tc.knn(x, x, 3, b, b).tolist()
    rg = tc.radius_graph(x, 0.5, b, max_num_neighbors=100)
    assert (rg[0] != rg[1]).all() and (b[rg[0]] == b[rg[1]]).all()
    assert ((x[rg[0]] - x[rg[1]]).pow(2).sum(-1) < 0.25).all()
    with pytest.raises(ValueError, match="cosine"):
        tc.knn(x, x, 2, cosine=True)


def test_fps(device):
    x, b = _packed([20, 7, 1], device=device)
    got = tc.fps(x, b, ratio=0.3, random_start=False)
    starts, want = [0, 20, 27], []
    for s, n in zip(starts, [20, 7, 1]):
        pts = x[s : s + n].cpu()
        chosen, mind = [0], _d2(pts, pts[:1])[:, 0]
        for _ in range(math.ceil(0.3 * n) - 1):
            chosen.append(int(torch.argmax(mind)))
            mind = torch.minimum(mind, _d2(pts, pts[chosen[-1] : chosen[-1] + 1])[:, 0])
        want += [s + c for c in chosen]
    assert got.tolist() == want
    torch.manual_seed(0)
    r = tc.fps(x, b, ratio=0.5)
    assert r.shape == (10 + 4 + 1,) and (b[r][:10] == 0).all() and len(set(r.tolist())) == 15
    assert tc.fps(x[:20], None, 0.25, False).tolist() == want[:5]
