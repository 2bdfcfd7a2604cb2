"""The runtime extrapolation of benchmarks/eval_runtime.py against a hand computation."""

import importlib.util
import sys
from pathlib import Path

import pytest

# The benchmark imports its sibling helper `_recon` the way a script does (its folder on sys.path).
_BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(_BENCH))
_spec = importlib.util.spec_from_file_location("eval_runtime", _BENCH / "eval_runtime.py")
er = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(er)


def _rates(**cpu):
    return {k: {"cpu_s": v, "wall_s": 2 * v} for k, v in cpu.items()}


def test_svm_zeroshot_and_test_rows_are_rate_times_count():
    rates = _rates(svm_features=3.2, zeroshot_1024x64x32=6.4, text_prompts=1.0, single_modelnet=3.2,
                   vote_modelnet=32.0)
    rows = {(r["protocol"], r["dataset"]): r["seconds"]
            for r in er.extrapolate(rates, {"cpu_s": 10.0, "wall_s": 20.0}, "cpu_s")}
    assert rows[("svm", "modelnet40")] == pytest.approx(0.1 * (9843 + 2468) + 10.0)
    assert rows[("zeroshot", "modelnet40")] == pytest.approx(0.2 * 2468 + 1.0 * 40)
    assert rows[("zeroshot --merge-train", "modelnet10")] == pytest.approx(0.2 * (3991 + 908) + 1.0 * 10)
    assert rows[("test (1 pass + 10 votes)", "modelnet40")] == pytest.approx((0.1 + 1.0) * 2468)
    assert rows[("test --official-voting (299 passes)", "modelnet10")] == pytest.approx((0.1 + 299 * 1.0) * 908)
    # no ScanObjectNN rates measured -> no ScanObjectNN rows rather than made-up ones
    assert not any(d.startswith("scan") for _, d in rows)


def test_fewshot_grid_counts_full_batches_only_and_official_eval_every_epoch():
    rates = _rates(step_full=32.0, single_modelnet=3.2, vote_modelnet=32.0)
    rows = {r["protocol"]: r["seconds"] for r in er.extrapolate(rates, None, "wall_s")}
    steps = sum((w * s) // 32 for w in (5, 10) for s in (10, 20))  # 1 + 3 + 3 + 6 (drop_last)
    final = sum(20 * w for w in (5, 10) for _ in (10, 20)) * (0.2 + 2.0)
    last = 10 * (64.0 * steps * 151 + final)
    assert rows["fewshot full, best_on=last (default)"] == pytest.approx(last)
    per_epoch = 10 * sum(20 * w for w in (5, 10) for _ in (10, 20)) * 0.2 * 150
    assert rows["fewshot full, --official-selection"] == pytest.approx(last + per_epoch)
