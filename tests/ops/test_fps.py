"""furthest_point_sample: equal to the reference, adversarial clouds, documented NaN behaviour."""

from __future__ import annotations

import pytest
import torch
from conftest import KINDS, assert_same, cloud

from recon.ops import furthest_point_sample, reference


@pytest.mark.parametrize("kind", KINDS)
def test_matches_reference(kind, device, dtype):
    xyz = cloud(3, 300, kind=kind, dtype=dtype, device=device)
    for npoint, start in [(40, 0), (17, 123), (1, 5)]:
        got = furthest_point_sample(xyz, npoint, start)
        assert got.dtype == torch.int64 and got.shape == (3, npoint) and got.device == xyz.device
        assert_same(got, reference.furthest_point_sample(xyz, npoint, start))


@pytest.mark.parametrize("B,N,npoint", [(1, 1, 1), (1, 64, 64), (2, 1000, 1000), (5, 33, 7), (1, 4099, 300)])
def test_shapes_and_npoint_equal_n(B, N, npoint, device):
    xyz = cloud(B, N, device=device, seed=N)
    got = furthest_point_sample(xyz, npoint)
    assert_same(got, reference.furthest_point_sample(xyz, npoint))
    if npoint == N:  # every point exactly once
        assert torch.equal(got.sort(dim=1).values.cpu(), torch.arange(N).expand(B, N))


def test_large_cloud_threaded_split(device):
    # N >= 32768 with B == 1 takes the CPU path that splits each step across threads.
    xyz = cloud(1, 40000, device=device, seed=3)
    assert_same(furthest_point_sample(xyz, 64, 7), reference.furthest_point_sample(xyz, 64, 7))


def test_start_idx_and_spread(device):
    xyz = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [10, 0, 0], [5, 0, 0], [2, 0, 0]]], device=device)
    assert furthest_point_sample(xyz, 4).tolist() == [[0, 2, 3, 4]]
    assert furthest_point_sample(xyz, 3, start_idx=2).tolist() == [[2, 0, 3]]


def test_all_identical_repeats_index_zero(device):
    xyz = cloud(2, 10, kind="same", device=device)
    assert furthest_point_sample(xyz, 4, 3).tolist() == [[3, 0, 0, 0]] * 2


def test_non_contiguous(device, dtype):
    base = cloud(2, 3 * 200, dtype=dtype, device=device).reshape(2, 200, 9)
    xyz = base[:, :, 3:6]  # strided view
    assert not xyz.is_contiguous()
    assert_same(furthest_point_sample(xyz, 20), furthest_point_sample(xyz.contiguous(), 20))
    assert_same(furthest_point_sample(xyz, 20), reference.furthest_point_sample(xyz, 20))


def test_nan_points_are_never_picked(device):
    xyz = cloud(2, 50, device=device, seed=1)
    xyz[0, [4, 9, 30], 1] = float("nan")
    got = furthest_point_sample(xyz, 47)
    assert_same(got, reference.furthest_point_sample(xyz, 47))
    assert not set(got[0].tolist()) & {4, 9, 30}
    # once only NaN candidates remain, index 0 repeats
    got = furthest_point_sample(xyz, 50)
    assert got[0, 47:].tolist() == [0, 0, 0]


def test_empty_batch(device):
    out = furthest_point_sample(torch.zeros(0, 10, 3, device=device), 4)
    assert out.shape == (0, 4) and out.dtype == torch.int64


def test_nan_start_point(device):
    # Every distance to a NaN start is NaN, so no point can win: index 0 for the rest.
    xyz = cloud(1, 20, device=device, seed=2)
    xyz[0, 5, 2] = float("nan")
    got = furthest_point_sample(xyz, 4, start_idx=5)
    assert got.tolist() == [[5, 0, 0, 0]]
    assert_same(got, reference.furthest_point_sample(xyz, 4, start_idx=5))
