#!/usr/bin/env python
"""lleaves' compile time and first-stage predict time per model: inlined or not, codegen level.

    python benchmarks/bench_compile.py --models roadfeat/data/default_model models/train302v3 \\
        --tiles bench_out/split/val --n 3

For each model's first stage, compiles its trees with lleaves three ways,
all at lleaves' default cache blocks of 34 trees: inlined (``finline=True``,
as roadfeat does) with LLVM's code generation at level 0 (roadfeat's) and at
lleaves' own level 2, and not inlined at level 2, into ``--cache`` (a
library already there is loaded, and its compile time reported as cached),
then times predicting every working pixel of ``--n`` real tiles (features
of each model's own spec, 2 threads, best of 3), one model after another in
the same run. Prints seconds per 1024² tile, and how many rows' float32
probabilities differ from the model's first variant.
``--blocksizes`` compiles inlined at level 0 at several cache-block sizes
instead (roadfeat's is ``compiled_trees.LLEAVES_BLOCKSIZE``).
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roadfeat.backend import cpu_threads, get_backend, to_host  # noqa: E402
from roadfeat.compiled_trees import lleaves_codegen  # noqa: E402
from roadfeat.features.spec import compute_features  # noqa: E402
from roadfeat.io import read_image  # noqa: E402
from roadfeat.model import RoadModel  # noqa: E402


def rows(spec, tiles, backend) -> np.ndarray:
    stacks = [to_host(compute_features(read_image(t), spec, backend, 0.5)) for t in tiles]
    return np.concatenate([s.reshape(s.shape[0], -1).T for s in stacks]).astype(np.float64)


def main(argv=None) -> int:
    import lleaves

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", required=True, help="model folders")
    ap.add_argument("--tiles", default="bench_out/split/val", help="folder of 1024² <id>_sat.jpg")
    ap.add_argument("--n", type=int, default=3, help="tiles to time")
    ap.add_argument("--cache", default="bench_out/compile_cache", help="folder of the libraries")
    ap.add_argument("--blocksizes", nargs="+", type=int, default=None,
                    help="instead, roadfeat's way (inlined, level 0) at each of these "
                         "fblocksize values (trees per cache block; lleaves' default 34)")
    a = ap.parse_args(argv)
    variants = ([(True, 0, b) for b in a.blocksizes] if a.blocksizes
                else [(True, 0, 34), (True, 2, 34), (False, 2, 34)])
    tiles = sorted(glob.glob(str(Path(a.tiles) / "*_sat.jpg")))[:a.n]
    if not tiles:
        ap.error(f"no *_sat.jpg in {a.tiles}")
    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    backend, threads = get_backend("cpu"), cpu_threads()
    print("| model | leaves in stage 1 | finline | codegen | fblocksize | compile s | "
          "predict s per tile | float32 rows unlike the first |")
    print("|---|---|---|---|---|---|---|---|")
    for folder in a.models:
        model = RoadModel.load(folder)
        text = Path(folder, "model.txt").read_bytes()
        n_leaves = sum(t["num_leaves"] for t in model.booster.dump_model()["tree_info"])
        X = rows(model.card["spec"], tiles, backend)
        first = None
        for inline, level, block in variants:
            fb = "" if block == 34 else f"-fb{block}"  # the names before fblocksize was an option
            lib = cache / f"{hashlib.sha256(text).hexdigest()[:16]}-inline{int(inline)}-O{level}{fb}.o"
            cached = lib.exists()
            t0 = time.perf_counter()
            m = lleaves.Model(model_file=str(Path(folder, "model.txt")))
            with lleaves_codegen(level):
                m.compile(cache=str(lib), finline=inline, fblocksize=block)
            compile_s = "cached" if cached else f"{time.perf_counter() - t0:.1f}"
            m.predict(X[:1000], n_jobs=threads)
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                m.predict(X, n_jobs=threads)
                best = min(best, (time.perf_counter() - t0) / len(tiles))
            prob = m.predict(X, n_jobs=threads).astype(np.float32)
            first = prob if first is None else first
            print(f"| {folder} | {n_leaves} | {inline} | O{level} | {block} | {compile_s} | "
                  f"{best:.3f} | {int((prob != first).sum())} of {len(prob)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
