"""Every bad input raises the documented exception, naming the argument, of one type on every device."""

from __future__ import annotations

import pytest
import torch
from conftest import CUDA_SKIP, cloud

from recon.ops import chamfer_distance, furthest_point_sample, gather_points, group_points, knn

P = torch.rand(2, 10, 3)
Q = torch.rand(2, 4, 3)
IDX2 = torch.zeros(2, 3, dtype=torch.long)
IDX3 = torch.zeros(2, 3, 4, dtype=torch.long)

CASES = [
    # furthest_point_sample
    ("fps: not a tensor", lambda: furthest_point_sample(P.tolist(), 2), TypeError, "xyz must be a torch.Tensor"),
    ("fps: rank 2", lambda: furthest_point_sample(P[0], 2), ValueError, r"xyz must have shape \(B, N, 3\)"),
    ("fps: last dim 2", lambda: furthest_point_sample(P[..., :2], 2), ValueError, r"xyz must have shape"),
    ("fps: integer points", lambda: furthest_point_sample(P.long(), 2), TypeError, "xyz must be float16"),
    ("fps: N == 0", lambda: furthest_point_sample(torch.zeros(2, 0, 3), 1), ValueError, "at least one point"),
    ("fps: npoint > N", lambda: furthest_point_sample(P, 11), ValueError, r"npoint must satisfy 1 <= npoint <= N \(N=10\)"),
    ("fps: npoint 0", lambda: furthest_point_sample(P, 0), ValueError, "npoint must satisfy"),
    ("fps: npoint float", lambda: furthest_point_sample(P, 2.0), TypeError, "npoint must be an int"),
    ("fps: npoint tensor", lambda: furthest_point_sample(P, torch.tensor(2)), TypeError, "npoint must be an int"),
    ("fps: start_idx = N", lambda: furthest_point_sample(P, 2, 10), ValueError, "start_idx must satisfy"),
    ("fps: start_idx < 0", lambda: furthest_point_sample(P, 2, -1), ValueError, "start_idx must satisfy"),
    # knn
    ("knn: query rank", lambda: knn(Q[0], P, 2), ValueError, r"query must have shape \(B, M, 3\)"),
    ("knn: ref last dim", lambda: knn(Q, torch.rand(2, 10, 4), 2), ValueError, r"ref must have shape \(B, N, 3\)"),
    ("knn: k > N", lambda: knn(Q, P, 11), ValueError, r"k must satisfy 1 <= k <= N \(N=10"),
    ("knn: k == 0", lambda: knn(Q, P, 0), ValueError, "k must satisfy"),
    ("knn: k < 0", lambda: knn(Q, P, -3), ValueError, "k must satisfy"),
    ("knn: k bool", lambda: knn(Q, P, True), TypeError, "k must be an int"),
    ("knn: integer points", lambda: knn(Q.int(), P.int(), 2), TypeError, "query must be float16"),
    ("knn: dtype mismatch", lambda: knn(Q.double(), P, 2), TypeError, "query and ref must have the same dtype"),
    ("knn: batch mismatch", lambda: knn(Q[:1], P, 2), ValueError, "query and ref must have the same batch size"),
    ("knn: no queries", lambda: knn(torch.zeros(2, 0, 3), P, 1), ValueError, "query must hold at least one point"),
    ("knn: empty ref", lambda: knn(Q, torch.zeros(2, 0, 3), 1), ValueError, "ref must hold at least one point"),
    # chamfer
    ("chamfer: x rank", lambda: chamfer_distance(P.reshape(-1), Q), ValueError, r"x must have shape \(B, N, 3\)"),
    ("chamfer: y last dim", lambda: chamfer_distance(P, Q[..., :1]), ValueError, r"y must have shape \(B, M, 3\)"),
    ("chamfer: integer", lambda: chamfer_distance(P, Q.long()), TypeError, "y must be float16"),
    ("chamfer: batch mismatch", lambda: chamfer_distance(P, torch.rand(3, 4, 3)), ValueError, "same batch size"),
    ("chamfer: dtype mismatch", lambda: chamfer_distance(P.half(), Q), TypeError, "same dtype"),
    ("chamfer: empty y", lambda: chamfer_distance(P, torch.zeros(2, 0, 3)), ValueError, "y must hold at least one point"),
    # gather / group
    ("gather: float idx", lambda: gather_points(P, IDX2.float()), TypeError, "idx must be int64"),
    ("gather: idx rank", lambda: gather_points(P, IDX3), ValueError, r"idx must have shape \(B, M\)"),
    ("gather: points rank", lambda: gather_points(P[0], IDX2), ValueError, r"points must have shape \(B, N, C\)"),
    ("gather: batch mismatch", lambda: gather_points(P, IDX2[:1]), ValueError, "same batch size"),
    ("gather: out of range", lambda: gather_points(P, IDX2 + 10), ValueError, r"0 <= idx < 10"),
    ("gather: negative", lambda: gather_points(P, IDX2 - 1), ValueError, r"got values in \[-1, -1\]"),
    ("group: idx rank", lambda: group_points(P, IDX2), ValueError, r"idx must have shape \(B, M, k\)"),
    ("group: not a tensor", lambda: group_points(P, [[[0]]]), TypeError, "idx must be a torch.Tensor"),
    ("group: out of range", lambda: group_points(P, IDX3 + 99), ValueError, "0 <= idx < 10"),
    # non-strided layouts: a TypeError naming the argument, not a memory-format error
    ("fps: sparse", lambda: furthest_point_sample(P.to_sparse(), 2), TypeError, "xyz must be a dense"),
    ("knn: sparse ref", lambda: knn(Q, P.to_sparse(), 2), TypeError, "ref must be a dense"),
    ("chamfer: sparse x", lambda: chamfer_distance(P.to_sparse(), Q), TypeError, "x must be a dense"),
    ("gather: sparse points", lambda: gather_points(P.to_sparse(), IDX2), TypeError, "points must be a dense"),
    ("gather: csr idx", lambda: gather_points(P[:1], IDX2[:1].to_sparse_csr()), TypeError, "idx must be a dense"),
    ("group: sparse idx", lambda: group_points(P, IDX3.to_sparse()), TypeError, "idx must be a dense"),
    ("chamfer: nested y", lambda: chamfer_distance(P[:1], torch.nested.nested_tensor([Q[0]])), TypeError,
     "y must be a dense"),
]


