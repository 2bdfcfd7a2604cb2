"""Part segmentation models of the official ``segmentation/`` folders (ShapeNetPart, 50 parts).

``recon_base_partseg`` (ReCon) and ``pointmae_base_partseg`` (Point-MAE) follow the official
``get_model(50)`` of each repository as described in docs/official.md §15:

* tokeniser and transformer of the classifier (128 groups of 32 for 2048 points), drop-path 0.1;
* the local tokens after blocks 3, 7 and 11 (0-based), each through the shared final ``norm``,
  concatenated in block order -> ``(B, 3C, G)``;
* a global vector ``[max_G, mean_G, (ReCon only) the element-wise max of the three query tokens
  after the last block, NOT normed, label feature]`` repeated over the N points; the label feature
  is ``Conv1d(16, 64, bias=False) -> BN -> LeakyReLU(0.2)`` of the one-hot category;
* feature propagation from the G centres to every point: the 3 nearest centres (``recon.ops.knn``)
  weighted by ``1 / (d + 1e-8)`` with ``d`` the SQUARED distance, normalised; ``[xyz, interpolated]``
  (xyz first) -> Conv-BN-ReLU 1536 -> Conv-BN-ReLU 1024;
* head ``[propagated (1024), global]`` (3776 ReCon / 3392 Point-MAE) -> Conv-BN-ReLU 512 ->
  Dropout 0.5 -> Conv-BN-ReLU 256 -> Conv 50 -> ``log_softmax`` over the parts.

``model(points (B, N, 3), category)`` returns ``(B, N, 50)`` **log-probabilities** (the official
forward ends in ``log_softmax``; train with ``F.nll_loss``). ``category`` is the object class as
int64 ``(B,)`` or one-hot ``(B, 16)``. The ``state_dict`` keys and their order equal the official
checkpoints' (342 keys / 48,542,386 parameters for ReCon, 192 / 27,063,730 for Point-MAE).

Checkpoints (``pretrained=``, :func:`load_partseg_weights`): an official part-seg ``best_model.pth``
(weights under ``model_state_dict``; loaded strictly), an official or recon pretraining checkpoint
(``base_model``; ``module.`` and ``MAE_encoder.`` / ``base_model.`` stripped as the official seg
script does; the head is reported missing, the decoder unexpected), or a recon part-seg file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from recon.ops import group_points, knn

from .pointmae import PointMAEBackbone
from ._builder import resolve_num_group as _num_group
from .recon import ReConBackbone
from .registry import register_model
from .tokenizer import Group, check_points

__all__ = [
    "FeaturePropagation",
    "PartSegHead",
    "ReConPartSeg",
    "PointMAEPartSeg",
    "recon_base_partseg",
    "pointmae_base_partseg",
    "load_partseg_weights",
    "category_one_hot",
    "interpolate_3nn",
]

NUM_PARTS = 50
NUM_CATEGORIES = 16
OFFICIAL_FEATURE_BLOCKS = (3, 7, 11)


def category_one_hot(category: torch.Tensor, num_categories: int, batch: int) -> torch.Tensor:
    """``category`` as int ``(B,)`` (or ``(B, 1)``) class ids or a one-hot ``(B, num_categories)`` -> float one-hot."""
    if not isinstance(category, torch.Tensor):
        raise TypeError(f"category must be a torch.Tensor, int64 (B,) or one-hot (B, {num_categories}), "
                        f"got {type(category).__name__}")
    if category.is_floating_point() and category.ndim == 2 and category.shape[1] == num_categories:
        if category.shape[0] != batch:
            raise ValueError(f"category has {category.shape[0]} rows for {batch} clouds")
        return category
    if category.is_floating_point() or category.dtype == torch.bool:
        raise TypeError(f"category must be int64 class ids (B,) or a float one-hot (B, {num_categories}); "
                        f"got {category.dtype} {tuple(category.shape)}")
    ids = category.reshape(-1)
    if ids.numel() != batch:
        raise ValueError(f"category must hold one class id per cloud ({batch}), got shape {tuple(category.shape)}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_categories):
        raise ValueError(f"category ids must be in [0, {num_categories}), got {ids.tolist()}")
    return F.one_hot(ids.long(), num_categories).float()


def interpolate_3nn(xyz: torch.Tensor, centers: torch.Tensor, features: torch.Tensor, k: int = 3,
                    eps: float = 1e-8) -> torch.Tensor:
    """Inverse squared-distance interpolation of centre features onto points (official ``three_nn``).

    Args:
        xyz: ``(B, N, 3)`` target points.
        centers: ``(B, G, 3)`` source points.
        features: ``(B, G, C)`` their features (gradients flow to them).
        k: neighbours (3 officially; fewer when ``G < k``).

    Returns:
        ``(B, N, C)``: ``sum_j w_j f_j`` over the k nearest centres with ``w_j ∝ 1 / (d_j + eps)``,
        ``d`` the squared distance.
    """
    k = min(k, centers.shape[1])
    dist2, idx = knn(xyz.contiguous(), centers.contiguous(), k)
    w = 1.0 / (dist2.clamp_min(0) + eps)
    w = w / w.sum(dim=-1, keepdim=True)
    return (group_points(features.contiguous(), idx) * w.unsqueeze(-1).to(features.dtype)).sum(dim=2)


class FeaturePropagation(nn.Module):
    """``propagation_0``: 3-NN interpolation, ``[xyz, interpolated]``, then Conv-BN-ReLU per width.

    Keys ``mlp_convs.{i}`` then ``mlp_bns.{i}`` (official ``PointNetFeaturePropagation``).
    """

    def __init__(self, in_channel: int, mlp: Sequence[int]):
        super().__init__()
        self.mlp_convs = nn.ModuleList()
        self.mlp_bns = nn.ModuleList()
        last = in_channel
        for width in mlp:
            self.mlp_convs.append(nn.Conv1d(last, width, 1))
            self.mlp_bns.append(nn.BatchNorm1d(width))
            last = width

    def forward(self, xyz: torch.Tensor, centers: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``xyz (B, N, 3)``, ``centers (B, G, 3)``, ``features (B, G, C)`` -> ``(B, mlp[-1], N)``."""
        interp = interpolate_3nn(xyz, centers, features)
        x = torch.cat([xyz.to(interp.dtype), interp], dim=-1).transpose(1, 2)
        for conv, bn in zip(self.mlp_convs, self.mlp_bns):
            x = F.relu(bn(conv(x)))
        return x


