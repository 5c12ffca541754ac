"""APLS on graphs with known answers."""

import cv2
import numpy as np
import pytest

nx = pytest.importorskip("networkx", reason="APLS needs the [geo] extra")
pytest.importorskip("skan", reason="road graphs need the [geo] extra")
from roadfeat.apls import apls  # noqa: E402
from roadfeat.vectorize import mask_to_graph  # noqa: E402

GSD = 0.5


def cross(cut=False, extra=False, shift=0):
    m = np.zeros((600, 600), np.uint8)
    cv2.line(m, (20, 300 + shift), (580, 300 + shift), 1, 9)
    cv2.line(m, (300, 20), (300, 580), 1, 9)
    if cut:
        m[:, 420:440] = 0
    if extra:
        cv2.line(m, (50, 50), (550, 80), 1, 9)
    return mask_to_graph(m.astype(bool), GSD)


def test_identical_graphs_score_one():
    g = cross()
    assert apls(g, g, GSD) == pytest.approx(1.0)


def test_a_cut_road_lowers_it():
    s = apls(cross(), cross(cut=True), GSD)
    assert 0.5 < s < 0.95


def test_a_spurious_road_lowers_it():
    assert apls(cross(), cross(extra=True), GSD) < 0.9


def test_a_small_offset_costs_little():
    assert apls(cross(), cross(shift=3), GSD) > 0.95


def test_empty_graphs():
    empty = nx.Graph()
    assert apls(empty, empty, GSD) == 1.0
    assert apls(cross(), empty, GSD) == 0.0
    assert apls(empty, cross(), GSD) == 0.0


def test_symmetric_in_its_arguments():
    a, b = cross(), cross(cut=True)
    assert apls(a, b, GSD) == pytest.approx(apls(b, a, GSD))
