"""Shared helpers for the model-zoo tests (imported as `zoo_helpers`: tests/ has no packages)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

# The official state-dict layouts, vendored beside the tests (tests/fixtures/README.md).
KEYS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "official_keys"

# A small ReCon that keeps every structural feature (3 heads, 2 blocks) and runs in milliseconds.
TINY = dict(depth=2, embed_dim=48, num_heads=3)
TINY_PTS = dict(npoints=128, num_group=16, group_size=8)


def official_shapes(name: str) -> dict:
    """``key -> shape`` (official state_dict order) of ``official_keys/<name>.json``."""
    with open(KEYS_DIR / f"{name}.json") as f:
        return json.load(f)["shapes"]


def official_meta(name: str) -> dict:
    with open(KEYS_DIR / f"{name}.json") as f:
        return json.load(f)


def official_state_dict(name: str, seed: int = 0) -> dict:
    """A state_dict in the official layout with distinct random values (int64 ``num_batches_tracked``,
    positive ``running_var``), so a tensor landing on the wrong key is detected."""
    shapes = official_shapes(name)
    sizes = [math.prod(s) for s in shapes.values()]
    flat = torch.rand(sum(sizes), generator=torch.Generator().manual_seed(seed)) + 0.5
    sd = {}
    for (k, shape), chunk in zip(shapes.items(), flat.split(sizes)):
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(7, dtype=torch.long)
        else:
            sd[k] = chunk.view(shape)
    return sd


def clouds(batch: int = 2, npoints: int = 128, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, npoints, 3, generator=g) * 2 - 1


class FixedGroups(torch.nn.Module):
    """Stands in for ``group_divider`` (FPS + kNN: no FLOPs in recon's ops, but a slow Python loop
    under FlopCounterMode); returns meta tensors of the grouped shapes."""

    def __init__(self, num_group: int, group_size: int, batch: int = 1):
        super().__init__()
        self.shapes = ((batch, num_group, group_size, 3), (batch, num_group, 3))

    def forward(self, points, dtype=None):
        return tuple(torch.empty(s, device="meta") for s in self.shapes)
