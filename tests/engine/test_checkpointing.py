import os
import random
import signal
import subprocess
import time

import numpy as np
import pytest
import torch

from recon.engine.checkpointing import atomic_save, load, rng_state, set_rng_state

WRITERS = {
    # the resumable training state
    "ckpt-last.pt": """
import os, sys, torch
from recon.engine.checkpointing import atomic_save
path = os.path.join(sys.argv[1], "ckpt-last.pt")
big = torch.randn(4_000_000)  # 16 MB: each write takes a while, so the kill lands mid-write
i = 0
while True:
    atomic_save({"counter": i, "big": big, "check": big[::997].clone()}, path)
    print(i, flush=True)
    i += 1
""",
    # the finetune best model (recon format: safetensors + json)
    "ckpt-best": """
import os, sys, torch
from torch import nn
from recon.checkpoint import save_model as _save_model
model = nn.Linear(2000, 2000)  # 16 MB of weights
i = 0
while True:
    with torch.no_grad():
        model.weight.fill_(i)
        model.bias.fill_(i)
    model.config = {"name": "standins:Linear", "counter": i}
    _save_model(model, os.path.join(sys.argv[1], "ckpt-best"))
    print(i, flush=True)
    i += 1
""",
}


def _check_last(folder):
    state = load(os.path.join(folder, "ckpt-last.pt"))
    assert isinstance(state["counter"], int) and state["counter"] >= 0
    assert torch.equal(state["check"], state["big"][::997])
    return {"ckpt-last.pt"}


def _check_best(folder):
    import json

    from recon.checkpoint import read_checkpoint

    state, _ = read_checkpoint(os.path.join(folder, "ckpt-best"))
    value = state["bias"][0]
    assert (state["weight"] == value).all() and (state["bias"] == value).all()  # one complete write
    with open(os.path.join(folder, "ckpt-best.json")) as f:
        counter = json.load(f)["config"]["counter"]
    assert counter in (int(value), int(value) - 1)  # the json follows the weights, written right after
    return {"ckpt-best.safetensors", "ckpt-best.json"}


@pytest.mark.parametrize("name,check", [("ckpt-last.pt", _check_last), ("ckpt-best", _check_best)])
def test_kill_9_during_a_write_leaves_a_loadable_checkpoint(tmp_path, subprocess_env, python, name, check):
    rng = random.Random(0)
    for trial in range(2):
        proc = subprocess.Popen([python, "-c", WRITERS[name], str(tmp_path)], env=subprocess_env,
                                stdout=subprocess.PIPE, text=True)
        try:
            first = proc.stdout.readline()  # one full write has landed
            assert first.strip().isdigit(), first
            time.sleep(rng.uniform(0.0, 0.3))  # then kill at an arbitrary moment, likely mid-write
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        final = check(str(tmp_path))
    # killed temporaries are left as hidden .tmp* files, never in place of the checkpoint: ours are
    # .tmp-<name>-*, and safetensors' Rust writer stages its own .tmpXXXXXX before renaming onto ours
    left = sorted(os.listdir(tmp_path))
    assert all(n in final or n.startswith(".tmp") for n in left), left


def test_atomic_save_failure_keeps_the_old_file(tmp_path):
    path = str(tmp_path / "a.pt")
    atomic_save({"v": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_save({"v": Unpicklable()}, path)
    assert load(path)["v"] == 1
    assert os.listdir(tmp_path) == ["a.pt"]


def test_rng_state_roundtrip_through_a_weights_only_file(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    atomic_save({"rng": rng_state()}, str(tmp_path / "r.pt"))
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    set_rng_state(load(str(tmp_path / "r.pt"))["rng"])  # weights_only=True load
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_load_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load(str(tmp_path / "nope.pt"))


@pytest.mark.parametrize("content", [b"", b"garbage, not a torch file", b"PK\x03\x04truncated"])
def test_a_broken_training_checkpoint_is_a_checkpoint_error(tmp_path, content):
    from recon.errors import CheckpointError

    path = tmp_path / "ckpt-last.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable training checkpoint"):
        load(str(path))
