#!/usr/bin/env python
"""Speed-up of Dask extraction, training and prediction from 1 to N local workers.

Each worker is one process with one thread, so the single-worker run is the
peer of the N-worker run in the same process, on the same folders.

    python benchmarks/bench_dask.py --train ../shared/data/deepglobe/train \\
        --predict ../shared/data/deepglobe/unlabelled --workers 1,2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roadfeat.backend import get_backend  # noqa: E402
from roadfeat.extract import extract  # noqa: E402
from roadfeat.features import default_spec  # noqa: E402
from roadfeat.predict import predict_folder  # noqa: E402
from roadfeat.runner import connect  # noqa: E402
from roadfeat.train import train  # noqa: E402


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", default="../shared/data/deepglobe/train")
    ap.add_argument("--predict", default="../shared/data/deepglobe/unlabelled")
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args(argv)
    cpu = get_backend("cpu")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in map(int, args.workers.split(",")):
            client = connect(f"local:{n}")
            try:
                work = Path(tmp) / f"w{n}"
                _, t_ext = timed(lambda: extract(args.train, work / "feat", default_spec(), cpu,
                                                 quiet=True, client=client))
                model, t_train = timed(lambda: train(work / "feat", work / "model", cpu,
                                                     quiet=True, client=client))
                report, t_pred = timed(lambda: predict_folder(model, args.predict, work / "pred",
                                                              cpu, quiet=True, client=client))
                rows.append((n, t_ext, t_train, t_pred, len(report.done)))
            finally:
                cluster = client.cluster
                client.close()
                cluster.close()
    print(f"\n{os.cpu_count()} cores; one thread per worker\n")
    print("| workers | extract s | train s | predict s (images) | extract speed-up "
          "| train speed-up | predict speed-up |")
    print("|---|---|---|---|---|---|---|")
    base = rows[0]
    for n, e, t, p, k in rows:
        print(f"| {n} | {e:.1f} | {t:.1f} | {p:.1f} ({k}) | {base[1] / e:.2f}x "
              f"| {base[2] / t:.2f}x | {base[3] / p:.2f}x |")


if __name__ == "__main__":
    main()