@pytest.mark.parametrize("fn,exc,match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()


@CUDA_SKIP
def test_cpu_cuda_mix():
    with pytest.raises(ValueError, match="query and ref must be on the same device"):
        knn(Q.cuda(), P, 2)
    with pytest.raises(ValueError, match="x and y must be on the same device"):
        chamfer_distance(P, Q.cuda())
    with pytest.raises(ValueError, match="idx and points must be on the same device"):
        gather_points(P.cuda(), IDX2)
    with pytest.raises(ValueError, match="ref must be a CUDA tensor"):
        torch.ops.recon.knn(Q.cuda(), P, 2)  # a CUDA argument dispatches to the CUDA kernel


def test_unsupported_device():
    with pytest.raises(ValueError, match="xyz must be on a cpu or cuda device, got meta"):
        furthest_point_sample(torch.empty(2, 10, 3, device="meta"), 2)


# The same mistake raises the same exception type on CPU and on CUDA, through the public
# functions (recon/ops/_checks.py) and through the registered ops themselves, whose C++ checks
# are shared by both devices' kernels (csrc/common/checks.h).  Each case builds its inputs on
# the device under test; the expected type is asserted exactly (not a subclass).
ops = torch.ops.recon


def _fps_cases(d):
    p = cloud(2, 10, device=d)
    return [
        ("rank 2", lambda: furthest_point_sample(p[0], 2), ValueError),
        ("integer points", lambda: furthest_point_sample(p.long(), 2), TypeError),
        ("npoint > N", lambda: furthest_point_sample(p, 11), ValueError),
        ("npoint float", lambda: furthest_point_sample(p, 2.0), TypeError),
        ("start_idx = N", lambda: furthest_point_sample(p, 2, 10), ValueError),
        ("sparse", lambda: furthest_point_sample(p.to_sparse(), 2), TypeError),
        ("op: npoint > N", lambda: ops.furthest_point_sample(p, 11, 0), ValueError),
        ("op: npoint 0", lambda: ops.furthest_point_sample(p, 0, 0), ValueError),
        ("op: start_idx < 0", lambda: ops.furthest_point_sample(p, 2, -1), ValueError),
        ("op: integer points", lambda: ops.furthest_point_sample(p.long(), 2, 0), TypeError),
        ("op: last dim 2", lambda: ops.furthest_point_sample(p[..., :2].contiguous(), 2, 0), ValueError),
        ("op: not contiguous", lambda: ops.furthest_point_sample(p.transpose(0, 1), 1, 0), ValueError),
    ]


def _knn_cases(d):
    p, q = cloud(2, 10, device=d), cloud(2, 4, device=d, seed=1)
    return [
        ("query rank", lambda: knn(q[0], p, 2), ValueError),
        ("k > N", lambda: knn(q, p, 11), ValueError),
        ("k bool", lambda: knn(q, p, True), TypeError),
        ("integer points", lambda: knn(q.int(), p.int(), 2), TypeError),
        ("dtype mismatch", lambda: knn(q.double(), p, 2), TypeError),
        ("batch mismatch", lambda: knn(q[:1], p, 2), ValueError),
        ("sparse query", lambda: knn(q.to_sparse(), p, 2), TypeError),
        ("op: k 0", lambda: ops.knn(q, p, 0), ValueError),
        ("op: k > N", lambda: ops.knn(q, p, 11), ValueError),
        ("op: dtype mismatch", lambda: ops.knn(q, p.double(), 2), TypeError),
        ("op: batch mismatch", lambda: ops.knn(q[:1], p, 2), ValueError),
        ("op: integer points", lambda: ops.knn(q.long(), p.long(), 2), TypeError),
        ("op: ref last dim 2", lambda: ops.knn(q, p[..., :2].contiguous(), 1), ValueError),
        ("op: not contiguous", lambda: ops.knn(q, p.transpose(0, 1).contiguous().transpose(0, 1), 1), ValueError),
    ]


def _chamfer_cases(d):
    x, y = cloud(2, 10, device=d), cloud(2, 4, device=d, seed=1)
    _, _, ixy, iyx = ops.chamfer_forward(x, y)
    gx, gy = torch.ones(2, 10, device=d), torch.ones(2, 4, device=d)
    return [
        ("x rank", lambda: chamfer_distance(x.reshape(-1), y), ValueError),
        ("integer y", lambda: chamfer_distance(x, y.long()), TypeError),
        ("dtype mismatch", lambda: chamfer_distance(x.half(), y), TypeError),
        ("batch mismatch", lambda: chamfer_distance(x, y[:1]), ValueError),
        ("empty y", lambda: chamfer_distance(x, y[:, :0]), ValueError),
        ("sparse y", lambda: chamfer_distance(x, y.to_sparse()), TypeError),
        ("op: dtype mismatch", lambda: ops.chamfer_forward(x, y.double()), TypeError),
        ("op: batch mismatch", lambda: ops.chamfer_forward(x, y[:1]), ValueError),
        ("op: y last dim 1", lambda: ops.chamfer_forward(x, y[..., :1].contiguous()), ValueError),
        ("op: empty y", lambda: ops.chamfer_forward(x, y[:, :0].contiguous()), ValueError),
        ("op: not contiguous", lambda: ops.chamfer_forward(x.transpose(0, 1), y.transpose(0, 1)), ValueError),
        ("op: backward grad dtype", lambda: ops.chamfer_backward(gx.double(), gy, x, y, ixy, iyx), TypeError),
        ("op: backward idx dtype", lambda: ops.chamfer_backward(gx, gy, x, y, ixy.int(), iyx), TypeError),
        ("op: backward grad shape", lambda: ops.chamfer_backward(gx[:, :3], gy, x, y, ixy, iyx), ValueError),
        ("op: backward idx shape", lambda: ops.chamfer_backward(gx, gy, x, y, ixy, iyx[:1]), ValueError),
    ]


def _gather_cases(d):
    p = cloud(2, 10, device=d)
    i2 = torch.zeros(2, 3, dtype=torch.long, device=d)
    i3 = torch.zeros(2, 3, 4, dtype=torch.long, device=d)
    return [
        ("gather: float idx", lambda: gather_points(p, i2.float()), TypeError),
        ("gather: idx rank", lambda: gather_points(p, i3), ValueError),
        ("gather: batch mismatch", lambda: gather_points(p, i2[:1]), ValueError),
        ("gather: sparse points", lambda: gather_points(p.to_sparse(), i2), TypeError),
        ("group: idx rank", lambda: group_points(p, i2), ValueError),
        ("group: sparse idx", lambda: group_points(p, i3.to_sparse()), TypeError),
    ]


SAME_TYPE_CASES = {
    "furthest_point_sample": _fps_cases,
    "knn": _knn_cases,
    "chamfer": _chamfer_cases,
    "gather_group": _gather_cases,
}


@pytest.mark.parametrize("op", sorted(SAME_TYPE_CASES))
def test_same_exception_type_on_cpu_and_cuda(op, device):
    for case, fn, expected in SAME_TYPE_CASES[op](device):
        with pytest.raises(Exception) as info:
            fn()
        assert type(info.value) is expected, f"{op} {case} on {device}: {type(info.value).__name__}: {info.value}"


def test_raw_op_checks_name_the_argument():
    # Calling the registered op directly bypasses Python validation; the C++ checks still
    # raise ValueError / TypeError naming the op and the argument, never crash.
    with pytest.raises(ValueError, match="furthest_point_sample: npoint must satisfy 1 <= npoint <= N = 10"):
        torch.ops.recon.furthest_point_sample(P, 11, 0)
    with pytest.raises(ValueError, match="knn: k must satisfy 1 <= k <= N = 10"):
        torch.ops.recon.knn(Q, P, 0)
    with pytest.raises(ValueError, match="chamfer_forward: x must be contiguous"):
        torch.ops.recon.chamfer_forward(P.transpose(0, 1), Q.transpose(0, 1))
    with pytest.raises(TypeError, match="x and y must have the same dtype"):
        torch.ops.recon.chamfer_forward(P, Q.double())
    with pytest.raises(ValueError, match="chamfer_backward: idx_xy holds index 7, out of range"):
        torch.ops.recon.chamfer_backward(
            torch.ones(2, 10), torch.ones(2, 4), P, Q, torch.full((2, 10), 7), torch.zeros(2, 4, dtype=torch.long)
        )
