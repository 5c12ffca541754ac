"""Extraction stage: labelled images -> sampled feature rows on disk.

A features folder holds ``manifest.json`` and ``shards/<id>.npz`` (the
sampled rows ``X`` (n, F) float32, labels ``y`` and flat pixel indices
``idx`` at working resolution). Full stacks are never kept, so memory does
not grow with the number of images. Shards already present for the same
spec, sampling and input bytes (a hash of the image and its mask) are
reused, which makes an interrupted run resumable and a changed label redone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .backend import Backend, get_backend, to_host
from .features import compute_features, validate_spec, working_shape
from .io import (InputError, file_digest, find_images, mask_path_for, read_image, read_json,
                 read_mask, write_json_atomic, write_npz_atomic)
from .model import check_finite, feature_matrix
from .runner import map_images
from .sampling import data_pixels, downsample_labels, image_rng, sample_pixels

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Sampling:
    """How training pixels are drawn from each image."""

    n_per_image: int = 20000
    pos_fraction: float = 0.5
    seed: int = 0
    nodata: int | None = None  # pixels whose every channel is this are never drawn


@dataclass
class RunReport:
    """What a folder run did: outputs per id, and failures per id."""

    done: list = field(default_factory=list)
    reused: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


def spec_key(spec: dict, sampling: Sampling, gsd: float) -> str:
    """Identity of what a shard holds; shards with another key are not reused."""
    # Unset options stay out of the key, so folders made before they existed are reused.
    how = {k: v for k, v in asdict(sampling).items() if v is not None}
    blob = json.dumps({"spec": spec, "sampling": how, "gsd": gsd}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def extract_image(image_path, mask_path, spec: dict, backend: Backend, sampling: Sampling,
                  gsd: float, image_id: str) -> dict:
    """Feature rows of one labelled image: ``{"X", "y", "idx", "shape"}``."""
    rgb = read_image(image_path)
    mask = read_mask(mask_path, rgb.shape)
    valid = None
    if sampling.nodata is not None:
        # Checked before the features, which cost far more than this.
        valid = data_pixels(rgb, sampling.nodata, working_shape(rgb.shape, gsd,
                                                                spec["working_gsd"]))
        if not valid.any():
            raise InputError(image_path, f"every pixel is the no-data fill {sampling.nodata}")
    stack = to_host(compute_features(rgb, spec, backend, gsd))
    labels = downsample_labels(mask, stack.shape[1:])
    idx = sample_pixels(labels, sampling.n_per_image, sampling.pos_fraction,
                        image_rng(image_id, sampling.seed), valid)
    X = np.ascontiguousarray(feature_matrix(stack)[idx])
    check_finite(X, image_path)
    return {"X": X, "y": labels.ravel()[idx].astype(np.uint8), "idx": idx.astype(np.int64),
            "shape": np.array(rgb.shape[:2])}


def extract_shard(image_id: str, path, mpath, shard, spec: dict, device: str,
                  sampling: Sampling, gsd: float, key: str) -> tuple[dict, bool]:
    """Write one image's shard (or reuse a matching one); returns (entry, reused)."""
    shard = Path(shard)
    if not Path(mpath).exists():
        raise InputError(mpath, "mask not found for image " + Path(path).name)
    # A shard is reused only for the same image and mask bytes, not just the same names.
    key = f"{key}:{file_digest(path, mpath)}"
    if shard.exists():
        try:
            with np.load(shard) as z:
                if str(z["key"]) == key:
                    return _entry(path, mpath, z["shape"], z["y"]), True
        except Exception:  # a damaged shard is redone
            pass
    rows = extract_image(path, mpath, spec, get_backend(device), sampling, gsd, image_id)
    write_npz_atomic(shard, key=np.array(key), **rows)
    return _entry(path, mpath, rows["shape"], rows["y"]), False


