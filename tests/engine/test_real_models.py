"""One optimizer step on the real (shrunken) ReCon models changes the weights; a few lower the loss."""

import torch

from recon.engine.loop import Amp, train_epoch
from recon.engine.optim import LRSchedule, build_optimizer
from recon.engine.train_finetune import classification_step
from recon.engine.train_pretrain import pretrain_step
from recon.models import create_model

SMALL = dict(depth=1, embed_dim=48, num_heads=2, num_group=8, group_size=8, drop_path_rate=0.0)


def _batch(n=8, points=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"points": torch.rand(n, points, 3, generator=g) * 2 - 1, "label": torch.arange(n) % 3,
            "img_feat": torch.randn(n, 16, generator=g), "text_feat": torch.randn(n, 8, generator=g)}


def _run(model, step_fn, lr, steps):
    opt = build_optimizer(model, {"lr": lr, "weight_decay": 0.05, "cls_lr_mult": 10})
    sched = LRSchedule(opt, "constant")
    amp = Amp("none", torch.device("cpu"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    losses = []
    for epoch in range(steps):
        stats = train_epoch(model.train(), [_batch()], step_fn, opt, sched, amp, epoch, torch.device("cpu"),
                            grad_clip=10, progress=False)
        losses.append(stats["loss"])
    changed = [k for k in before if not torch.equal(before[k], model.state_dict()[k])]
    return losses, changed


def test_pretraining_steps_change_weights_and_lower_the_loss():
    torch.manual_seed(0)
    model = create_model("recon_tiny_pretrain", npoints=64, img_dim=16, text_dim=8, decoder_depth=1, **SMALL)
    losses, changed = _run(model, pretrain_step(None), 1e-3, 6)
    assert any(k.startswith("MAE_encoder.") for k in changed) and "img_proj.weight" in changed
    assert losses[-1] < losses[0], losses


def test_finetuning_steps_change_weights_and_lower_the_loss():
    torch.manual_seed(0)
    model = create_model("recon_tiny", num_classes=3, npoints=64, **SMALL)
    losses, changed = _run(model, classification_step(64, None, None), 1e-3, 6)
    assert "cls_head_finetune.8.weight" in changed and "blocks.blocks.0.attn.qkv.weight" in changed
    assert losses[-1] < losses[0], losses


def test_bf16_autocast_step_on_cpu():
    torch.manual_seed(0)
    model = create_model("recon_tiny", num_classes=3, npoints=64, **SMALL)
    opt = build_optimizer(model, {"lr": 1e-3})
    stats = train_epoch(model.train(), [_batch()], classification_step(64, None, None), opt, None,
                        Amp("bf16", torch.device("cpu")), 0, torch.device("cpu"), progress=False)
    assert torch.isfinite(torch.tensor(stats["loss"]))
