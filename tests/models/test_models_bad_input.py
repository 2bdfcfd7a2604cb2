"""Bad model input: non-finite points are refused naming the clouds; other float dtypes are converted."""

from __future__ import annotations

import math

import pytest
import torch

from recon.models import create_model, pointmae_base, recon_tiny, recon_tiny_pretrain
from zoo_helpers import TINY, TINY_PTS, clouds


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return recon_tiny(num_classes=3, **TINY, **TINY_PTS).eval()


@pytest.mark.parametrize("case", ["plus_inf", "nan_at_fps_start", "nan_elsewhere", "minus_inf_two_clouds"])
def test_non_finite_points_are_refused_naming_clouds_and_count(tiny, case):
    pts = clouds(4, 128)
    if case == "plus_inf":
        pts[2, 17, 1] = math.inf
        where = r"1 non-finite point\(s\).* in 1 of 4 cloud\(s\); batch index \(points\): 2 \(1\)"
    elif case == "nan_at_fps_start":  # FPS starts at index 0
        pts[0, 0] = math.nan
        where = r"1 non-finite point\(s\).* in 1 of 4 cloud\(s\); batch index \(points\): 0 \(1\)"
    elif case == "nan_elsewhere":
        pts[3, 100, 2] = math.nan
        where = r"batch index \(points\): 3 \(1\)"
    else:
        pts[1, 5:8, 0] = -math.inf
        pts[3, 9, :] = -math.inf
        where = r"4 non-finite point\(s\).* in 2 of 4 cloud\(s\); batch index \(points\): 1 \(3\), 3 \(1\)"
    with torch.no_grad(), pytest.raises(ValueError, match=where) as e:
        tiny(pts)
    assert "check_finite = False" in str(e.value) and "\n" not in str(e.value)


def test_every_family_checks(tmp_path):
    pts = clouds(2, 128)
    pts[1, 3, 0] = math.nan
    pm = pointmae_base(num_classes=3, **TINY, **TINY_PTS).eval()
    pre = recon_tiny_pretrain(decoder_depth=1, img_dim=0, text_dim=0, **TINY, **TINY_PTS)
    zs = create_model("recon_base_zeroshot", **TINY, **TINY_PTS).eval()
    for model in (pm, pre, zs):
        with pytest.raises(ValueError, match=r"batch index \(points\): 1 \(1\)"):
            model(pts)


def test_opt_out_skips_the_check(tiny):
    pts = clouds(2, 128)
    pts[1, 100] = math.nan
    tiny.group_divider.check_finite = False
    try:
        with torch.no_grad():
            out = tiny(pts)  # no error: the caller took responsibility
        assert out.shape == (2, 3)
    finally:
        tiny.group_divider.check_finite = True


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_float_dtypes_are_converted_to_the_model_dtype(tiny, dtype):
    pts = clouds(2, 128)
    with torch.no_grad():
        out = tiny(pts.to(dtype))
        ref = tiny(pts.to(dtype).float())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref)


def test_float64_out_of_float32_range_is_named(tiny):
    pts = clouds(2, 128).double()
    pts[0, 4, 0] = 1e300  # finite in float64, inf in float32
    with pytest.raises(ValueError, match=r"after conversion from torch.float64 to torch.float32.*0 \(1\)"):
        tiny(pts)


def test_double_model_takes_float32_input():
    torch.manual_seed(0)
    m = recon_tiny(num_classes=3, **TINY, **TINY_PTS).double().eval()
    with torch.no_grad():
        assert m(clouds(2, 128)).dtype == torch.float64


@pytest.mark.parametrize("value,exc", [(2.5, ValueError), ("3", TypeError), (True, TypeError), (-1, ValueError),
                                       (float("nan"), ValueError)])
def test_num_classes_must_be_a_whole_number(value, exc):
    with pytest.raises(exc, match="num_classes"):
        recon_tiny(num_classes=value, **TINY, **TINY_PTS)
