"""One writer for what is made on first use: processes meeting on a fresh folder never race."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ddp_runs import HERE, ROOT
from recon.atomic import build_once

sys.path.insert(0, os.path.join(ROOT, "tests", "data"))
from data_writers import write_modelnet  # noqa: E402

WORKER = os.path.join(HERE, "first_use_worker.py")


def _race(kind, roots, env, python, timeout=300):
    """Two processes through every root, arriving together at each; returns the builds per root."""
    procs = [subprocess.Popen([python, WORKER, kind, str(me), *map(str, roots)], env=env, cwd=os.path.dirname(os.fspath(roots[0])),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for me in range(2)]
    outs = [p.communicate(timeout=timeout) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and out.strip() == "ok", err[-3000:]
    builds = []
    for root in roots:
        with open(os.path.join(root, "builds.log")) as f:
            builds.append(len(f.read().split()))
    return builds


def test_two_processes_on_fresh_synthetic_roots_never_race(tmp_path, subprocess_env, python):
    roots = [tmp_path / f"round{i}" for i in range(5)]
    assert _race("synthetic", roots, subprocess_env, python) == [1] * 5  # one generation per root


def test_two_processes_build_the_modelnet_fps_cache_once(tmp_path, subprocess_env, python):
    roots = [tmp_path / f"round{i}" for i in range(3)]
    for root in roots:
        write_modelnet(str(root / "data"), per_split=2, rows=96)
    assert _race("modelnet", roots, subprocess_env, python) == [1] * 3
    for root in roots:  # only the cache itself: no temporaries left beside it
        names = sorted(n for n in os.listdir(root / "data") if n.endswith(".dat") or ".tmp" in n)
        assert names == ["modelnet40_train_64pts_fps.dat"]


def test_two_processes_build_the_teacher_cache_once(tmp_path, subprocess_env, python):
    pytest.importorskip("open_clip", reason="open_clip (with a torchvision matching torch) is needed for the teachers")
    roots = [tmp_path / f"round{i}" for i in range(2)]
    assert _race("teachers", roots, subprocess_env, python) == [2] * 2  # one text + one image entry
    for root in roots:
        a, b = (np.load(p) for p in sorted(root.glob("feats-*.npy")))
        assert np.array_equal(a, b)


def _complete(path):
    return os.path.exists(path)


def test_a_builder_killed_mid_build_leaves_no_file_and_the_next_one_builds(tmp_path, subprocess_env, python):
    target = str(tmp_path / "thing.bin")
    code = f"""
import time
from recon.atomic import atomic_write, build_once
def build():
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
            f.flush()
            print("writing", flush=True)
            time.sleep(60)
            f.write(b" and the rest")
    atomic_write({target!r}, write)
build_once({target!r}, lambda: __import__("os").path.exists({target!r}), build)
"""
    proc = subprocess.Popen([python, "-c", code], env=subprocess_env, stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert proc.stdout.readline().strip() == "writing"  # holds the lock, mid-write
        t0 = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not os.path.exists(target)  # the half write never took the final name

    def build():
        with open(target, "wb") as f:
            f.write(b"whole")

    assert build_once(target, lambda: _complete(target), build)  # the dead holder's lock is free
    assert time.time() - t0 < 30
    assert not build_once(target, lambda: _complete(target), build)  # complete: reused
    with open(target, "rb") as f:
        assert f.read() == b"whole"
