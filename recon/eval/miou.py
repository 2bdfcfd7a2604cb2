"""Part-segmentation metrics of ShapeNetPart: masked predictions, shape IoU, instance / class mIoU.

The protocol of the official ``validate`` (docs/official.md §15):

* a shape's prediction is the arg-max over **its category's parts only** (the other parts of the
  50 are never predicted);
* shape IoU = mean over the category's parts of ``|P ∩ G| / |P ∪ G|``, a part absent from both the
  prediction and the ground truth counting 1.0;
* **instance mIoU** = mean over all shapes; **class mIoU** = mean over categories of the mean
  shape IoU of that category (categories without test shapes are left out);
* point accuracy over all points.

The official code takes a shape's category from the part label of its first point; recon uses the
category label the dataset provides (the same on every well-formed file).
:class:`PartSegMeter` accumulates shapes batch by batch and merges across processes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

__all__ = ["masked_predict", "shape_iou", "PartSegMeter", "format_iou_table", "evaluate_partseg"]


def _part_mask(category_parts: Sequence[Sequence[int]], num_parts: int, device) -> torch.Tensor:
    mask = torch.zeros(len(category_parts), num_parts, dtype=torch.bool, device=device)
    for c, parts in enumerate(category_parts):
        mask[c, list(parts)] = True
    return mask


def masked_predict(scores: torch.Tensor, category: torch.Tensor,
                   category_parts: Sequence[Sequence[int]]) -> torch.Tensor:
    """Per-point part ids, arg-max over the parts of each shape's category.

    Args:
        scores: ``(B, N, P)`` logits or log-probabilities.
        category: int ``(B,)`` category ids.
        category_parts: for each category id, its global part ids (``PART_IDS`` of ShapeNetPart).

    Returns:
        int64 ``(B, N)`` global part ids, each among ``category_parts[category[b]]``.
    """
    if scores.ndim != 3:
        raise ValueError(f"scores must be (B, N, P), got {tuple(scores.shape)}")
    cat = category.reshape(-1).long()
    if cat.numel() != scores.shape[0]:
        raise ValueError(f"category must hold one id per shape ({scores.shape[0]}), got {tuple(category.shape)}")
    mask = _part_mask(category_parts, scores.shape[-1], scores.device)[cat]  # (B, P)
    masked = scores.float().masked_fill(~mask.unsqueeze(1), float("-inf"))
    return masked.argmax(dim=-1)


def shape_iou(pred: np.ndarray, target: np.ndarray, parts: Sequence[int]) -> float:
    """Mean IoU of one shape over ``parts``; a part in neither ``pred`` nor ``target`` counts 1.0."""
    pred, target = np.asarray(pred), np.asarray(target)
    ious = []
    for p in parts:
        inter = np.sum((pred == p) & (target == p))
        union = np.sum((pred == p) | (target == p))
        ious.append(1.0 if union == 0 else inter / union)
    return float(np.mean(ious))


class PartSegMeter:
    """Collects per-shape IoUs and point counts; :meth:`compute` gives the metrics.

    Args:
        category_parts: global part ids per category id.
        category_names: names for the table (default ``cat0, cat1, ...``).
    """

    def __init__(self, category_parts: Sequence[Sequence[int]], category_names: Sequence[str] | None = None):
        self.category_parts = [list(p) for p in category_parts]
        self.category_names = list(category_names or [f"cat{i}" for i in range(len(self.category_parts))])
        if len(self.category_names) != len(self.category_parts):
            raise ValueError("category_names and category_parts must have the same length")
        self.ious: list[list[float]] = [[] for _ in self.category_parts]
        self.correct = 0
        self.total = 0

    def update(self, scores: torch.Tensor, target: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        """Add a batch: ``scores (B, N, P)``, ``target`` int ``(B, N)``, ``category`` int ``(B,)``.

        Returns the masked predictions ``(B, N)``.
        """
        if target.shape != scores.shape[:2]:
            raise ValueError(f"target must be (B, N) = {tuple(scores.shape[:2])}, got {tuple(target.shape)}")
        pred = masked_predict(scores, category, self.category_parts)
        self.correct += int((pred == target.long()).sum())
        self.total += int(target.numel())
        pred_np, tgt_np = pred.cpu().numpy(), target.cpu().numpy()
        for b, c in enumerate(category.reshape(-1).tolist()):
            self.ious[c].append(shape_iou(pred_np[b], tgt_np[b], self.category_parts[c]))
        return pred

    def state(self) -> dict:
        """Plain values to merge across processes (:meth:`merge`)."""
        return {"ious": [list(x) for x in self.ious], "correct": self.correct, "total": self.total}

    def merge(self, states: Sequence[Mapping]) -> None:
        """Replace this meter's content by the union of ``states`` (e.g. ``all_gather_object``)."""
        self.ious = [[v for s in states for v in s["ious"][c]] for c in range(len(self.category_parts))]
        self.correct = sum(int(s["correct"]) for s in states)
        self.total = sum(int(s["total"]) for s in states)

    def compute(self) -> dict:
        """``instance_miou``, ``class_miou``, ``accuracy`` (percent), ``per_category`` {name: mIoU},
        ``counts`` {name: shapes}, ``shapes``; categories without shapes are absent from the tables."""
        all_ious = [v for x in self.ious for v in x]
        per_cat = {n: float(np.mean(x)) * 100 for n, x in zip(self.category_names, self.ious) if x}
        return {
            "instance_miou": float(np.mean(all_ious)) * 100 if all_ious else float("nan"),
            "class_miou": float(np.mean(list(per_cat.values()))) if per_cat else float("nan"),
            "accuracy": 100.0 * self.correct / self.total if self.total else float("nan"),
            "per_category": per_cat,
            "counts": {n: len(x) for n, x in zip(self.category_names, self.ious) if x},
            "shapes": len(all_ious),
        }


