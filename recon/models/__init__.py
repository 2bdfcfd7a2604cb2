"""recon model zoo: ReCon-Tiny/Small/Base, the Point-MAE baseline, pretraining models.

    from recon.models import recon_base, create_model, list_models, load_model
    model = recon_base(num_classes=15, npoints=2048, pretrained="ckpt-best.pth")
    logits = model(points)          # points (B, N, 3) -> (B, 15)
    model = load_model("runs/best") # a model saved by recon.checkpoint.save_model

See docs/models.md for the zoo table, FLOPs conventions and checkpoint formats.
"""

from .complexity import FlopCount, count_flops, count_params
from .heads import ZEROSHOT_RATIOS, build_head, svm_feature
from .pointmae import PointMAEBackbone, PointMAEClassifier, pointmae_base
from .pretrain import (
    PointMAEPretrain,
    ReConPretrain,
    pointmae_base_pretrain,
    random_mask,
    recon_base_pretrain,
    recon_small_pretrain,
    recon_tiny_pretrain,
)
from .recon import ReConBackbone, ReConClassifier, ReConZeroShot, recon_base, recon_base_zeroshot, recon_small, recon_tiny
from .registry import create_model, list_models, load_model, model_defaults, model_info, register_model

__all__ = [
    "create_model",
    "load_model",
    "list_models",
    "register_model",
    "model_defaults",
    "model_info",
    "recon_tiny",
    "recon_small",
    "recon_base",
    "recon_base_zeroshot",
    "pointmae_base",
    "recon_tiny_pretrain",
    "recon_small_pretrain",
    "recon_base_pretrain",
    "pointmae_base_pretrain",
    "ReConBackbone",
    "ReConClassifier",
    "ReConZeroShot",
    "ReConPretrain",
    "PointMAEBackbone",
    "PointMAEClassifier",
    "PointMAEPretrain",
    "random_mask",
    "build_head",
    "svm_feature",
    "ZEROSHOT_RATIOS",
    "count_flops",
    "count_params",
    "FlopCount",
]

# The paper's Table 9 ablation baselines (vanilla multi-task, two-tower): imported for registration.
from . import ablations  # noqa: E402,F401
from .partseg import PointMAEPartSeg, ReConPartSeg, pointmae_base_partseg, recon_base_partseg  # noqa: E402
__all__ += ["recon_base_partseg", "pointmae_base_partseg", "ReConPartSeg", "PointMAEPartSeg"]
