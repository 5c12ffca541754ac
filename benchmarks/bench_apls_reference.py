#!/usr/bin/env python
"""roadfeat's APLS beside CosmiQ's reference implementation, on real graph pairs.

The registry's ``apls`` 0.1.0 does not install (it pins ``GDAL==2.4.0``), but
its metric (``make_graphs`` and ``compute_apls_metric`` in ``apls/apls.py``)
needs only networkx, NumPy, SciPy, shapely and utm. This loads that module
from the unpacked wheel with stand-ins for the GIS modules it imports at the
top and never calls on this path (``osgeo``, ``fiona``, ``geopandas``), and
scores the same graph pairs with both:

    pip download apls==0.1.0 --no-deps -d /tmp/apls && unzip /tmp/apls/*.whl -d /tmp/apls
    pip install --no-deps --target /tmp/apls_deps shapely utm
    python benchmarks/bench_apls_reference.py --apls /tmp/apls --deps /tmp/apls_deps \\
        --truth bench_out/split/val --n 12 --out bench_out/apls_reference.json

Pairs: for each validation tile, the truth mask's graph against the graph of
the shipped model's mask (``roadfeat predict``, made here if ``--pred`` is not
given). The reference runs twice: with its own scoring defaults (``execute``:
control points are the graph's nodes only, paths under 10 m skipped, renaming
allowed) and with a control point every 50 m along edges, as roadfeat and the
SpaceNet paper define them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load_reference(apls_dir: Path, deps: Path):
    sys.path[:0] = [str(deps), str(apls_dir / "apls")]
    for name in ("osgeo", "osgeo.gdal", "osgeo.ogr", "osgeo.osr", "fiona", "geopandas"):
        mod = types.ModuleType(name)
        mod.__getattr__ = lambda attr, name=name: _Unavailable(f"{name}.{attr}")
        sys.modules.setdefault(name, mod)
    sys.modules["osgeo"].gdal = sys.modules["osgeo.gdal"]
    sys.modules["osgeo"].ogr = sys.modules["osgeo.ogr"]
    sys.modules["osgeo"].osr = sys.modules["osgeo.osr"]
    import matplotlib

    matplotlib.use("Agg")
    with contextlib.redirect_stdout(io.StringIO()):
        import apls  # the reference's module, found on the path above

    return apls


class _Unavailable:
    """A name the reference's modules touch at import time (default arguments);
    using its value fails."""

    def __init__(self, name):
        self.name = name

    def __call__(self, *args, **kwargs):
        return _Unavailable(f"{self.name}()")

    def __getattr__(self, attr):
        return _Unavailable(f"{self.name}.{attr}")

    def _fail(self, *args):
        raise RuntimeError(f"{self.name} is a stand-in: the APLS metric path does not use it")

    __iter__ = __len__ = __bool__ = __getitem__ = _fail


def to_reference_graph(g, gsd: float, first_id: int = 0):
    """roadfeat's graph (pixel nodes, rows/cols geometry) as the reference expects it:
    a MultiGraph in metres, nodes with x and y, edges with a shapely LineString.

    The reference names inserted control points after the other graph's
    nodes, so the two graphs' node ids must not overlap (``first_id``).
    """
    import networkx as nx
    from shapely.geometry import LineString

    out = nx.MultiGraph()
    ids = {n: first_id + i for i, n in enumerate(g.nodes)}
    for n, i in ids.items():
        out.add_node(i, x=n[1] * gsd, y=-n[0] * gsd, osmid=i)
    for u, v, d in g.edges(data=True):
        coords = list(zip(np.asarray(d["cols"]) * gsd, -np.asarray(d["rows"]) * gsd))
        line = LineString(coords)
        out.add_edge(ids[u], ids[v], geometry=line, length=line.length)
    return out


def reference_apls(ref, g_truth, g_pred, gsd: float, midpoints: bool) -> float:
    if g_truth.number_of_nodes() == 0 or g_pred.number_of_nodes() == 0:
        # The reference divides by zero here; both definitions score such pairs 0 or 1.
        return float(g_truth.number_of_nodes() == g_pred.number_of_nodes())
    a, b = to_reference_graph(g_truth, gsd), to_reference_graph(g_pred, gsd, 10**7)
    with contextlib.redirect_stdout(io.StringIO()):
        graphs = ref.make_graphs(a, b, weight="length", linestring_delta=50,
                                 is_curved_eps=-1 if midpoints else 10 ** 3, max_snap_dist=4,
                                 allow_renaming=True, verbose=False)
        (_, _, _, _, cp_gt, cp_prop, gt_native, prop_native, gt_prime, prop_prime) = graphs
        c, _, _ = ref.compute_apls_metric(gt_native, prop_native, gt_prime, prop_prime,
                                          cp_gt, cp_prop, min_path_length=10, res_dir="")
    return float(c)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--apls", required=True, help="the unpacked apls 0.1.0 wheel")
    ap.add_argument("--deps", required=True, help="a --target folder with shapely and utm")
    ap.add_argument("--truth", default="bench_out/split/val")
    ap.add_argument("--pred", help="predicted masks (default: the shipped model's, made here)")
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--gsd", type=float, default=0.5)
    ap.add_argument("--out", default="bench_out/apls_reference.json")
    args = ap.parse_args(argv)
    ref = load_reference(Path(args.apls), Path(args.deps))

    from roadfeat.apls import apls
    from roadfeat.cli import main as cli
    from roadfeat.io import find_images, mask_path_for, read_mask
    from roadfeat.vectorize import mask_to_graph

    tiles = sorted(find_images(args.truth)[0].items())[: args.n]
    pred_dir = Path(args.pred) if args.pred else Path(args.out).with_suffix("") / "pred"
    if not args.pred:
        img_dir = pred_dir.parent / "images"
        img_dir.mkdir(parents=True, exist_ok=True)
        for k, p in tiles:
            link = img_dir / p.name
            if not link.exists():
                link.symlink_to(p.resolve())
        assert cli(["predict", "--images", str(img_dir), "--out", str(pred_dir), "--quiet"]) == 0

    rows = []
    for k, p in tiles:
        truth = read_mask(mask_path_for(p))
        pred = read_mask(pred_dir / f"{k}_mask.png", truth.shape)
        gt, gp = mask_to_graph(truth, args.gsd), mask_to_graph(pred, args.gsd)
        row = {"id": k, "truth_nodes": gt.number_of_nodes(), "pred_nodes": gp.number_of_nodes(),
               "roadfeat": apls(gt, gp, args.gsd),
               "reference_nodes_only": reference_apls(ref, gt, gp, args.gsd, midpoints=False),
               "reference_50m_points": reference_apls(ref, gt, gp, args.gsd, midpoints=True)}
        rows.append(row)
        print(" ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()),
              flush=True)
    ours = np.array([r["roadfeat"] for r in rows])
    summary = {}
    for key in ("reference_nodes_only", "reference_50m_points"):
        theirs = np.array([r[key] for r in rows])
        summary[key] = {"mean_abs_diff": float(np.mean(np.abs(ours - theirs))),
                        "max_abs_diff": float(np.max(np.abs(ours - theirs))),
                        "pearson_r": float(np.corrcoef(ours, theirs)[0, 1]),
                        "mean": float(theirs.mean())}
    summary["roadfeat_mean"] = float(ours.mean())
    print("\n| tile | truth nodes | pred nodes | roadfeat | reference, nodes only | "
          "reference, 50 m points |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['id']} | {r['truth_nodes']} | {r['pred_nodes']} | {r['roadfeat']:.3f} | "
              f"{r['reference_nodes_only']:.3f} | {r['reference_50m_points']:.3f} |")
    print(json.dumps(summary, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
