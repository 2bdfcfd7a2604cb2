"""`recon report`: paper figures with their protocols, matched only with results of the same protocol."""

import itertools
import json

import pytest
import yaml

from recon.cli import main
from recon.eval import report
from recon.eval.report import PAPER, Protocol, Result


def _fig(dataset, value):
    (fig,) = [f for f in PAPER if f.dataset == dataset and f.value == value]
    return fig


def test_paper_figures_carry_their_protocol():
    # OBJ_BG: 95.18 is the figure WITHOUT voting, 95.35 the voting one; hardest 90.63 / 91.26
    assert _fig("scan_objbg", 95.18).protocol == Protocol("none", "test")
    assert _fig("scan_objbg", 95.35).protocol == Protocol("vote-max299", "test")
    assert _fig("scan_hardest", 90.63).protocol.voting == "none"
    assert _fig("scan_hardest", 91.26).protocol.voting == "vote-max299"
    # ModelNet40 1k: 94.5 WITH voting, 94.1 without
    assert _fig("modelnet40", 94.5).protocol.voting == "vote-max299"
    assert _fig("modelnet40", 94.1).protocol.voting == "none"
    assert _fig("modelnet40", 94.5).setting == _fig("modelnet40", 94.1).setting == {"npoints": 1024}
    # zero-shot '*' rows score train + test
    assert _fig("modelnet10", 81.6).protocol.split == "train+test" and _fig("modelnet10", 75.6).protocol.split == "test"
    for fig in PAPER:
        assert fig.protocol.label()  # every figure prints its protocol
    assert "93.63" not in report.build_report([])  # an OBJ_ONLY figure whose protocol we cannot state


def _finetune_run(folder, best_on="test", repeats=1, variant="objbg", acc=95.0, vote_acc=95.5, vote_max=96.0,
                  model="recon_base"):
    folder.mkdir(parents=True)
    cfg = {"model": {"name": model}, "data": {"name": "ScanObjectNN", "args": {"variant": variant}},
           "train": {"npoints": 2048}, "eval": {"best_on": best_on}}
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    summary = {"task": "finetune", "accuracy": acc, "accuracy_vote": vote_acc, "model": "best on test (epoch 7)",
               "best": {"acc": acc, "epoch": 7},
               "vote": {"acc": vote_acc, "acc_max": vote_max, "votes": 10, "repeats": repeats}}
    (folder / "summary.json").write_text(json.dumps(summary))


def _rows(text, needle):
    return [ln for ln in text.splitlines() if needle in ln]


def test_run_folder_single_pass_and_vote_match_only_their_figures(tmp_path):
    _finetune_run(tmp_path / "objbg_test", repeats=1)
    results = report.collect(tmp_path)
    assert sorted(r.protocol.voting for r in results) == ["none", "vote-1pass"]
    pairs, unmatched = report.match(results)
    matched = {(f.value, r.protocol.voting) for f, rs in pairs for r in rs}
    assert matched == {(95.18, "none")}  # the single pass beside the no-voting figure only
    (r, why), = unmatched
    assert r.protocol.voting == "vote-1pass" and "protocol differs" in why
    text = report.build_report(results)
    (row,) = _rows(text, "| 95.18 (ReCon) | 95.00 |")
    assert "no voting" in row and "best epoch on the test split" in row and "+0.18" not in row and "-0.18" in row
    assert _rows(text, "| 95.35 (ReCon) | — |")  # the voting figure stays unpaired

    # the official voting test (max of 299 passes) pairs with the voting figure, never the other one
    _finetune_run(tmp_path / "objbg_official", repeats=299)
    pairs, _ = report.match(report.collect(tmp_path))
    by_fig = {f.value: sorted((r.protocol.voting, r.value) for r in rs) for f, rs in pairs if rs}
    assert by_fig == {95.18: [("none", 95.0), ("none", 95.0)], 95.35: [("vote-max299", 96.0)]}


def test_selection_must_match(tmp_path):
    _finetune_run(tmp_path / "honest", best_on="val", repeats=299)
    pairs, unmatched = report.match(report.collect(tmp_path))
    assert not any(rs for _, rs in pairs)
    assert len(unmatched) == 2 and all("protocol differs" in why for _, why in unmatched)
    assert all("held-out val" in r.protocol.label() for r, _ in unmatched)


def test_never_pairs_voting_with_non_voting():
    # every combination of protocol, dataset and setting: a pair always agrees on voting (and the rest)
    results = []
    for fig, voting, selection in itertools.product(PAPER, report.VOTINGS, report.SELECTIONS):
        fields = dict(fig.setting)
        results.append(Result(fig.protocol_name, fig.dataset, 50.0, None, "x.json", "s",
                              Protocol(voting, selection, fig.protocol.split), fields))
    pairs, unmatched = report.match(results)
    assert all(rs for _, rs in pairs)  # each figure finds its own protocol among them
    for fig, rs in pairs:
        for r in rs:
            assert r.protocol == fig.protocol
    for r, why in unmatched:
        assert why.startswith("protocol differs")


