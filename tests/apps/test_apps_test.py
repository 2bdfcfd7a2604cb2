import json
import logging

import pytest

from recon.apps import test as voting


class Cfg(dict):
    """The slice of the engine's Config that voting reads."""

    def get_path(self, dotted, default=None):
        node = self
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node


CFG = Cfg(data={"name": "ScanObjectNN", "args": {"variant": "objbg"}}, train={"npoints": 2048},
          eval={"votes": 10}, output_dir=None)


def fake_test(calls):
    def test_checkpoint(cfg, ckpt, votes=None, repeats=None, seed=None):
        calls.append(repeats)
        accs = [80.0 + (r % 7) for r in range(repeats or 1)]
        return {"accuracy": 79.0, "accuracy_vote": accs[0],
                "vote": {"acc": accs[0], "acc_max": max(accs), "acc_mean": sum(accs) / len(accs), "acc_std": 1.0,
                         "votes": votes or 10, "repeats": repeats or 1}}
    return test_checkpoint


def test_default_is_one_pass_and_official_is_the_loud_max(tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO, logger="recon")
    calls = []
    res = voting.run_test(CFG, "c.yaml", ckpt="m.pt", result=str(tmp_path / "a.json"), test_fn=fake_test(calls))
    assert calls == [None] and res["accuracy_vote"] == 80.0
    rec = json.loads((tmp_path / "a.json").read_text())
    assert rec["protocol"] == "finetune" and rec["dataset"] == "scan_objbg" and rec["npoints"] == 2048
    assert rec["value"] == 80.0 and "one 10-vote pass" in rec["setting"]
    res = voting.run_test(CFG, "c.yaml", ckpt="m.pt", official_voting=True, result=str(tmp_path / "b.json"),
                          test_fn=fake_test(calls))
    assert calls[-1] == voting.OFFICIAL_PASSES == 299
    assert res["accuracy_official"] == 86.0 and res["official_voting"] is True
    out = capsys.readouterr()
    assert "OFFICIAL VOTING" in caplog.text and "optimistic" in out.out
    rec = json.loads((tmp_path / "b.json").read_text())
    assert rec["value"] == 86.0 and "optimistic" in rec["notes"][0]
    with pytest.raises(ValueError, match="ckpt"):
        voting.run_test(CFG, "c.yaml", test_fn=fake_test(calls))


def test_seeds_mean_std_and_resume(tmp_path):
    runs = []

    def finetune(cfg):
        seed = cfg["seed"]
        runs.append(seed)
        summary = {"accuracy": 90.0 + seed, "accuracy_vote": 91.0 + 2 * seed}
        (tmp_path / f"seed{seed}").mkdir(parents=True, exist_ok=True)
        (tmp_path / f"seed{seed}" / "summary.json").write_text(json.dumps(summary))
        return summary

    def load(config, overrides):
        assert config == "finetune/scan_objbg"
        return dict(o.split("=", 1) for o in overrides) | {"seed": int(dict(o.split("=", 1) for o in overrides)["seed"])}

    res = voting.finetune_seeds("finetune/scan_objbg", 3, tmp_path, ["train.epochs=2"], pretrained="p.pth",
                                finetune_fn=finetune, load_fn=load)
    assert runs == [0, 1, 2]
    assert res["accuracy_vote"]["mean"] == pytest.approx(93.0)
    assert res["accuracy_vote"]["std"] == pytest.approx((8 / 3) ** 0.5)
    assert res["accuracy"]["max"] == 92.0
    again = voting.finetune_seeds("finetune/scan_objbg", 4, tmp_path, finetune_fn=finetune, load_fn=load)
    assert runs == [0, 1, 2, 3] and again["accuracy_vote"]["n"] == 4
    with pytest.raises(ValueError, match="seeds"):
        voting.finetune_seeds("x", 0, tmp_path, finetune_fn=finetune, load_fn=load)


def test_seed_summary_and_dataset_keys():
    assert voting.seed_summary([90.0, 92.0]) == dict(mean=91.0, std=1.0, min=90.0, max=92.0, n=2)
    with pytest.raises(ValueError):
        voting.seed_summary([])
    record = voting.result_record(Cfg(data={"name": "ModelNet40", "args": {"num_category": 10}}), 1.0, None, "s")
    assert record["dataset"] == "modelnet10"
    assert voting.result_record(Cfg(data={"name": "SyntheticShapes"}), 1.0, None, "s")["dataset"] == "synthetic"
