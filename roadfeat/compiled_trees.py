"""A LightGBM booster compiled to native code, cached beside its model.

On the CPU, scoring every pixel of a tile with a few hundred trees is most
of ``predict``'s time, and LightGBM's own ``predict`` walks each tree node by
node. A tree compiler turns the native text model into machine code once;
its probabilities equal LightGBM's (docs/BENCHMARKS.md measures both
engines). :data:`ENGINES` are tried in order: lleaves (LLVM, in-process;
it needs llvmlite older than 0.45), then Treelite + TL2cgen (C code built by
the machine's C compiler).

The compiled trees are cached under the model's folder (``compiled/``), or
under the user's cache folder when that folder is the package's own or
cannot be written. Their name hashes the model text, the engine's versions
and the platform, so a changed model is never scored by stale code. They
are built in a private temporary folder and renamed into place under a lock
file, so two processes compiling at once, or a run killed mid-compile, never
leave a half-written library behind. On first use a library must match
LightGBM within 1e-5 on the rows it scores.

Without a working engine, or with ``ROADFEAT_TREES=lightgbm`` in the
environment, LightGBM predicts, after one log line.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import platform
import sys
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Callable

import numpy as np

from .backend import cpu_threads

log = logging.getLogger("roadfeat")

__all__ = ["attach", "engine_of", "engine_predictor", "predictor_of", "cache_dir_for", "ENV"]

#: Environment variable: ``lightgbm`` turns compilation off.
ENV = "ROADFEAT_TREES"
#: Rows compared with LightGBM when a library is loaded; any difference over
#: 1e-5 sends the booster back to LightGBM.
_CHECK_ROWS = 2048
_TOLERANCE = 1e-5
_CHUNK = 16384
# Kept beside the booster, not on it, so that a pickled booster (sent to Dask
# workers) carries no library handle; each process loads the library itself.
_PREDICTORS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_warned: set[str] = set()


def attach(booster, model_dir) -> None:
    """Mark ``booster`` as loaded from ``model_dir``: :func:`predictor_of` compiles it there.

    ``None`` leaves it to LightGBM's own predict.
    """
    booster._roadfeat_model_dir = None if model_dir is None else Path(model_dir)
    _PREDICTORS.pop(booster, None)


def engine_of(booster) -> str:
    """The engine :func:`predictor_of` scores this booster with (``"lightgbm"`` for its own)."""
    return getattr(predictor_of(booster), "engine", "lightgbm")


def predictor_of(booster) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a feature-major float32 matrix (F, n) to probabilities (n,).

    The compiled library for a booster passed to :func:`attach`, built or
    loaded on first use and kept while the booster lives; LightGBM's ``predict`` for
    any other booster, or when compiling is not possible.
    """
    fn = _PREDICTORS.get(booster)
    if fn is None:
        fn = _PREDICTORS[booster] = _build(booster)
    return fn


def engine_predictor(name: str, booster, model_dir):
    """:func:`predictor_of` with one named engine (``lightgbm`` for LightGBM's own), for benchmarks."""
    if name == "lightgbm":
        return _lightgbm(booster)
    engine = {e.name: e for e in ENGINES}[name]
    return _checked(engine, *compiled_library(engine, booster.model_to_string(num_iteration=-1),
                                              model_dir), booster)


def _lightgbm(booster):
    # LightGBM reads the (n, F) Fortran-ordered view of a C-ordered (F, n) without a copy.
    return lambda S: booster.predict(S.T).astype(np.float32)


def _by_rows(predict_rows, dtype):
    """Turn a predictor of row-major rows into one of a feature-major matrix (F, n)."""
    def predict(S: np.ndarray) -> np.ndarray:
        import cv2

        S = np.asarray(S, dtype=np.float32)
        out = np.empty(S.shape[1], np.float32)
        # Row chunks keep the row-major copy small; OpenCV transposes several
        # times faster than NumPy's transposing copy.
        for i in range(0, S.shape[1], _CHUNK):
            rows = cv2.transpose(S[:, i:i + _CHUNK]).astype(dtype, copy=False)
            out[i:i + len(rows)] = predict_rows(rows).ravel()
        return out
    return predict


