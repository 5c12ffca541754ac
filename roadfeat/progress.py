"""Progress bars for per-image loops (tqdm on stderr; off with ``quiet``)."""

from __future__ import annotations

from tqdm.auto import tqdm


def progress(iterable, desc: str, quiet: bool = False, total: int | None = None):
    return tqdm(iterable, desc=desc, total=total, disable=quiet, unit="img",
                dynamic_ncols=True, leave=False)


def round_bar(total: int, desc: str, quiet: bool = False):
    """A bar over boosting rounds (with an ETA); use as a context manager."""
    return tqdm(total=total, desc=desc, disable=quiet, unit="round", dynamic_ncols=True,
                leave=False)
