"""torchrun on CPU (gloo): an elastic restart after kill -9 resumes bit for bit, and two one-process
"nodes" on this machine train exactly like one node with two processes."""

import os
import signal
import subprocess
import time

import pytest

import ddp_runs


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """The data root every run here shares, and the uninterrupted one-node, two-process reference."""
    base = tmp_path_factory.mktemp("ddp")
    data, out = base / "data", base / "reference"
    ddp_runs.run(["--standalone", "--nproc_per_node=2"], data, out)
    return data, ddp_runs.weights(out)


def _children(pid: int) -> list:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                kids.append(int(entry))
    return sorted(kids)


def _stop(procs) -> None:
    """Kill what is left of these torchrun launches (each in its own session: agent and workers)."""
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_a_worker_killed_after_a_checkpoint_comes_back_and_ends_bit_exact(shared, tmp_path):
    data, reference = shared
    out = tmp_path / "elastic"
    cmd = ddp_runs.command(["--standalone", "--nproc_per_node=2", "--max-restarts=1"], data, out, "--resume")
    proc = subprocess.Popen(cmd, env=ddp_runs.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, cwd=tmp_path)
    try:
        deadline = time.time() + 300
        while not (out / "ckpt-last.pt").exists():
            assert proc.poll() is None and time.time() < deadline, "no checkpoint was written"
            time.sleep(0.05)
        workers = _children(proc.pid)
        assert len(workers) == 2, workers
        os.kill(workers[-1], signal.SIGKILL)  # a worker lost mid-run, after the first ckpt-last.pt
        log, _ = proc.communicate(timeout=400)
    finally:
        _stop([proc])
    assert proc.returncode == 0, log[-5000:]
    assert "exitcode: -9" in log and "resumed from" in log, log[-5000:]
    ddp_runs.assert_same_weights(ddp_runs.weights(out), reference)


def test_two_single_process_nodes_equal_one_node_with_two_processes(shared, tmp_path):
    data, reference = shared
    port = ddp_runs.free_port()
    out = tmp_path / "two_nodes"
    procs = []
    for node in range(2):
        launcher = ["--nnodes=2", f"--node_rank={node}", "--nproc_per_node=1", "--rdzv-backend=c10d",
                    f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=recon-two-nodes", "--local-addr=127.0.0.1"]
        procs.append(subprocess.Popen(ddp_runs.command(launcher, data, out), env=ddp_runs.env(),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      start_new_session=True, cwd=tmp_path))
    try:
        logs = [p.communicate(timeout=400)[0] for p in procs]
    finally:
        _stop(procs)
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-5000:]
    assert "world_size=2" in "".join(logs)
    ddp_runs.assert_same_weights(ddp_runs.weights(out), reference)
