"""mIoU primitives against hand-computed cases (docs/official.md §15 protocol)."""

import numpy as np
import pytest
import torch

from recon.eval.miou import PartSegMeter, format_iou_table, masked_predict, shape_iou

PARTS = [[0, 1], [2, 3, 4]]  # category 0 has parts 0, 1; category 1 has parts 2, 3, 4


def one_hot_scores(pred, num_parts=5):
    """Scores whose arg-max over all parts is ``pred``."""
    pred = torch.as_tensor(pred)
    return torch.nn.functional.one_hot(pred, num_parts).float()


def test_shape_iou_hand_cases():
    # part 0: P={0,1} G={0} -> 1/2 ; part 1: P={2} G={1,2} -> 1/2
    assert shape_iou([0, 0, 1], [0, 1, 1], [0, 1]) == pytest.approx(0.5)
    # part 4 absent from prediction and ground truth counts 1.0: (1 + 1 + 1) / 3
    assert shape_iou([2, 3, 3], [2, 3, 3], [2, 3, 4]) == pytest.approx(1.0)
    # part 2: 1/1 ; part 3: P={1} G={1,2} -> 1/2 ; part 4: P={2}, G={} -> 0 ; mean 0.5
    assert shape_iou([2, 3, 4], [2, 3, 3], [2, 3, 4]) == pytest.approx(0.5)


def test_masked_predict_never_leaves_the_category():
    scores = torch.tensor([[[0.0, 0.1, 9.0, 0.0, 0.0]], [[5.0, 0.0, 0.1, 0.2, 0.0]]])
    pred = masked_predict(scores, torch.tensor([0, 1]), PARTS)
    # category 0: part 2 has the top score but is not a part of it -> part 1; category 1: part 3
    assert pred.tolist() == [[1], [3]]


def test_meter_instance_and_class_means():
    meter = PartSegMeter(PARTS, ["mug", "table"])
    # shape A (cat 0): IoU 0.5 ; shape B (cat 0): 1.0 ; shape C (cat 1): 2/3
    meter.update(one_hot_scores([[0, 0, 1]]), torch.tensor([[0, 1, 1]]), torch.tensor([0]))
    meter.update(one_hot_scores([[0, 1, 1], [2, 2, 3]]), torch.tensor([[0, 1, 1], [2, 2, 2]]), torch.tensor([0, 1]))
    m = meter.compute()
    # C: part 2 P={0,1} G={0,1,2} -> 2/3 ; part 3 P={2} G={} -> 0 ; part 4 absent -> 1 ; mean 5/9
    c = (2 / 3 + 0 + 1) / 3
    assert m["instance_miou"] == pytest.approx(100 * (0.5 + 1.0 + c) / 3)
    assert m["class_miou"] == pytest.approx(100 * ((0.5 + 1.0) / 2 + c) / 2)
    assert m["per_category"] == pytest.approx({"mug": 75.0, "table": 100 * c})
    assert m["counts"] == {"mug": 2, "table": 1}
    assert m["accuracy"] == pytest.approx(100 * 7 / 9)
    table = format_iou_table(m)
    assert "mug" in table and "instance mIoU" in table and "class mIoU" in table


def test_meter_leaves_out_categories_without_shapes_and_merges():
    a, b = PartSegMeter(PARTS), PartSegMeter(PARTS)
    a.update(one_hot_scores([[2, 3, 4]]), torch.tensor([[2, 3, 4]]), torch.tensor([1]))
    b.update(one_hot_scores([[2, 2, 2]]), torch.tensor([[2, 3, 4]]), torch.tensor([1]))
    assert list(a.compute()["per_category"]) == ["cat1"]
    merged = PartSegMeter(PARTS)
    merged.merge([a.state(), b.state()])
    m = merged.compute()
    assert m["shapes"] == 2
    assert m["instance_miou"] == pytest.approx(100 * (1.0 + 1 / 9) / 2)
    assert m["class_miou"] == pytest.approx(m["instance_miou"])


def test_meter_rejects_mismatched_target():
    meter = PartSegMeter(PARTS)
    with pytest.raises(ValueError, match="target"):
        meter.update(torch.zeros(1, 3, 5), torch.zeros(1, 4, dtype=torch.long), torch.tensor([0]))


def test_masked_predict_checks_shapes():
    with pytest.raises(ValueError, match="one id per shape"):
        masked_predict(torch.zeros(2, 3, 5), torch.tensor([0]), PARTS)
    assert np.array_equal(masked_predict(torch.zeros(1, 2, 5), torch.tensor([1]), PARTS).numpy(), [[2, 2]])
