"""``recon fewshot``'s command path (arguments, grid, result files) with the per-fold run bound to a recorder."""

import json

import pytest

from recon.apps import fewshot as apps_fewshot
from recon.cli import build_parser


def fake_run_fold(calls):
    def run(cfg):
        calls.append((cfg["way"], cfg["shot"], cfg["fold"]))
        return dict(acc=90.0 + cfg["fold"] + (cfg["way"] == 10))
    return run


def test_command_on_synthetic_pickles_with_a_bound_runner(tmp_path, monkeypatch):
    # the command path (config, grid, result files) with run_fold bound to a recorder
    (tmp_path / "fs" / "5way_10shot").mkdir(parents=True)
    parser_args = ["--root", str(tmp_path / "fs"), "--ways", "5", "--shots", "10", "--folds", "0-1",
                   "--out", str(tmp_path / "out"), "--config", "fewshot/linear", "--official-selection"]
    parser = build_parser()
    args = vars(parser.parse_args(["fewshot", *parser_args]))
    assert args.pop("command") == "fewshot" and args.pop("_run") is apps_fewshot.run
    calls = []
    summary = apps_fewshot.run(**args, run_fold=fake_run_fold(calls))
    assert summary["5way_10shot"]["n"] == 2
    res = json.loads((tmp_path / "out" / "result_5way_10shot.json").read_text())
    assert res["protocol"] == "fewshot" and res["way"] == 5 and res["value"] == pytest.approx(90.5)
    assert "fewshot/linear" in res["setting"] and "official selection" in res["notes"][1]


def test_synthetic_grid_takes_the_demos_data_arguments(tmp_path):
    # --num-per-class / --num-classes build the built-in set as `recon demo` does; its episodes get their own folder
    # (an episode needs 20 test shapes per class: 100 per class at the set's test fraction)
    parser = build_parser()
    args = vars(parser.parse_args(["fewshot", "--dataset", "synthetic", "--root", str(tmp_path / "syn"),
                                   "--num-per-class", "100", "--num-classes", "5", "--ways", "5", "--shots", "2",
                                   "--folds", "0", "--out", str(tmp_path / "out")]))
    args.pop("command"), args.pop("_run")
    calls = []
    apps_fewshot.run(**args, run_fold=fake_run_fold(calls))
    assert calls == [(5, 2, 0)]
    meta = json.loads((tmp_path / "syn" / "synthetic.json").read_text())
    assert meta["num_per_class"] == 100 and len(meta["classes"]) == 5
    assert (tmp_path / "out" / "fewshot_data_num_classes5_num_per_class100" / "5way_2shot" / "0.pkl").is_file()


def test_data_arguments_need_the_synthetic_set(tmp_path):
    from recon.errors import ConfigError

    with pytest.raises(ConfigError, match="--dataset synthetic"):
        apps_fewshot.run(root=str(tmp_path), num_per_class=6, out=str(tmp_path / "o"), run_fold=fake_run_fold([]))
