"""Part-seg models: the official state_dict layout, official checkpoints, forward semantics."""

import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recon.checkpoint import CheckpointMismatchError
from recon.models import create_model, list_models
from recon.models.partseg import interpolate_3nn, load_partseg_weights

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "official_keys")
OFFICIAL = {"recon_base_partseg": "recon_partseg50.json", "pointmae_base_partseg": "pointmae_partseg50.json"}
TINY = dict(npoints=64, num_group=8, group_size=8, depth=4, embed_dim=32, num_heads=2, feature_blocks=(1, 2, 3),
            propagation_dims=(24, 16), head_dims=(16, 8))


def key_list(name):
    with open(os.path.join(FIXTURES, OFFICIAL[name])) as f:
        return json.load(f)


def official_state(name, seed=0):
    """A state_dict in the official layout with random values (int64 BN counters, as released)."""
    ref = key_list(name)
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, shape in ref["shapes"].items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.tensor(7, dtype=torch.int64)
        elif k.endswith("running_var"):
            state[k] = torch.rand(shape, generator=g) + 0.5
        else:
            state[k] = torch.randn(shape, generator=g) * 0.02
    return state


@pytest.fixture(scope="module", params=sorted(OFFICIAL))
def official(request):
    return request.param, create_model(request.param)


def test_registered():
    assert {"recon_base_partseg", "pointmae_base_partseg"} <= set(list_models(kind="partseg"))


def test_state_dict_layout_and_parameter_count(official):
    name, model = official
    ref = key_list(name)
    state = model.state_dict()
    assert list(state) == list(ref["shapes"])  # names AND order
    assert {k: list(v.shape) for k, v in state.items()} == ref["shapes"]
    assert sum(p.numel() for p in model.parameters()) == ref["num_parameters_module"]


def test_official_partseg_checkpoint_loads_strictly(official, tmp_path):
    name, model = official
    state = official_state(name)
    path = tmp_path / "best_model.pth"
    # the official script saves its metrics as numpy floats next to the weights
    torch.save({"epoch": 12, "train_acc": np.float64(0.9), "test_acc": np.float64(0.93),
                "class_avg_iou": np.float64(0.84), "inctance_avg_iou": np.float64(0.86),
                "model_state_dict": state, "optimizer_state_dict": {"state": {}, "param_groups": []}}, path)
    loaded = create_model(name, pretrained=str(path))
    report = loaded.load_report
    assert report.source_format == "official-partseg" and report.ok and len(report.loaded) == len(state)
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, state[k]), k
    loaded.eval()
    pts = torch.rand(2, 256, 3) * 2 - 1
    with torch.no_grad():
        out = loaded(pts, torch.tensor([0, 15]))
        onehot = loaded(pts, F.one_hot(torch.tensor([0, 15]), 16).float())
    assert out.shape == (2, 256, 50)
    assert (out <= 0).all()  # log-probabilities
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(2, 256), atol=1e-5, rtol=0)
    torch.testing.assert_close(out, onehot, atol=0, rtol=0)


def test_partseg_checkpoint_missing_a_key_is_refused(tmp_path):
    state = official_state("pointmae_base_partseg")
    del state["convs3.bias"]
    path = tmp_path / "best_model.pth"
    torch.save({"model_state_dict": state}, path)
    model = create_model("pointmae_base_partseg")
    with pytest.raises(CheckpointMismatchError, match="convs3.bias"):
        load_partseg_weights(model, str(path))
    bad = official_state("pointmae_base_partseg")
    bad["convs3.weight"] = torch.zeros(40, 256, 1)
    torch.save({"model_state_dict": bad}, path)
    with pytest.raises(ValueError, match="convs3.weight"):
        load_partseg_weights(model, str(path))


def test_pretraining_checkpoint_remapped_like_the_seg_script(tmp_path):
    model = create_model("recon_base_partseg")
    head = ("label_conv.", "propagation_0.", "convs1.", "convs2.", "convs3.", "bns1.", "bns2.")
    backbone = {k: v for k, v in official_state("recon_base_partseg").items() if not k.startswith(head)}
    ckpt = {f"module.MAE_encoder.{k}": v for k, v in backbone.items()}
    ckpt.update({"module.MAE_decoder.norm.weight": torch.ones(384), "module.mask_token": torch.zeros(1, 1, 384),
                 "module.img_encoder.x": torch.zeros(3)})
    path = tmp_path / "ckpt-epoch-300.pth"
    torch.save({"base_model": ckpt, "epoch": 300}, path)
    report = load_partseg_weights(model, str(path))
    assert len(report.loaded) == 306 and len(report.missing) == 36
    assert all(k.startswith(head) for k in report.missing)
    assert sorted(report.unexpected) == ["MAE_decoder.norm.weight", "mask_token"]
    assert report.dropped == ["img_encoder.x"]
    torch.testing.assert_close(model.state_dict()["blocks.blocks.5.attn.qkv.weight"],
                               backbone["blocks.blocks.5.attn.qkv.weight"])


def test_category_errors():
    model = create_model("pointmae_base_partseg", **TINY).eval()
    pts = torch.rand(2, 64, 3)
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        model(pts, torch.tensor([0, 16]))
    with pytest.raises(ValueError, match="one class id per cloud"):
        model(pts, torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="one-hot"):
        model(pts, torch.tensor([0.0, 1.0]))


