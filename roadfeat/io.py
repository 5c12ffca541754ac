"""Reading images and masks, finding them in folders, and writing atomically.

Every read error is an :class:`InputError` whose message is one line that
names the file and says what is wrong. Every write goes to a temporary file
in the destination folder and is renamed into place, so a killed run never
leaves a file that looks complete and is not.
"""

from __future__ import annotations

import contextlib
import io as _io
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
MIN_SIDE = 16
# Whole-image reads are capped; 20000^2 RGB is 1.2 GB of pixels.
MAX_PIXELS = 20000 * 20000

_SAT_RE = re.compile(r"^(?P<id>.+)_sat\.(?P<ext>[A-Za-z]+)$")


class InputError(Exception):
    """A bad input file or folder. ``str(err)`` is a one-line message."""

    def __init__(self, path, what: str):
        self.path = str(path)
        self.what = what
        super().__init__(f"{path}: {what}")


# ------------------------------------------------------------------ finding
def image_id(path) -> str:
    """The id of an input image: ``<id>`` of ``<id>_sat.<ext>``, else the file's stem."""
    path = Path(path)
    m = _SAT_RE.match(path.name)
    return m.group("id") if m else path.stem


def find_images(folder, any_tiff: bool = False) -> tuple[dict[str, Path], dict[str, InputError]]:
    """Find ``<id>_sat.<ext>`` images in ``folder``.

    With ``any_tiff``, every other ``.tif``/``.tiff`` not named ``*_mask.*``
    is an input too, its stem the id (GeoTIFF scenes are rarely named ``_sat``).

    Returns
    -------
    images : dict
        id -> path, sorted by id.
    errors : dict
        id -> InputError for ids that cannot be used (two images for one id).

    Raises
    ------
    InputError
        When the folder does not exist or holds no images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a folder")
    seen: dict[str, list[Path]] = {}
    unreadable: dict[str, InputError] = {}
    for p in sorted(folder.iterdir()):
        m = _SAT_RE.match(p.name)
        tiff = (any_tiff and p.suffix.lower() in (".tif", ".tiff")
                and not p.stem.endswith("_mask"))
        if (m or tiff) and p.suffix.lower() in IMAGE_EXTS:
            if p.is_file():
                seen.setdefault(image_id(p), []).append(p)
            else:  # a dangling link or a folder with an image's name: named, not skipped
                what = "a folder" if p.is_dir() else "not a readable file (dangling link?)"
                unreadable[image_id(p)] = InputError(p, f"{what}, not an image")
    if not seen and not unreadable:
        raise InputError(folder, f"no images named <id>_sat.{{{','.join(e[1:] for e in IMAGE_EXTS)}}}")
    images, errors = {}, {}
    for k in sorted(seen):
        paths = seen[k]
        if len(paths) > 1:
            errors[k] = InputError(paths[0], "two images for one id: "
                                   + ", ".join(p.name for p in paths))
        else:
            images[k] = paths[0]
    for k, err in unreadable.items():
        if k not in images and k not in errors:
            errors[k] = err
    return images, errors


def mask_path_for(image_path: Path, mask_dir=None) -> Path:
    """``<id>_mask.png`` beside the image (or in ``mask_dir``)."""
    image_path = Path(image_path)
    return Path(mask_dir or image_path.parent) / f"{image_id(image_path)}_mask.png"


def file_digest(*paths) -> str:
    """SHA-256 of the files' contents (16 hex digits): what makes an output reusable."""
    import hashlib

    h = hashlib.sha256()
    for path in paths:
        try:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        except OSError as exc:
            raise InputError(path, f"cannot read ({exc.strerror or type(exc).__name__})") from None
        h.update(b"\0")
    return h.hexdigest()[:16]


