"""Small stand-ins for the loops' tests: a dict dataset and tiny models with the zoo's call signatures.

They isolate the engine from the model zoo so the loop mechanics (accumulation, DDP, resume) are
tested on something that runs in milliseconds and has no BatchNorm or dropout, whose per-process
statistics would make a 2-process run legitimately differ from a 1-process run.
Configs name them as ``"standins:TinyClassifier"`` (``tests/engine`` is on ``sys.path``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset


class BlobDataset(Dataset):
    """Two-or-more-class toy clouds: class k is a Gaussian blob stretched along axis k % 3."""

    classes = None

    def __init__(self, root=None, split="train", n=64, npoints=32, num_classes=3, seed=0):
        g = torch.Generator().manual_seed(seed + (0 if split == "train" else 1))
        self.labels = torch.arange(n) % num_classes
        scale = torch.full((n, 1, 3), 0.2)
        scale[torch.arange(n), 0, self.labels % 3] = 1.0
        self.points = torch.randn(n, npoints, 3, generator=g) * scale
        self.classes = [f"c{k}" for k in range(num_classes)]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"points": self.points[i], "label": int(self.labels[i]), "index": i,
                "img_feat": self.points[i].mean(0).repeat(2), "text_feat": self.points[i].std(0)}


class _Encoder(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, dim))
        self.point_mlp = nn.Sequential(nn.Linear(3, dim), nn.GELU(), nn.Linear(dim, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, points):
        return self.norm(self.point_mlp(points).amax(1) + self.cls_token)


class TinyClassifier(nn.Module):
    """``model(points [B, N, 3]) -> logits``; its head is named ``cls_head`` like the zoo's."""

    def __init__(self, num_classes=3, dim=16, **_):
        super().__init__()
        self.encoder = _Encoder(dim)
        self.cls_head = nn.Linear(dim, num_classes)
        self.config = {"name": "standins:TinyClassifier", "num_classes": num_classes, "dim": dim}

    def forward(self, points):
        return self.cls_head(self.encoder(points))


class TinyPretrain(nn.Module):
    """``model(points, img_feat, text_feat) -> dict(loss, loss_recon, loss_img, loss_text)``."""

    def __init__(self, dim=16, img_dim=6, text_dim=3, random_target=True, **_):
        super().__init__()
        self.random_target = random_target
        self.encoder = _Encoder(dim)
        self.decoder = nn.Linear(dim, 3)
        self.img_proj = nn.Linear(dim, img_dim)
        self.text_proj = nn.Linear(dim, text_dim)

    def forward(self, points, img_feat=None, text_feat=None):
        f = self.encoder(points)
        # a random "mask": which point to reconstruct, drawn from the torch RNG as the real model does
        if self.random_target:
            pick = torch.randint(points.shape[1], (points.shape[0],))
            target = points[torch.arange(points.shape[0]), pick]
        else:  # deterministic: same result on 1 or N processes
            target = points.mean(1)
        out = {"loss_recon": ((self.decoder(f) - target) ** 2).mean()}
        if img_feat is not None:
            out["loss_img"] = nn.functional.smooth_l1_loss(self.img_proj(f), img_feat)
        if text_feat is not None:
            out["loss_text"] = nn.functional.smooth_l1_loss(self.text_proj(f), text_feat)
        out["loss"] = sum(out.values())
        return out
