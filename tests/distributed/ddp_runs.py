"""A small finetune (the demo recipe, shrunk) launched through torchrun on CPU, and its weights."""

import os
import socket
import subprocess
import sys

from safetensors.torch import load_file

import recon

HERE = os.path.dirname(os.path.abspath(__file__))
# The folder holding the recon this test process imported: the installed package in CI (the checkout has
# no compiled _C there), the checkout when it is built in place. Children must import the same one, and
# run outside the checkout, since `python -m` puts the working folder first on sys.path.
ROOT = os.path.dirname(os.path.dirname(HERE))
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(recon.__file__)))

FINETUNE = ["finetune", "demo/finetune", "data.args.num_per_class=4", "model.depth=2", "train.epochs=3",
            "scheduler.t_initial=3", "eval.votes=1", "train.batch_size=8", "log.progress=false",
            "log.tensorboard=false"]


def env() -> dict:
    """For child processes: the checkout importable, 1 thread each, gloo on the loopback interface."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([PACKAGE_ROOT, HERE] + [p for p in e.get("PYTHONPATH", "").split(os.pathsep) if p])
    e["OMP_NUM_THREADS"] = "1"
    e["GLOO_SOCKET_IFNAME"] = "lo"
    return e


def command(launcher: list, data, out, *extra) -> list:
    return [sys.executable, "-m", "torch.distributed.run", *launcher, "-m", "recon.cli", *FINETUNE,
            f"data.root={data}", f"output_dir={out}", *extra]


def run(launcher: list, data, out, *extra, timeout: int = 400) -> subprocess.CompletedProcess:
    res = subprocess.run(command(launcher, data, out, *extra), env=env(), capture_output=True, text=True,
                         timeout=timeout, cwd=os.path.dirname(os.fspath(out)))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    return res


def weights(out) -> dict:
    return load_file(os.path.join(out, "model-last.safetensors"))


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    differ = [k for k in a if not (a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and (a[k] == b[k]).all())]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[:5]}"


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
