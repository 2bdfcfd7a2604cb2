"""Ragged batches: the padded <-> packed converters, and the `*_lengths` arguments of knn,
furthest_point_sample and chamfer_distance against per-cloud slices."""

from __future__ import annotations

import pytest
import torch

import recon.ops as ops
from recon.ops import ragged, reference

from conftest import CUDA_SKIP, assert_all_same, assert_same, cloud


def test_converters_round_trip():
    lengths = torch.tensor([3, 0, 2])
    x = torch.arange(3 * 4 * 2, dtype=torch.float32).reshape(3, 4, 2)
    packed, batch = ragged.padded_to_packed(x, lengths)
    assert packed.tolist() == x[0, :3].tolist() + x[2, :2].tolist()
    assert batch.tolist() == [0, 0, 0, 2, 2]
    back, l2 = ragged.packed_to_padded(packed, batch=batch, batch_size=3, max_len=4)
    assert l2.tolist() == [3, 0, 2]
    assert torch.equal(back, x * (torch.arange(4)[None, :, None] < lengths[:, None, None]))
    offsets = ragged.lengths_to_offsets(lengths)
    assert offsets.tolist() == [3, 3, 5]
    assert ragged.offsets_to_lengths(offsets).tolist() == [3, 0, 2]
    back2, _ = ragged.packed_to_padded(packed, offsets=offsets, pad_value=-1.0)
    assert back2.shape == (3, 3, 2) and (back2[1] == -1).all()
    assert ragged.batch_to_lengths(ragged.lengths_to_batch(lengths), 3).tolist() == [3, 0, 2]


def test_converter_errors():
    with pytest.raises(ValueError, match="sorted"):
        ragged.batch_to_lengths(torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="exactly one"):
        ragged.packed_to_padded(torch.rand(3, 2))
    with pytest.raises(ValueError, match="rows"):
        ragged.packed_to_padded(torch.rand(3, 2), batch=torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="max_len"):
        ragged.packed_to_padded(torch.rand(3, 2), batch=torch.tensor([0, 0, 0]), max_len=2)
    with pytest.raises(ValueError, match="lengths"):
        ragged.padded_to_packed(torch.rand(2, 3, 1), torch.tensor([4, 0]))
    with pytest.raises(ValueError, match="non-decreasing"):
        ragged.offsets_to_lengths(torch.tensor([3, 2]))


LENGTHS = [([40, 13, 0], [60, 1, 25]), ([40, 40, 40], [60, 60, 60]), ([1, 2, 3], [0, 0, 7])]


@pytest.mark.parametrize("ql,rl", LENGTHS)
def test_knn_matches_slices(ql, rl, device, dtype):
    query, ref = cloud(3, 40, "dup", dtype=dtype, device=device), cloud(3, 60, "dup", dtype=dtype, device=device, seed=1)
    ql, rl = torch.tensor(ql, device=device), torch.tensor(rl, device=device)
    got = ops.knn(query, ref, 5, query_lengths=ql, ref_lengths=rl)
    assert_all_same(got, reference.knn(query, ref, 5, query_lengths=ql, ref_lengths=rl))


@pytest.mark.parametrize("lengths", [[300, 17, 0], [300, 300, 300], [2, 1, 5]])
def test_fps_matches_slices(lengths, device, dtype):
    xyz = cloud(3, 300, dtype=dtype, device=device)
    lengths = torch.tensor(lengths, device=device)
    counts = torch.tensor([20, 3, 1], device=device)
    for c in (None, counts):
        got = ops.furthest_point_sample(xyz, 20, lengths=lengths, counts=c)
        assert_same(got, reference.furthest_point_sample(xyz, 20, lengths=lengths, counts=c))


@pytest.mark.parametrize("xl,yl", LENGTHS)
def test_chamfer_matches_slices(xl, yl, device, dtype):
    x, y = cloud(3, 40, dtype=dtype, device=device), cloud(3, 60, dtype=dtype, device=device, seed=1)
    xl, yl = torch.tensor(xl, device=device), torch.tensor(yl, device=device)
    got = ops.chamfer_distance(x, y, x_lengths=xl, y_lengths=yl)
    assert_all_same(got, reference.chamfer_distance(x, y, x_lengths=xl, y_lengths=yl))