# ------------------------------------------------------------------ reading
def _open(path: Path) -> Image.Image:
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if not os.access(path, os.R_OK):
        raise InputError(path, "permission denied")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file")
    # Pillow's own guard (89 M pixels) would refuse the scene sizes the docs
    # promise; ours below names the size and the limit, before any decoding.
    pillow_limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None
        im = Image.open(path)  # reads the header only
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except Exception as exc:
        raise InputError(path, f"not a readable image ({type(exc).__name__})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit
    w, h = im.size
    if w * h > MAX_PIXELS:
        raise InputError(path, f"image is {w}x{h}, over the {MAX_PIXELS} pixel limit "
                               "(decompression bomb guard)")
    if min(w, h) < MIN_SIDE:
        raise InputError(path, f"image is {w}x{h}; both sides must be at least {MIN_SIDE} pixels")
    return im


def _load(im: Image.Image, path: Path) -> Image.Image:
    try:
        im.load()
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(path, f"corrupt or truncated image ({msg})") from None
    return im


_EXIF_ORIENTATION = 274


def _warn_orientation(im: Image.Image, path: Path) -> None:
    """Warn when viewers would rotate or mirror the image (EXIF orientation 2 to 8).

    roadfeat reads the stored pixels as they are, so its mask lines up with
    them, as GIS tools and the challenge's masks do, but not with a viewer
    that applies the tag.
    """
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # unreadable EXIF: nothing to apply
        return
    if value not in (None, 1):
        import logging

        logging.getLogger("roadfeat").warning(
            "%s: EXIF orientation %s, which viewers rotate or mirror; roadfeat reads the "
            "stored pixels unrotated, so the mask lines up with those, not with the view",
            path, value)


def read_image(path) -> np.ndarray:
    """Read an RGB image as ``uint8`` of shape (H, W, 3).

    Conversions: greyscale is repeated into three channels; RGBA and LA drop
    alpha; palette images are expanded. 16-bit and floating-point images are
    refused, because their radiometric scaling is not known.
    """
    path = Path(path)
    im = _load(_open(path), path)
    _warn_orientation(im, path)
    pages = getattr(im, "n_frames", 1)
    if pages > 1:
        import logging

        logging.getLogger("roadfeat").warning("%s: %d pages; used page 1", path, pages)
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F") or mode.startswith("I;16"):
        raise InputError(path, f"{mode} image: only 8-bit images are supported; "
                               "convert to 8-bit RGB first")
    if mode != "RGB":
        im = im.convert("RGB")
    arr = np.asarray(im, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(path, f"unexpected pixel layout {arr.shape}")
    return arr


def fill_pixels(rgb: np.ndarray, nodata: int) -> np.ndarray:
    """(h, w) bool: pixels whose every channel equals ``nodata``, the fill around a scene."""
    return (rgb == nodata).all(axis=-1)


def read_mask(path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a road mask as ``bool`` (road where grey >= 128; where 1 in a 0/1 mask).

    Raises :class:`InputError` when the mask's size differs from ``shape`` or
    when it is not binary-like (over 5% of pixels far from both 0 and 255).
    """
    path = Path(path)
    im = _load(_open(path), path)
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        raise InputError(path, f"{im.mode} mask: masks must be 8-bit")
    grey = np.asarray(im.convert("L"), dtype=np.uint8)
    if shape is not None and grey.shape != tuple(shape[:2]):
        raise InputError(path, f"mask is {grey.shape[1]}x{grey.shape[0]} but its image is "
                               f"{shape[1]}x{shape[0]}")
    if grey.max() == 1:
        # Masks stored as 0/1 (a common format) would be empty at 128.
        _say_once("masks with values 0/1 are read as 0 = background, 1 = road "
                  f"(first: {path})")
        return grey == 1
    mid = np.count_nonzero((grey > 32) & (grey < 224))
    if mid > 0.05 * grey.size:
        raise InputError(path, f"mask is not binary-like ({100 * mid / grey.size:.0f}% of pixels "
                               "between 32 and 224)")
    return grey >= 128


_SAID: set = set()


def _say_once(message: str) -> None:
    """Log one line the first time a kind of message comes up in this process."""
    import logging

    kind = message.split("(", 1)[0]
    if kind not in _SAID:
        _SAID.add(kind)
        logging.getLogger("roadfeat").warning(message)


# ------------------------------------------------------------------ writing
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    # mkstemp makes the file private; outputs get the usual umask permissions.
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_json_atomic(path, obj) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def encode_png(arr: np.ndarray) -> bytes:
    buf = _io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def write_mask(path, mask: np.ndarray) -> None:
    """Write a boolean mask as a 3-channel 0/255 PNG, like the challenge's masks."""
    m = np.where(mask, 255, 0).astype(np.uint8)
    write_bytes_atomic(path, encode_png(np.repeat(m[:, :, None], 3, axis=2)))


def write_png(path, rgb: np.ndarray) -> None:
    write_bytes_atomic(path, encode_png(np.ascontiguousarray(rgb, dtype=np.uint8)))


def write_npz_atomic(path, **arrays) -> None:
    buf = _io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes_atomic(path, buf.getvalue())


def read_json(path) -> dict:
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not valid JSON ({exc.__class__.__name__})") from None
