"""Training and evaluation loops: pretraining, finetuning, voting test, DDP, checkpoints, demo.

    from recon.config import load_config
    from recon.engine import pretrain, finetune
    summary = finetune(load_config("finetune/scan_hardest", ["pretrained=ckpt-epoch-300.pth"]))

Modules: ``optim`` (param groups, schedules), ``loop`` (one epoch, AMP, accumulation),
``train_pretrain`` / ``train_finetune`` (the runs), ``evaluate`` (accuracy, voting, ``recon test``),
``dist`` (torchrun/DDP), ``checkpointing`` (atomic save, exact resume), ``logging`` (JSONL,
TensorBoard, tqdm), ``builders`` (config → model/data), ``demo`` (``recon demo``), ``zoo``.
"""

from .evaluate import evaluate, test_checkpoint, vote_evaluate
from .train_finetune import finetune
from .train_pretrain import pretrain

__all__ = ["pretrain", "finetune", "evaluate", "vote_evaluate", "test_checkpoint"]
