"""Rotation-invariant texture contrast (PanTex)."""

import numpy as np

from roadfeat.backend import get_backend
from roadfeat.features.texture import directional_contrasts, displacements, pantex

CPU = get_backend("cpu")
rng = np.random.default_rng(0)


def test_displacements_hold_each_direction_once():
    d = displacements(2)
    assert len(d) == 12
    full = {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)} - {(0, 0)}
    assert {v for v in d} | {(-dy, -dx) for dy, dx in d} == full
    assert not {(-dy, -dx) for dy, dx in d} & set(d)


def test_directional_contrast_is_the_smoothed_squared_difference_to_both_neighbours():
    img = rng.random((20, 17)).astype(np.float32)
    h, w = img.shape

    def shifted(dy, dx):  # edge-clamped, like the padding
        return img[np.clip(np.arange(h)[:, None] + dy, 0, h - 1),
                   np.clip(np.arange(w)[None, :] + dx, 0, w - 1)]

    for (dy, dx), got in zip(displacements(2), directional_contrasts(img, 1.5)):
        sq = 0.5 * ((img - shifted(dy, dx)) ** 2 + (img - shifted(-dy, -dx)) ** 2)
        np.testing.assert_allclose(got, CPU.gaussian(sq, 1.5), rtol=1e-5, atol=1e-7)


def test_pantex_is_low_on_a_road_and_high_on_roofs():
    stripes = np.zeros((64, 64), np.float32)
    stripes[:, 28:36] = 1  # a road: smooth along its length
    roofs = (rng.random((8, 8)) > 0.5).astype(np.float32).repeat(8, 0).repeat(8, 1)
    roofs += 0.3 * rng.random((64, 64)).astype(np.float32)  # blocks with texture
    road_pt = pantex(stripes, 4)[32, 32]
    across = max(c[32, 28] for c in directional_contrasts(stripes, 4))
    assert road_pt < 1e-3 < across  # contrast across the road edge, none along it
    assert pantex(roofs, 4)[16:48, 16:48].mean() > 50 * pantex(stripes, 4)[16:48, 16:48].mean()


def test_pantex_turns_with_the_image():
    img = rng.random((40, 40)).astype(np.float32)
    np.testing.assert_allclose(pantex(np.rot90(img).copy(), 3), np.rot90(pantex(img, 3)),
                               rtol=1e-5, atol=1e-7)

