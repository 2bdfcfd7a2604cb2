"""state_dict keys, order and shapes equal the official models'; parameter counts and FLOPs."""

from __future__ import annotations

import pytest
import torch

from recon.models import count_flops, count_params, create_model

from zoo_helpers import FixedGroups, official_meta, official_shapes

CASES = [
    ("recon_base_finetune_cls15", "recon_base", dict(num_classes=15)),
    ("recon_small_finetune_cls15", "recon_small", dict(num_classes=15)),
    ("recon_tiny_finetune_cls15", "recon_tiny", dict(num_classes=15)),
    ("recon_base_finetune_cls40_modelnet", "recon_base", dict(num_classes=40)),
    ("recon_base_linear_cls15", "recon_base", dict(num_classes=15, head="linear")),
    ("recon_base_svm", "recon_base", dict(num_classes=0)),
    ("recon_base_zeroshot", "recon_base_zeroshot", {}),
    ("recon_base_pretrain_released", "recon_base_pretrain", {}),
    ("recon_small_pretrain_released", "recon_small_pretrain", {}),
    ("recon_tiny_pretrain_released", "recon_tiny_pretrain", {}),
    ("pointmae_base_finetune_cls15", "pointmae_base", dict(num_classes=15)),
    ("pointmae_base_pretrain", "pointmae_base_pretrain", {}),
]


@pytest.mark.parametrize("key_file,name,kwargs", CASES, ids=[c[0] for c in CASES])
def test_state_dict_equals_official(key_file, name, kwargs):
    with torch.device("meta"):  # shapes only: no time spent on initialisation
        model = create_model(name, **kwargs)
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert ours == list(official_shapes(key_file).items())
    # (ReCon's official pretrain module also holds the frozen teachers: compare the trainable count)
    assert count_params(model) == official_meta(key_file)["num_parameters_requires_grad"]


# docs/official.md §5: FlopCounterMode on the official modules, 2048 points, 128 groups, batch 1.
@pytest.mark.parametrize(
    "name,gflops,params",
    [("recon_base", 10.802, 43_571_215), ("recon_small", 6.575, 19_733_263), ("recon_tiny", 4.999, 11_353_231)],
)
def test_flops_match_official(name, gflops, params):
    with torch.device("meta"):
        model = create_model(name, num_classes=15, npoints=2048).eval()
    assert count_params(model) == params
    model.group_divider = FixedGroups(128, 32)
    fc = count_flops(model, torch.empty(1, 2048, 3, device="meta"))
    assert fc.flops / 1e9 == pytest.approx(gflops, rel=0.01)
    # what recon runs: the global half of the tokenizer's 512->512 layer once per group, not per point
    assert fc.executed_flops == fc.flops - 2 * 128 * 31 * 256 * 512
    # the paper's column (MACs, attention matmuls left out): 5.3 / 3.2 / 2.4 G
    paper = {"recon_base": 5.3, "recon_small": 3.2, "recon_tiny": 2.4}[name]
    assert fc.paper_macs / 1e9 == pytest.approx(paper, abs=0.06)
    assert 0 < fc.attention_flops < fc.flops


def test_pointmae_params_and_flops():
    with torch.device("meta"):
        model = create_model("pointmae_base", num_classes=15, npoints=2048).eval()
    assert count_params(model) == 22_093_327
    model.group_divider = FixedGroups(128, 32)
    fc = count_flops(model, torch.empty(1, 2048, 3, device="meta"))
    assert fc.macs / 1e9 == pytest.approx(4.91, abs=0.01)  # docs/official.md §5: 4.91 GMACs, 4.76 without attention
    assert fc.paper_macs / 1e9 == pytest.approx(4.76, abs=0.01)
