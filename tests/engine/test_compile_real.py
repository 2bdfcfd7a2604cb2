"""``train.compile`` on the real models (reduced sizes), with ``fullgraph=True``.

Model level: the compiled classifier, pretraining models and part-seg model give the eager outputs,
loss and gradients (float32, and bf16 autocast as ``train.amp=bf16`` runs on CPU), and keep their
state-dict keys. Engine level: ``recon pretrain`` (also with bf16 and gradient accumulation) and
``recon partseg`` run compiled through ``recon.cli.main`` and save plain keys; an evaluation split with
a smaller last batch compiles once, not once per epoch.

Dropout and the pretraining masks are random: ``torch._inductor.config.fallback_random`` makes the
compiled graph draw from torch's generator exactly as eager does, so the comparisons are exact in law
and in value (without it inductor has its own generator: the same law, other draws).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import sys
import warnings

import pytest
import torch
import torch._dynamo
import torch._inductor.config as inductor_config
import yaml
from torch._dynamo.utils import counters

from helpers import standin_config
from recon.cli import main
from recon.compile import compile_model
from recon.engine.checkpointing import load
from recon.engine.run import TrainRun
from recon.models import create_model
from recon.models.pretrain import random_mask

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "partseg"))
from partseg_writers import config_overrides  # noqa: E402

TINY = dict(depth=1, embed_dim=32, num_heads=2, num_group=8, group_size=8, drop_path_rate=0.0)
NPOINTS = 64


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Each test compiles from scratch and counts only its own graphs."""
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def _clouds(b=4, n=NPOINTS, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, n, 3, generator=g) * 2 - 1


def _classifier():
    return create_model("recon_tiny", num_classes=3, npoints=NPOINTS, **TINY)


def _recon_pretrain():
    return create_model("recon_tiny_pretrain", npoints=NPOINTS, img_dim=16, text_dim=8, decoder_depth=1, **TINY)


def _pointmae_pretrain():
    return create_model("pointmae_base_pretrain", npoints=NPOINTS, decoder_depth=1, **TINY)


def _partseg():
    return create_model("recon_base_partseg", num_parts=6, num_categories=3, npoints=NPOINTS, feature_blocks=[0],
                        propagation_dims=[24, 16], head_dims=[16, 8], **TINY)


def _inputs(kind, b=4):
    pts = _clouds(b)
    g = torch.Generator().manual_seed(1)
    if kind == "recon_pretrain":
        return (pts, torch.randn(b, 16, generator=g), torch.randn(b, 8, generator=g))
    if kind == "partseg":
        return (pts, torch.arange(b) % 3)
    return (pts,)


MODELS = {"classifier": _classifier, "recon_pretrain": _recon_pretrain, "pointmae_pretrain": _pointmae_pretrain,
          "partseg": _partseg}


def _loss(out):
    if isinstance(out, dict):
        return out["loss"]
    # a fixed random projection: every logit / log-probability gets its own, non-degenerate gradient
    # (a logsumexp of log-probabilities would be the constant 0)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    return (out.double() * w).mean().to(torch.promote_types(out.dtype, torch.float32))


def _run(model, inputs, train, amp):
    """One forward (and backward in train mode) from a fixed seed; returns output, loss and gradients."""
    model.train(train)
    model.zero_grad(set_to_none=True)
    torch.manual_seed(123)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp), torch.set_grad_enabled(train):
        out = model(*inputs)
    loss = _loss(out)
    if train:
        loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}
    return out, loss.detach(), grads


# (outputs and loss, gradient per parameter relative to its own norm, floor relative to the largest norm)
TOLERANCES = {
    "float64": (dict(rtol=1e-9, atol=1e-10), 1e-8, 1e-10),
    # the patch embedding max-pools over points: where two points are within rounding of each other,
    # eager and compiled may send a channel's gradient to different points (both valid); in float32
    # this happens now and then and moves a few entries of a weight's gradient, hence norms, not entries
    "float32": (dict(rtol=1e-4, atol=1e-5), 1e-2, 1e-4),
}
# bf16: eager itself is far from the exact values (BatchNorm over a small batch amplifies rounding), so
# compiled bf16 is held to eager bf16's own distance from a float64 twin: at most BF16_FACTOR times it,
# plus BF16_FLOOR times the largest reference norm
BF16_FACTOR, BF16_FLOOR = 4.0, 1e-2


