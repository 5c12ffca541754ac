"""Prediction stage: a model and a folder of images -> one mask per image.

Masks are ``<id>_mask.png`` (3-channel, 0/255, the input's size). A run
that was interrupted resumes: masks already written by the same model are
kept (each mask is written atomically, so an existing one is complete).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from .backend import Backend, get_backend
from .extract import RunReport
from .io import (InputError, atomic_path, find_images, read_image, read_json, write_json_atomic,
                 write_mask)
from .model import RoadModel
from .runner import map_images

STATE = ".roadfeat-predict.json"


def mask_name(image_id: str) -> str:
    return f"{image_id}_mask.png"


def predict_one(model: RoadModel, path, target, device: str, gsd: float | None) -> str:
    """Predict one image and write its mask atomically; returns the mask path."""
    rgb = read_image(path)
    write_mask(target, model.predict(rgb, get_backend(device), gsd, where=path))
    return str(target)


def predict_folder(model: RoadModel, images_dir, out_dir, backend: Backend,
                   gsd: float | None = None, quiet: bool = False, client=None) -> RunReport:
    """Write a mask for every image in ``images_dir``; failures are per image.

    With a Dask ``client``, each image is one task (workers must see the
    folders at the same paths).
    """
    out_dir = Path(out_dir)
    images, errors = find_images(images_dir)
    report = RunReport(failed={k: str(e) for k, e in errors.items()})
    fp = model.fingerprint()
    state_path = out_dir / STATE
    resumable = state_path.exists() and read_json(state_path).get("model") == fp
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(state_path, {"model": fp})
    todo = {}
    for k, path in images.items():
        target = out_dir / mask_name(k)
        if resumable and target.exists():
            report.reused.append(k)
        else:
            todo[k] = path, target
    shared = client.scatter(model, broadcast=True) if client is not None and todo else model
    jobs = {k: (shared, path, target, backend.name, gsd) for k, (path, target) in todo.items()}
    results, failures = map_images(predict_one, jobs, client, "predict", quiet)
    report.done += sorted(results)
    report.failed.update(failures)
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
