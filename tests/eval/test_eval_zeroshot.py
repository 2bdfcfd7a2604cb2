import pytest
import torch

from recon.eval import zeroshot as zs
from eval_helpers import StandInZeroShot, blobs

TEMPLATES = ["", "A ", "A model of "]
ENDINGS = [".", " with white background."]


def toy_prompts(text):
    # same ordering rule as the official 60: template j % T, ending j // T
    return [TEMPLATES[j % 3] + text + ENDINGS[j // 3] for j in range(6)]


def toy_encode(texts):
    # deterministic, prompt-dependent, un-normalised features
    return torch.tensor([[len(t), t.count("A"), float(sum(map(ord, t)) % 97), 1.0] for t in texts])


def test_official_ratios_and_scan_classes():
    assert zs.zeroshot_ratio("modelnet10") == 0.2
    assert zs.zeroshot_ratio("modelnet40") == 0.25
    assert zs.zeroshot_ratio("scan_hardest") == 0.05
    assert zs.zeroshot_ratio("scan_objbg") == 0.1
    assert zs.zeroshot_ratio("scan_objonly") == 0.15
    names = zs.class_names("scan_objbg")
    assert len(names) == 15 and names[-1] == "toile" and names[0] == "bag"
    assert zs.ZEROSHOT_GROUPING["scan_objonly"] == (2048, 32, 128)
    with pytest.raises(ValueError, match="dataset"):
        zs.zeroshot_ratio("shapenet")


def test_class_text_features_is_the_plain_sum_of_prompts():
    feats = zs.class_text_features(toy_encode, ["chair", "lamp"], prompts=toy_prompts)
    by_hand = []
    for name in ["chair", "lamp"]:
        rows = [[len(t), t.count("A"), float(sum(map(ord, t)) % 97), 1.0] for t in toy_prompts(name)]
        by_hand.append([sum(col) for col in zip(*rows)])
    assert torch.equal(feats, torch.tensor(by_hand))
    assert feats[0, 3] == 6  # summed, not averaged


def test_single_prompt_row():
    feats = zs.class_text_features(toy_encode, ["chair"], prompts=toy_prompts, single_prompt=4)
    assert torch.equal(feats[0], toy_encode(["A chair with white background."])[0])
    with pytest.raises(ValueError, match="single_prompt"):
        zs.class_text_features(toy_encode, ["chair"], prompts=toy_prompts, single_prompt=6)


def test_cosine_argmax_by_hand():
    text = torch.tensor([[1.0, 0, 0, 0], [0, 10.0, 0, 0]])
    pf = torch.tensor([[5.0, 4.0, 0, 0], [1.0, 2.0, 0, 0]])
    # cosine, not dot product: the long second class vector must not win by its norm
    assert zs.predict(pf, text).tolist() == [0, 1]


def _write_official_zeroshot(path, c=16, d_img=4, d_txt=4):
    state = {"module.MAE_encoder.cls_token": torch.zeros(1, 1, c), "module.img_proj.weight": torch.randn(d_img, c),
             "module.img_proj.bias": torch.randn(d_img), "module.text_proj.weight": torch.randn(d_txt, c),
             "module.text_proj.bias": torch.randn(d_txt)}
    torch.save({"base_model": state, "epoch": 3}, path)
    return state


def test_load_projections_official_layout(tmp_path):
    torch.manual_seed(0)
    model = StandInZeroShot()
    state = _write_official_zeroshot(tmp_path / "zs.pth")
    zs.load_projections(model, tmp_path / "zs.pth")
    assert torch.equal(model.img_proj.weight, state["module.img_proj.weight"])
    assert torch.equal(model.text_proj.bias, state["module.text_proj.bias"])
    _write_official_zeroshot(tmp_path / "b16.pth", d_img=8)
    with pytest.raises(ValueError, match="ViT-B/32"):
        zs.load_projections(model, tmp_path / "b16.pth")
    torch.save({"base_model": {"cls_token": torch.zeros(1)}}, tmp_path / "none.pth")
    with pytest.raises(ValueError, match="img_proj"):
        zs.load_projections(model, tmp_path / "none.pth")
    with pytest.raises(FileNotFoundError):
        zs.load_projections(model, tmp_path / "missing.pth")


def test_evaluate_uses_the_ratio_and_counts():
    torch.manual_seed(0)
    model = StandInZeroShot().eval()
    pts, labels = blobs(n_per_class=3, npoints=64)
    text = torch.randn(3, 4)
    keep = lambda p, n, generator=None: p  # noqa: E731  (the sampling is the data package's, tested there)
    res = zs.evaluate(model, [(pts[:5], labels[:5]), (pts[5:], labels[5:])], text, 0.05, 64, sampler=keep)
    with torch.no_grad():
        f = model.forward_features(pts)
        by_hand = 0.05 * model.text_proj(f["text"]) + model.img_proj(f["img"])
        pred = (torch.nn.functional.normalize(by_hand, dim=-1) @ torch.nn.functional.normalize(text, dim=-1).t()).argmax(-1)
    assert res["n"] == 9 and res["correct"] == int((pred == labels).sum())
    assert res["acc"] == pytest.approx(100 * res["correct"] / 9)
    assert len(res["per_class"]) == 3
    with pytest.raises(ValueError, match="labels"):
        zs.evaluate(model, [(pts, labels + 1)], text, 0.25, 64, sampler=keep)