def _assert_grads_close(ref: dict, got: dict, rel: float, floor: float):
    """Each parameter's gradient within ``rel`` of its norm, plus ``floor`` times the largest norm (gradients
    that vanish in exact arithmetic, e.g. a bias before BatchNorm, hold only rounding noise)."""
    assert ref.keys() == got.keys() and ref
    norms = {k: float(g.double().norm()) for k, g in ref.items()}
    top = max(norms.values())
    for k in ref:
        diff = float((ref[k].double() - got[k].double()).norm())
        assert diff <= rel * norms[k] + floor * top, f"gradient of {k}: |diff| {diff:.3g}, |grad| {norms[k]:.3g}"


def _assert_no_further(exact: dict, eager: dict, compiled: dict, what: str):
    """bf16: every compiled tensor no further from the float64 value than BF16_FACTOR x eager's distance."""
    assert exact.keys() == eager.keys() == compiled.keys() and exact
    top = max(float(v.double().norm()) for v in exact.values())
    for k, x in exact.items():
        assert torch.isfinite(compiled[k]).all(), f"{what} {k}: not finite"
        e = float((eager[k].double() - x.double()).norm())
        c = float((compiled[k].double() - x.double()).norm())
        assert c <= BF16_FACTOR * e + BF16_FLOOR * top, f"{what} {k}: compiled off by {c:.3g}, eager by {e:.3g}"


def _as_dict(out, loss):
    return {**(dict(out) if isinstance(out, dict) else {"output": out}), "loss (test)": loss}


def _compare(kind, precision, modes=("train",)):
    torch.manual_seed(0)
    eager = MODELS[kind]()
    amp = precision == "bf16"
    inputs = _inputs(kind, 16 if amp else 4)  # bf16: a batch large enough for BatchNorm to be stable
    inputs64 = tuple(x.double() if x.is_floating_point() else x for x in inputs)
    if precision == "float64":
        eager, inputs = eager.double(), inputs64
    exact = copy.deepcopy(eager).double() if amp else None
    compiled = copy.deepcopy(eager)
    keys = list(compiled.state_dict())
    assert compile_model(compiled, fullgraph=True) is compiled
    for train in (mode == "train" for mode in modes):
        out_e, loss_e, grads_e = _run(eager, inputs, train, amp)
        with inductor_config.patch(fallback_random=True):
            out_c, loss_c, grads_c = _run(compiled, inputs, train, amp)
        if amp:
            out_x, loss_x, grads_x = _run(exact, inputs64, train, False)
            _assert_no_further(_as_dict(out_x, loss_x), _as_dict(out_e, loss_e), _as_dict(out_c, loss_c), "output")
            if train:
                _assert_no_further(grads_x, grads_e, grads_c, "gradient of")
            continue
        tol, rel, floor = TOLERANCES[precision]
        outs_e, outs_c = _as_dict(out_e, loss_e), _as_dict(out_c, loss_c)
        assert outs_e.keys() == outs_c.keys()
        for k in outs_e:
            assert outs_c[k].dtype == outs_e[k].dtype, k
            torch.testing.assert_close(outs_c[k].detach(), outs_e[k].detach(), **tol, msg=k)
        if train:
            _assert_grads_close(grads_e, grads_c, rel, floor)
    # what checkpoints see: the same keys (no `_orig_mod.`) and, in full precision, the eager twin's values
    # (BatchNorm running statistics included: the compiled graph updated them as eager did)
    state_e, state_c = eager.state_dict(), compiled.state_dict()
    assert list(state_c) == keys
    if not amp:
        for k in keys:
            torch.testing.assert_close(state_c[k], state_e[k], **TOLERANCES[precision][0], msg=k)
    assert counters["stats"]["unique_graphs"] == len(modes)  # one graph per mode: nothing split or retraced
    assert not counters["graph_break"]
    return compiled


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_compiled_model_matches_eager_float64(kind):
    _compare(kind, "float64")


