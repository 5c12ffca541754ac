import json
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi
from skimage.color import rgb2lab

from roadfeat.backend import get_backend
from roadfeat.features import (SpecError, compute_context, compute_features, context_names,
                               default_spec, feature_names, has_context, validate_spec,
                               without_context)
from roadfeat.features.spec import receptive_radius
from roadfeat.features.colour import colour_channel, rgb_to_lab
from roadfeat.features.fftconv import filter_bank
from roadfeat.features.gabor import gabor_energy
from roadfeat.features.hessian import hessian_eigenvalues, ridge_measures
from roadfeat.features.lines import line_kernel, line_means
from roadfeat.features.smoothing import local_std

CPU = get_backend("cpu")
rng = np.random.default_rng(0)


def test_gaussian_matches_scipy():
    img = rng.random((64, 80)).astype(np.float32)
    for s in (1.0, 2.5, 6.0):
        np.testing.assert_allclose(CPU.gaussian(img, s), ndi.gaussian_filter(img, s, mode="reflect"),
                                   atol=2e-5)


def test_fft_filter_bank_equals_spatial_convolution():
    img = rng.random((50, 70)).astype(np.float32)
    k = rng.random((11, 11)).astype(np.float32)
    (out,) = filter_bank(img, [k], ["k-test"], real=True)
    ref = ndi.correlate(img, k[::-1, ::-1], mode="reflect")
    np.testing.assert_allclose(out, ref, atol=1e-4)


@pytest.mark.parametrize("shape", [(1100, 530), (513, 1500)])
def test_fft_filter_bank_in_blocks_equals_spatial_convolution(shape):
    # Wider than one block (512): overlap-save blocks, edge blocks partly outside.
    img = rng.random(shape).astype(np.float32)
    kernels = [rng.random((21, 21)).astype(np.float32), rng.random((5, 9)).astype(np.float32)]
    keys = [("k-big", shape), ("k-small", shape)]  # a key names one kernel
    outs = list(filter_bank(img, kernels, keys, real=True))
    for out, k in zip(outs, kernels):
        ref = ndi.correlate(img, k[::-1, ::-1], mode="reflect")
        np.testing.assert_allclose(out, ref, atol=1e-3)
    ck = (kernels[0] + 1j * kernels[0][::-1]).astype(np.complex64)
    (out,) = filter_bank(img, [ck], [("k-complex", shape)], real=False)
    ref = (ndi.correlate(img, ck.real[::-1, ::-1], mode="reflect")
           + 1j * ndi.correlate(img, ck.imag[::-1, ::-1], mode="reflect"))
    np.testing.assert_allclose(out, ref, atol=1e-3)


def test_lab_matches_skimage():
    rgb = rng.random((20, 20, 3)).astype(np.float32)
    L, a, b = rgb_to_lab(rgb)
    ref = rgb2lab(rgb)
    np.testing.assert_allclose(np.stack([L, a, b], -1), ref, atol=0.05)


def test_luminance_is_the_same_float32_sum_on_every_cpu():
    # Each product and sum rounded once, in this order: no BLAS kernel (which
    # fuses multiply-adds on some CPUs and not on others) decides the last bit.
    rgb = rng.random((33, 47, 3)).astype(np.float32)
    w = [np.float32(0.299), np.float32(0.587), np.float32(0.114)]
    expected = (rgb[..., 0] * w[0] + rgb[..., 1] * w[1]) + rgb[..., 2] * w[2]
    lum = colour_channel(rgb, "lum")
    assert lum.dtype == np.float32 and np.array_equal(lum, expected)
    fused = (rgb[..., 2].astype(np.float64) * w[2]
             + (rgb[..., 1].astype(np.float64) * w[1] + rgb[..., 0] * w[0]).astype(np.float32))
    assert not np.array_equal(lum, fused.astype(np.float32))  # the check can tell them apart


def test_colour_unknown_channel():
    with pytest.raises(KeyError, match="unknown colour channel"):
        colour_channel(np.zeros((4, 4, 3), np.float32), "ndvi")


def test_hessian_on_quadratic_and_ridges():
    y, x = np.mgrid[-20:21, -20:21].astype(np.float32)
    bright_line = np.exp(-x ** 2 / 8).astype(np.float32)  # vertical bright line
    lmax, lmin = hessian_eigenvalues(bright_line, 2.0)
    assert lmin[20, 20] < -0.1 and abs(lmax[20, 20]) < 0.05 * abs(lmin[20, 20])
    bright, dark = ridge_measures(lmax, lmin)
    assert bright[20, 20] > 0.1 and dark[20, 20] == 0
    assert bright[20, 20] > bright[20, 5]


