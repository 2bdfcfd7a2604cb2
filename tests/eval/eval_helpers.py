"""Helpers shared by the evaluation tests.

``StandIn`` is a deliberately small model with the promised ``forward_features`` interface (cls /
img / text / local / center, and per-block query attention over the local tokens); the protocol
logic is tested against it, the end-to-end command tests use the real zoo.
"""

import torch
from torch import nn

from recon.ops import furthest_point_sample, gather_points, group_points, knn


class StandIn(nn.Module):
    """Groups -> per-group MLP tokens -> two blocks of 3-query single-head cross-attention."""

    def __init__(self, dim=16, num_group=16, group_size=8, num_classes=4, depth=2, heads=2):
        super().__init__()
        self.num_group, self.group_size, self.heads = num_group, group_size, heads
        self.embed = nn.Sequential(nn.Linear(3, dim), nn.GELU(), nn.Linear(dim, dim))
        self.pos = nn.Linear(3, dim)
        self.queries = nn.Parameter(torch.randn(3, dim))
        self.q = nn.ModuleList(nn.Linear(dim, dim) for _ in range(depth))
        self.k = nn.ModuleList(nn.Linear(dim, dim) for _ in range(depth))
        self.head = nn.Linear(4 * dim, num_classes)

    def forward_features(self, points, return_attention=False):
        b = points.shape[0]
        center = gather_points(points, furthest_point_sample(points.contiguous(), self.num_group))
        _, idx = knn(center, points, self.group_size)
        groups = group_points(points, idx) - center[:, :, None]
        local = self.embed(groups).amax(2) + self.pos(center)  # [B, G, C]
        q = self.queries.expand(b, -1, -1)
        maps = []
        for lq, lk in zip(self.q, self.k):
            qh = lq(q).unflatten(-1, (self.heads, -1)).transpose(1, 2)  # [B, H, 3, d]
            kh = lk(local).unflatten(-1, (self.heads, -1)).transpose(1, 2)  # [B, H, G, d]
            att = (qh @ kh.transpose(-1, -2) / qh.shape[-1] ** 0.5).softmax(-1)  # [B, H, 3, G]
            maps.append(att)
            q = q + (att.mean(1) @ local)
        out = dict(cls=q[:, 0], img=q[:, 1], text=q[:, 2], local=local, center=center)
        if return_attention:
            out["attention"] = maps
        return out

    def forward(self, points):
        f = self.forward_features(points)
        return self.head(torch.cat([f["cls"], f["img"], f["text"], f["local"].amax(1)], -1))


def blobs(n_per_class=6, n_classes=3, npoints=64, seed=0):
    """Clouds of ``n_classes`` separable kinds (sphere / flat disc / line), labelled."""
    g = torch.Generator().manual_seed(seed)
    pts, labels = [], []
    for c in range(n_classes):
        for _ in range(n_per_class):
            x = torch.randn(npoints, 3, generator=g)
            x = x / x.norm(dim=-1, keepdim=True)
            x = x * torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.05, 1.0], [1.0, 0.05, 0.05]][c % 3])
            pts.append(x * (1 + 0.3 * c) + 0.01 * torch.randn(npoints, 3, generator=g))
            labels.append(c)
    return torch.stack(pts), torch.tensor(labels)


class ListDataset(torch.utils.data.Dataset):
    """Items as the real datasets give them: dict(points [N, 3], label)."""

    def __init__(self, points, labels, classes=None):
        self.points, self.labels = points, labels
        self.classes = classes or [f"class{i}" for i in range(int(labels.max()) + 1)]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return dict(points=self.points[i], label=int(self.labels[i]))


class StandInZeroShot(StandIn):
    """``model(points, ratio) = ratio * text_proj(text) + img_proj(img)``, as the zoo's zero-shot model."""

    def __init__(self, dim=16, out_dim=4, **kw):
        super().__init__(dim=dim, **kw)
        self.img_proj = nn.Linear(dim, out_dim)
        self.text_proj = nn.Linear(dim, out_dim)

    def forward(self, points, ratio=0.25):
        f = self.forward_features(points)
        return ratio * self.text_proj(f["text"]) + self.img_proj(f["img"])
