#!/usr/bin/env python
"""How far Dask training lands from local training, against the spread of local seeds.

Trains on the synthetic scenes of ``tests/test_runner.py`` (8 training
scenes of 256²; the test's inner folds and rounds) once per local seed and several
times on a Dask LocalCluster of 2 workers (seed 0; Dask fits are not
byte-identical from run to run), then scores each model on 12 held-out
scenes: the cross-validated mean IoU from its card, the masks' mean IoU,
and the average precision of its calibrated maps without self-training.
This is what sets the tolerances of that test.

    python benchmarks/bench_dask_agreement.py --local-seeds 0,1,2,3,4 --dask-runs 3 \
        --folds 2 --n-estimators 60
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roadfeat.backend import get_backend  # noqa: E402
from roadfeat.evaluate import evaluate  # noqa: E402
from roadfeat.extract import extract  # noqa: E402
from roadfeat.features import default_spec  # noqa: E402
from roadfeat.io import find_images, mask_path_for, read_image, read_mask  # noqa: E402
from roadfeat.model import RoadModel  # noqa: E402
from roadfeat.predict import predict_folder  # noqa: E402
from roadfeat.runner import connect  # noqa: E402
from roadfeat.synth import write_scenes  # noqa: E402
from roadfeat.train import GBMParams, train  # noqa: E402

CPU = get_backend("cpu")


def scores(model_dir: Path, heldout: Path, work: Path) -> dict:
    from sklearn.metrics import average_precision_score

    model = RoadModel.load(model_dir)
    predict_folder(model, heldout, work / "pred", CPU, quiet=True)
    plain = model.without_adapt()
    probs, truth = [], []
    for path in find_images(heldout)[0].values():
        probs.append(plain.probability(read_image(path), CPU).ravel())
        truth.append(read_mask(mask_path_for(path)).ravel())
    return {"cv_mean_iou": model.card["validation"]["mean_iou"],
            "heldout_mean_iou": evaluate(work / "pred", heldout)["summary"]["mean_iou"],
            "heldout_map_ap": float(average_precision_score(np.concatenate(truth),
                                                            np.concatenate(probs)))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--local-seeds", default="0,1,2,3,4")
    ap.add_argument("--dask-runs", type=int, default=3)
    ap.add_argument("--folds", type=int, default=2, help="inner folds of every training")
    ap.add_argument("--n-estimators", type=int, default=60, help="round cap of every training")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)
    params = GBMParams(n_estimators=args.n_estimators)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_scenes(root / "train", 8, seed=1, size=256, prefix="tr")
        write_scenes(root / "heldout", 12, seed=5, size=256, prefix="ho")
        extract(root / "train", root / "feat", default_spec(), CPU, quiet=True)
        jobs = [(f"local seed {s}", {"seed": int(s), "threads": 1})
                for s in args.local_seeds.split(",")]
        client = connect("local:2") if args.dask_runs else None
        jobs += [(f"dask run {i}", {"client": client}) for i in range(args.dask_runs)]
        for name, kw in jobs:
            work = root / name.replace(" ", "-")
            train(root / "feat", work / "model", CPU, params=params, quiet=True, folds=args.folds,
                  **kw)
            runs[name] = scores(work / "model", root / "heldout", work)
            print(f"{name:<14}", "  ".join(f"{k} {v:.4f}" for k, v in runs[name].items()),
                  flush=True)
        if client is not None:
            cluster = client.cluster
            client.close()
            cluster.close()
    for key in ("cv_mean_iou", "heldout_mean_iou", "heldout_map_ap"):
        local = [r[key] for n, r in runs.items() if n.startswith("local")]
        dask = [r[key] for n, r in runs.items() if n.startswith("dask")]
        ref = runs.get("local seed 0", {}).get(key)
        gap = max(abs(d - ref) for d in dask) if dask and ref is not None else float("nan")
        print(f"{key}: local seeds span {max(local) - min(local):.4f}, "
              f"largest Dask gap to local seed 0 {gap:.4f}")
    if args.out:
        Path(args.out).write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
