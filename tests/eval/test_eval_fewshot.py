import json
import pickle

import pytest

from recon.eval import fewshot as fs
from eval_helpers import ListDataset, blobs


def fake_run_fold(calls):
    def run(cfg):
        calls.append((cfg["way"], cfg["shot"], cfg["fold"]))
        return dict(acc=90.0 + cfg["fold"] + (cfg["way"] == 10))
    return run


def test_grid_runs_every_fold_once_and_resumes(tmp_path):
    calls = []
    base = dict(config="fewshot/full", root="x")
    summary = fs.run_grid(fake_run_fold(calls), base, tmp_path, ways=[5, 10], shots=[10], folds=[0, 1, 2])
    assert len(calls) == 6
    assert summary["5way_10shot"]["mean"] == pytest.approx(91.0)
    assert summary["5way_10shot"]["std"] == pytest.approx((2 / 3) ** 0.5)  # ddof=0 over folds
    assert summary["10way_10shot"]["accs"] == [91.0, 92.0, 93.0]
    saved = json.loads(fs.fold_path(tmp_path, 5, 10, 1).read_text())
    assert saved["acc"] == 91.0 and saved["fold"] == 1
    # resume: finished folds are never redone; a fold whose file is incomplete is
    fs.fold_path(tmp_path, 10, 10, 2).write_text('{"acc": null}')
    calls.clear()
    again = fs.run_grid(fake_run_fold(calls), base, tmp_path, ways=[5, 10], shots=[10], folds=[0, 1, 2])
    assert calls == [(10, 10, 2)]
    assert again == summary
    table = fs.format_table(again)
    assert "| 5-way | 91.0 ± 0.8 (3 folds) |" in table


def test_run_fold_must_return_accuracy(tmp_path):
    with pytest.raises(ValueError, match="run_fold"):
        fs.run_grid(lambda cfg: {"loss": 1.0}, {}, tmp_path, ways=[5], shots=[10], folds=[0])


def test_official_pickle_layout(tmp_path):
    pts, labels = blobs(n_per_class=25, n_classes=6, npoints=32)
    ds = ListDataset(pts, labels)
    path = fs.write_fewshot_pickles(ds, ds, tmp_path, way=5, shot=3, fold=7, n_test=20)
    assert path == tmp_path / "5way_3shot" / "7.pkl"
    with open(path, "rb") as f:
        data = pickle.load(f)
    assert set(data) == {"train", "test"}
    assert len(data["train"]) == 15 and len(data["test"]) == 100
    points, label, name = data["train"][0]
    assert points.shape == (32, 3) and points.dtype.name == "float32" and isinstance(name, str)
    assert sorted({s[1] for s in data["test"]}) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="way"):
        fs.write_fewshot_pickles(ds, ds, tmp_path, way=7, shot=3, fold=0)


def test_folds_and_official_configs():
    import yaml

    assert fs.parse_folds("0-9") == list(range(10))
    assert fs.parse_folds("1,3-4") == [1, 3, 4]
    with pytest.raises(ValueError, match="folds"):
        fs.parse_folds("a")
    for name, head, lr in (("full", "full", 5e-4), ("linear", "linear", 1e-3), ("mlp3", "full", 1e-3)):
        cfg = yaml.safe_load(open(f"recon/configs/fewshot/{name}.yaml"))
        assert cfg["model"]["head"] == head and cfg["optimizer"]["lr"] == lr
        assert (cfg["model"]["name"] == "recon_base") == (name == "full")  # linear/mlp3: frozen backbone
        assert cfg["train"]["epochs"] == 151 and cfg["scheduler"]["t_initial"] == 150  # official 0..150
        assert cfg["model"]["num_classes"] == 40 and cfg["model"]["drop_path_rate"] == 0.1
        assert cfg["train"]["transform"] == "rotate" and cfg["train"]["grad_clip"] == 10
        assert cfg["eval"]["best_on"] == "last"
