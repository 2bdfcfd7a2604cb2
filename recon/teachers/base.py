"""The frozen-teacher base: parameters without grad, always in eval mode."""

from __future__ import annotations

import torch
from torch import nn


class FrozenTeacher(nn.Module):
    """A teacher tower with ``arch``, ``weights_id`` (for cache keys) and output ``dim``."""

    def __init__(self, tower: nn.Module, arch: str, weights_id: str, dim: int):
        super().__init__()
        self.tower, self.arch, self.weights_id, self.dim = tower, arch, weights_id, dim
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: always eval

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device
