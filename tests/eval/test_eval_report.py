import json

import pytest

from recon.eval import report


def test_report_lines_ours_beside_paper(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "svm.json").write_text(json.dumps(dict(protocol="svm", dataset="modelnet40", value=91.25,
                                                             setting="LinearSVC C=0.075", notes=[])))
    (tmp_path / "fs.json").write_text(json.dumps(dict(protocol="fewshot", dataset="modelnet40", value=96.0,
                                                      std=2.5, way=5, shot=10, setting="5-way 10-shot")))
    (tmp_path / "syn.json").write_text(json.dumps(dict(protocol="svm", dataset="synthetic", value=80.0)))
    (tmp_path / "other.json").write_text(json.dumps({"config": 1}))
    (tmp_path / "broken.json").write_text("{")
    results = report.collect(tmp_path)
    assert len(results) == 3
    text = report.build_report(results)
    assert "| svm | modelnet40 | LinearSVC C=0.075 | 91.25 | 93.40 |" in text
    assert "| fewshot | modelnet40 | 5-way 10-shot | 96.00 ± 2.50 | 97.30 ± 1.90 |" in text
    assert "| fewshot | modelnet40 | way=10, shot=20 | — | 95.80 ± 3.00 |" in text
    assert "| svm | synthetic | — | 80.00 | see paper |" in text
    assert "95.18" in text and "90.63" in text and "61.70" in text
    with pytest.raises(FileNotFoundError):
        report.collect(tmp_path / "nope")
    from recon.cli import main

    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.md")]) == 0
    assert (tmp_path / "r.md").read_text().startswith("| protocol |")
