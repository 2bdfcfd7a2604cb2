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
