"""Point-cloud tokenizer: FPS + kNN grouping, the mini-PointNet patch embedding, positions.

Grouping follows the official ``Group`` (docs/official.md §1): ``num_group`` centres by furthest
point sampling (start index 0), the ``group_size`` nearest points of each centre, centred on it.
recon's kNN returns neighbours sorted by distance where the official one is unsorted; every
consumer is permutation-invariant inside a group, so the outputs agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recon.ops import furthest_point_sample, gather_points, group_points, knn

__all__ = ["Group", "PatchEmbed", "PosEmbed", "check_points", "check_finite"]


def check_points(points: torch.Tensor, min_points: int, name: str = "points") -> None:
    """Raise ``TypeError``/``ValueError`` unless ``points`` is a float ``(B, N, 3)``, ``N >= min_points``."""
    if not isinstance(points, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, N, 3), got {type(points).__name__}")
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (B, N, 3), got {tuple(points.shape)}")
    if not points.is_floating_point():
        raise TypeError(f"{name} must be a floating point tensor, got {points.dtype}")
    if points.shape[1] < min_points:
        raise ValueError(
            f"{name} has {points.shape[1]} points per cloud but the model needs at least "
            f"{min_points} (num_group and group_size must not exceed the number of points)"
        )


def check_finite(points: torch.Tensor, name: str = "points", converted_from: torch.dtype | None = None) -> None:
    """Raise ``ValueError`` naming the clouds (batch indices) that hold NaN/±inf coordinates, and how many.

    One NaN or inf point poisons every logit of its cloud (FPS distances, the centring, BatchNorm),
    so the models refuse such clouds instead of returning NaN. Costs one reduction and one
    host sync per forward; ``model.group_divider.check_finite = False`` skips it.
    """
    bad = ~torch.isfinite(points).all(dim=-1)  # (B, N)
    if not bool(bad.any()):
        return
    per_cloud = bad.sum(dim=1)
    clouds = per_cloud.nonzero().flatten().tolist()
    shown = ", ".join(f"{b} ({int(per_cloud[b])})" for b in clouds[:8]) + (", ..." if len(clouds) > 8 else "")
    cast = f" after conversion from {converted_from} to {points.dtype} (out of range)" if converted_from else ""
    raise ValueError(
        f"{name} has {int(per_cloud.sum())} non-finite point(s) (NaN or ±inf coordinates{cast}) in "
        f"{len(clouds)} of {points.shape[0]} cloud(s); batch index (points): {shown}. Drop or repair them "
        "(e.g. torch.nan_to_num), or set model.group_divider.check_finite = False to skip this check"
    )


class Group(nn.Module):
    """Split clouds into ``num_group`` local patches of ``group_size`` points.

    Args:
        num_group: number of FPS centres G.
        group_size: neighbours per centre S (the centre itself is one of them).
        check_finite: refuse clouds with NaN/±inf coordinates (:func:`check_finite`); ``False``
            saves a reduction and a host sync per forward (the outputs of such clouds are then NaN).
            Skipped while ``torch.compile`` traces, where a data-dependent raise would break the graph.
    """

    def __init__(self, num_group: int, group_size: int, check_finite: bool = True):
        super().__init__()
        if num_group < 1 or group_size < 1:
            raise ValueError(f"num_group and group_size must be >= 1, got {num_group}, {group_size}")
        self.num_group = int(num_group)
        self.group_size = int(group_size)
        self.check_finite = bool(check_finite)

    def forward(self, xyz: torch.Tensor, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``xyz (B, N, 3)`` -> ``neighborhood (B, G, S, 3)`` (centred) and ``center (B, G, 3)``.

        ``dtype``: the model's parameter dtype; other floating inputs (float64, float16, ...) are
        converted to it, so a float32 model accepts a float64 cloud.
        """
        check_points(xyz, max(self.num_group, self.group_size), "points")
        given = xyz.dtype
        if dtype is not None and given != dtype:
            xyz = xyz.to(dtype)
        if self.check_finite and not torch.compiler.is_compiling():
            check_finite(xyz, "points", given if given != xyz.dtype else None)
        xyz = xyz.contiguous()
        center = gather_points(xyz, furthest_point_sample(xyz, self.num_group))
        _, idx = knn(center, xyz, self.group_size)
        neighborhood = group_points(xyz, idx) - center.unsqueeze(2)
        return neighborhood, center

    def extra_repr(self) -> str:
        return f"num_group={self.num_group}, group_size={self.group_size}"


