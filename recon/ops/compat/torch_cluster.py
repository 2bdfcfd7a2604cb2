"""``torch_cluster`` on recon's kernels: ``fps``, ``knn``, ``knn_graph``, ``radius``,
``radius_graph`` for packed 3-D points with a sorted ``batch`` vector.

Same arguments and outputs as torch_cluster (``edge_index`` rows: ``[index into y, index into
x]``). ``cosine``, ``num_workers`` and ``batch_size`` are accepted for signature compatibility;
``cosine=True`` is not supported. Differences are listed in docs/ops.md
("switching from torch_cluster").
"""

from __future__ import annotations


import torch

from ..ball_query import ball_query as _ball_query
from ..fps import furthest_point_sample as _fps
from ..knn import knn as _knn
from ..ragged import packed_to_padded
from ._random_start import fps_random_starts

__all__ = ["fps", "knn", "knn_graph", "radius", "radius_graph"]


def _padded(x: torch.Tensor, batch: torch.Tensor | None, size: int | None):
    """Packed ``(n, 3)`` -> padded ``(B, N, 3)``, lengths, and each cloud's first packed row."""
    if x.dim() != 2:
        raise ValueError(f"points must have shape (n, 3), got {tuple(x.shape)}")
    if batch is None:
        batch = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    pad, lengths = packed_to_padded(x, batch=batch.to(x.device), batch_size=size)
    starts = torch.cumsum(lengths, 0) - lengths
    return pad, lengths, starts


def _size(*batches: torch.Tensor | None) -> int | None:
    found = [int(b.max()) + 1 for b in batches if b is not None and b.numel()]
    return max(found) if found else None


def _no_cosine(cosine: bool) -> None:
    if cosine:
        raise ValueError("cosine=True is not supported; recon's kNN is Euclidean")


def fps(
    src: torch.Tensor,
    batch: torch.Tensor | None = None,
    ratio: float | torch.Tensor = 0.5,
    random_start: bool = True,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Farthest point sampling of ``ceil(ratio * n_b)`` points of every cloud.

    Returns int64 indices into ``src``, cloud after cloud, each in selection order. The start is
    a random point of each cloud (``random_start``, torch's global generator) or its first point.
    """
    pad, lengths, starts = _padded(src, batch, batch_size)
    r = torch.as_tensor(ratio, dtype=torch.float64, device=lengths.device)
    if bool(((r <= 0) | (r > 1)).any()):
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    counts = torch.ceil(lengths.double() * r).long().clamp(max=lengths)
    npoint = max(int(counts.max()) if counts.numel() else 0, 1)
    if random_start:
        rows = fps_random_starts(pad, lengths, counts)
        return torch.cat([row + s for row, s in zip(rows, starts)]) if rows else src.new_zeros(0, dtype=torch.long)
    idx = _fps(pad, npoint, 0, lengths=lengths, counts=counts)
    return (idx + starts[:, None])[idx >= 0]


def _edges(idx: torch.Tensor, y_lengths: torch.Tensor, x_starts: torch.Tensor, y_starts: torch.Tensor) -> torch.Tensor:
    """``(B, M, k)`` neighbour slots (-1 = none) -> ``edge_index (2, E)`` = [y row, x row]."""
    B, M, k = idx.shape
    ok = idx >= 0
    row = (torch.arange(M, device=idx.device)[None, :, None] + y_starts[:, None, None]).expand(B, M, k)
    col = idx + x_starts[:, None, None]
    return torch.stack([row[ok], col[ok]])


def knn(
    x: torch.Tensor,
    y: torch.Tensor,
    k: int,
    batch_x: torch.Tensor | None = None,
    batch_y: torch.Tensor | None = None,
    cosine: bool = False,
    num_workers: int = 1,
    batch_size: int | None = None,
) -> torch.Tensor:
    """For every point of ``y``, its ``k`` nearest points of ``x`` in the same cloud.

    Returns ``edge_index (2, E)``: row 0 indexes ``y``, row 1 ``x``; grouped by ``y`` point,
    neighbours by ascending (distance, index). A cloud of ``x`` with fewer than ``k`` points
    gives fewer edges.
    """
    _no_cosine(cosine)
    size = batch_size if batch_size is not None else _size(batch_x, batch_y)
    px, lx, sx = _padded(x, batch_x, size)
    py, ly, sy = _padded(y, batch_y, size)
    kk = min(k, px.shape[1])
    _, idx = _knn(py, px, kk, query_lengths=ly, ref_lengths=lx)
    return _edges(idx, ly, sx, sy)


def radius(
    x: torch.Tensor,
    y: torch.Tensor,
    r: float,
    batch_x: torch.Tensor | None = None,
    batch_y: torch.Tensor | None = None,
    max_num_neighbors: int = 32,
    num_workers: int = 1,
    batch_size: int | None = None,
) -> torch.Tensor:
    """For every point of ``y``, the points of ``x`` (same cloud) with squared distance < ``r**2``,
    at most ``max_num_neighbors``, the lowest indices first.

    Returns ``edge_index (2, E)``: row 0 indexes ``y``, row 1 ``x``, grouped by ``y`` point.
    """
    size = batch_size if batch_size is not None else _size(batch_x, batch_y)
    px, lx, sx = _padded(x, batch_x, size)
    py, ly, sy = _padded(y, batch_y, size)
    _, idx = _ball_query(py, px, r, max_num_neighbors, query_lengths=ly, ref_lengths=lx)
    return _edges(idx, ly, sx, sy)


def _graph(edge_index: torch.Tensor, loop: bool, flow: str) -> torch.Tensor:
    if flow not in ("source_to_target", "target_to_source"):
        raise ValueError(f"flow must be 'source_to_target' or 'target_to_source', got {flow!r}")
    row, col = (edge_index[1], edge_index[0]) if flow == "source_to_target" else (edge_index[0], edge_index[1])
    if not loop:
        keep = row != col
        row, col = row[keep], col[keep]
    return torch.stack([row, col])


def knn_graph(
    x: torch.Tensor,
    k: int,
    batch: torch.Tensor | None = None,
    loop: bool = False,
    flow: str = "source_to_target",
    cosine: bool = False,
    num_workers: int = 1,
    batch_size: int | None = None,
) -> torch.Tensor:
    """The k-NN graph of ``x``: ``edge_index (2, E)``; with ``flow="source_to_target"`` row 0 is
    the neighbour and row 1 the centre. Without ``loop`` each point's own edge is dropped (it
    then has ``k`` other neighbours)."""
    edge_index = knn(x, x, k if loop else k + 1, batch, batch, cosine, num_workers, batch_size)
    return _graph(edge_index, loop, flow)


def radius_graph(
    x: torch.Tensor,
    r: float,
    batch: torch.Tensor | None = None,
    loop: bool = False,
    max_num_neighbors: int = 32,
    flow: str = "source_to_target",
    num_workers: int = 1,
    batch_size: int | None = None,
) -> torch.Tensor:
    """The radius graph of ``x`` (see :func:`knn_graph` for ``flow`` and ``loop``)."""
    n = max_num_neighbors if loop else max_num_neighbors + 1
    edge_index = radius(x, x, r, batch, batch, n, num_workers, batch_size)
    return _graph(edge_index, loop, flow)
