"""Training and evaluation loops: pretraining, finetuning, voting test, DDP, checkpoints.

    from recon.config import load_config
    from recon.engine import pretrain, finetune
    summary = finetune(load_config("finetune/scan_hardest", ["pretrained=ckpt-epoch-300.pth"]))

Modules: ``schema`` (the config sections, their types and defaults), ``optim`` (param groups,
schedules), ``loop`` (one epoch, AMP, accumulation), ``train_pretrain`` / ``train_finetune`` (the
runs), ``evaluate`` (accuracy, voting, testing a checkpoint), ``dist`` (torchrun/DDP),
``checkpointing`` (atomic save, exact resume), ``logging`` (JSONL, TensorBoard, tqdm, progress
lines), ``builders`` (config → model/data), ``run`` (what every run does around its epochs),
``teacher_cache`` (teacher features for pretraining). The commands live in :mod:`recon.apps`.
"""

from .evaluate import evaluate, test_checkpoint, vote_evaluate
from .schema import RunConfig, run_config
from .train_finetune import finetune
from .train_pretrain import pretrain

__all__ = ["pretrain", "finetune", "evaluate", "vote_evaluate", "test_checkpoint", "run_config", "RunConfig"]