class PartSegHead:
    """The part-seg modules after the backbone, registered in the official key order.

    ``label_conv``, ``propagation_0``, ``convs1``, ``convs2``, ``convs3``, ``bns1``, ``bns2``.
    Mixed into the model classes (its attributes live on the model itself, so the keys are flat).
    """

    def _init_head(self, feat_dim: int, global_dim: int, num_parts: int, num_categories: int, label_dim: int,
                   propagation_dims: Sequence[int], head_dims: Sequence[int], dropout: float) -> None:
        if len(propagation_dims) < 1 or len(head_dims) != 2:
            raise ValueError(f"propagation_dims needs >= 1 width and head_dims exactly 2, got "
                             f"{tuple(propagation_dims)}, {tuple(head_dims)}")
        self.num_parts = int(num_parts)
        self.num_categories = int(num_categories)
        self.label_conv = nn.Sequential(
            nn.Conv1d(num_categories, label_dim, 1, bias=False), nn.BatchNorm1d(label_dim), nn.LeakyReLU(0.2)
        )
        self.propagation_0 = FeaturePropagation(feat_dim + 3, propagation_dims)
        h1, h2 = head_dims
        self.convs1 = nn.Conv1d(propagation_dims[-1] + global_dim + label_dim, h1, 1)
        self.dp1 = nn.Dropout(dropout)
        self.convs2 = nn.Conv1d(h1, h2, 1)
        self.convs3 = nn.Conv1d(h2, num_parts, 1)
        self.bns1 = nn.BatchNorm1d(h1)
        self.bns2 = nn.BatchNorm1d(h2)

    def _segment(self, points: torch.Tensor, category, center: torch.Tensor, feats: torch.Tensor,
                 extra: list) -> torch.Tensor:
        """feats ``(B, G, L*C)`` (normed block outputs), extra global vectors ``(B, *)`` -> ``(B, N, parts)``."""
        B, N, _ = points.shape
        onehot = category_one_hot(category, self.num_categories, B).to(feats.dtype)
        label = self.label_conv(onehot.unsqueeze(-1)).squeeze(-1)  # (B, 64)
        glob = torch.cat([feats.amax(dim=1), feats.mean(dim=1), *extra, label], dim=1)
        f0 = self.propagation_0(points, center, feats)  # (B, 1024, N)
        x = torch.cat([f0, glob.unsqueeze(-1).expand(-1, -1, N)], dim=1)
        x = self.dp1(F.relu(self.bns1(self.convs1(x))))
        x = F.relu(self.bns2(self.convs2(x)))
        return F.log_softmax(self.convs3(x), dim=1).transpose(1, 2)