def test_gabor_is_orientation_selective():
    y, x = np.mgrid[0:64, 0:64]
    stripes = ((np.abs(x - 32) < 3)).astype(np.float32)  # vertical bar
    e = gabor_energy(stripes, 8.0, n_orient=8)
    # Orientation 0 has its carrier along x: across a vertical bar.
    assert e[0, 32, 32] > 3 * e[4, 32, 32]


def test_line_means_peak_along_the_line():
    img = np.zeros((80, 80), np.float32)
    img[40, :] = 1.0  # horizontal line
    m = line_means(img, 21, n_orient=12)
    assert np.argmax(m[:, 40, 40]) == 0 and m[0, 40, 40] > 0.8
    assert line_kernel(21, 0.3).sum() == pytest.approx(1.0)


def test_local_std_of_constant_is_zero():
    assert np.allclose(local_std(np.full((20, 20), 0.3, np.float32), 3), 0, atol=2e-3)


def test_spec_names_are_stable_and_unique():
    names = feature_names(default_spec())
    assert len(names) == len(set(names))
    assert "gabor_max_lum_w8" in names and "colour_exg" in names
    assert names == feature_names(default_spec())


def test_compute_features_shape_finite_and_working_resolution():
    rgb = (rng.random((64, 48, 3)) * 255).astype(np.uint8)
    st = compute_features(rgb, default_spec(), CPU, input_gsd=0.5)
    assert st.shape == (len(feature_names(default_spec())), 32, 24)
    assert st.dtype == np.float32 and np.isfinite(st).all()
    again = compute_features(rgb, default_spec(), CPU, input_gsd=0.5)
    assert np.array_equal(st, again)


@pytest.mark.parametrize("mutate, match", [
    (lambda s: s.update(version=99), "version"),
    (lambda s: s["features"].append({"kind": "wavelet"}), "unknown kind"),
    (lambda s: s["features"][1].update(sources=["ndvi"]), "unknown sources"),
    (lambda s: s["features"][1].pop("sigmas"), "missing"),
    (lambda s: s["features"].append(dict(s["features"][0])), "duplicate"),
    (lambda s: s["features"].append({"kind": "path_open", "sources": ["lum", "lab_a"],
                                     "lengths": [21], "levels": 8}),
     r"sources \['lab_a'\] are not in \[0, 1\]"),
])
def test_spec_validation(mutate, match):
    s = default_spec()
    mutate(s)
    with pytest.raises(SpecError, match=match):
        validate_spec(s)


def test_context_features_are_named_and_computed_from_the_probability():
    spec = default_spec()
    names = context_names(spec)
    assert names[0] == "prob" and "lopen_prob_l41" in names
    assert not set(names) & set(feature_names(spec))
    prob = rng.random((40, 30)).astype(np.float32)
    ctx = compute_context(prob, spec)
    assert ctx.shape == (len(names), 40, 30) and np.isfinite(ctx).all()
    np.testing.assert_array_equal(ctx[0], prob)
    # A supremum of openings never exceeds what it opens.
    assert (ctx[names.index("lopen_prob_l21")] <= prob + 1e-6).all()


def test_receptive_radius_adds_the_context_and_support_reach():
    spec = default_spec()
    one_stage = without_context(spec)
    one_stage.pop("support")
    # The context's widest filter is its 64 m Gaussian (4 sigma at 1 m/px); the support, 41 m.
    assert receptive_radius(spec) == receptive_radius(one_stage) + 256 + 40
    assert has_context(spec) and not has_context(one_stage)


@pytest.mark.parametrize("entry, names, radius", [
    ({"kind": "disc_tophat", "sources": ["lum", "sat"], "diameters": [5, 9]},
     [f"tophat_{p}_{s}_d{d}" for s in ("lum", "sat") for d in (5, 9) for p in ("bright", "dark")],
     8),
    ({"kind": "pantex", "sources": ["lum", "sat"], "sigmas": [2, 3]},
     [f"pantex_{s}_s{g}" for s in ("lum", "sat") for g in (2, 3)], 14),
], ids=lambda v: v["kind"] if isinstance(v, dict) else "")
def test_kinds_outside_the_default_are_named_and_see_only_their_radius(entry, names, radius):
    spec = {"version": 2, "working_gsd": 1.0, "features": [entry]}
    assert feature_names(spec) == names
    r = receptive_radius(spec)
    assert r == radius
    rgb = (rng.random((70, 70, 3)) * 255).astype(np.uint8)
    whole = compute_features(rgb, spec, CPU, input_gsd=1.0)
    window = compute_features(rgb[25 - r:45 + r, 25 - r:45 + r], spec, CPU, input_gsd=1.0)
    np.testing.assert_allclose(window[:, r:-r, r:-r], whole[:, 25:45, 25:45], atol=1e-6)
    # Top-hats are residues of an opening or closing; contrasts are means of squares.
    assert (whole >= -1e-6).all()


