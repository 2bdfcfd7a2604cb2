"""Every bad input raises the documented exception, naming the argument."""

from __future__ import annotations

import pytest
import torch

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
]


@pytest.mark.parametrize("fn,exc,match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cpu_cuda_mix():
    with pytest.raises(ValueError, match="query and ref must be on the same device"):
        knn(Q.cuda(), P, 2)
    with pytest.raises(ValueError, match="x and y must be on the same device"):
        chamfer_distance(P, Q.cuda())
    with pytest.raises(ValueError, match="idx and points must be on the same device"):
        gather_points(P.cuda(), IDX2)


def test_unsupported_device():
    with pytest.raises(ValueError, match="xyz must be on a cpu or cuda device, got meta"):
        furthest_point_sample(torch.empty(2, 10, 3, device="meta"), 2)


def test_raw_op_checks_are_exceptions():
    # Calling the registered op directly bypasses Python validation; the C++ checks still
    # raise (RuntimeError), never crash.
    with pytest.raises(RuntimeError, match="npoint must be in"):
        torch.ops.recon.furthest_point_sample(P, 11, 0)
    with pytest.raises(RuntimeError, match="k must be in"):
        torch.ops.recon.knn(Q, P, 0)
    with pytest.raises(RuntimeError, match="must be contiguous"):
        torch.ops.recon.chamfer_forward(P.transpose(0, 1), Q.transpose(0, 1))
    with pytest.raises(RuntimeError, match="must share a dtype"):
        torch.ops.recon.chamfer_forward(P, Q.double())
    with pytest.raises(RuntimeError, match="out of range"):
        torch.ops.recon.chamfer_backward(
            torch.ones(2, 10), torch.ones(2, 4), P, Q, torch.full((2, 10), 7), torch.zeros(2, 4, dtype=torch.long)
        )
