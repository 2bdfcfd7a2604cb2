"""DDP: the [1, 1, C] token/position parameters get row-major gradients, so DDP never warns
"Grad strides do not match bucket view strides" (2 gloo processes on CPU)."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import recon.models.recon as recon_family
from recon.models import create_model
from zoo_helpers import TINY, TINY_PTS, clouds

TOKENS = ("cls_token", "cls_pos", "img_token", "text_token", "img_pos", "text_pos")


def _row_major(t: torch.Tensor) -> bool:
    return t.stride() == torch.empty(t.shape).stride()


def _token_grads(model, pts):
    model.zero_grad()
    model(pts).sum().backward()
    return {n: model.get_parameter(n).grad for n in TOKENS}


def test_token_gradients_are_row_major_and_unchanged(monkeypatch):
    torch.manual_seed(0)
    model = create_model("recon_tiny", num_classes=3, **TINY, **TINY_PTS).train()
    pts = clouds(3, 128)
    torch.manual_seed(1)
    dense = _token_grads(model, pts)
    assert all(_row_major(g) for g in dense.values())
    # the same step with a plain torch.cat: same values (bit for bit), only the strides differ
    monkeypatch.setattr(recon_family, "cat_tokens", lambda params, dim=1: torch.cat(params, dim=dim))
    torch.manual_seed(1)
    plain = _token_grads(model, pts)
    assert not all(_row_major(g) for g in plain.values())  # what DDP used to warn about
    for n in TOKENS:
        assert torch.equal(dense[n], plain[n]), n


NAMES = ("recon_tiny", "recon_tiny_pretrain", "vanilla_multitask_tiny")


def _steps(rank: int, name: str) -> list:
    torch.manual_seed(0)
    kw = dict(depth=1, embed_dim=48, num_heads=3, npoints=64, num_group=8, group_size=8)
    kw.update(dict(decoder_depth=1, img_dim=16, text_dim=8) if name.endswith("_pretrain") else dict(num_classes=3))
    model = torch.nn.parallel.DistributedDataParallel(create_model(name, **kw))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(3):
            g = torch.Generator().manual_seed(10 * rank + step)
            pts = torch.rand(2, 64, 3, generator=g)
            if name.endswith("_pretrain"):
                loss = model(pts, img_feat=torch.rand(2, 16, generator=g), text_feat=torch.rand(2, 8, generator=g),
                             generator=g)["loss"]
            else:
                loss = model(pts).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return [f"{name}: {w.message}" for w in caught if "strides" in str(w.message)]


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        found = [w for name in NAMES for w in _steps(rank, name)]
        with open(os.path.join(out_dir, f"rank{rank}.txt"), "w") as f:
            f.write("\n".join(found) if found else "clean")
    finally:
        dist.destroy_process_group()


def test_ddp_two_processes_no_stride_warning(tmp_path):
    """Two gloo processes, three steps of each family that has [1, 1, C] query parameters."""
    mp.start_processes(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True,
                       start_method="spawn")
    for rank in range(2):
        text = (tmp_path / f"rank{rank}.txt").read_text()
        assert text == "clean", (rank, text)
