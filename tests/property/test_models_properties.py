"""create_model, pretrained= and the model forward on generated arguments, files and clouds: each case
builds/loads/runs as documented or raises a clear error naming the argument (or the file)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.errors import CheckpointError
from recon.models import create_model
from strategies import DTYPES, clouds, examples

SMALL = dict(depth=1, embed_dim=12, num_heads=3, group_size=4)
INT_ARGS = ("num_classes", "npoints", "num_group", "group_size", "depth", "embed_dim", "num_heads")
values = st.one_of(st.integers(-3, 40), st.floats(allow_nan=True, allow_infinity=True, width=32),
                   st.sampled_from(["3", "", None, True, False, [2], 2.0, 1e9]))


@settings(max_examples=examples(60))
@given(st.data())
def test_create_model_arguments(data):
    """One generated value for one integer argument: a model whose config holds an int, or a
    TypeError/ValueError naming that argument."""
    name = data.draw(st.sampled_from(["recon_tiny", "pointmae_base", "vanilla_multitask_tiny"]))
    arg, value = data.draw(st.sampled_from(INT_ARGS)), data.draw(values)
    kw = dict(SMALL, num_classes=3, npoints=32, num_group=8)
    if value is None and arg != "num_group":
        value = 1  # None means "the factory default" (full size): keep the model small
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 64:
        value = 64  # a valid but large size would only cost time
    kw[arg] = value
    try:
        model = create_model(name, **kw)
    except (TypeError, ValueError) as e:
        names = {arg, "npoints", "num_group"} if arg in ("npoints", "num_group", "group_size") else {arg}
        if arg in ("embed_dim", "num_heads"):
            names |= {"divisible", "embed_dim", "num_heads"}
        assert any(n in str(e) for n in names), (arg, value, str(e))
        return
    expected = kw["npoints"] // 16 if arg == "num_group" and value is None else value
    assert isinstance(model.config[arg], int) and model.config[arg] == expected


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return create_model("recon_tiny", num_classes=3, npoints=32, num_group=8, **SMALL).eval()


@settings(max_examples=examples(40))
@given(st.data())
def test_forward_on_generated_clouds(tiny, data):
    """Finite logits of shape (B, 3), or a ValueError naming the clouds that hold NaN/inf."""
    B, N = data.draw(st.integers(1, 3)), data.draw(st.integers(8, 40))
    pts = data.draw(clouds(B, N, data.draw(st.sampled_from(DTYPES))))
    try:
        with torch.no_grad():
            out = tiny(pts)
    except ValueError as e:
        bad = ~torch.isfinite(pts.float()).all(-1)
        assert bad.any() and "non-finite" in str(e) and "batch index" in str(e), str(e)
        assert str(int(bad.any(1).nonzero()[0])) in str(e).split("batch index (points):")[1]
        return
    assert out.shape == (B, 3) and out.dtype == torch.float32 and torch.isfinite(out).all()


def _mutate(data, blob: bytes) -> bytes:
    kind = data.draw(st.sampled_from(["truncate", "overwrite", "append", "zero", "prefix"]))
    n = len(blob)
    at = data.draw(st.integers(0, n))
    junk = data.draw(st.binary(min_size=1, max_size=64))
    if kind == "truncate":
        return blob[:at]
    if kind == "overwrite":
        return blob[:at] + junk + blob[at + len(junk):]
    if kind == "append":
        return blob + junk
    if kind == "prefix":
        return junk + blob
    return blob[:at] + bytes(min(64, n - at)) + blob[at + 64:]


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny):
    from recon.checkpoint import save_model

    folder = tmp_path_factory.mktemp("ckpt")
    torch.save({"base_model": tiny.state_dict(), "epoch": 3}, folder / "good.pth")
    save_model(tiny, folder / "good")
    return {"pth": (folder / "good.pth").read_bytes(), "safetensors": (folder / "good.safetensors").read_bytes()}


@settings(max_examples=examples(50))
@given(st.data())
def test_pretrained_on_damaged_files(tmp_path_factory, saved, data):
    """A damaged checkpoint either still loads (a byte inside tensor data) or gives a one-line
    CheckpointError naming the file; nothing else."""
    fmt = data.draw(st.sampled_from(sorted(saved)))
    path = tmp_path_factory.mktemp("bad") / f"bad.{fmt}"
    path.write_bytes(_mutate(data, saved[fmt]))
    try:
        model = create_model("recon_tiny", num_classes=3, npoints=32, num_group=8, pretrained=str(path), **SMALL)
    except CheckpointError as e:
        assert str(path) in str(e) and "\n" not in str(e), str(e)
        return
    assert model.load_report.loaded