#: The default of 2026-12-02 to 2026-12-06 (86 features): the base of the
#: specs in benchmarks/specs and of the ablation table in docs/RESULTS.md.
BASE_86 = Path(__file__).parents[1] / "benchmarks" / "specs" / "base" / "default-86.json"


def test_version_1_specs_still_load():
    spec = without_context(json.loads(BASE_86.read_text()))
    spec.pop("support")
    spec["features"] = [e for e in spec["features"] if e["kind"] != "line_morph"]
    spec["version"] = 1
    assert len(validate_spec(spec)) == 78


@pytest.mark.parametrize("mutate, match", [
    (lambda s: s["context"][1].update(sources=["lum"]), "context entry 1.*unknown sources"),
    (lambda s: s["features"][1].update(sources=["prob"]), "feature entry 1.*unknown sources"),
    (lambda s: s.update(support={"length": 0, "n_orient": 16}), "support must be"),
    (lambda s: s.update(version=1), "version 1 spec has no context"),
])
def test_spec_validation_of_the_later_stages(mutate, match):
    s = default_spec()
    mutate(s)
    with pytest.raises(SpecError, match=match):
        validate_spec(s)


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "benchmarks" / "specs")
                                        .glob("*.json")), ids=lambda p: p.stem)
def test_benchmark_specs_are_their_base_plus_entries(path):
    spec, default = json.loads(path.read_text()), json.loads(BASE_86.read_text())
    validate_spec(spec)
    for section in ("features", "context"):
        assert spec[section][:len(default[section])] == default[section]
    assert len(spec["features"]) + len(spec["context"]) > len(default["features"]) + len(
        default["context"])


def test_only_needed_units_are_computed_and_their_rows_equal_the_full_stack(monkeypatch):
    import dataclasses

    from roadfeat.features import needed_names
    from roadfeat.features import spec as spec_module
    from roadfeat.synth import make_scene

    spec = default_spec()
    names = validate_spec(spec)
    everything = names + context_names(spec)
    assert needed_names(spec, everything) is None
    # One Gabor output at one wavelength needs that wavelength's three outputs, no more.
    needed = needed_names(spec, ["gabor_max_lum_w8", "lopen_prob_l41"])
    assert needed == {"gabor_max_lum_w8", "gabor_mean_lum_w8", "gabor_range_lum_w8",
                      "lopen_prob_l41"}

    calls = []
    for kind in ("gabor", "line_morph"):
        k = spec_module.KINDS[kind]
        monkeypatch.setitem(spec_module.KINDS, kind, dataclasses.replace(
            k, compute=lambda src, e, k=k: calls.append((e["kind"], e[k.scale])) or k.compute(src, e)))
    rgb, _ = make_scene(np.random.default_rng(4), 128)
    full = compute_features(rgb, spec, CPU, 0.5)
    calls.clear()
    part = compute_features(rgb, spec, CPU, 0.5, needed)
    assert calls == [("gabor", [8])]
    for i, n in enumerate(names):
        if n in needed:
            np.testing.assert_array_equal(part[i], full[i])
        else:
            assert not part[i].any(), n
    prob = full[0] * 0.5
    ctx_full, ctx_part = compute_context(prob, spec), compute_context(prob, spec, needed)
    for i, n in enumerate(context_names(spec)):
        assert np.array_equal(ctx_part[i], ctx_full[i]) if n in needed else not ctx_part[i].any()


def test_each_source_is_smoothed_once_per_scale(monkeypatch):
    import hashlib

    import cv2

    from roadfeat.synth import make_scene

    seen = []
    blur = cv2.GaussianBlur

    def counting(img, ksize, **kw):
        seen.append((hashlib.sha1(np.ascontiguousarray(img).tobytes()).hexdigest(),
                     kw.get("sigmaX")))
        return blur(img, ksize, **kw)

    rgb, _ = make_scene(np.random.default_rng(7), 96)
    monkeypatch.setattr(cv2, "GaussianBlur", counting)
    compute_features(rgb, default_spec(), CPU, 0.5)
    assert len(seen) == len(set(seen)), "an image was smoothed twice at one scale"
    # Gaussian, local std, gradient, Hessian and the ridge source all smooth lum at 2.
    assert len(seen) >= 20


