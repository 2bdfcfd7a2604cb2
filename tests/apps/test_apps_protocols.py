"""The protocol commands (svm, visualize, zeroshot, fewshot, report) end to end through ``recon.cli.main``,
on the synthetic set and on tiny files in the real formats.

Small models (ReCon-Tiny cut to one block) and few points keep each command to seconds on 2 cores.
"""

import json
import pickle

import numpy as np
import pytest
import torch

from recon.cli import main
from recon.eval import fewshot, report, svm

TINY = ["--model-args", "depth=1"]
SYN = ["--data-args", "num_per_class=5", "num_classes=4"]


@pytest.fixture(scope="module")
def syn_root(tmp_path_factory):
    from recon.data import SyntheticShapes

    root = tmp_path_factory.mktemp("synthetic")
    SyntheticShapes(str(root), split="train", npoints=2048, num_per_class=5, num_classes=4)
    return root


def test_svm_command_on_synthetic_with_cache(syn_root, tmp_path, capsys):
    out = tmp_path / "svm.json"
    argv = ["--dataset", "synthetic", "--root", str(syn_root), "--model", "recon_tiny", "--npoints", "256",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(out), *TINY, *SYN]
    assert main(["svm", *argv]) == 0
    res = json.loads(out.read_text())
    assert res["protocol"] == "svm" and res["dataset"] == "synthetic" and 0 <= res["value"] <= 100
    assert res["dim"] == 2 * 192 and res["n"] == 4 and res["n_train"] == 16
    assert "random weights (no checkpoint)" in res["notes"]
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
    assert "RANDOM weights" in capsys.readouterr().err
    assert main(["svm", *argv]) == 0
    assert "features from cache" in capsys.readouterr().err
    assert json.loads(out.read_text())["value"] == res["value"]


def test_pretrained_vs_random_probe(syn_root, tmp_path):
    from recon.models import create_model

    torch.manual_seed(5)
    model = create_model("recon_tiny", num_classes=4, npoints=256, depth=1)
    torch.save({"base_model": model.state_dict()}, tmp_path / "m.pth")
    res = svm.pretrained_vs_random("recon_tiny", str(tmp_path / "m.pth"), syn_root, npoints=256,
                                   model_kwargs={"depth": 1}, data_kwargs={"num_per_class": 5, "num_classes": 4})
    assert res["n_test"] == 4 and 0 <= res["pretrained"] <= 100 and 0 <= res["random"] <= 100
    assert res["margin"] == pytest.approx(res["pretrained"] - res["random"])


def test_visualize_command_ply_and_dataset(syn_root, tmp_path, capsys):
    import matplotlib.image as mpimg

    from recon.data import SyntheticShapes

    pts = SyntheticShapes(str(syn_root), split="test", npoints=2048, num_per_class=5, num_classes=4)[0]["points"].numpy()
    ply = tmp_path / "cloud.ply"
    with open(ply, "wb") as f:
        f.write(f"ply\nformat binary_little_endian 1.0\nelement vertex {len(pts)}\nproperty float x\n"
                "property float y\nproperty float z\nend_header\n".encode())
        f.write(pts.astype("<f4").tobytes())
    png = tmp_path / "a.png"
    assert main(["visualize", "--input", str(ply), "--model", "recon_tiny", "--npoints", "256",
                                     "--layer", "-1", "--out", str(png), *TINY]) == 0
    assert "random weights" in capsys.readouterr().out
    img = mpimg.imread(png)
    assert img.shape[:2] == (600, 1200) and img[..., :3].std() > 0.01
    png2 = tmp_path / "b.png"
    assert main(["visualize", "--dataset", "synthetic", "--root", str(syn_root), "--index", "2", "--model",
                                     "recon_tiny", "--npoints", "256", "--out", str(png2), *TINY, *SYN]) == 0
    assert mpimg.imread(png2).shape[:2] == (600, 1200)
    assert main(["visualize", "--dataset", "synthetic", "--root", str(syn_root), "--index", "99",
                                     *SYN]) == 2  # a user error is one line and exit code 2


def _write_modelnet10(root, n_per_class=2, n_points=8192):
    rng = np.random.default_rng(0)
    names = [f"shape{i}" for i in range(10)]
    (root / "modelnet10_shape_names.txt").write_text("\n".join(names) + "\n")
    for split in ("train", "test"):
        pts, labels, ids = [], [], []
        for c in range(10):
            for k in range(n_per_class):
                p = rng.normal(size=(n_points, 6)).astype(np.float32)
                p[:, :3] *= np.float32(1 + c % 3)
                pts.append(p)
                labels.append(np.array([c], dtype=np.int32))
                ids.append(f"{names[c]}_{split}{k:04d}")
        (root / f"modelnet10_{split}.txt").write_text("\n".join(ids) + "\n")
        with open(root / f"modelnet10_{split}_{n_points}pts_fps.dat", "wb") as f:
            pickle.dump([pts, labels], f)


def _write_scanobjectnn(root, n=6):
    import h5py

    rng = np.random.default_rng(1)
    (root / "main_split_nobg").mkdir(parents=True)
    for split in ("training", "test"):
        with h5py.File(root / "main_split_nobg" / f"{split}_objectdataset.h5", "w") as f:
            f["data"] = rng.normal(size=(n, 2048, 3)).astype(np.float32)
            f["label"] = (np.arange(n) % 15).astype(np.int64)


def _zeroshot_checkpoint(path):
    """An official-layout zero-shot pretraining file (CLIP ViT-B/32 teacher: 512-d projections)."""
    from recon.models import create_model

    torch.manual_seed(0)
    model = create_model("recon_base_zeroshot", embed_dim=192, num_heads=3, depth=1)
    state = {(k if "_proj" in k else "MAE_encoder." + k): v for k, v in model.state_dict().items()}
    torch.save({"base_model": {"module." + k: v for k, v in state.items()}, "epoch": 300}, path)


