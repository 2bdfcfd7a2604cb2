"""Attention figure: a cloud coloured by the image and text queries' cross-attention (poster figure).

For each of the two queries, the cross-attention weights over the G local tokens (one chosen block,
or the mean over blocks; heads averaged) are propagated to the points of each token's group (a point
in several groups takes the largest weight; a point in none takes its nearest centre's), and the two
clouds are drawn side by side with headless matplotlib (Agg) into a PNG.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from recon.data.transforms import fps_points
from recon.errors import ConfigError, DataFormatError, MissingFileError

__all__ = ["read_points", "normalize", "query_attention", "token_to_points", "render", "visualize"]

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2", "ushort": "u2",
    "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4", "float": "f4", "float32": "f4",
    "double": "f8", "float64": "f8",
}  # fmt: skip


def _read_ply(path: Path) -> np.ndarray:
    """x, y, z of the vertex element of an ascii or binary PLY file (vertex must be the first element)."""
    with open(path, "rb") as f:
        if f.readline().strip() != b"ply":
            raise DataFormatError(f"input: {str(path)!r} does not start with 'ply'")
        fmt, count, props, element = None, None, [], None
        while True:
            line = f.readline()
            if not line:
                raise DataFormatError(f"input: {str(path)!r} has no end_header")
            words = line.decode("ascii", "replace").split()
            if not words or words[0] in ("comment", "obj_info"):
                continue
            if words[0] == "end_header":
                break
            if words[0] == "format":
                fmt = words[1]
            elif words[0] == "element":
                element = words[1]
                if element == "vertex":
                    count = int(words[2])
                elif count is None:
                    raise DataFormatError(f"input: {str(path)!r}: the vertex element must come first in a PLY file")
            elif words[0] == "property" and element == "vertex":
                if words[1] == "list":
                    raise DataFormatError(f"input: {str(path)!r}: list properties on vertices are not supported")
                if words[1] not in _PLY_TYPES:
                    raise DataFormatError(f"input: {str(path)!r}: unknown PLY type {words[1]!r}")
                props.append((words[2], _PLY_TYPES[words[1]]))
        names = [p[0] for p in props]
        if count is None or not {"x", "y", "z"} <= set(names):
            raise DataFormatError(f"input: {str(path)!r} has no vertex element with x, y, z properties")
        if fmt == "ascii":
            rows = [f.readline().split() for _ in range(count)]
            arr = np.asarray(rows, dtype=np.float64)[:, [names.index(c) for c in "xyz"]]
        elif fmt in ("binary_little_endian", "binary_big_endian"):
            order = "<" if fmt == "binary_little_endian" else ">"
            dtype = np.dtype([(n, order + t) for n, t in props])
            data = np.frombuffer(f.read(dtype.itemsize * count), dtype=dtype, count=count)
            arr = np.stack([data[c].astype(np.float64) for c in "xyz"], -1)
        else:
            raise DataFormatError(f"input: {str(path)!r}: unknown PLY format {fmt!r}")
    return arr.astype(np.float32)


def read_points(path: str | os.PathLike) -> np.ndarray:
    """Read a cloud ``[N, 3]`` float32 from ``.npy``, ``.txt`` (comma/space separated, extra columns
    such as normals ignored) or ``.ply`` (ascii or binary)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"input: no file at {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".txt", ".ply"):
        raise ConfigError(f"input: expected a .npy, .txt or .ply file, got {str(path)!r}")
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix == ".txt":
            text = path.read_text().replace(",", " ")
            arr = np.loadtxt(text.splitlines(), ndmin=2)
        else:
            arr = _read_ply(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(f"input: cannot read {str(path)!r}: {exc}") from None
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] < 3 or arr.shape[0] < 1:
        raise DataFormatError(f"input: expected an [N, >=3] array of points, got shape {arr.shape} from {str(path)!r}")
    return np.ascontiguousarray(arr[:, :3])


def normalize(points: np.ndarray) -> np.ndarray:
    """Centre on the centroid and scale into the unit sphere (the datasets' ``pc_norm``)."""
    pts = points - points.mean(0, keepdims=True)
    r = np.sqrt((pts**2).sum(1)).max()
    return pts / r if r > 0 else pts


