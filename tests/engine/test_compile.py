"""``train.compile``: a compiled finetune run trains, resumes, tests and saves plain checkpoints.

The stand-in classifier keeps compilation short; the mechanism (recon.compile) is model-agnostic.
"""

import logging

import pytest
import torch
import yaml

from helpers import standin_config
from recon.cli import main
from recon.compile import compile_model, compile_options
from recon.engine.checkpointing import load


def _write(cfg, path):
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    return str(path)


def test_compiled_finetune_resumes_and_saves_plain_keys(tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO, logger="recon")
    out = tmp_path / "run"
    cfg = standin_config("finetune", out, ["train.epochs=1", "log.quiet=false"])
    assert main(["finetune", _write(cfg, tmp_path / "a.yaml"), "--compile"]) == 0
    state = load(str(out / "ckpt-last.pt"))
    assert state["epoch"] == 0 and state["config"]["train"]["compile"] is True
    keys = list(state["model"])
    assert keys and not any("_orig_mod" in k or k.startswith("module.") for k in keys)
    # resume: one more epoch through `train.compile=true` as an override
    cfg2 = standin_config("finetune", out, ["train.epochs=2", "log.quiet=false"])
    assert main(["finetune", _write(cfg2, tmp_path / "b.yaml"), "train.compile=true", "--resume"]) == 0
    state = load(str(out / "ckpt-last.pt"))
    assert state["epoch"] == 1 and not any("_orig_mod" in k for k in state["model"])
    # the compile time is logged once per process (here: once per command)
    captured = capsys.readouterr()
    sources = [captured.out, captured.err, caplog.text]
    assert sum(s.count("[compile]") for s in sources) >= 2
    assert all(s.count("[compile]") <= 2 for s in sources)
    # `recon test --compile` on the saved weights
    assert main(["test", _write(cfg2, tmp_path / "c.yaml"), "--ckpt", str(out / "model-last"), "--compile"]) == 0


def test_compiled_forward_matches_eager_and_keeps_state_dict():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.GELU(), torch.nn.Linear(8, 2))
    x = torch.randn(5, 3)
    ref = model(x)
    keys = list(model.state_dict())
    assert compile_model(model, fullgraph=True) is model
    torch.testing.assert_close(model(x), ref)
    assert model(torch.randn(3, 3)).shape == (3, 2)  # another batch size
    assert list(model.state_dict()) == keys


@pytest.mark.parametrize("value, match", [("yes", "train.compile"), (1, "train.compile")])
def test_compile_options_reject_non_bool(value, match):
    with pytest.raises(ValueError, match=match):
        compile_options({"compile": value})


def test_compile_options_off_and_on():
    assert compile_options({}) is None and compile_options(None) is None
    assert compile_options({"compile": False}) is None
    assert compile_options({"compile": True}) == {"fullgraph": True}
    with pytest.raises(ValueError, match="compile_fullgraph"):
        compile_options({"compile": True, "compile_fullgraph": "no"})


