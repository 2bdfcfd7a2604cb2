"""`recon pretrain pretrain/base` on a machine without the teacher files stops before any work,
naming each file, where it comes from and the key to set (with the files given it trains: the
config matrix in test_configs.py runs pretrain/* with teacher files)."""

import os

from recon.cli import main


def test_pretrain_without_teacher_files_stops_before_training(tmp_path, monkeypatch, capsys):
    from data_writers import write_shapenet

    for var, path in (("HOME", tmp_path / "home"), ("TORCH_HOME", tmp_path / "torch"), ("HF_HOME", tmp_path / "hf")):
        os.makedirs(path, exist_ok=True)
        monkeypatch.setenv(var, str(path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for var in ("RECON_TEXT_TEACHER", "RECON_IMAGE_TEACHER", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "ShapeNet55"
    write_shapenet(str(root), per_class=2, points=1200)
    out = tmp_path / "run"
    rc = main(["pretrain", "pretrain/base", f"data.root={root}", "log.progress=false", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc != 0
    for part in ("jx_vit_base_patch16_224_in21k-e5005f0a.pth", "hub/checkpoints", "teachers.image.weights",
                 "ViT-B-32.pt", ".cache/clip", "teachers.text.weights"):
        assert part in err, (part, err)
    assert "Traceback" not in err
    written = [f for _, _, files in os.walk(out) for f in files] if out.exists() else []
    assert not any(f.endswith((".pt", ".pth", ".safetensors")) for f in written), written
    assert not (root / "teacher_cache").exists()  # no feature cache was started
