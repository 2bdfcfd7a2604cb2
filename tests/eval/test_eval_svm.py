import numpy as np
import pytest
import torch

from recon.eval import svm
from eval_helpers import ListDataset, blobs


def test_feature_layout_by_hand():
    from recon import models
    cls = torch.tensor([[1.0, -5.0]])
    img = torch.tensor([[0.0, 2.0]])
    text = torch.tensor([[3.0, 1.0]])
    local = torch.tensor([[[1.0, 0.0], [3.0, -2.0], [2.0, 2.0]]])
    f = models.svm_feature(dict(cls=cls, img=img, text=text, local=local))
    # [max of queries (2), max(local) + mean(local) (2)] = 2C
    assert f.tolist() == [[3.0, 2.0, 3.0 + 2.0, 2.0 + 0.0]]


def test_accuracy_cache_and_separable_data(standin, tmp_path, monkeypatch):
    pts, labels = blobs(n_per_class=8, npoints=96)
    train = ListDataset(pts[::2], labels[::2])
    test = ListDataset(pts[1::2], labels[1::2])
    calls = []
    real = svm.extract_features
    monkeypatch.setattr(svm, "extract_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    res = svm.svm_accuracy(standin, train, test, npoints=64, batch_size=5, cache_dir=tmp_path, cache_key="k")
    assert res["dim"] == 32 and res["n_train"] == 12 and res["n_test"] == 12
    assert 0 <= res["acc"] <= 100 and len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k_test_fps64.npz", "k_train_fps64.npz"]
    again = svm.svm_accuracy(standin, train, test, npoints=64, batch_size=5, cache_dir=tmp_path, cache_key="k")
    assert len(calls) == 2 and again["acc"] == res["acc"]


def test_fit_and_score_official_c():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-3, 1, (20, 5)), rng.normal(3, 1, (20, 5))]).astype(np.float32)
    y = np.repeat([0, 1], 20)
    assert svm.SVM_C == 0.075
    assert svm.fit_and_score(x, y, x, y) == 100.0
    with pytest.raises(ValueError, match="two classes"):
        svm.fit_and_score(x[:20], y[:20], x, y)
