import pytest
import torch

from recon.eval import voting
from eval_helpers import blobs


def test_point_all_and_transforms():
    assert voting.point_all(1024, 8192) == 1200 and voting.point_all(2048, 2048) == 2048
    with pytest.raises(ValueError, match="npoints"):
        voting.point_all(1000, 2048)
    pts = torch.randn(4, 50, 3)
    g = torch.Generator().manual_seed(0)
    rot = voting.rotate_y(pts, generator=g)
    torch.testing.assert_close(rot.norm(dim=-1), pts.norm(dim=-1))  # rotation keeps norms
    torch.testing.assert_close(rot[..., 1], pts[..., 1])  # about y
    s = voting.scale_per_axis(torch.ones(3, 5, 3), generator=g)
    assert ((s >= 2 / 3) & (s <= 3 / 2)).all() and (s[:, :1] == s).all()


def test_vote_is_mean_of_logits_and_official_is_max(standin):
    pts, labels = blobs(n_per_class=2, npoints=1300)
    g = torch.Generator().manual_seed(0)
    logits = voting.vote_logits(standin, pts, 1024, votes=3, generator=g)
    assert logits.shape == (6, 4)
    # the same draws by hand
    g = torch.Generator().manual_seed(0)
    from recon.eval.common import fps_points

    base = fps_points(pts, 1200)
    acc = 0
    for _ in range(3):
        idx = torch.stack([torch.randperm(1200, generator=g)[:1024] for _ in range(6)])
        acc = acc + standin(torch.gather(base, 1, idx[..., None].expand(-1, -1, 3)))
    torch.testing.assert_close(logits, acc / 3)
    res = voting.official_voting(standin, lambda: [(pts, labels)], 1024, passes=3, votes=2)
    assert res["acc"] == max(res["accs"]) and len(res["accs"]) == 3


def test_seed_summary():
    s = voting.seed_summary([90.0, 92.0])
    assert s == dict(mean=91.0, std=1.0, min=90.0, max=92.0, n=2)
    with pytest.raises(ValueError):
        voting.seed_summary([])