class _FastTeacher:
    """A deterministic stand-in for the CLIP text tower: the real (tiny) tower runs in the
    ScanObjectNN test; this keeps the ModelNet test to the data, model and protocol."""

    def encode(self, texts):
        g = torch.Generator().manual_seed(sum(map(ord, "".join(texts))) % 10007)
        return torch.randn(len(texts), 512, generator=g)


def _zs_args(variant, root, ckpt):
    return ["--dataset", variant, "--root", str(root), "--checkpoint", str(ckpt), "--text-teacher", "tiny",
            "--text-weights", "random", "--model-args", "embed_dim=192", "num_heads=3", "depth=1", "--batch-size", "8"]


def test_zeroshot_command_on_modelnet10_files(tmp_path, monkeypatch):
    import recon.teachers

    monkeypatch.setattr(recon.teachers, "build_text_teacher", lambda arch, weights: _FastTeacher())
    root = tmp_path / "data"
    root.mkdir()
    _write_modelnet10(root)
    ckpt = tmp_path / "zs.pth"
    _zeroshot_checkpoint(ckpt)
    common = _zs_args("modelnet10", root, ckpt)
    assert main(["zeroshot", *common, "--out", str(tmp_path / "a.json")]) == 0
    a = json.loads((tmp_path / "a.json").read_text())
    assert a["protocol"] == "zeroshot" and a["n"] == 20 and a["merge_train"] is False and a["ratio"] == 0.2
    assert a["classes"] == [f"shape{i}" for i in range(10)] and len(a["per_class"]) == 10
    assert main(["zeroshot", *common, "--merge-train", "--single-prompt", "--out", str(tmp_path / "b.json")]) == 0
    b = json.loads((tmp_path / "b.json").read_text())
    assert b["n"] == 40 and b["single_prompt"] == 0 and "merged" in b["setting"]
    assert main(["zeroshot", *common, "--out", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["value"] == a["value"]  # seeded sampling


def test_zeroshot_command_on_scanobjectnn_h5_with_the_text_tower(tmp_path, monkeypatch):
    monkeypatch.delenv("RECON_TEXT_TEACHER", raising=False)
    root = tmp_path / "data"
    root.mkdir()
    _write_scanobjectnn(root)
    ckpt = tmp_path / "zs.pth"
    _zeroshot_checkpoint(ckpt)
    with pytest.warns(UserWarning, match="demo architecture"):
        assert main(["zeroshot", *_zs_args("scan_objonly", root, ckpt), "--out", str(tmp_path / "a.json")]) == 0
    a = json.loads((tmp_path / "a.json").read_text())
    assert a["n"] == 6 and a["ratio"] == 0.15 and a["classes"][-1] == "toile" and 0 <= a["value"] <= 100


def test_zeroshot_refuses_a_checkpoint_without_projections(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    _write_scanobjectnn(root)
    torch.save({"base_model": {"cls_token": torch.zeros(1, 1, 192)}}, tmp_path / "x.pth")
    assert main(["zeroshot", "--dataset", "scan_objonly", "--root", str(root), "--checkpoint",
                                   str(tmp_path / "x.pth"), "--text-teacher", "tiny", "--model-args",
                                   "embed_dim=192", "num_heads=3", "depth=1"]) == 2


def _write_fewshot(root, way=5, shot=2, folds=(0, 1), n_test=2, n_points=512):
    rng = np.random.default_rng(2)
    for fold in folds:
        data = {}
        for split, k in (("train", shot), ("test", n_test)):
            data[split] = [(rng.normal(size=(n_points, 3)).astype(np.float32) * (1 + c), c, f"class{c}_{i:04d}")
                           for c in range(way) for i in range(k)]
        (root / f"{way}way_{shot}shot").mkdir(parents=True, exist_ok=True)
        with open(root / f"{way}way_{shot}shot" / f"{fold}.pkl", "wb") as f:
            pickle.dump(data, f)


def test_fewshot_command_through_the_engine_with_resume(tmp_path, capsys):
    _write_fewshot(tmp_path / "fs")
    argv = ["--root", str(tmp_path / "fs"), "--ways", "5", "--shots", "2", "--folds", "0-1", "--out",
            str(tmp_path / "runs"), "--config", "fewshot/linear",
            "model.base=recon_tiny", "+model.depth=1", "model.npoints=256", "model.num_group=16",
            "train.npoints=256", "train.point_all=256", "train.epochs=2", "scheduler.t_initial=2",
            "scheduler.warmup_epochs=0", "train.batch_size=5", "eval.batch_size=10", "eval.votes=1",
            "log.progress=false", "log.tensorboard=false", "device=cpu"]
    assert main(["fewshot", *argv]) == 0
    res = json.loads((tmp_path / "runs" / "result_5way_2shot.json").read_text())
    assert res["n"] == 2 and len(res["accs"]) == 2 and all(0 <= a <= 100 for a in res["accs"])
    assert res["value"] == pytest.approx(np.mean(res["accs"])) and "from scratch" in res["notes"][0]
    capsys.readouterr()
    assert main(["fewshot", *argv]) == 0  # resume: both folds are read back, none rerun
    assert capsys.readouterr().err.count("done before") == 2
    text = report.build_report(report.collect(tmp_path / "runs"))
    assert "| fewshot | modelnet40 |" in text


def test_frozen_backbone_trains_only_cls_parameters():
    model = fewshot.frozen_backbone("recon_tiny", num_classes=40, depth=1, head="linear")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"cls_token", "cls_pos", "cls_head_finetune.0.weight", "cls_head_finetune.0.bias"}