class _Lleaves:
    """lleaves: LLVM compiles the trees in-process (no C compiler needed); fastest here."""

    name = "lleaves"
    suffix = ".o"

    @staticmethod
    def versions() -> str:
        import lleaves
        import llvmlite

        del lleaves  # imported to learn that it is there
        return (f"lleaves {_dist_version('lleaves')} llvmlite {llvmlite.__version__}"
                f" codegen O{LLEAVES_CODEGEN_OPT} fblocksize {LLEAVES_BLOCKSIZE}")

    @staticmethod
    def compile(model_file: Path, out: Path) -> None:
        _Lleaves.load(model_file, out)

    @staticmethod
    def load(model_file: Path, library: Path):
        import lleaves

        model = lleaves.Model(model_file=str(model_file))
        with lleaves_codegen(LLEAVES_CODEGEN_OPT):
            # Reads the library when it exists, else writes it.
            model.compile(cache=str(library), fblocksize=LLEAVES_BLOCKSIZE)
        threads = cpu_threads()
        return _by_rows(lambda rows: model.predict(rows, n_jobs=threads), np.float64)


#: LLVM's code generation level for lleaves' libraries. lleaves leaves it at
#: 2, where instruction selection and register allocation on its one inlined
#: function grow much faster than the model: 8 min for 200 trees of 255
#: leaves, against 30 s at 0 (FastISel) with the IR still optimised at -O3
#: (docs/BENCHMARKS.md, "Compiling the trees").
LLEAVES_CODEGEN_OPT = 0
#: Trees per cache block in lleaves' libraries (its default is 34). With 255
#: leaves, blocks of 16 trees keep each block's code in the instruction cache:
#: 0.92x the first stage's predict time of 34 (docs/BENCHMARKS.md, "Compiling
#: the trees"), the same float32 probabilities.
LLEAVES_BLOCKSIZE = 16
_CODEGEN_LOCK = threading.Lock()


@contextlib.contextmanager
def lleaves_codegen(level: int):
    """Within the block, lleaves generates machine code at LLVM level ``level`` (0 to 3)."""
    import llvmlite.binding as llvm
    from lleaves import llvm_binding

    def target_machine(fcodemodel="large", target_cpu=None, target_cpu_features=None):
        # lleaves' own target machine, with the level that it does not expose.
        if target_cpu_features is None:
            try:
                target_cpu_features = llvm.get_host_cpu_features().flatten()
            except RuntimeError:  # LLVM cannot detect them here
                target_cpu_features = ""
        return llvm.Target.from_triple(llvm.get_process_triple()).create_target_machine(
            cpu=target_cpu or llvm.get_host_cpu_name(), features=target_cpu_features,
            reloc="pic", codemodel=fcodemodel, opt=level)

    with _CODEGEN_LOCK:  # the patched function is process-wide: one compile at a time
        original = llvm_binding._get_target_machine
        llvm_binding._get_target_machine = target_machine
        try:
            yield
        finally:
            llvm_binding._get_target_machine = original


class _Tl2cgen:
    """Treelite + TL2cgen: C code built by the machine's C compiler."""

    name = "tl2cgen"
    suffix = {"win32": ".dll", "darwin": ".dylib"}.get(sys.platform, ".so")

    @staticmethod
    def versions() -> str:
        import tl2cgen
        import treelite

        return f"treelite {treelite.__version__} tl2cgen {tl2cgen.__version__}"

    @staticmethod
    def compile(model_file: Path, out: Path) -> None:
        import tl2cgen
        import treelite

        model = treelite.frontend.load_lightgbm_model(str(model_file))
        with _quiet():
            tl2cgen.export_lib(model, toolchain="msvc" if sys.platform == "win32" else "gcc",
                               libpath=str(out), params={"parallel_comp": max(2, cpu_threads())},
                               nthread=cpu_threads())

    @staticmethod
    def load(model_file: Path, library: Path):
        import tl2cgen

        with _quiet():
            predictor = tl2cgen.Predictor(str(library), nthread=cpu_threads())
        return _by_rows(lambda rows: predictor.predict(tl2cgen.DMatrix(rows, dtype="float32")),
                        np.float32)


