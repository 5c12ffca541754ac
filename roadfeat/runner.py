"""Run one function per image, here or on a Dask cluster, keeping every result.

A folder run must not lose the good images' results to one bad image or one
dead worker: each image's outcome is either its result or a one-line failure.
Without ``--dask`` everything runs in this process and Dask is not imported.
"""

from __future__ import annotations

import logging
import os
from typing import Callable

from .io import InputError
from .progress import progress

log = logging.getLogger("roadfeat")

DASK_EXTRA = 'Dask is not installed here; install the extra: pip install -e ".[dask]"'


def connect(address: str | None, timeout: str = "30s"):
    """A ``distributed.Client`` for ``address``, or None to run in this process.

    ``local`` starts a LocalCluster with one single-threaded worker process
    per core; ``local:N`` with N workers; anything else is a scheduler
    address such as ``tcp://10.0.0.5:8786``.
    """
    if not address:
        return None
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("--dask", DASK_EXTRA) from None
    if address == "local" or address.startswith("local:"):
        n = int(address.split(":", 1)[1]) if ":" in address else (os.cpu_count() or 1)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(address, timeout=timeout)
        except OSError as exc:
            raise InputError(address, f"cannot reach the Dask scheduler ({exc})") from None
    log.info("Dask: %d workers at %s", len(client.scheduler_info()["workers"]),
             client.scheduler.address)
    return client


def _one(fn: Callable, args: tuple):
    """Run ``fn`` on a worker; a bad input comes back as data, not a traceback."""
    try:
        return True, fn(*args)
    except InputError as exc:
        return False, str(exc)


def map_images(fn: Callable, jobs: dict, client=None, desc: str = "", quiet: bool = False,
               threads: int = 1) -> tuple[dict, dict]:
    """Call ``fn(*jobs[id])`` for every id.

    Without a Dask ``client``, ``threads`` > 1 runs that many calls at once
    in this process, so that one image's single-threaded steps (decoding,
    post-processing, writing) run beside another's features and trees.

    Returns ``(results, failures)``: id -> return value, and id -> one-line
    message for each :class:`~roadfeat.io.InputError` raised by ``fn`` or
    each task lost with its worker. Other exceptions propagate (they are
    bugs, not bad inputs).
    """
    results, failures = {}, {}
    if client is None and threads > 1 and len(jobs) > 1:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        with ThreadPoolExecutor(threads, thread_name_prefix=f"roadfeat-{desc}") as pool:
            futures = {pool.submit(_one, fn, jobs[k]): k for k in sorted(jobs)}
            for fut in progress(as_completed(futures), desc, quiet, total=len(futures)):
                ok, value = fut.result()
                (results if ok else failures)[futures[fut]] = value
        return results, failures
    if client is None:
        for k in progress(sorted(jobs), desc, quiet):
            ok, value = _one(fn, jobs[k])
            (results if ok else failures)[k] = value
        return results, failures
    from distributed import as_completed

    futures = {client.submit(_one, fn, jobs[k], key=f"{desc}-{k}-{os.urandom(4).hex()}",
                             pure=False, retries=0): k for k in sorted(jobs)}
    for fut in progress(as_completed(futures), desc, quiet, total=len(futures)):
        k = futures[fut]
        if fut.status == "cancelled":
            failures[k] = f"{k}: lost with its Dask worker (cancelled)"
            continue
        if fut.status == "error":
            exc = fut.exception()
            if type(exc).__name__ in ("KilledWorker", "CommClosedError"):
                failures[k] = f"{k}: lost with its Dask worker ({type(exc).__name__})"
                continue
            raise exc
        ok, value = fut.result()
        (results if ok else failures)[k] = value
    return results, failures