def test_compiled_classifier_matches_eager_float32_train_and_eval():
    _compare("classifier", "float32", modes=("train", "eval"))


@pytest.mark.parametrize("kind", ["classifier", "recon_pretrain", "partseg"])
def test_compiled_model_matches_eager_under_bf16_autocast(kind):
    _compare(kind, "bf16")


def test_compiled_partseg_still_refuses_an_unknown_category():
    torch.manual_seed(0)
    model = compile_model(_partseg().eval(), fullgraph=True)
    pts, cat = _inputs("partseg")
    with torch.no_grad():
        assert model(pts, cat).shape == (4, NPOINTS, 6)
        with pytest.raises(RuntimeError, match="category ids"):
            model(pts, torch.tensor([0, 3, 1, 2]))  # 3 categories: id 3 is out of range


@pytest.mark.parametrize("mask_type", ["rand", "block"])
def test_masking_traces_fullgraph_and_picks_the_eager_groups(mask_type):
    center = _clouds(3, 16, seed=2)
    fn = torch.compile(lambda c: random_mask(c, 0.6, mask_type), fullgraph=True)
    torch.manual_seed(7)
    ref = random_mask(center, 0.6, mask_type)
    with inductor_config.patch(fallback_random=True):
        torch.manual_seed(7)
        got = fn(center)
    for r, g in zip(ref, got):
        assert torch.equal(r, g)
    # inductor's own generator: other draws, the same law (9 of 16 groups masked, a partition, ascending)
    vis, mask = fn(center)
    assert mask.shape == (3, 9) and vis.shape == (3, 7)
    assert torch.equal(torch.cat([vis, mask], 1).sort(1).values, torch.arange(16).expand(3, -1))
    assert (vis.diff(dim=1) > 0).all() and (mask.diff(dim=1) > 0).all()


# --------------------------------------------------------------------------------------------------
# engine runs through the command line


def _plain_keys(keys):
    keys = list(keys)
    assert keys and not any("_orig_mod" in k or k.startswith("module.") for k in keys), keys[:5]
    return keys


def _pretrain_argv(tmp_path, *extra):
    """demo/pretrain shrunk: 12 synthetic shapes, random-init tiny teachers (chosen by the config)."""
    return ["pretrain", "demo/pretrain", f"model.npoints={NPOINTS}", "model.num_group=8", "model.group_size=8",
            "model.depth=1", "model.embed_dim=32", "model.num_heads=2", "model.decoder_depth=1",
            f"data.root={tmp_path / 'data'}", f"data.args.npoints={NPOINTS}", "data.args.num_per_class=8",
            "data.args.num_classes=2", "+data.args.num_points=256", "+data.args.image_size=32",
            f"teachers.cache={tmp_path / 'cache'}", "teachers.batch_size=8", "train.batch_size=4",
            "log.progress=false", "log.tensorboard=false", "log.quiet=false", "log.every=1", *extra]


def _compile_lines(capsys, caplog):
    captured = capsys.readouterr()
    return max(s.count("[compile]") for s in (captured.out, captured.err, caplog.text))


def test_compiled_pretrain_runs_two_epochs_and_saves_plain_keys(tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO, logger="recon")
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(_pretrain_argv(tmp_path, "train.epochs=2", "scheduler.t_initial=2", "--out", str(out),
                                   "--compile")) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["last_epoch"]["steps"] == 3 and torch.isfinite(torch.tensor(summary["last_epoch"]["loss"]))
    assert {"loss_recon", "loss_img", "loss_text"} <= set(summary["last_epoch"])
    state = load(str(out / "ckpt-last.pt"))
    assert state["epoch"] == 1 and state["config"]["train"]["compile"] is True
    keys = _plain_keys(state["model"])
    backbone = torch.load(summary["checkpoints"]["backbone"], weights_only=True)["base_model"]
    assert list(backbone) == keys and any(k.startswith("MAE_encoder.") for k in keys)
    # the saved weights load into a fresh eager model as they are (strict)
    model_cfg = dict(state["config"]["model"])
    create_model(model_cfg.pop("name"), **model_cfg).load_state_dict(backbone, strict=True)
    assert _compile_lines(capsys, caplog) == 1  # the compile time, logged once
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"]