def test_both_stages_fill_one_buffer():
    from roadfeat.synth import make_scene

    spec = default_spec()
    n, c = len(validate_spec(spec)), len(context_names(spec))
    rgb, _ = make_scene(np.random.default_rng(8), 96)
    full = compute_features(rgb, spec, CPU, 0.5)
    buf = np.full((n + c,) + full.shape[1:], np.nan, np.float32)
    got = compute_features(rgb, spec, CPU, 0.5, out=buf[:n])
    assert np.shares_memory(got, buf)
    prob = full[0] * 0.5
    compute_context(prob, spec, out=buf[n:])
    np.testing.assert_array_equal(buf, np.concatenate([full, compute_context(prob, spec)]))
    with pytest.raises(ValueError, match="out must be float32 of shape"):
        compute_features(rgb, spec, CPU, 0.5, out=buf)


def test_the_default_is_the_base_with_the_additions_measured_on_the_split():
    # The validation figures of docs/RESULTS.md hold for exactly this spec.
    default, base = default_spec(), json.loads(BASE_86.read_text())
    added = sorted(set(validate_spec(default)) - set(validate_spec(base)))
    assert set(validate_spec(base)) < set(validate_spec(default))
    groups = {"line81": [n for n in added if n.startswith("line_") and n.endswith("_l81")],
              "lmorph_lum81": [n for n in added if n.startswith("lmorph_") and "_lum_l81" in n],
              "lmorph_sat": [n for n in added if n.startswith("lmorph_") and "_sat_" in n],
              "tophat": [n for n in added if n.startswith("tophat_")],
              "pantex": [n for n in added if n.startswith("pantex_")]}
    # 81 m lines of three sources (3 each); line morphology (4 each) of lum at
    # 81 m and of sat at 21, 41 and 81 m; 3 top-hats, bright and dark; PanTex at 4 and 16 m.
    assert [len(g) for g in groups.values()] == [9, 4, 12, 6, 2]
    assert sorted(n for g in groups.values() for n in g) == added
    candidates = Path(__file__).parents[1] / "benchmarks" / "candidates"
    previous = json.loads((candidates / "lmorph-sat81-pantex.json").read_text())
    assert previous["context"] == base["context"] and default["support"] == base["support"]
    # The twenty-second session's larger context (the seventeenth's candidate), and
    # otherwise the nineteenth session's default.
    larger = json.loads((candidates / "context-g64-open161.json").read_text())["context"]
    assert default == dict(previous, context=larger)
    # The default of the seventeenth and eighteenth sessions: less the nineteenth's additions.
    older = json.loads((candidates / "lines81-tophat.json").read_text())
    assert set(validate_spec(older)) == set(validate_spec(default)) - set(
        groups["lmorph_lum81"] + groups["lmorph_sat"] + groups["pantex"])


def test_the_twentieth_sessions_candidate_adds_only_gabor_of_sat_and_wider_tophats():
    # Trained in full on the split against the 119-feature default (docs/RESULTS.md).
    candidates = Path(__file__).parents[1] / "benchmarks" / "candidates"
    default = json.loads((candidates / "lmorph-sat81-pantex.json").read_text())
    spec = json.loads((candidates / "gabor-sat-tophat31.json").read_text())
    added = [n for n in validate_spec(spec) if n not in validate_spec(default)]
    assert set(validate_spec(default)) < set(validate_spec(spec))
    assert sorted(added) == sorted(
        [f"gabor_{s}_sat_w{w}" for s in ("max", "mean", "range") for w in (8, 16)]
        + [f"tophat_{s}_lum_d{d}" for s in ("bright", "dark") for d in (21, 31)])
    assert spec["context"] == default["context"] and spec["support"] == default["support"]


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "benchmarks" / "candidates")
                                        .glob("context-*.json")), ids=lambda p: p.stem)
def test_context_candidates_change_only_the_context(path):
    # Measured against the default of the seventeenth session (101 image features).
    default = json.loads((path.parent / "lines81-tophat.json").read_text())
    spec = json.loads(path.read_text())
    validate_spec(spec)
    assert spec["features"] == default["features"] and spec["support"] == default["support"]
    assert set(context_names(default)) < set(context_names(spec))