class PatchEmbed(nn.Module):
    """Mini-PointNet patch embedding (official ``Encoder``): ``(B, G, S, 3) -> (B, G, C)``.

    ``first_conv``: Conv(3→128) BN ReLU Conv(128→256); max over points; the global feature is
    put in front of every point's feature (512); ``second_conv``: Conv(512→512) BN ReLU
    Conv(512→C); max over points. Kernel-1 Conv1d, as released (keys and FLOPs match).
    """

    def __init__(self, encoder_channel: int):
        super().__init__()
        self.encoder_channel = encoder_channel
        self.first_conv = nn.Sequential(
            nn.Conv1d(3, 128, 1), nn.BatchNorm1d(128), nn.ReLU(inplace=True), nn.Conv1d(128, 256, 1)
        )
        self.second_conv = nn.Sequential(
            nn.Conv1d(512, 512, 1),
            nn.BatchNorm1d(512),
            nn.ReLU(inplace=True),
            nn.Conv1d(512, encoder_channel, 1),
        )

    @property
    def dtype(self) -> torch.dtype:
        """The parameter dtype: :class:`Group` converts the input clouds to it."""
        return self.first_conv[0].weight.dtype

    def saved_flops(self, shape) -> int:
        """FLOPs the official ``Encoder`` spends on input ``shape`` (B, G, S, 3) that :meth:`forward` does not:
        the global half of the third convolution is taken once per group instead of once per point."""
        B, G, S = shape[0], shape[1], shape[2]
        return 2 * B * G * (S - 1) * self.first_conv[3].out_channels * self.second_conv[0].out_channels

    def forward(self, point_groups: torch.Tensor) -> torch.Tensor:
        # The kernel-1 convolutions run as linears on (points, channels) rows: the same weights and
        # products as the Conv1d modules (whose keys stay), without the convolution path's layout
        # changes, which cost more than the products on CPU (benchmarks/RESULTS.md). BatchNorm1d
        # on (rows, channels) normalises over the same values as on (clouds, channels, points).
        B, G, S, _ = point_groups.shape
        conv1, bn1, act1, conv2 = self.first_conv
        conv3, bn2, act2, conv4 = self.second_conv
        f = F.linear(point_groups.reshape(B * G * S, 3), conv1.weight.squeeze(-1), conv1.bias)
        f = F.linear(act1(bn1(f)), conv2.weight.squeeze(-1), conv2.bias).view(B * G, S, -1)
        g = f.max(dim=1).values
        # conv3 reads [global, point] features; its global half is the same product for all S points of a
        # group, so it is taken once per group and broadcast: half the FLOPs of the widest layer and no
        # (rows, 512) concatenation, the same sums up to rounding.
        c = g.shape[-1]
        w3 = conv3.weight.squeeze(-1)
        h = F.linear(f, w3[:, c:]).add_(F.linear(g, w3[:, :c], conv3.bias).unsqueeze(1))
        f = F.linear(act2(bn2(h.view(B * G * S, -1))), conv4.weight.squeeze(-1), conv4.bias)
        # max with indices (as released): its backward routes each gradient to one point, where amax's
        # splits ties and costs several full-size passes (comparison, counts, casts).
        return f.view(B * G, S, -1).max(dim=1).values.reshape(B, G, self.encoder_channel)


class PosEmbed(nn.Sequential):
    """Positional MLP on absolute centre xyz: Linear(3→128) GELU Linear(128→C) (keys ``0``, ``2``)."""

    def __init__(self, dim: int, hidden: int = 128):
        super().__init__(nn.Linear(3, hidden), nn.GELU(), nn.Linear(hidden, dim))