def test_compiled_pretrain_with_bf16_and_gradient_accumulation(tmp_path):
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(_pretrain_argv(tmp_path, "train.epochs=1", "scheduler.t_initial=1", "train.amp=bf16",
                                   "train.accum_steps=2", "--out", str(out), "--compile")) == 0
    summary = json.loads((out / "summary.json").read_text())
    # 12 samples, batches of 4 split into 2 micro-batches of 2: 6 micro-batches, 3 optimizer steps
    assert summary["last_epoch"]["steps"] == 3
    assert torch.isfinite(torch.tensor(summary["last_epoch"]["loss"]))
    state = load(str(out / "ckpt-last.pt"))
    assert state["config"]["train"]["amp"] == "bf16" and state["config"]["train"]["accum_steps"] == 2
    _plain_keys(state["model"])
    assert all(v.dtype == torch.float32 for v in state["model"].values() if v.is_floating_point())
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"]


def test_compiled_partseg_trains_and_tests(tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO, logger="recon")
    overrides = config_overrides("partseg/synthetic", tmp_path, epochs=1) + [
        "model.depth=1", "model.feature_blocks=[0]", "log.quiet=false"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["partseg", "--synthetic", *overrides, "--no-png", "--compile"]) == 0
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert 0 <= summary["test"]["instance_miou"] <= 100
    state = load(str(out / "ckpt-last.pt"))
    assert state["config"]["train"]["compile"] is True
    _plain_keys(state["model"])
    from safetensors.torch import load_file

    assert sorted(load_file(str(out / "model-last.safetensors"))) == sorted(state["model"])  # safetensors sorts keys
    assert _compile_lines(capsys, caplog) == 1
    # `recon test` of the part-seg checkpoint, compiled too: the same test metrics as the run's own test
    caplog.clear()
    test_overrides = [o for o in overrides if not o.startswith("output_dir=")]
    assert main(["test", "partseg/synthetic", *test_overrides, "--ckpt", summary["checkpoints"]["best"] or
                 summary["checkpoints"]["last"], "--compile"]) == 0
    assert "[compile] ReConPartSeg" in caplog.text  # it ran compiled (the training run's graph may serve it)
    assert f"{summary['test']['instance_miou']:.2f}" in capsys.readouterr().out


def test_a_smaller_last_eval_batch_compiles_once_not_every_epoch(tmp_path, monkeypatch):
    """36 training clouds in batches of 8 (the last 4 dropped), 12 validation clouds in batches of 8
    (8 + 4) and 48 test clouds: the graphs after the first epoch serve every later epoch and the test."""
    out = tmp_path / "run"
    cfg = standin_config("finetune", out, ["train.epochs=3", "eval.batch_size=8"])
    cfg["model"] = {"name": "recon_tiny", "num_classes": 3, "npoints": 32, **TINY}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    graphs = []
    end_epoch = TrainRun.end_epoch

    def counting(self, *args, **kwargs):
        graphs.append(counters["stats"]["unique_graphs"])
        return end_epoch(self, *args, **kwargs)

    monkeypatch.setattr(TrainRun, "end_epoch", counting)
    assert main(["finetune", str(path), "--compile"]) == 0
    # train (batch 8), eval (batch 8), eval with a symbolic batch (the last batch of 4): then nothing new
    assert graphs == [3, 3, 3], graphs
    assert counters["stats"]["unique_graphs"] == 3 and not counters["graph_break"]
    _plain_keys(load(str(out / "ckpt-last.pt"))["model"])
