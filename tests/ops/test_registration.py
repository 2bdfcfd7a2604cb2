"""torch.library registration (opcheck, torch.compile), backend_info, and the fallback path."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import cloud

import recon.ops as ops
from recon.ops import _backend

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_extension_is_loaded():
    info = ops.backend_info()
    assert info["compiled"] and info["cpu"] and not info["fallback"], info["reason"]
    assert info["torch_built_against"] == torch.__version__ == info["torch_running"]
    assert isinstance(info["openmp"], bool)
    if torch.cuda.is_available():
        assert info["cuda"], "a CUDA device is present but recon._C has no CUDA kernels"


def test_build_info_is_json():
    info = json.loads(torch.ops.recon.build_info())
    assert set(info) >= {"torch", "with_cuda", "cuda_arch_list", "openmp"}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck_every_op(device, dtype):
    x = cloud(2, 40, dtype=dtype, device=device)
    y = cloud(2, 25, dtype=dtype, device=device, seed=1)
    torch.library.opcheck(torch.ops.recon.furthest_point_sample.default, (x, 10, 3))
    torch.library.opcheck(torch.ops.recon.knn.default, (x, y, 5))
    torch.library.opcheck(torch.ops.recon.knn.default, (x.requires_grad_(), y.requires_grad_(), 5))
    x, y = x.detach(), y.detach()
    torch.library.opcheck(torch.ops.recon.chamfer_forward.default, (x, y))
    torch.library.opcheck(torch.ops.recon.chamfer_forward.default, (x.requires_grad_(), y.requires_grad_()))
    x, y = x.detach(), y.detach()
    _, _, i_xy, i_yx = torch.ops.recon.chamfer_forward(x, y)
    g_xy, g_yx = torch.rand_like(x[..., 0]), torch.rand_like(y[..., 0])
    torch.library.opcheck(torch.ops.recon.chamfer_backward.default, (g_xy, g_yx, x, y, i_xy, i_yx))


def _pipeline(xyz: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A Point-MAE-like use of every op: FPS centers, kNN groups, Chamfer losses."""
    idx = ops.furthest_point_sample(xyz, 8)
    centers = ops.gather_points(xyz, idx)
    dist2, nn = ops.knn(centers, xyz, 4)
    groups = ops.group_points(xyz, nn) - centers[:, :, None]
    pred = groups.reshape(-1, 4, 3) * 1.1
    rebuilt = ops.group_points(target, nn).reshape(-1, 4, 3) - centers.reshape(-1, 1, 3)
    return ops.ChamferDistanceL2()(pred, rebuilt) + ops.ChamferDistanceL1()(xyz, target) + dist2.mean()


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph(device, dynamic):
    torch._dynamo.reset()
    xyz = cloud(2, 64, device=device).requires_grad_()
    target = cloud(2, 64, device=device, seed=1) + 0.01
    eager = _pipeline(xyz, target)
    (g_eager,) = torch.autograd.grad(eager, xyz)
    compiled = torch.compile(_pipeline, fullgraph=True, backend="aot_eager", dynamic=dynamic)
    out = compiled(xyz, target)
    (g_comp,) = torch.autograd.grad(out, xyz)
    torch.testing.assert_close(out, eager)
    torch.testing.assert_close(g_comp, g_eager)


def test_mismatch_message_names_torch_and_fix(monkeypatch):
    monkeypatch.setattr(_backend, "_read_build_info", lambda: {"torch": "1.0.0"})
    ok, msg = _backend._load()
    assert not ok
    assert "built against torch 1.0.0" in msg and torch.__version__ in msg
    assert "pip install --no-build-isolation" in msg


FALLBACK = r"""
import json, sys, warnings
sys.modules["recon._C"] = None  # what a missing or unloadable extension looks like
import torch
import recon.ops as ops
from recon.ops import reference
torch.manual_seed(0)
x, y = torch.rand(2, 60, 3), torch.rand(2, 45, 3)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    i = ops.furthest_point_sample(x, 9)
    d, nn = ops.knn(y, x, 5)
    c = ops.chamfer_distance(x, y)
    loss = ops.ChamferDistanceL2()(x, y)
fallback = [w for w in caught if issubclass(w.category, ops.ReconFallbackWarning)]
same = (torch.equal(i, reference.furthest_point_sample(x, 9))
        and all(torch.equal(a, b) for a, b in zip((d, nn), reference.knn(y, x, 5)))
        and all(torch.equal(a, b) for a, b in zip(c, reference.chamfer_distance(x, y))))
print(json.dumps({"warnings": len(fallback), "message": str(fallback[0].message) if fallback else "",
                  "same": same, "info": ops.backend_info()}))
"""


def _run(code: str, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    full_env["RECON_REQUIRE_EXTENSION"] = "0"  # CI may set it for the parent; the child opts in itself
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120)


def test_fallback_warns_once_and_works():
    proc = _run(FALLBACK)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["warnings"] == 1
    assert "falls back to the plain-PyTorch reference" in out["message"]
    assert "pip install --no-build-isolation" in out["message"]
    assert out["same"]
    assert out["info"]["fallback"] and not out["info"]["compiled"] and not out["info"]["cpu"]


def test_require_extension_turns_fallback_into_error():
    proc = _run('import sys; sys.modules["recon._C"] = None\nimport recon.ops', RECON_REQUIRE_EXTENSION="1")
    assert proc.returncode != 0
    assert "ImportError: RECON_REQUIRE_EXTENSION is set" in proc.stderr
