"""benchmarks/train_step.py and its official-form baseline: the baseline computes recon's function, and
every kind of row (official / eager, finetune / pretrain, fp32 / bf16) is produced with sane fields."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

_BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(_BENCH))  # the benchmark imports its sibling helper the way a script does


def _load(name):
    spec = importlib.util.spec_from_file_location(name, _BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ts = _load("train_step")
of = _load("_official_form")


@pytest.mark.parametrize("name", ["recon_tiny", "pointmae_base"])
def test_official_form_computes_the_same_logits(name):
    assert of.check_same_logits(name, 256) < 1e-5


def test_official_form_refuses_a_model_without_its_parts():
    with pytest.raises(ValueError, match="nothing to patch"):
        of.official_form(torch.nn.Linear(3, 3))


def test_official_form_gradients_equal_recon():
    from recon.models import create_model

    torch.manual_seed(0)
    a = create_model("recon_tiny", num_classes=5, npoints=256, depth=2, drop_path_rate=0.0).train()
    b = create_model("recon_tiny", num_classes=5, npoints=256, depth=2, drop_path_rate=0.0).train()
    b.load_state_dict(a.state_dict())
    of.official_form(b)
    x = torch.rand(4, 256, 3) * 2 - 1
    for m in (a, b):
        torch.manual_seed(1)  # the same dropout mask in the head
        m(x).square().sum().backward()
    scale = max(p.grad.norm() for p in a.parameters() if p.grad is not None)
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        if pa.grad is None:
            assert pb.grad is None, n
            continue
        # float32 sums in another order: compare whole gradients. A bias that a BatchNorm follows has a
        # zero gradient in exact arithmetic, so only its size (rounding noise) is compared for those.
        if pa.grad.norm() < 1e-4 * scale:
            assert pb.grad.norm() < 1e-4 * scale, n
        else:
            assert (pa.grad - pb.grad).norm() <= 1e-3 * pa.grad.norm(), n


@pytest.mark.parametrize("task, mode, amp", [("finetune", "official", "none"), ("finetune", "eager", "bf16"),
                                             ("pretrain", "eager", "none"), ("pretrain", "official", "bf16")])
def test_rows(task, mode, amp):
    threads = torch.get_num_threads()
    try:
        row = ts.measure("recon_tiny", mode, 1, 2, 256, steps=1, warmup=0, optimizer="auto", amp=amp, task=task)
    finally:
        torch.set_num_threads(threads)
    assert row["task"] == task and row["mode"] == mode and row["amp"] == amp
    assert row["step_s"] > 0 and row["samples_per_s"] == pytest.approx(2 / row["step_s"])
    if mode == "official":
        assert row["optimizer"] == "for"  # torch's CPU default, as the official code runs it
        if task == "finetune":
            assert row["max_abs_diff_vs_eager"] < 1e-5
    if mode == "eager":
        assert sum(row["shares"].values()) == pytest.approx(1.0, abs=1e-3)
        assert set(row["block_parts"]) >= {"attn", "mlp", "attn_contrast", "mlp_contrast"}
        assert row["shares"]["backward"] > 0
