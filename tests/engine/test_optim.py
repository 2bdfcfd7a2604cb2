import math

import pytest
import torch
from torch import nn

from recon.engine.optim import LRSchedule, build_optimizer, param_groups


class _Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.cls_pos = nn.Parameter(torch.zeros(1, 1, 4))
        self.img_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.img_pos = nn.Parameter(torch.zeros(1, 1, 4))
        self.fc = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.cls_head_finetune = nn.Sequential(nn.Linear(4, 2), nn.BatchNorm1d(2))


def _names(model, group):
    ids = {id(p) for p in group["params"]}
    return sorted(n for n, p in model.named_parameters() if id(p) in ids)


def test_param_groups_follow_the_official_rules():
    m = _Model()
    groups = {g["name"]: g for g in param_groups(m, weight_decay=0.05, lr=1e-3, cls_lr_mult=10)}
    # 'cls' params: lr x10 and decayed, even biases / BN (docs/official.md §9)
    assert _names(m, groups["cls_x10"]) == sorted(
        ["cls_token", "cls_pos", "cls_head_finetune.0.weight", "cls_head_finetune.0.bias",
         "cls_head_finetune.1.weight", "cls_head_finetune.1.bias"])
    assert groups["cls_x10"]["lr"] == pytest.approx(1e-2) and groups["cls_x10"]["weight_decay"] == 0.05
    assert _names(m, groups["no_decay"]) == ["fc.bias", "img_token", "norm.bias", "norm.weight"]
    assert _names(m, groups["decay"]) == ["fc.weight", "img_pos"]  # 3-D pos params are decayed
    # without the multiplier, 'cls' params fall under the ordinary rules
    plain = {g["name"]: g for g in param_groups(m, 0.05, 1e-3, 1.0)}
    assert "cls_token" in _names(m, plain["no_decay"]) and "cls_pos" in _names(m, plain["decay"])


def test_build_optimizer_errors():
    with pytest.raises(ValueError, match="optimizer.name"):
        build_optimizer(_Model(), {"name": "lamb", "lr": 1e-3})
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable"):
        build_optimizer(frozen, {"lr": 1e-3})


def test_cos_epoch_matches_timm_as_the_official_loop_uses_it():
    m = _Model()
    opt = build_optimizer(m, {"lr": 2e-5, "weight_decay": 0.05, "cls_lr_mult": 10})
    s = LRSchedule(opt, "cos_epoch", t_initial=300, warmup_epochs=10)
    by_name = lambda: {g["name"]: g["lr"] for g in opt.param_groups}  # noqa: E731
    s.set(0)
    assert by_name()["decay"] == pytest.approx(1e-6)
    s.set(1)
    assert by_name()["decay"] == pytest.approx(1e-6)  # epoch 1 still runs at warmup_lr_init
    s.set(5)
    assert by_name()["decay"] == pytest.approx(1e-6 + 4 * (2e-5 - 1e-6) / 10)
    s.set(11)  # values verified with timm 0.4.5 (docs/official.md §9)
    assert by_name()["decay"] == pytest.approx(1.9948e-5, rel=1e-4)
    assert by_name()["cls_x10"] == pytest.approx(1.9945e-4, rel=1e-4)
    s.set(150)
    assert by_name()["decay"] == pytest.approx(1.0599e-5, rel=1e-4)
    assert by_name()["cls_x10"] == pytest.approx(1.0154e-4, rel=1e-4)
    s.set(301)
    assert by_name()["decay"] == pytest.approx(1e-6)


def test_cos_step_warmup_then_cosine_and_state_roundtrip():
    opt = torch.optim.AdamW(nn.Linear(2, 2).parameters(), lr=1.0)
    s = LRSchedule(opt, "cos_step", t_initial=10, warmup_epochs=2, lr_min=0.0, warmup_lr_init=0.0,
                   steps_per_epoch=5)
    lrs = [s.lr(1.0, e, i) for e in range(10) for i in range(5)]
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(0.5) and lrs[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # non-increasing after warm-up
    assert lrs[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 39 / 40)))
    s2 = LRSchedule(torch.optim.AdamW(nn.Linear(2, 2).parameters(), lr=3.0), "constant")
    s2.load_state_dict(s.state_dict())
    assert s2.lr(1.0, 3, 1) == s.lr(1.0, 3, 1)
    with pytest.raises(ValueError, match="scheduler.name"):
        LRSchedule(opt, "linear")


@pytest.mark.parametrize("impl", ["for", "foreach", "fused"])
def test_optimizer_impls_keep_groups_and_agree(impl):
    def run(impl):
        torch.manual_seed(0)
        m = _Model()
        opt = build_optimizer(m, {"lr": 1e-2, "weight_decay": 0.05, "cls_lr_mult": 10, "impl": impl})
        for _ in range(3):
            x = torch.randn(6, 4)
            h = m.fc(x) + m.cls_token[0, 0] + m.img_pos[0, 0] + m.img_token[0, 0] * m.cls_pos[0, 0]
            loss = (m.cls_head_finetune[0](h) - 1).square().mean() + (m.norm(x) - x).square().mean()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return m, opt

    ref, _ = run("for")
    m, opt = run(impl)
    assert [g["name"] for g in opt.param_groups] == ["no_decay", "decay", "cls_x10"]
    assert bool(opt.defaults["fused"]) == (impl == "fused")
    for (n, a), b in zip(m.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=n)  # fused rounds differently


def test_optimizer_impl_auto_and_errors():
    assert build_optimizer(_Model(), {"lr": 1e-3}).defaults["fused"] is True  # float CPU params: fused
    with pytest.raises(ValueError, match="optimizer.impl"):
        build_optimizer(_Model(), {"lr": 1e-3, "impl": "apex"})
