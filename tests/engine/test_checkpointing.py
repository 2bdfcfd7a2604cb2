import os
import random
import signal
import subprocess
import time

import numpy as np
import pytest
import torch

from recon.engine.checkpointing import atomic_save, load, rng_state, set_rng_state

WRITER = """
import sys, torch
from recon.engine.checkpointing import atomic_save
path = sys.argv[1]
big = torch.randn(4_000_000)  # 16 MB: each write takes a while, so the kill lands mid-write
i = 0
while True:
    atomic_save({"counter": i, "big": big, "check": big[::997].clone()}, path)
    print(i, flush=True)
    i += 1
"""


def test_kill_9_during_a_write_leaves_a_loadable_checkpoint(tmp_path, subprocess_env, python):
    path = str(tmp_path / "ckpt-last.pt")
    rng = random.Random(0)
    last_seen = -1
    for trial in range(2):
        proc = subprocess.Popen([python, "-c", WRITER, path], env=subprocess_env, stdout=subprocess.PIPE, text=True)
        try:
            first = proc.stdout.readline()  # one full write has landed
            assert first.strip().isdigit(), first
            time.sleep(rng.uniform(0.0, 0.3))  # then kill at an arbitrary moment, likely mid-write
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        state = load(path)
        assert isinstance(state["counter"], int) and state["counter"] >= 0
        assert torch.equal(state["check"], state["big"][::997])
        last_seen = state["counter"]
    assert last_seen >= 0
    # killed temporaries are left as .tmp-* files, never in place of the checkpoint
    assert all(n == "ckpt-last.pt" or n.startswith(".tmp-ckpt-last.pt-") for n in os.listdir(tmp_path))


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