def test_legacy_records_and_explicit_fields(tmp_path):
    def write(name, **rec):
        (tmp_path / name).write_text(json.dumps(rec))

    # `recon test --official-voting --result`: voting known, selection of the checkpoint not recorded
    write("official.json", protocol="finetune", dataset="scan_objbg", npoints=2048, value=95.4,
          setting="official voting: max of 299 passes", notes=[])
    # the same with the selection stated explicitly
    write("explicit.json", protocol="finetune", dataset="scan_objbg", npoints=2048, value=95.3,
          setting="official voting: max of 299 passes", selection="test")
    write("fs_official.json", protocol="fewshot", dataset="modelnet40", value=96.0, std=2.5, way=5, shot=10,
          setting="5-way 10-shot, fewshot/full", notes=["best epoch on the test set (official selection)"])
    write("fs_last.json", protocol="fewshot", dataset="modelnet40", value=95.0, std=2.0, way=5, shot=10,
          setting="5-way 10-shot, fewshot/full", notes=[])
    write("fs_linear.json", protocol="fewshot", dataset="modelnet40", value=90.0, std=2.0, way=5, shot=10,
          setting="5-way 10-shot, fewshot/linear", notes=["best epoch on the test set (official selection)"])
    write("zs_star.json", protocol="zeroshot", dataset="modelnet10", value=80.0, merge_train=True,
          single_prompt=False, model="recon_base_zeroshot")
    write("zs.json", protocol="zeroshot", dataset="modelnet10", value=74.0, merge_train=False, single_prompt=False)
    write("zs_one_prompt.json", protocol="zeroshot", dataset="modelnet40", value=60.0, merge_train=False,
          single_prompt=True)
    write("svm.json", protocol="svm", dataset="modelnet40", value=91.25, setting="LinearSVC C=0.075", notes=[])
    write("svm_pm.json", protocol="svm", dataset="modelnet40", value=90.0, model="pointmae_base")
    write("syn.json", protocol="svm", dataset="synthetic", value=80.0)
    (tmp_path / "other.json").write_text(json.dumps({"config": 1}))
    (tmp_path / "broken.json").write_text("{")
    results = report.collect(tmp_path)
    assert len(results) == 11
    pairs, unmatched = report.match(results)
    got = {f.value: sorted(r.file for r in rs) for f, rs in pairs if rs}
    assert got == {95.35: ["explicit.json"], 97.3: ["fs_official.json"], 81.6: ["zs_star.json"],
                   75.6: ["zs.json"], 93.4: ["svm.json"]}
    why = {r.file: w for r, w in unmatched}
    assert "selection" in why["official.json"] and "protocol unknown" in why["official.json"]
    assert "selection" in why["fs_last.json"]
    assert "head" in why["fs_linear.json"]
    assert "single-prompt" in why["zs_one_prompt.json"]
    assert "family pointmae" in why["svm_pm.json"]
    assert "no paper figure" in why["syn.json"]
    text = report.build_report(results)
    assert "| 97.30 ± 1.90 (ReCon) | 96.00 ± 2.50 | -1.30 | fs_official.json |" in text


def test_command_writes_markdown_and_chart(tmp_path):
    runs = tmp_path / "runs"
    _finetune_run(runs / "a", repeats=299)
    md, png = tmp_path / "out" / "r.md", tmp_path / "out" / "r.png"
    assert main(["report", str(runs), "--out", str(md), "--png", str(png)]) == 0
    assert md.read_text().startswith("| source |")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.plot_report([], tmp_path / "none.png") is None
    with pytest.raises(FileNotFoundError):
        report.collect(tmp_path / "nope")
    assert main(["report", str(tmp_path / "nope")]) == 2


def test_model_family_must_match(tmp_path):
    _finetune_run(tmp_path / "tiny", repeats=299, model="recon_tiny")
    _finetune_run(tmp_path / "pointmae", repeats=299, model="pointmae_base")
    _finetune_run(tmp_path / "base", repeats=299, model="recon_base")
    pairs, unmatched = report.match(report.collect(tmp_path))
    assert sorted({r.file.split("/")[0] for _, rs in pairs for r in rs}) == ["base"]
    assert {r.family for r, _ in unmatched} == {"recon_tiny", "pointmae"}
    assert all("model family" in why for _, why in unmatched)
    frozen = Result("fewshot", "modelnet40", 1.0, None, "f", "s", Protocol("none", "test"),
                    {"model": "recon.eval.fewshot:frozen_backbone", "base": "recon_base"})
    assert frozen.family == "recon"
