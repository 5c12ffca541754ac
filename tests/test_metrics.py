import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from roadfeat.metrics import confusion, iou, summarise


def test_iou_known_values():
    truth = np.zeros((4, 4), bool)
    truth[0, :] = True  # 4 pixels
    pred = np.zeros((4, 4), bool)
    pred[0, :2] = True  # 2 hits
    pred[3, 3] = True  # 1 false alarm
    c = confusion(pred, truth)
    assert (c.tp, c.fp, c.fn, c.tn) == (2, 1, 2, 11)
    assert c.iou == pytest.approx(2 / 5)
    assert c.precision == pytest.approx(2 / 3)
    assert c.recall == pytest.approx(0.5)


def test_empty_truth_and_prediction_scores_one():
    z = np.zeros((3, 3), bool)
    assert iou(z, z) == 1.0


def test_empty_prediction_on_road_scores_zero():
    t = np.eye(3, dtype=bool)
    assert iou(np.zeros_like(t), t) == 0.0


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        confusion(np.zeros((2, 2), bool), np.zeros((3, 3), bool))


def test_summary_mean_is_per_image_and_pooled_is_pixelwise():
    a_t = np.zeros((10, 10), bool); a_t[:5] = True  # 50 road pixels
    a_p = a_t.copy()  # perfect: IoU 1
    b_t = np.zeros((10, 10), bool); b_t[0, 0] = True
    b_p = np.zeros((10, 10), bool)  # miss: IoU 0
    s = summarise([confusion(a_p, a_t), confusion(b_p, b_t)])
    assert s["mean_iou"] == pytest.approx(0.5)
    assert s["pooled_iou"] == pytest.approx(50 / 51)
    assert s["n_images"] == 2


masks = arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12)))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_iou_in_unit_interval_and_symmetric(data):
    a = data.draw(masks)
    b = data.draw(arrays(bool, a.shape))
    v = iou(a, b)
    assert 0.0 <= v <= 1.0
    assert v == pytest.approx(iou(b, a))
    assert iou(a, a) == 1.0