def _check_feature_blocks(blocks: Sequence[int], depth: int) -> tuple:
    blocks = tuple(int(b) for b in blocks)
    if not blocks or any(not 0 <= b < depth for b in blocks) or list(blocks) != sorted(set(blocks)):
        raise ValueError(f"feature_blocks must be increasing block indices in [0, depth={depth}), got {blocks}")
    return blocks


class ReConPartSeg(ReConBackbone, PartSegHead):
    """ReCon part segmentation (official ``segmentation/models/pt.py`` ``get_model``).

    ``model(points (B, N, 3), category int64 (B,) | one-hot (B, 16)) -> (B, N, num_parts)``
    log-probabilities.
    """

    def __init__(self, num_parts: int = NUM_PARTS, num_categories: int = NUM_CATEGORIES, num_group: int = 128,
                 group_size: int = 32, embed_dim: int = 384, depth: int = 12, num_heads: int = 6,
                 drop_path_rate: float = 0.1, feature_blocks: Sequence[int] = OFFICIAL_FEATURE_BLOCKS,
                 label_dim: int = 64, propagation_dims: Sequence[int] = (1536, 1024),
                 head_dims: Sequence[int] = (512, 256), dropout: float = 0.5, norm_style: str = "released"):
        super().__init__(embed_dim, depth, num_heads, 4.0, drop_path_rate, norm_style, stop_grad=False)
        self.feature_blocks = _check_feature_blocks(feature_blocks, depth)
        self.group_divider = Group(num_group, group_size)
        L = len(self.feature_blocks)
        self._init_head(L * embed_dim, 2 * L * embed_dim + embed_dim, num_parts, num_categories, label_dim,
                        propagation_dims, head_dims, dropout)

    def forward(self, points: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        check_points(points, max(self.group_divider.num_group, self.group_divider.group_size))
        points = points.contiguous()
        neighborhood, center = self.group_divider(points)
        v = self.encoder(neighborhood)
        B = v.shape[0]
        q = torch.cat([self.cls_token, self.img_token, self.text_token], dim=1).expand(B, -1, -1)
        qpos = torch.cat([self.cls_pos, self.img_pos, self.text_pos], dim=1)
        vpos = self.pos_embed(center)
        feats = []
        for i, blk in enumerate(self.blocks.blocks):
            q, v, _ = blk(q + qpos, v + vpos)
            if i in self.feature_blocks:
                feats.append(self.norm(v))
        # the query term is the raw (un-normed) output of the LAST block, as released
        return self._segment(points, category, center, torch.cat(feats, dim=-1), [q.amax(dim=1)])


class PointMAEPartSeg(PointMAEBackbone, PartSegHead):
    """Point-MAE part segmentation (official Point-MAE ``segmentation/models/pt.py``): no query
    tokens, standard pre-norm blocks, global vector ``[max, mean, label]``."""

    def __init__(self, num_parts: int = NUM_PARTS, num_categories: int = NUM_CATEGORIES, num_group: int = 128,
                 group_size: int = 32, embed_dim: int = 384, depth: int = 12, num_heads: int = 6,
                 drop_path_rate: float = 0.1, feature_blocks: Sequence[int] = OFFICIAL_FEATURE_BLOCKS,
                 label_dim: int = 64, propagation_dims: Sequence[int] = (1536, 1024),
                 head_dims: Sequence[int] = (512, 256), dropout: float = 0.5):
        super().__init__(embed_dim, depth, num_heads, 4.0, drop_path_rate, cls_token=False)
        self.feature_blocks = _check_feature_blocks(feature_blocks, depth)
        self.group_divider = Group(num_group, group_size)
        L = len(self.feature_blocks)
        self._init_head(L * embed_dim, 2 * L * embed_dim, num_parts, num_categories, label_dim,
                        propagation_dims, head_dims, dropout)

    def forward(self, points: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        check_points(points, max(self.group_divider.num_group, self.group_divider.group_size))
        points = points.contiguous()
        neighborhood, center = self.group_divider(points)
        x = self.encoder(neighborhood)
        pos = self.pos_embed(center)
        feats = []
        for i, blk in enumerate(self.blocks.blocks):
            x = blk(x + pos)
            if i in self.feature_blocks:
                feats.append(self.norm(x))
        return self._segment(points, category, center, torch.cat(feats, dim=-1), [])


# --------------------------------------------------------------------------------------------------
# Checkpoints


def _read_pth(path: str) -> Mapping:
    """``torch.load(weights_only=True)``, also accepting numpy scalars: the official part-seg script
    stores its metrics (``class_avg_iou``, ...) as numpy floats next to ``model_state_dict``."""
    import pickle

    import numpy as np

    allowed = [np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.float32)), type(np.dtype(np.int64))]
    try:
        from numpy.core.multiarray import scalar  # numpy < 2 name, kept as an alias by numpy 2
    except ImportError:  # pragma: no cover - numpy builds without the alias
        from numpy._core.multiarray import scalar
    allowed.append(scalar)
    try:
        with torch.serialization.safe_globals(allowed):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        from recon.errors import CheckpointError

        raise CheckpointError(
            f"{path} holds Python objects that torch.load(weights_only=True) refuses to unpickle ({e}). If you "
            "trust the file, torch.load it yourself with weights_only=False and pass the dict as pretrained"
        ) from None
    if not isinstance(obj, Mapping):
        from recon.errors import CheckpointError

        raise CheckpointError(f"{path}: expected a dict in the checkpoint, got {type(obj).__name__}")
    return obj


