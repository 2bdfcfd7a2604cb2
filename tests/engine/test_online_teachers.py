"""``teachers.online: true``: the loop runs the frozen teachers on every batch; for the same drawn
view and prompt (a deterministic image pipeline) a step gives the cached mode's losses."""

import os
import warnings
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import default_collate

pytest.importorskip("open_clip", reason="open_clip (with a torchvision matching torch) is needed for the teachers")

from recon.config import Config, load_config, merge  # noqa: E402
from recon.data import SyntheticShapes  # noqa: E402
from recon.engine.teacher_cache import OnlineTeachers, prepare_teachers  # noqa: E402
from recon.engine.train_pretrain import pretrain, pretrain_step  # noqa: E402
from recon.models import create_model  # noqa: E402
from recon.teachers import TeacherFeatureCache, all_prompts, build_image_teacher, build_text_teacher  # noqa: E402

SET = dict(num_classes=3, num_per_class=4, num_points=128, image_size=32, workers=1)  # 9 train shapes
MODEL = dict(name="recon_tiny_pretrain", npoints=64, num_group=8, group_size=8, depth=1, embed_dim=48,
             num_heads=3, decoder_depth=1, drop_path_rate=0.0, img_dim=768, text_dim=512)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("syn"))
    SyntheticShapes(root, "train", npoints=64, **SET)  # generated once
    return root


def _teachers_cfg(online, cache, pipeline="eval"):
    return {"image": {"arch": "tiny", "weights": "random"}, "text": {"arch": "tiny", "weights": "random"},
            "online": online, "image_transform": pipeline, "cache": cache, "views": 1, "batch_size": 8,
            "num_workers": 0}


def _config(out, root, online):
    body = {
        "task": "pretrain", "output_dir": str(out), "deterministic": True, "device": "cpu",
        "model": MODEL,
        "data": {"name": "SyntheticShapes", "root": root, "train_split": "train",
                 "args": {"npoints": 64, "image_transform": None, **SET}},
        "teachers": _teachers_cfg(online, os.path.join(str(out), "cache")),
        "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.05, "cls_lr_mult": 1},
        "scheduler": {"name": "cos_step", "t_initial": 1, "warmup_epochs": 0, "lr_min": 1e-5,
                      "warmup_lr_init": 1e-5},
        "train": {"epochs": 1, "batch_size": 4, "accum_steps": 1, "num_workers": 0, "grad_clip": None,
                  "amp": "none", "transform": "rotate", "sync_bn": False, "max_steps": 2},
        "log": {"every": 1, "progress": False, "tensorboard": False, "quiet": True},
    }
    return Config(merge(load_config("default_runtime").to_dict(), body))


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the random-init demo teachers warn loudly
        return fn(*args, **kw)


def test_online_pretraining_runs_frozen_teachers_on_every_batch(tmp_path, root, monkeypatch):
    seen = []
    real = OnlineTeachers.__call__

    def spy(self, batch):
        for t in (self.image_teacher, self.text_teacher):
            assert not t.training and not any(p.requires_grad for p in t.parameters())
        out = real(self, batch)
        assert not out["img_feat"].requires_grad and out["img_feat"].shape == (4, 768)
        seen.append(out["text_feat"].shape)
        return out

    monkeypatch.setattr(OnlineTeachers, "__call__", spy)
    summary = _quiet(pretrain, _config(tmp_path, root, online=True))
    assert seen == [(4, 512)] * 2  # max_steps=2 batches, the teachers ran on each
    last = summary["last_epoch"]
    assert all(torch.isfinite(torch.tensor(last[k])) for k in ("loss", "loss_recon", "loss_img", "loss_text"))
    assert not os.path.exists(tmp_path / "cache")  # nothing cached in online mode
    backbone = torch.load(summary["checkpoints"]["backbone"], weights_only=True)["base_model"]
    assert not any(k.startswith(("img_encoder.", "text_encoder.", "tower.")) for k in backbone)


def test_online_step_equals_cached_step_for_the_same_view_and_prompt(tmp_path, root):
    run = SimpleNamespace(device=torch.device("cpu"), info=SimpleNamespace(is_main=True),
                          logger=SimpleNamespace(info=lambda msg: None), progress=False)
    cache_dir = str(tmp_path / "cache")
    ds = SyntheticShapes(root, "train", npoints=64, image_transform=None, **SET)
    cached_ds, none = _quiet(prepare_teachers, ds, _teachers_cfg(False, cache_dir), run)
    online_ds, teachers = _quiet(prepare_teachers, ds, _teachers_cfg(True, cache_dir), run)
    assert none is None and isinstance(teachers, OnlineTeachers)

    idx = [0, 3, 5, 8]
    torch.manual_seed(5)  # the same point subsets in both modes
    online = default_collate([online_ds[i] for i in idx])
    torch.manual_seed(5)
    cached = default_collate([cached_ds[i] for i in idx])
    assert torch.equal(online["points"], cached["points"])
    # the cached features of the prompts the online items drew (one cached view: the eval pipeline's)
    cache = _quiet(TeacherFeatureCache, cache_dir, ds, text_teacher=_quiet(build_text_teacher, "tiny", "random"),
                   image_teacher=_quiet(build_image_teacher, "tiny", "random"), views=1,
                   image_transform=online_ds.dataset.image_transform)
    assert cache.is_complete()  # the same entry prepare_teachers built
    drawn = [all_prompts(t).index(p) for t, p in zip(online["text"], online["prompt"])]
    cached["text_feat"] = torch.stack([torch.from_numpy(cache.text_features(t)[j].copy())
                                       for t, j in zip(online["text"], drawn)])
    torch.testing.assert_close(cached["img_feat"], torch.from_numpy(cache.image_features(idx)[:, 0].copy()))

    feats = teachers(online)
    torch.testing.assert_close(feats["img_feat"], cached["img_feat"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(feats["text_feat"], cached["text_feat"], rtol=1e-5, atol=1e-5)

    torch.manual_seed(0)
    model = create_model(**MODEL).train()
    losses = {}
    for mode, batch, step in (("online", online, pretrain_step(None, teachers)),
                              ("cached", cached, pretrain_step(None))):
        torch.manual_seed(7)  # the same mask
        losses[mode] = {k: v.item() for k, v in step(model, batch).items()}
    assert set(losses["online"]) == {"loss", "loss_recon", "loss_img", "loss_text"}
    for k, v in losses["cached"].items():
        assert losses["online"][k] == pytest.approx(v, rel=1e-5), k


def test_online_train_pipeline_draws_a_fresh_view_per_access(root):
    run = SimpleNamespace(device=torch.device("cpu"), info=SimpleNamespace(is_main=True),
                          logger=SimpleNamespace(info=lambda msg: None), progress=False)
    ds = SyntheticShapes(root, "train", npoints=64, image_transform=None, **SET)
    online_ds, _ = _quiet(prepare_teachers, ds, _teachers_cfg(True, None, "train"), run)
    assert online_ds.dataset is not ds and ds.image_transform is None  # the data config is left alone
    assert not torch.equal(online_ds[0]["image"], online_ds[0]["image"])
    with pytest.raises(ValueError, match="teachers.image_transform must be one of"):
        prepare_teachers(ds, _teachers_cfg(True, None, "random"), run)