def test_equal_lengths_are_the_padded_call(device):
    x, y = cloud(2, 500, device=device), cloud(2, 400, device=device, seed=1)
    lx, ly = torch.tensor([500, 500], device=device), torch.tensor([400, 400], device=device)
    assert_all_same(ops.knn(x, y, 8, query_lengths=lx, ref_lengths=ly), ops.knn(x, y, 8))
    assert_all_same(ops.chamfer_distance(x, y, x_lengths=lx, y_lengths=ly), ops.chamfer_distance(x, y))
    assert_same(ops.furthest_point_sample(x, 64, lengths=lx), ops.furthest_point_sample(x, 64))


def test_padding_values_do_not_matter(device):
    x, y = cloud(2, 50, device=device), cloud(2, 30, device=device, seed=1)
    lx, ly = torch.tensor([20, 50], device=device), torch.tensor([30, 10], device=device)
    x2, y2 = x.clone(), y.clone()
    x2[0, 20:], y2[1, 10:] = float("nan"), -1e30
    assert_all_same(ops.knn(x2, y2, 4, query_lengths=lx, ref_lengths=ly), ops.knn(x, y, 4, query_lengths=lx, ref_lengths=ly))
    assert_all_same(
        ops.chamfer_distance(x2, y2, x_lengths=lx, y_lengths=ly), ops.chamfer_distance(x, y, x_lengths=lx, y_lengths=ly)
    )


def test_gradcheck_ragged(device):
    x = cloud(2, 12, dtype=torch.float64, device=device).requires_grad_()
    y = cloud(2, 9, dtype=torch.float64, device=device, seed=1).requires_grad_()
    lx, ly = torch.tensor([12, 5], device=device), torch.tensor([4, 9], device=device)
    assert torch.autograd.gradcheck(lambda a, b: ops.chamfer_distance(a, b, x_lengths=lx, y_lengths=ly)[:2], (x, y))
    assert torch.autograd.gradcheck(lambda a, b: ops.knn(a, b, 3, query_lengths=lx, ref_lengths=ly)[0], (x, y))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck_with_lengths(device, dtype):
    x, y = cloud(2, 30, dtype=dtype, device=device), cloud(2, 20, dtype=dtype, device=device, seed=1)
    lx, ly = torch.tensor([30, 7], device=device), torch.tensor([3, 20], device=device)
    torch.library.opcheck(torch.ops.recon.knn.default, (x, y, 4, lx, ly))
    torch.library.opcheck(torch.ops.recon.knn.default, (x.requires_grad_(), y.requires_grad_(), 4, lx, ly))
    x, y = x.detach(), y.detach()
    torch.library.opcheck(torch.ops.recon.chamfer_forward.default, (x, y, lx, ly))
    torch.library.opcheck(torch.ops.recon.chamfer_forward.default, (x.requires_grad_(), y.requires_grad_(), lx, ly))
    torch.library.opcheck(torch.ops.recon.furthest_point_sample.default, (x.detach(), 6, 0, lx, torch.tensor([6, 2], device=device)))


def test_errors():
    x = cloud(2, 10)
    with pytest.raises(ValueError, match="lengths"):
        ops.furthest_point_sample(x, 4, lengths=torch.tensor([10, 11]))
    with pytest.raises(ValueError, match="counts"):
        ops.furthest_point_sample(x, 4, counts=torch.tensor([5, 1]))
    with pytest.raises(ValueError, match="start_idx"):
        ops.furthest_point_sample(x, 4, 5, lengths=torch.tensor([10, 3]))
    with pytest.raises(ValueError, match="x_lengths"):
        ops.chamfer_distance(x, x, x_lengths=torch.tensor([1]))
    with pytest.raises(TypeError, match="lengths1"):  # the kernel's own check
        torch.ops.recon.knn(x, x, 2, torch.tensor([1.0, 2.0]), None)


@CUDA_SKIP
def test_cuda_matches_cpu():
    x, y = cloud(3, 700, "dup"), cloud(3, 500, "dup", seed=1)
    lx, ly = torch.tensor([700, 3, 0]), torch.tensor([10, 500, 250])
    c = lambda *t: [u.cuda() for u in t]  # noqa: E731
    assert_all_same([t.cpu() for t in ops.knn(*c(x, y), 8, query_lengths=lx.cuda(), ref_lengths=ly.cuda())],
                    ops.knn(x, y, 8, query_lengths=lx, ref_lengths=ly))
    assert_all_same([t.cpu() for t in ops.chamfer_distance(*c(x, y), x_lengths=lx.cuda(), y_lengths=ly.cuda())],
                    ops.chamfer_distance(x, y, x_lengths=lx, y_lengths=ly))
    assert_same(ops.furthest_point_sample(x.cuda(), 32, lengths=lx.cuda()).cpu(),
                ops.furthest_point_sample(x, 32, lengths=lx))
