import cv2
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from roadfeat.postprocess import (PostParams, bridge_gaps, fill_small_holes, find_bridges,
                                  postprocess, remove_small_components, skeleton_endpoints)


def _road(shape=(100, 200), gaps=((90, 110),), row=50, width=5):
    m = np.zeros(shape, bool)
    m[row - width // 2: row + width // 2 + 1, 10:190] = True
    for a, b in gaps:
        m[:, a:b] = False
    return m


def test_remove_small_components_keeps_large():
    m = np.zeros((50, 50), bool)
    m[5:25, 5:25] = True  # 400 px
    m[40, 40] = True  # 1 px
    out = remove_small_components(m, 10)
    assert out[5:25, 5:25].all() and not out[40, 40]


def test_fill_small_holes_fills_only_small_inner_holes():
    m = np.ones((40, 40), bool)
    m[10:12, 10:12] = False  # 4 px hole
    m[20:35, 20:35] = False  # 225 px hole
    m[0:3, 0:3] = False  # touches border
    out = fill_small_holes(m, 10)
    assert out[10:12, 10:12].all()
    assert not out[20:35, 20:35].any()
    assert not out[0:3, 0:3].any()


def test_endpoints_of_a_line():
    sk = np.zeros((9, 9), bool)
    sk[4, 2:7] = True
    assert sorted(map(tuple, skeleton_endpoints(sk))) == [(4, 2), (4, 6)]


def test_bridge_joins_aligned_gap_at_road_width():
    m = _road()
    out = bridge_gaps(m, short_px=5, long_px=40, angle_deg=25)
    assert out[48:53, 90:110].all(), "gap between aligned ends is bridged"
    assert not out[40, 100] and not out[60, 100], "bridge is drawn at road width, not wider"
    assert out[m].all()


def test_bridge_refuses_misaligned_far_ends():
    m = np.zeros((200, 200), bool)
    m[50:55, 10:90] = True  # horizontal road ending at x=90
    m[100:190, 120:125] = True  # vertical road starting 45 px below-right
    assert find_bridges(m, short_px=5, long_px=80, angle_deg=20) == []


def test_bridge_joins_close_ends_regardless_of_angle():
    m = np.zeros((100, 100), bool)
    m[50:53, 10:50] = True
    m[56:90, 52:55] = True  # perpendicular, ends ~4 px apart
    assert len(find_bridges(m, short_px=8, long_px=30, angle_deg=10)) == 1


def test_postprocess_threshold_and_cleanup():
    prob = np.zeros((100, 200), np.float32)
    prob[_road()] = 0.9
    prob[5, 5] = 0.95  # speck
    out = postprocess(prob, 0.5, PostParams(min_area_m2=5), gsd=0.5)
    assert out[50, 100] and not out[5, 5]


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(8, 48), st.integers(8, 48)),
              elements=st.floats(0, 1, width=32)),
       st.floats(0.05, 0.95))
def test_postprocess_properties(prob, thr):
    out = postprocess(prob, thr, PostParams(min_area_m2=0.5, max_hole_m2=0.5), gsd=0.5)
    assert out.shape == prob.shape and out.dtype == bool


@settings(max_examples=40, deadline=None)
@given(arrays(bool, st.tuples(st.integers(8, 64), st.integers(8, 64))))
def test_bridging_never_removes_road(mask):
    out = bridge_gaps(mask, 4, 30, 30)
    assert out.shape == mask.shape and out.dtype == bool
    assert out[mask].all()