def test_interpolation_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    xyz, centers = torch.rand(2, 20, 3, generator=g, dtype=torch.float64), torch.rand(2, 6, 3, generator=g,
                                                                                        dtype=torch.float64)
    feats = torch.randn(2, 6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    out = interpolate_3nn(xyz, centers, feats)
    d = ((xyz[:, :, None] - centers[:, None]) ** 2).sum(-1)
    dist, idx = d.sort(dim=-1)
    w = 1 / (dist[..., :3] + 1e-8)
    w = w / w.sum(-1, keepdim=True)
    ref = (torch.gather(feats[:, None].expand(-1, 20, -1, -1), 2, idx[..., :3, None].expand(-1, -1, -1, 5))
           * w[..., None]).sum(2)
    torch.testing.assert_close(out, ref)
    # centres themselves get their own feature; gradients reach the features
    torch.testing.assert_close(interpolate_3nn(centers, centers, feats), feats.detach(), atol=1e-5, rtol=0)
    assert torch.autograd.gradcheck(lambda f: interpolate_3nn(xyz, centers, f), (feats,))


def _bn(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def reference_recon_partseg(m, pts, cat):
    """The official ReCon get_model forward, written out from docs/official.md §15 (eval mode)."""
    B, N, _ = pts.shape
    neighborhood, center = m.group_divider(pts)
    v = m.encoder(neighborhood)
    x = torch.cat([m.cls_token, m.img_token, m.text_token], 1).expand(B, -1, -1)
    x = torch.cat([x, v], 1)
    pos = torch.cat([torch.cat([m.cls_pos, m.img_pos, m.text_pos], 1).expand(B, -1, -1), m.pos_embed(center)], 1)
    outs = []
    for i, blk in enumerate(m.blocks.blocks):
        q, v, _ = blk((x + pos)[:, :3], (x + pos)[:, 3:])
        x = torch.cat([q, v], 1)
        if i in (1, 2, 3):
            outs.append(x[:, 3:])
    feat = torch.cat([m.norm(o) for o in outs], -1).transpose(1, 2)  # (B, 3C, G)
    cls = x[:, :3].max(1)[0]  # after the last block, not normed
    onehot = F.one_hot(cat, 16).float().view(B, 16, 1)
    lab = F.leaky_relu(_bn(F.conv1d(onehot, m.label_conv[0].weight), m.label_conv[1]), 0.2)
    glob = torch.cat([feat.max(2)[0], feat.mean(2), cls, lab.view(B, -1)], 1)[:, :, None].repeat(1, 1, N)
    # feature propagation: matmul squared distances, sorted, 3 nearest, 1/(d + 1e-8), xyz first
    c = center
    d = -2 * pts @ c.transpose(1, 2) + (pts ** 2).sum(-1)[:, :, None] + (c ** 2).sum(-1)[:, None]
    d, idx = d.sort(-1)
    w = 1.0 / (d[:, :, :3] + 1e-8)
    w = w / w.sum(2, keepdim=True)
    f = feat.transpose(1, 2)
    interp = sum(f[torch.arange(B)[:, None], idx[:, :, j]] * w[:, :, j:j + 1] for j in range(3))
    y = torch.cat([pts, interp], -1).transpose(1, 2)
    for conv, bn in zip(m.propagation_0.mlp_convs, m.propagation_0.mlp_bns):
        y = F.relu(_bn(conv(y), bn))
    y = torch.cat([y, glob], 1)
    y = F.relu(_bn(m.convs1(y), m.bns1))
    y = F.relu(_bn(m.convs2(y), m.bns2))
    return F.log_softmax(m.convs3(y), dim=1).permute(0, 2, 1)


def test_recon_forward_matches_the_written_out_reference():
    torch.manual_seed(0)
    m = create_model("recon_base_partseg", **TINY).eval()
    for mod in m.modules():  # non-trivial BN statistics
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
    for p in (m.cls_token, m.img_token, m.text_token):
        torch.nn.init.normal_(p, std=0.5)
    pts = torch.rand(3, 64, 3) * 2 - 1
    cat = torch.tensor([0, 7, 15])
    with torch.no_grad():
        torch.testing.assert_close(m(pts, cat), reference_recon_partseg(m, pts, cat), atol=2e-5, rtol=1e-4)


def test_training_step_backward_reaches_every_parameter():
    m = create_model("pointmae_base_partseg", **TINY).train()
    out = m(torch.rand(4, 64, 3), torch.tensor([0, 1, 2, 3]))
    F.nll_loss(out.reshape(-1, 50), torch.randint(0, 50, (4 * 64,))).backward()
    assert all(p.grad is not None for p in m.parameters())


def test_recon_file_round_trip(tmp_path):
    from recon.checkpoint import save_model
    from recon.models import load_model

    m = create_model("recon_base_partseg", **TINY).eval()
    prefix = save_model(m, tmp_path / "best")
    m2 = load_model(prefix).eval()
    pts = torch.rand(2, 64, 3)
    with torch.no_grad():
        torch.testing.assert_close(m(pts, torch.tensor([1, 2])), m2(pts, torch.tensor([1, 2])))
    assert load_partseg_weights(create_model("recon_base_partseg", **TINY), prefix).ok
