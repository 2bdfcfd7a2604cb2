"""The part-seg loop and commands on tiny data: runs, resumes, writes plain checkpoints, prints tables."""

import json
import os

import numpy as np
import pytest
import torch

from partseg_writers import config_overrides, tiny_overrides, write_shapenetpart
from recon.cli import main
from recon.config import config_dir
from recon.engine.train_partseg import DoubleStep, partseg_param_groups, scale_shift
from recon.models import create_model

CONFIGS = sorted("partseg/" + f[:-5] for f in os.listdir(os.path.join(config_dir(), "partseg")) if f.endswith(".yaml"))


def records(out, kind):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["kind"] == kind]


@pytest.mark.parametrize("config", CONFIGS)
def test_every_partseg_config_runs_through_the_cli(config, tmp_path):
    assert main(["partseg", config, *config_overrides(config, tmp_path), "train.max_steps=1", "--no-png"]) == 0
    summary = json.load(open(tmp_path / "out" / "summary.json"))
    assert summary["task"] == "partseg" and 0 <= summary["test"]["instance_miou"] <= 100
    assert summary["compat_double_step"] == config.endswith("official")
    assert summary["protocol"] == ("official" if config.endswith("official") else "honest")


def test_run_resume_and_outputs(tmp_path, capsys):
    root = write_shapenetpart(tmp_path / "spn")
    out = tmp_path / "run"
    assert main(["partseg", "partseg/shapenetpart", *tiny_overrides(root, out, epochs=1), "log.quiet=false"]) == 0
    printed = capsys.readouterr().out
    assert "instance mIoU" in printed and "Airplane" in printed and "Table" in printed
    for name in ("ckpt-best.safetensors", "ckpt-best.json", "model-last.safetensors", "ckpt-last.pt",
                 "summary.json", "predictions.png", "config.yaml"):
        assert os.path.isfile(out / name), name
    state = torch.load(out / "ckpt-last.pt", map_location="cpu", weights_only=True)  # plain values only
    assert state["epoch"] == 0
    assert [r["step"] for r in records(out, "epoch")] == [0]
    assert main(["partseg", "partseg/shapenetpart", *tiny_overrides(root, out, epochs=2), "--resume"]) == 0
    assert [r["step"] for r in records(out, "epoch")] == [0, 1]  # epoch 0 not trained again
    summary = json.load(open(out / "summary.json"))
    assert summary["epochs"] == 2 and summary["best"]["epoch"] in (0, 1)
    assert not [f for f in os.listdir(out) if f.startswith(".") or f.endswith(".tmp")]


def test_recon_test_prints_the_per_category_table(tmp_path, capsys):
    root = write_shapenetpart(tmp_path / "spn")
    overrides = tiny_overrides(root, tmp_path / "out")
    kwargs = dict(npoints=64, num_group=8, group_size=8, depth=2, embed_dim=32, num_heads=2, feature_blocks=(0, 1),
                  propagation_dims=(24, 16), head_dims=(16, 8))
    model = create_model("recon_base_partseg", **kwargs)
    path = tmp_path / "best_model.pth"
    torch.save({"epoch": 3, "inctance_avg_iou": np.float64(0.5), "model_state_dict": model.state_dict()}, path)
    assert main(["test", "partseg/shapenetpart", *overrides, "--ckpt", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Mug" in out and "class mIoU" in out and "instance mIoU" in out
    assert main(["test", "partseg/shapenetpart", *overrides]) == 2  # no --ckpt: one error line


def test_official_param_groups():
    model = create_model("recon_base_partseg")
    groups = partseg_param_groups(model, 0.05, 1e-4, 10)
    head, no_decay, decay = groups
    assert head["lr"] == pytest.approx(1e-3) and head["weight_decay"] == 0.05
    assert len(head["params"]) == 13 and sum(p.numel() for p in head["params"]) == 5_428_658
    names = {id(p): n for n, p in model.named_parameters()}
    assert "label_conv.1.weight" in {names[id(p)] for p in head["params"]}  # the label branch's BN
    assert no_decay["weight_decay"] == 0 and decay["weight_decay"] == 0.05
    decayed = {names[id(p)] for p in decay["params"]}
    assert {"cls_pos", "img_pos", "text_pos"} <= decayed and "cls_token" not in decayed
    pm = partseg_param_groups(create_model("pointmae_base_partseg"), 0.05, 2e-4, 1)
    assert [g["name"] for g in pm] == ["no_decay", "decay"]


def test_double_step_is_two_adamw_steps_unclipped_then_clipped():
    torch.manual_seed(0)
    a = torch.nn.Linear(4, 3)
    b = torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    x = torch.randn(8, 4) * 50
    opt_a = DoubleStep(torch.optim.AdamW(a.parameters(), lr=0.1), a.parameters(), max_norm=1.0)
    opt_b = torch.optim.AdamW(b.parameters(), lr=0.1)
    for model, opt in ((a, opt_a), (b, None)):
        model(x).pow(2).sum().backward()
    opt_a.step()
    opt_b.step()
    torch.nn.utils.clip_grad_norm_(b.parameters(), 1.0)
    opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)
    assert opt_a.state_dict()["state"][0]["step"] == 2


def test_scale_shift_per_cloud():
    torch.manual_seed(0)
    pts = torch.randn(64, 100, 3)
    out = scale_shift(pts)
    for b in range(64):
        # out = s * pts + t with one isotropic s in [0.8, 1.25] and t in [-0.1, 0.1]^3 per cloud
        d = (out[b] - out[b].mean(0)) / (pts[b] - pts[b].mean(0))
        s = d.median()
        assert 0.8 <= s <= 1.25
        torch.testing.assert_close(d, torch.full_like(d, float(s)), atol=1e-3, rtol=1e-3)
        t = out[b] - s * pts[b]
        assert t.abs().max() <= 0.1 + 1e-4


def test_two_process_gloo_ddp_merges_every_test_shape(tmp_path):
    import subprocess
    import sys

    root = write_shapenetpart(tmp_path / "spn")
    out = tmp_path / "ddp"
    import recon

    # the recon this process imported (installed in CI), run outside the checkout (`-m` puts the cwd first)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(recon.__file__)))
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "recon.cli",
           "partseg", "partseg/shapenetpart", *tiny_overrides(root, out), "device=cpu", "--no-png"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.load(open(out / "summary.json"))
    assert summary["test"]["shapes"] == 6  # 3 categories x 2 test shapes, split over two processes
    state = torch.load(out / "ckpt-last.pt", map_location="cpu", weights_only=True)
    assert len(state["rng"]) == 2


def test_full_cloud_evaluation(tmp_path):
    root = write_shapenetpart(tmp_path / "spn")
    out = tmp_path / "full"
    assert main(["partseg", "partseg/shapenetpart", *tiny_overrides(root, out), "eval.sampling=full",
                 "train.max_steps=1", "--no-png"]) == 0
    summary = json.load(open(out / "summary.json"))
    assert summary["test"]["shapes"] == 6
