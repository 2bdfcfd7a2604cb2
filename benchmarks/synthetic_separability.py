"""Are the synthetic classes learnable? A small point transformer trained briefly on CPU.

    PYTHONPATH=. python benchmarks/synthetic_separability.py [--root /tmp/recon-bench-data/synthetic]

Patches: FPS ``--groups`` centres + ``--k`` nearest neighbours (recon.ops), a mini-PointNet
embedding, 3 pre-norm transformer blocks of width 128, max-pool, linear head. Trained with AdamW
on the synthetic train split (rotation about y + scale/translate augmentation), evaluated on the
test split. Prints accuracy per epoch and writes JSON. It is a sanity check of the data, not a
ReCon model.
"""

from __future__ import annotations

import argparse
import json
import time

from _recon import require_compiled

import torch  # noqa: E402
from torch import nn  # noqa: E402


class TinyPointTransformer(nn.Module):
    def __init__(self, num_classes: int, groups: int = 32, k: int = 16, dim: int = 128, depth: int = 3):
        super().__init__()
        self.groups, self.k = groups, k
        self.embed = nn.Sequential(nn.Linear(3, 64), nn.GELU(), nn.Linear(64, dim))
        self.pos = nn.Sequential(nn.Linear(3, 64), nn.GELU(), nn.Linear(64, dim))
        layer = nn.TransformerEncoderLayer(dim, 4, dim * 2, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    def forward(self, pts):
        from recon.ops import furthest_point_sample, gather_points, group_points, knn

        centers = gather_points(pts, furthest_point_sample(pts, self.groups))
        _, idx = knn(centers, pts, self.k)
        local = group_points(pts, idx) - centers[:, :, None]
        tokens = self.embed(local).amax(2)
        x = self.blocks(tokens + self.pos(centers))
        return self.head(x.amax(1))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/tmp/recon-bench-data/synthetic")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--npoints", type=int, default=256)
    ap.add_argument("--groups", type=int, default=32)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--occlusion", type=float, default=0.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    print(require_compiled())

    from torch.utils.data import DataLoader

    from recon.data import SyntheticShapes
    from recon.data.transforms import Compose, PointcloudRotate, PointcloudScaleAndTranslate

    torch.manual_seed(0)
    kw = dict(npoints=args.npoints, image_transform=None, occlusion=args.occlusion)
    train = SyntheticShapes(args.root, "train", **kw)
    test = SyntheticShapes(args.root, "test", **kw)
    model = TinyPointTransformer(len(train.classes), groups=args.groups, k=args.k)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=args.epochs * (len(train) // 32))
    aug = Compose([PointcloudRotate(), PointcloudScaleAndTranslate()])
    log, t0 = [], time.time()
    for epoch in range(args.epochs):
        model.train()
        for batch in DataLoader(train, batch_size=32, shuffle=True, drop_last=True):
            loss = nn.functional.cross_entropy(model(aug(batch["points"])), batch["label"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for batch in DataLoader(test, batch_size=64):
                correct += (model(batch["points"]).argmax(1) == batch["label"]).sum().item()
        acc = correct / len(test)
        log.append({"epoch": epoch, "loss": float(loss), "test_acc": acc, "time_s": time.time() - t0})
        print(f"epoch {epoch:2d}  loss {float(loss):.3f}  test acc {acc:.3f}  {time.time() - t0:.0f}s",
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(log, f, indent=1)


if __name__ == "__main__":
    main()
