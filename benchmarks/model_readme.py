#!/usr/bin/env python
"""Write README.md, the human-readable card, beside a model from its card and a bench_val JSON.

    python benchmarks/model_readme.py --model roadfeat/data/default_model \\
        --val bench_out/val_train302.json --val-model models/train302
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roadfeat.calibration import ThresholdRule  # noqa: E402

TEMPLATE = """# roadfeat's shipped model

Used by `roadfeat predict` when no `--model` is given.

- **Data:** the {n} labelled DeepGlobe Road Extraction (2018) training tiles
  of the project's `shared/data/deepglobe/train_large` (1024x1024, 50 cm per
  pixel; sources in that folder's SOURCES.csv), every one of them.
- **Model:** two LightGBM stages ({rounds} + {context_rounds} rounds, {leaves}
  leaves, learning rate {lr}) on {n_feat} filter-bank features, {rows} training
  rows ({per_image} per tile); {adapt}; each image at its own expected-IoU
  threshold{rule}; post-processing {post}.
- **Validation score:** the same recipe trained on the {val_train} training tiles
  of the fixed split (docs/RESULTS.md gives the rule), scored on its {n_val}
  validation tiles, which it never saw: **{val_mean:.3f} mean per-image IoU**
  (the challenge's score), pooled IoU {val_pooled:.3f}, precision
  {val_precision:.3f}, recall {val_recall:.3f}. This model itself also saw those
  {n_val} tiles, so it has no held-out score of its own.
- **Rebuild** (byte-identical on the same machine, same package versions,
  same thread count; `card.json` names the versions):

  ```
  roadfeat extract --images ../shared/data/deepglobe/train_large --out features/dg362
  roadfeat train --features features/dg362 --out roadfeat/data/default_model{train_flags}
  python benchmarks/model_readme.py --model roadfeat/data/default_model \\
      --val {val_path} --val-model {val_model}{variant_flag}
  ```
"""


def _rule_text(card_rule: dict | None) -> str:
    rule = ThresholdRule.from_dict(card_rule)
    return "" if rule.plain else f", with a {rule} learned on the {card_rule['fit_on']}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--val", required=True, help="bench_val.py JSON of the split's model")
    ap.add_argument("--val-model", required=True, help="the split's model folder")
    ap.add_argument("--train-flags", default="", help="flags given to train, if any")
    ap.add_argument("--variant", default="default",
                    help="the bench_val.py variant that is this model's recipe (default: default)")
    a = ap.parse_args(argv)
    card = json.loads((Path(a.model) / "card.json").read_text())
    val_card = json.loads((Path(a.val_model) / "card.json").read_text())
    val = json.loads(Path(a.val).read_text())
    s = val["variants"][a.variant]
    text = TEMPLATE.format(
        n=card["training_data"]["images"], rounds=card["n_rounds"],
        context_rounds=card.get("context_rounds", 0), leaves=card["gbm"]["num_leaves"],
        lr=card["gbm"]["learning_rate"], n_feat=len(card["feature_names"]),
        rows=card["training_data"]["rows"],
        per_image=card["training_data"].get("rows_per_image_kept"),
        adapt="per-image self-training" if card.get("adapt") else "no per-image self-training",
        post=", ".join(f"{k} {v}" for k, v in card["post"].items()),
        rule=_rule_text(card.get("threshold_rule")),
        val_train=val_card["training_data"]["images"], n_val=s["n_images"],
        val_mean=s["mean_iou"], val_pooled=s["pooled_iou"], val_precision=s["precision"],
        val_recall=s["recall"], train_flags=(" " + a.train_flags) if a.train_flags else "",
        variant_flag=f' --variant "{a.variant}"' if a.variant != "default" else "",
        val_path=a.val, val_model=a.val_model)
    (Path(a.model) / "README.md").write_text(text)
    print(f"wrote {Path(a.model) / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