#: Tried in this order; the first that compiles and matches LightGBM is used.
ENGINES = (_Lleaves, _Tl2cgen)


def _build(booster):
    model_dir = getattr(booster, "_roadfeat_model_dir", None)
    if model_dir is None:
        return _lightgbm(booster)
    if os.environ.get(ENV, "").lower() == "lightgbm":
        _once(f"trees: LightGBM's predict ({ENV}=lightgbm)")
        return _lightgbm(booster)
    text = booster.model_to_string(num_iteration=-1)
    why = []
    for engine in ENGINES:
        try:
            engine.versions()
        except ImportError as exc:
            why.append(f"{engine.name}: not installed ({exc.name})")
            continue
        try:
            return _checked(engine, *compiled_library(engine, text, model_dir), booster)
        except Exception as exc:  # this engine cannot build or load here: try the next
            msg = str(exc).strip().splitlines()[-1][:160] if str(exc).strip() else ""
            why.append(f"{engine.name}: {type(exc).__name__}: {msg}")
            log.debug("trees: %s", why[-1])
    _once("trees: LightGBM's predict (no tree compiler works: " + "; ".join(why) + ")")
    return _lightgbm(booster)


def _once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.info(message)


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def cache_dir_for(model_dir) -> Path:
    """Where a model's compiled trees go: ``<model>/compiled``, else the user cache."""
    from .model import DEFAULT_MODEL

    model_dir = Path(model_dir).resolve()
    if model_dir != DEFAULT_MODEL.resolve() and os.access(model_dir, os.W_OK):
        return model_dir / "compiled"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "roadfeat" / "compiled"


def compiled_library(engine, model_text: str, model_dir) -> tuple[Path, Path]:
    """``(model file, library)`` of ``engine`` for ``model_text``, compiled into the cache if new.

    The name hashes the model text, the engine's versions and the platform.
    """
    h = hashlib.sha256(model_text.encode())
    h.update(f"|{engine.versions()}|{sys.platform}|{platform.machine()}".encode())
    folder = cache_dir_for(model_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{engine.name}-{h.hexdigest()[:20]}"
    lib, model_file = folder / f"{stem}{engine.suffix}", folder / f"{stem}.txt"
    if lib.exists() and model_file.exists():
        return model_file, lib
    with _locked(folder / f"{stem}.lock"):
        if not (lib.exists() and model_file.exists()):  # not compiled while this one waited
            log.info("trees: compiling the model with %s once (cached in %s)", engine.name, folder)
            with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as tmp:
                text, built = Path(tmp) / model_file.name, Path(tmp) / lib.name
                text.write_text(model_text)
                engine.compile(text, built)
                # Atomic renames, library last: a reader sees both files or none.
                os.replace(text, model_file)
                os.replace(built, lib)
    return model_file, lib


def _checked(engine, model_file: Path, library: Path, booster):
    """``engine``'s predictor once it has matched LightGBM on the first rows it sees."""
    predict = engine.load(model_file, library)
    chosen = []

    def run(S: np.ndarray) -> np.ndarray:
        if chosen:
            return chosen[0](S)
        out = predict(S)
        n = min(S.shape[1], _CHECK_ROWS)
        diff = float(np.max(np.abs(out[:n] - booster.predict(S[:, :n].T)))) if n else 0.0
        if diff <= _TOLERANCE:
            chosen.append(predict)
            return out
        _once(f"trees: {library.name} differs from LightGBM by {diff:.2g}; "
              "using LightGBM's predict")
        chosen.append(_lightgbm(booster))
        run.engine = "lightgbm"
        return chosen[0](S)
    run.engine = engine.name
    return run


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path`` (released by the OS if the process dies)."""
    try:
        import fcntl
    except ImportError:  # Windows: the atomic rename alone keeps the cache whole
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _quiet():
    """Silence the log lines that treelite and tl2cgen print (through Python's print)."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield
