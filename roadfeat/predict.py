"""Prediction stage: a model and a folder of images -> one mask per image.

Masks are ``<id>_mask.png`` (3-channel, 0/255, the input's size). A run
that was interrupted resumes: masks already written by the same model are
kept (each mask is written atomically, so an existing one is complete).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from .backend import Backend
from .extract import RunReport
from .io import (InputError, atomic_path, find_images, read_image, read_json, write_json_atomic,
                 write_mask)
from .model import RoadModel
from .progress import progress

STATE = ".roadfeat-predict.json"


def mask_name(image_id: str) -> str:
    return f"{image_id}_mask.png"


def predict_folder(model: RoadModel, images_dir, out_dir, backend: Backend,
                   gsd: float | None = None, quiet: bool = False) -> RunReport:
    """Write a mask for every image in ``images_dir``; failures are per image."""
    out_dir = Path(out_dir)
    images, errors = find_images(images_dir)
    report = RunReport(failed={k: str(e) for k, e in errors.items()})
    fp = model.fingerprint()
    state_path = out_dir / STATE
    resumable = state_path.exists() and read_json(state_path).get("model") == fp
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(state_path, {"model": fp})
    for image_id, path in progress(images.items(), "predict", quiet, total=len(images)):
        target = out_dir / mask_name(image_id)
        if resumable and target.exists():
            report.reused.append(image_id)
            continue
        try:
            rgb = read_image(path)
            write_mask(target, model.predict(rgb, backend, gsd, where=path))
            report.done.append(image_id)
        except InputError as exc:
            report.failed[image_id] = str(exc)
    return report


def write_submission(masks_dir, ids, zip_path) -> Path:
    """Zip ``<id>_mask.png`` files flat, as the challenge's submission expects."""
    zip_path = Path(zip_path)
    with atomic_path(zip_path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for image_id in sorted(ids):
                p = Path(masks_dir) / mask_name(image_id)
                # A fixed date keeps the zip byte-identical between runs.
                info = zipfile.ZipInfo(p.name, date_time=(2018, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, p.read_bytes())
    return zip_path