def format_iou_table(metrics: Mapping) -> str:
    """The per-category table plus the summary lines, as plain text."""
    rows = [f"{'category':<14}{'shapes':>7}{'mIoU':>9}"]
    for name, v in metrics["per_category"].items():
        rows.append(f"{name:<14}{metrics['counts'][name]:>7}{v:>9.2f}")
    rows.append(f"{'class mIoU':<21}{metrics['class_miou']:>9.2f}")
    rows.append(f"{'instance mIoU':<14}{metrics['shapes']:>7}{metrics['instance_miou']:>9.2f}")
    rows.append(f"{'point accuracy':<21}{metrics['accuracy']:>9.2f}")
    return "\n".join(rows)


@torch.no_grad()
def evaluate_partseg(model, loader, device, category_parts: Sequence[Sequence[int]],
                     category_names: Sequence[str] | None = None, autocast=None) -> dict:
    """Run a part-seg model over ``loader`` (items ``points``, ``label``, ``seg``); :meth:`PartSegMeter.compute`.

    Under ``torch.distributed`` each process evaluates its shard and the shapes of all processes
    are merged before the means are taken. The model is put in eval mode and restored afterwards.

    Args:
        autocast: a context-manager factory (mixed precision), e.g. ``Amp.autocast``.
    """
    import contextlib

    import torch.distributed as tdist

    meter = PartSegMeter(category_parts, category_names)
    was_training = model.training
    model.eval()
    try:
        for batch in loader:
            points = batch["points"][..., :3].to(device)
            label = batch["label"].view(-1).long().to(device)
            with (autocast() if autocast is not None else contextlib.nullcontext()):
                scores = model(points, label)
            meter.update(scores.float(), batch["seg"].to(device), label)
    finally:
        model.train(was_training)
    if tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1:
        states = [None] * tdist.get_world_size()
        tdist.all_gather_object(states, meter.state())
        meter.merge(states)
    return meter.compute()