def load_partseg_weights(model: nn.Module, source, strict: bool | None = None):
    """Load a checkpoint into a part-seg model; returns the :class:`recon.checkpoint.LoadReport`.

    Args:
        model: a :class:`ReConPartSeg` / :class:`PointMAEPartSeg`.
        source: an official part-seg ``.pth`` (``model_state_dict``), an official / recon pretraining
            ``.pth`` (``base_model``), a recon file prefix, or an in-memory dict of either kind.
        strict: default: strict for part-seg checkpoints (every key must match), not strict for
            pretraining checkpoints (the head is reported missing, the decoder unexpected).

    Raises:
        recon.checkpoint.CheckpointMismatchError: strict loading found missing/unexpected keys.
        ValueError: a tensor's shape differs (names the key and both shapes).
        FileNotFoundError: no such file.
    """
    from recon.checkpoint import load_checkpoint, read_checkpoint

    fmt = None
    if isinstance(source, Mapping):
        obj, label = source, "<state_dict>"
    else:
        label = os.fspath(source)
        if label.endswith((".pth", ".pt")):
            if not os.path.isfile(label):
                from recon.errors import MissingFileError

                raise MissingFileError(f"checkpoint not found: {label}")
            obj = _read_pth(label)
        else:
            obj, fmt = read_checkpoint(label)
    if isinstance(obj.get("model_state_dict"), Mapping):
        obj, fmt = dict(obj["model_state_dict"]), "official-partseg"
        is_partseg = True
    else:
        weights = obj["base_model"] if isinstance(obj.get("base_model"), Mapping) else obj
        is_partseg = any(str(k).endswith("convs3.weight") for k in weights)
    report = load_checkpoint(model, obj, strict=is_partseg if strict is None else strict)
    report.source = label
    if fmt is not None:
        report.source_format = fmt
    return report