@torch.no_grad()
def query_attention(model, points: torch.Tensor, layer: int | None = None) -> dict:
    """Image- and text-query attention over the local tokens of one cloud.

    Args:
        model: has ``forward_features(points, return_attention=True)`` returning ``attention`` (a
            list per block of ``[B, heads, 3, G]``, queries ordered cls, img, text) and ``center``.
        points: ``[N, 3]``.
        layer: block index (negative counts from the end), or None for the mean over blocks.

    Returns:
        ``dict(img [G], text [G], center [G, 3])`` tensors; each weight vector sums to 1.
    """
    model.eval()
    out = model.forward_features(points[None], return_attention=True)
    maps = out.get("attention")
    if not maps:
        raise ValueError("model: forward_features(return_attention=True) returned no 'attention' maps")
    if layer is None:
        att = torch.stack([m.float() for m in maps]).mean(0)
    else:
        if not -len(maps) <= layer < len(maps):
            raise ConfigError(f"layer: expected an index in [{-len(maps)}, {len(maps)}), got {layer}")
        att = maps[layer].float()
    att = att[0].mean(0)  # heads averaged -> [3, G]
    return dict(img=att[1], text=att[2], center=out["center"][0].float())


def token_to_points(points: torch.Tensor, center: torch.Tensor, weights: torch.Tensor, group_size: int) -> torch.Tensor:
    """Give each point the weight of its group (kNN of the centre, as the tokenizer groups).

    A point in several groups takes the largest weight; a point in none takes its nearest centre's.

    Args:
        points: ``[N, 3]``; center: ``[G, 3]``; weights: ``[G]``; group_size: S.

    Returns:
        ``[N]`` per-point weights.
    """
    from recon.ops import knn

    k = min(group_size, points.shape[0])
    _, idx = knn(center[None].contiguous(), points[None].contiguous(), k)  # [1, G, S]
    idx = idx[0]
    out = torch.full((points.shape[0],), float("-inf"), dtype=weights.dtype)
    out.scatter_reduce_(0, idx.reshape(-1), weights[:, None].expand_as(idx).reshape(-1), reduce="amax")
    missing = torch.isinf(out)
    if missing.any():
        _, near = knn(points[missing][None].contiguous(), center[None].contiguous(), 1)
        out[missing] = weights[near[0, :, 0]]
    return out


def render(points: np.ndarray, w_img: np.ndarray, w_text: np.ndarray, path, title: str = "",
           size=(1200, 600), dpi: int = 100) -> Path:
    """Draw the cloud twice, coloured by ``w_img`` and ``w_text``, into a PNG of exactly ``size`` pixels."""
    from recon._optional import require

    matplotlib = require("matplotlib", purpose="the attention PNG")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    # Point clouds in these datasets are y-up; plot (x, z, y) so the figure is upright.
    for i, (w, name) in enumerate(((w_img, "image query"), (w_text, "text query"))):
        ax = fig.add_subplot(1, 2, i + 1, projection="3d")
        span = float(w.max() - w.min())
        c = (w - w.min()) / span if span > 0 else np.zeros_like(w)
        ax.scatter(points[:, 0], points[:, 2], points[:, 1], c=c, cmap="jet", s=6, vmin=0.0, vmax=1.0, linewidths=0)
        ax.set_title(f"{name} attention")
        ax.set_axis_off()
        ax.view_init(elev=20, azim=-60)
        lim = float(np.abs(points).max()) or 1.0
        ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim), ax.set_zlim(-lim, lim)
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    if path.parent.exists() and not path.parent.is_dir():
        raise ConfigError(f"out: {str(path.parent)!r} is not a folder, so {str(path)!r} cannot be written")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    except OSError as exc:
        raise ConfigError(f"out: cannot write the PNG {str(path)!r}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return path


def visualize(model, points: np.ndarray, out_path, npoints: int = 1024, layer: int | None = None,
              group_size: int = 32, title: str = "") -> Path:
    """Normalise and FPS ``points`` to ``npoints``, compute both queries' attention, render the PNG.

    A cloud with a non-finite coordinate (NaN, inf) is refused: it has no centroid or scale to normalise by.
    """
    bad = int((~np.isfinite(np.asarray(points))).any(axis=-1).sum())
    if bad:
        raise DataFormatError(f"input: {bad} of the cloud's {len(points)} points have non-finite coordinates "
                              "(NaN or inf); remove them first")
    pts = torch.from_numpy(normalize(points)).float()
    if pts.shape[0] < npoints:
        raise ConfigError(f"input: the cloud has {pts.shape[0]} points, the model needs at least {npoints}")
    pts = fps_points(pts[None], npoints)[0]
    att = query_attention(model, pts, layer)
    w_img = token_to_points(pts, att["center"], att["img"], group_size)
    w_text = token_to_points(pts, att["center"], att["text"], group_size)
    return render(pts.numpy(), w_img.numpy(), w_text.numpy(), out_path, title=title)
