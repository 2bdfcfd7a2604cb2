"""Farthest point sampling from a random start in every cloud (pytorch3d's
``random_start_point``, torch_cluster's ``random_start``)."""

from __future__ import annotations

import torch

from ..fps import furthest_point_sample


def fps_random_starts(points: torch.Tensor, lengths: torch.Tensor, counts: torch.Tensor) -> list[torch.Tensor]:
    """For each cloud ``b``: ``counts[b]`` FPS indices into its first ``lengths[b]`` points,
    starting at a point drawn uniformly with torch's global generator (an empty tensor for an
    empty cloud). One call per cloud: the native op takes one start index."""
    rows = []
    for b in range(points.shape[0]):
        n, c = int(lengths[b]), min(int(counts[b]), int(lengths[b]))
        if n == 0 or c == 0:
            rows.append(torch.zeros(0, dtype=torch.long, device=points.device))
            continue
        start = int(torch.randint(n, (1,)))
        rows.append(furthest_point_sample(points[b : b + 1, :n], c, start)[0])
    return rows
