"""``recon``'s own surface: config errors and bad arguments are one line and exit 2, never a traceback;
an internal bug keeps its traceback; the shipped configs are listed."""

import os
import subprocess
import sys

import numpy as np
import pytest

from recon.cli import main


def test_cli_reports_config_errors(capsys):
    assert main(["finetune", "finetune/scan_hardest", "optimizer.lrr=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'optimizer.lrr'" in err and "'lr'" in err
    assert main(["pretrain", "no/such/config"]) == 2
    assert "not found" in capsys.readouterr().err


def test_cli_lists_configs(capsys):
    assert main(["configs"]) == 0
    out = capsys.readouterr().out.split()
    assert "finetune/scan_hardest" in out and "pretrain/base" in out


def _one_line_error(capsys, command):
    """The command's stderr: one ``recon <command>: error:`` line naming the problem, no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith(f"recon {command}: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("value", ["-5", "0", "8"])
def test_zoo_refuses_a_point_count_the_models_cannot_group(capsys, value):
    assert main(["zoo", "--npoints", value, "--no-flops"]) == 2
    line = _one_line_error(capsys, "zoo")
    assert "--npoints" in line and value in line


def test_zoo_refuses_a_bad_class_count(capsys):
    assert main(["zoo", "--num-classes", "0", "--no-flops"]) == 2
    assert "--num-classes" in _one_line_error(capsys, "zoo")


def test_visualize_refuses_an_unwritable_out_before_any_work(tmp_path, capsys):
    np.save(tmp_path / "cloud.npy", np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32))
    assert main(["visualize", "--input", str(tmp_path / "cloud.npy"), "--out", "/dev/null/x.png"]) == 2
    line = _one_line_error(capsys, "visualize")
    assert "/dev/null" in line and "not a folder" in line


@pytest.mark.parametrize("bad", ["all", "one"])
def test_visualize_refuses_a_cloud_with_non_finite_points(tmp_path, capsys, bad):
    pts = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
    if bad == "all":
        pts[:] = np.nan
    else:
        pts[7, 1] = np.inf
    np.save(tmp_path / "cloud.npy", pts)
    assert main(["visualize", "--input", str(tmp_path / "cloud.npy"), "--npoints", "64", "--model-args", "depth=1",
                 "--out", str(tmp_path / "a.png")]) == 2
    line = _one_line_error(capsys, "visualize")
    assert "non-finite" in line and ("300 of" if bad == "all" else "1 of") in line
    assert not (tmp_path / "a.png").exists()


def test_unreadable_inputs_and_files_are_one_line(tmp_path, capsys):
    (tmp_path / "cloud.npy").write_bytes(b"not a numpy file")
    assert main(["visualize", "--input", str(tmp_path / "cloud.npy")]) == 2
    assert "cannot read" in _one_line_error(capsys, "visualize")
    assert main(["visualize", "--input", str(tmp_path / "missing.ply")]) == 2
    assert "no file" in _one_line_error(capsys, "visualize")
    assert main(["svm", "--dataset", "shapenet", "--root", str(tmp_path)]) == 2
    assert "dataset: expected one of" in _one_line_error(capsys, "svm")
    assert main(["svm", "--dataset", "scan_objbg", "--root", str(tmp_path / "none")]) == 2
    assert "missing file or folder" in _one_line_error(capsys, "svm")
    assert main(["report", str(tmp_path / "none")]) == 2
    assert "RUNS_DIR" in _one_line_error(capsys, "report")
    assert main(["test", "finetune/scan_hardest"]) == 2
    assert "--ckpt" in _one_line_error(capsys, "test")
    assert main(["demo", "--epochs", "0"]) == 2
    assert "--epochs" in _one_line_error(capsys, "demo")


def test_a_config_value_of_the_wrong_type_names_its_key(tmp_path, capsys):
    assert main(["finetune", "finetune/scan_hardest", "train.epochs=many", "--out", str(tmp_path)]) == 2
    assert "train.epochs must be an int, got 'many'" in _one_line_error(capsys, "finetune")
    assert main(["finetune", "finetune/scan_hardest", "+train.epochz=3", "--out", str(tmp_path)]) == 2
    line = _one_line_error(capsys, "finetune")
    assert "unknown config key 'train.epochz'" in line and "Did you mean 'epochs'" in line


def _run_cli(args, env_extra=None, cwd=None):
    import tempfile

    import recon

    # the recon this process imported (the installed one in CI, whose _C the checkout lacks), run outside the
    # checkout: `python -m` puts the working folder first on sys.path
    env = dict(os.environ, **(env_extra or {}))
    root = os.path.dirname(os.path.dirname(os.path.abspath(recon.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return subprocess.run([sys.executable, "-m", "recon.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=cwd or tempfile.gettempdir())


def test_recon_debug_shows_the_traceback_of_a_user_error():
    quiet = _run_cli(["zoo", "--npoints", "-5"])
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    assert quiet.stderr.strip().splitlines() == [quiet.stderr.strip()]  # exactly one line
    loud = _run_cli(["zoo", "--npoints", "-5"], {"RECON_DEBUG": "1"})
    assert loud.returncode != 0 and "Traceback" in loud.stderr and "ConfigError" in loud.stderr


def test_an_internal_bug_keeps_its_traceback(monkeypatch):
    """Only ReconError is reported as one line: a ValueError from a bug is not swallowed."""
    from recon.apps import zoo

    def broken(**kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(zoo, "run", broken)
    monkeypatch.setattr(zoo, "add_parser", lambda sub: sub.add_parser("zoo").set_defaults(_run=broken))
    with pytest.raises(ValueError, match="an internal bug"):
        main(["zoo"])


def test_overrides_may_follow_the_options_as_the_readme_writes_them():
    # `recon finetune finetune/scan_hardest --pretrained P data.root=D` (README): argparse alone rejects it
    from recon.cli import parse

    args = parse(["finetune", "finetune/scan_hardest", "--pretrained", "p.pth", "data.root=d", "train.epochs=2"])
    assert args["command"] == "finetune" and args["pretrained"] == "p.pth"
    assert args["config"] == "finetune/scan_hardest" and args["overrides"] == ["data.root=d", "train.epochs=2"]
    args = parse(["partseg", "partseg/shapenetpart", "--out", "o", "data.root=d"])
    assert args["overrides"] == ["data.root=d"] and args["out"] == "o"
