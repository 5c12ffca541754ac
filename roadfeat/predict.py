"""Prediction stage: a model and a folder of images -> one mask per image.

Masks are ``<id>_mask.png`` (3-channel, 0/255, the input's size). A run
that was interrupted resumes: masks already written by the same model from
the same image bytes (a hash of the file) are kept (each mask is written
atomically, so an existing one is complete); any other is redone.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .backend import Backend, get_backend
from .extract import RunReport
from .io import (InputError, atomic_path, file_digest, find_images, image_id, read_image,
                 read_json, write_json_atomic, write_mask)
from .model import RoadModel
from .runner import map_images
from .scene import DEFAULT_WINDOW, ArraySource, predict_windows

STATE = ".roadfeat-predict.json"
#: Images predicted at once in one process, by backend. On the CPU two at once
#: fill the cores while the other image's decoding, post-processing and other
#: serial steps run (docs/BENCHMARKS.md); each image in flight holds its own
#: window's memory. On a GPU more than one has not been measured yet.
DEFAULT_THREADS = {"cpu": 2, "gpu": 1}


def find_inputs(images) -> tuple[dict, dict]:
    """Inputs of ``predict``: one file, or a folder's ``<id>_sat.*`` images and any TIFF."""
    images = Path(images)
    if images.is_file():
        return {image_id(images): images}, {}
    return find_images(images, any_tiff=True)


def mask_name(image_id: str) -> str:
    return f"{image_id}_mask.png"


def outputs_for(image_id: str, image_path, out_dir, vector: bool) -> dict[str, Path]:
    """Output paths of one image: its mask (GeoTIFF for GeoTIFF input) and lines."""
    from . import geo

    out_dir = Path(out_dir)
    mask = (out_dir / f"{image_id}_mask.tif" if geo.is_geotiff(image_path)
            else out_dir / mask_name(image_id))
    out = {"mask": mask}
    if vector:
        out["roads"] = out_dir / f"{image_id}_roads.geojson"
    return out


def predict_one(model: RoadModel, path, targets: dict, device: str, gsd: float | None,
                window: int = DEFAULT_WINDOW, nodata: int | None = None) -> str:
    """Predict one image window by window and write its outputs atomically.

    GeoTIFF inputs (with the ``geo`` extra) are read and written window by
    window, keep their CRS and transform, take their ground sample
    distance from it, and are road-free wherever their own mask says there
    is no data; other images are decoded whole. ``gsd`` applies to images
    without georeferencing (default: the model's training gsd); so does
    ``nodata``: their pixels whose every channel equals it are never road.
    """
    from . import geo

    backend = get_backend(device)
    lines: list = []

    def trace(win, mask):
        from .vectorize import trace_lines

        lines.extend(trace_lines(mask, img_gsd, keep=win.inner(win.region, win.core),
                                 offset=(win.region[0].start, win.region[1].start)))

    on_region = trace if "roads" in targets else None
    if geo.is_geotiff(path):
        with geo.env(), geo.RasterSource(path) as src:
            img_gsd = src.gsd or gsd or model.train_gsd
            georef = src.georef
            with geo.geotiff_mask_writer(targets["mask"], src.shape, georef) as write:
                predict_windows(model, src, backend, img_gsd, write, window, where=path,
                                on_region=on_region)
    else:
        rgb = read_image(path)
        img_gsd, georef = gsd or model.train_gsd, None
        mask = np.zeros(rgb.shape[:2], dtype=bool)

        def write(core, m):
            mask[core] = m

        predict_windows(model, ArraySource(rgb, nodata), backend, img_gsd, write, window, where=path,
                        on_region=on_region)
        write_mask(targets["mask"], mask)
    if on_region is not None:
        from .vectorize import lines_to_geojson

        crs = georef["crs"].to_string() if georef and georef["crs"] else None
        write_json_atomic(targets["roads"],
                          lines_to_geojson(lines, geo.pixel_to_world(georef), crs))
    return str(targets["mask"])


def predict_folder(model: RoadModel, images_dir, out_dir, backend: Backend,
                   gsd: float | None = None, quiet: bool = False, client=None,
                   window: int = DEFAULT_WINDOW, vector: bool = False,
                   nodata: int | None = None, threads: int | None = None) -> RunReport:
    """Write a mask (and with ``vector`` road lines) for every image in ``images_dir``.

    Failures are per image. With a Dask ``client``, each image is one task
    (workers must see the folders at the same paths). ``nodata``: see
    :func:`predict_one`. ``threads``: images predicted at once in this
    process without Dask (default :data:`DEFAULT_THREADS` of the backend).
    """
    if threads is None:
        threads = DEFAULT_THREADS[backend.name]
    if threads < 1:
        raise InputError("--threads", f"must be at least 1, not {threads}")
    out_dir = Path(out_dir)
    folder = Path(images_dir).parent if Path(images_dir).is_file() else Path(images_dir)
    if out_dir.resolve() == folder.resolve():
        # Masks written there would overwrite the truth <id>_mask.png beside the images.
        raise InputError(out_dir, "--out is the --images folder; predicted masks would "
                                  "overwrite the <id>_mask.png files there: choose another --out")
    images, errors = find_inputs(images_dir)
    report = RunReport(failed={k: str(e) for k, e in errors.items()})
    fp = model.fingerprint()
    state_path = out_dir / STATE
    # Masks of another model, made with another no-data value, or of an image
    # whose bytes changed, are redone.
    state = {"model": fp} if nodata is None else {"model": fp, "nodata": nodata}
    old = read_json(state_path) if state_path.exists() else {}
    resumable = {k: v for k, v in old.items() if k != "inputs"} == state
    digests, todo = {}, {}
    for k, path in list(images.items()):
        try:
            digests[k] = file_digest(path)
        except InputError as exc:
            report.failed[k] = str(exc)
            del images[k]
    out_dir.mkdir(parents=True, exist_ok=True)
    for k, path in images.items():
        targets = outputs_for(k, path, out_dir, vector)
        same_input = resumable and old.get("inputs", {}).get(k) == digests[k]
        if same_input and all(p.exists() for p in targets.values()):
            report.reused.append(k)
        else:
            # Stale outputs go before the new state is written, so that a run
            # killed after it cannot pass them off as this input's.
            for p in targets.values():
                p.unlink(missing_ok=True)
            todo[k] = path, targets
    write_json_atomic(state_path, {**state, "inputs": digests})
    shared = client.scatter(model, broadcast=True) if client is not None and todo else model
    jobs = {k: (shared, path, targets, backend.name, gsd, window, nodata)
            for k, (path, targets) in todo.items()}
    results, failures = map_images(predict_one, jobs, client, "predict", quiet, threads)
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
                if not p.exists():
                    raise InputError(p, "no PNG mask for the submission (GeoTIFF inputs "
                                        "are not part of the challenge's layout)")
                # A fixed date keeps the zip byte-identical between runs.
                info = zipfile.ZipInfo(p.name, date_time=(2018, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, p.read_bytes())
    return zip_path