def extract(images_dir, out_dir, spec: dict, backend: Backend, sampling: Sampling = Sampling(),
            gsd: float = 0.5, mask_dir=None, quiet: bool = False, client=None) -> RunReport:
    """Extract sampled feature rows for every labelled image in ``images_dir``.

    Parameters
    ----------
    images_dir : path
        Folder of ``<id>_sat.*`` images with ``<id>_mask.png`` beside them
        (or in ``mask_dir``).
    out_dir : path
        Features folder to create or resume.
    spec : dict
        Feature spec.
    backend : Backend
    sampling : Sampling
    gsd : float
        Metres per pixel of the images.
    client : distributed.Client, optional
        Run one task per image on this Dask cluster (workers must see
        ``images_dir`` and ``out_dir`` at the same paths).
    """
    names = validate_spec(spec)
    out_dir = Path(out_dir)
    key = spec_key(spec, sampling, gsd)
    manifest_path = out_dir / MANIFEST
    if manifest_path.exists():
        old = read_json(manifest_path)
        if old.get("key") != key:
            raise InputError(manifest_path, "features folder was made with another feature spec, "
                                            "sampling or gsd; use a new --out folder")
    images, errors = find_images(images_dir)
    jobs = {k: (k, p, mask_path_for(p, mask_dir), out_dir / "shards" / f"{k}.npz", spec,
                backend.name, sampling, gsd, key) for k, p in images.items()}
    results, failures = map_images(extract_shard, jobs, client, "extract", quiet)
    report = RunReport(failed={**{k: str(e) for k, e in errors.items()}, **failures})
    for k in sorted(results):
        (report.reused if results[k][1] else report.done).append(k)
    entries = {k: results[k][0] for k in sorted(results)}
    write_json_atomic(manifest_path, {
        "key": key, "spec": spec, "feature_names": names, "gsd": gsd,
        "sampling": asdict(sampling), "images": entries, "failed": report.failed,
        "n_rows": int(sum(e["n"] for e in entries.values())),
    })
    return report


def _entry(path, mpath, shape, y) -> dict:
    return {"image": str(Path(path).resolve()), "mask": str(Path(mpath).resolve()),
            "shape": [int(s) for s in shape], "n": int(len(y)), "n_road": int(np.sum(y))}


def kept_rows(image_id: str, n: int, max_per_image: int | None, seed: int):
    """Sorted indices of the rows :func:`load_rows` keeps of an image's ``n`` (None: all)."""
    if max_per_image is None or n <= max_per_image:
        return None
    return np.sort(image_rng(image_id, seed).choice(n, max_per_image, replace=False))


def load_rows(features_dir, ids, max_per_image: int | None = None, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate the sampled rows of ``ids`` from a features folder.

    ``max_per_image`` keeps at most that many rows of each image, a seeded
    random subset (the same for the same image id and seed), taken shard by
    shard so that memory holds only the kept rows.

    Returns ``X``, ``y``, per row the index into ``ids`` of its image, and
    per row its flat pixel index in that image's working grid.
    """
    Xs, ys, idxs = [], [], []
    for image_id in ids:
        shard = Path(features_dir) / "shards" / f"{image_id}.npz"
        try:
            with np.load(shard) as z:
                X, y, idx = z["X"], z["y"], z["idx"]
        except FileNotFoundError:
            raise InputError(shard, "feature shard missing; re-run extract") from None
        except Exception as exc:
            raise InputError(shard, f"unreadable feature shard ({type(exc).__name__})") from None
        keep = kept_rows(image_id, len(y), max_per_image, seed)
        if keep is not None:
            X, y, idx = X[keep], y[keep], idx[keep]
        check_finite(X, shard)
        Xs.append(X)
        ys.append(y)
        idxs.append(idx)
    groups = np.repeat(np.arange(len(ys)), [len(y) for y in ys])
    return np.concatenate(Xs), np.concatenate(ys), groups, np.concatenate(idxs)
