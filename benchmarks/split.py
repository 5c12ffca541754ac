#!/usr/bin/env python
"""The fixed validation split of ``train_large`` (docs/RESULTS.md states the rule).

Validation tiles: the ``N_VALIDATION`` ids, among the train_large pairs that
are not in the 10-tile ``train/`` set, with the smallest SHA-256 of their id
string. The rule depends on the names alone (not on the pixels, nor on any
score), so it is fixed before any model sees a tile, and the 10-tile smoke
set stays on the training side.

    python benchmarks/split.py --large ../shared/data/deepglobe/train_large \\
        --small ../shared/data/deepglobe/train --out bench_out/split

writes ``train/`` and ``val/`` folders of symbolic links to the pairs, and
``split.json`` with both lists of ids.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roadfeat.io import find_images, mask_path_for  # noqa: E402

N_VALIDATION = 60


def validation_ids(ids, exclude=(), n: int = N_VALIDATION) -> list[str]:
    """The ``n`` ids outside ``exclude`` with the smallest SHA-256 of the id."""
    pool = sorted(set(ids) - set(exclude))
    return sorted(sorted(pool, key=lambda k: hashlib.sha256(k.encode()).hexdigest())[:n])


def link_split(large, small, out, subsets=None) -> dict:
    """Write ``out/train`` and ``out/val`` link folders; returns the id lists."""
    images, _ = find_images(large)
    small_ids = find_images(small)[0] if small else {}
    val = validation_ids(images, small_ids)
    split = {"val": val, "train": sorted(set(images) - set(val))}
    out = Path(out)
    for name, ids in split.items():
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        for k in ids:
            for src in (Path(images[k]), Path(mask_path_for(images[k]))):
                dst = d / src.name
                if not dst.exists():
                    dst.symlink_to(src.resolve())
    (out / "split.json").write_text(json.dumps(split, indent=1))
    return split


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large", default="../shared/data/deepglobe/train_large")
    ap.add_argument("--small", default="../shared/data/deepglobe/train")
    ap.add_argument("--out", default="bench_out/split")
    a = ap.parse_args(argv)
    split = link_split(a.large, a.small, a.out)
    print(f"{len(split['train'])} training and {len(split['val'])} validation tiles in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