# --------------------------------------------------------------------------------------------------
# Factories


def _partseg_config(name, num_parts, num_categories, npoints, num_group, group_size, drop_path_rate,
                    feature_blocks, embed_dim, depth, num_heads, label_dim, propagation_dims, head_dims, dropout,
                    **extra) -> dict:
    return dict(
        name=name,
        num_parts=int(num_parts),
        num_categories=int(num_categories),
        npoints=int(npoints),
        num_group=_num_group(npoints, num_group),
        group_size=int(group_size),
        drop_path_rate=float(drop_path_rate),
        feature_blocks=[int(b) for b in feature_blocks],
        embed_dim=int(embed_dim),
        depth=int(depth),
        num_heads=int(num_heads),
        label_dim=int(label_dim),
        propagation_dims=[int(d) for d in propagation_dims],
        head_dims=[int(d) for d in head_dims],
        dropout=float(dropout),
        **extra,
    )


def _build_partseg(cls, config: dict, pretrained) -> nn.Module:
    model = cls(**{k: v for k, v in config.items() if k not in ("name", "npoints")})
    model.config = config
    if pretrained:
        model.load_report = load_partseg_weights(model, pretrained)
    return model


@register_model(kind="partseg", paper={"instance_miou": 86.4},
                description="ReCon (base) part segmentation, ShapeNetPart 16 categories / 50 parts")
def recon_base_partseg(num_parts=NUM_PARTS, num_categories=NUM_CATEGORIES, npoints=2048, num_group=None,
                       group_size=32, drop_path_rate=0.1, feature_blocks=OFFICIAL_FEATURE_BLOCKS, pretrained=None,
                       norm_style="released", depth=12, embed_dim=384, num_heads=6, label_dim=64,
                       propagation_dims=(1536, 1024), head_dims=(512, 256), dropout=0.5):
    """ReCon (base) part segmentation: ``model(points, category) -> (B, N, 50)`` log-probabilities."""
    config = _partseg_config("recon_base_partseg", num_parts, num_categories, npoints, num_group, group_size,
                             drop_path_rate, feature_blocks, embed_dim, depth, num_heads, label_dim,
                             propagation_dims, head_dims, dropout, norm_style=norm_style)
    return _build_partseg(ReConPartSeg, config, pretrained)


@register_model(kind="partseg", paper={"instance_miou": 86.1},
                description="Point-MAE part segmentation, ShapeNetPart 16 categories / 50 parts")
def pointmae_base_partseg(num_parts=NUM_PARTS, num_categories=NUM_CATEGORIES, npoints=2048, num_group=None,
                          group_size=32, drop_path_rate=0.1, feature_blocks=OFFICIAL_FEATURE_BLOCKS, pretrained=None,
                          depth=12, embed_dim=384, num_heads=6, label_dim=64, propagation_dims=(1536, 1024),
                          head_dims=(512, 256), dropout=0.5):
    """Point-MAE part segmentation: ``model(points, category) -> (B, N, 50)`` log-probabilities."""
    config = _partseg_config("pointmae_base_partseg", num_parts, num_categories, npoints, num_group, group_size,
                             drop_path_rate, feature_blocks, embed_dim, depth, num_heads, label_dim,
                             propagation_dims, head_dims, dropout)
    return _build_partseg(PointMAEPartSeg, config, pretrained)
