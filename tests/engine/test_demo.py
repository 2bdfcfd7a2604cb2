"""`recon demo` end to end in its fast setting (1 epoch, 4 shapes per class)."""

import json

from recon.cli import main


def test_demo_fast_setting_runs_and_writes_the_summary(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--epochs", "1", "--num-per-class", "4", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "reduced for the demo" in out and "RANDOM weights" in out and "summary.json" in out
    summary = json.load(open(tmp_path / "summary.json"))
    assert "linear SVM on frozen features" in out and "attention" in out
    for key in ("accuracy_vote", "accuracy_scratch", "seconds", "svm_pretrained", "svm_random"):
        assert isinstance(summary[key], float), key
    assert 0 <= summary["accuracy_vote"] <= 100 and summary["votes"] == 10
    assert (tmp_path / "finetune" / "ckpt-last.pt").exists() and (tmp_path / "pretrain" / "ckpt-pretrain.pth").exists()
    # issue #7 item 8: the demo writes one attention PNG (two panels, not blank)
    import matplotlib.image as mpimg

    png = tmp_path / "attention.png"
    assert summary["paths"]["attention_png"] == str(png) and png.exists()
    img = mpimg.imread(png)
    assert img.shape[:2] == (600, 1200) and img[..., :3].std() > 0.01
