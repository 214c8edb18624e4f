"""Small helpers shared by the benchmark scripts: machine info, timing, memory, JSON lines.

Every benchmark prints one JSON object per line, so its output can be read by a person, piped
into ``jq``, or collected into a table. The first line of each script describes the machine
(NumPy version, BLAS library and threads, ``OPENBLAS_CORETYPE``...), because a timing means
little without it; the other lines carry ``benchmark``, ``case``, ``impl`` and figures with
their units in the key (``median_us``, ``rss_mb``).

    from common import emit, machine_info, time_call
    emit({"benchmark": "autograd", "case": "machine", **machine_info()})
    emit({"benchmark": "autograd", "case": "add", "impl": "numpy", **time_call(f)})

Optional reference libraries (PyTorch...) are imported with ``optional_import`` inside the
script that needs them, never by the library.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import json
import os
import platform
import resource
import statistics
import sys
import time
from types import ModuleType
from typing import Callable

import numpy as np

# ----------------------------------------------------------------------------------------------
# Output


def emit(record: dict) -> None:
    """Print ``record`` as one JSON line (floats rounded to 4 significant digits)."""
    def tidy(value):
        if isinstance(value, (float, np.floating)):
            return float(f"{float(value):.4g}")
        if isinstance(value, (np.integer, np.bool_)):
            return value.item()
        return value

    print(json.dumps({key: tidy(value) for key, value in record.items()}), flush=True)


def ratio(ours: float, theirs: float | None) -> float | None:
    """ours / theirs, or None when there is no reference figure."""
    return None if theirs is None or theirs == 0 else ours / theirs


# ----------------------------------------------------------------------------------------------
# Machine


def optional_import(name: str) -> ModuleType | None:
    """The module, or None when it is not installed (benchmarks then skip the comparison)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _openblas_function(name: str):
    """``name`` (e.g. "get_num_threads") from the OpenBLAS loaded into this process, or None.

    The library is found among the shared objects this process has loaded, NumPy's own copy
    first; NumPy's wheels rename the symbols (``scipy_openblas_get_num_threads64_``), so a few
    spellings are tried. None on another BLAS or off Linux.
    """
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        return None
    for path in sorted(paths, key=lambda p: ("numpy" not in p, p)):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("openblas_", "scipy_openblas_"):
            for suffix in ("", "64_"):
                function = getattr(library, prefix + name + suffix, None)
                if function is not None:
                    return function
    return None


def blas_threads() -> int | None:
    """How many threads NumPy's BLAS uses, asked of the library itself (OpenBLAS only)."""
    function = _openblas_function("get_num_threads")
    if function is None:
        return None
    function.restype = ctypes.c_int
    return int(function())


def set_blas_threads(n: int) -> bool:
    """Make NumPy's BLAS use ``n`` threads from now on; False when that cannot be done."""
    function = _openblas_function("set_num_threads")
    if function is None:
        return False
    function.argtypes = [ctypes.c_int]
    function(int(n))
    return blas_threads() == n


def _blas_name() -> str | None:
    try:
        config = np.show_config(mode="dicts")  # NumPy >= 1.26
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # older NumPy: the figure is informative only
        return None


def machine_info() -> dict:
    """What a timing depends on: versions, CPU, BLAS and its threads, thread-related env vars."""
    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": _blas_name(),
        "blas_threads": blas_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "system": platform.system(),
    }
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        info[name] = os.environ.get(name)
    return info


# ----------------------------------------------------------------------------------------------
# Time


def time_call(fn: Callable[[], object], repeats: int = 200, number: int = 10, warmup: int = 20) -> dict:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeats`` samples of ``number`` calls each.

    Returns the median and the minimum time of one call in microseconds. The median is the
    typical cost; the minimum is the cost when nothing else got in the way. The garbage collector
    stays on, as it would in a training loop.
    """
    for _ in range(warmup):
        fn()
    samples = []
    clock = time.perf_counter
    for _ in range(repeats):
        start = clock()
        for _ in range(number):
            fn()
        samples.append((clock() - start) / number)
    return {"median_us": statistics.median(samples) * 1e6, "min_us": min(samples) * 1e6,
            "repeats": repeats, "number": number}


# ----------------------------------------------------------------------------------------------
# Memory


def current_rss_mb() -> float | None:
    """Resident memory right now (Linux: /proc/self/statm), in MiB; None elsewhere."""
    try:
        with open("/proc/self/statm") as statm:
            resident_pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """The highest resident memory this process has reached so far, in MiB.

    careful: ``ru_maxrss`` is in KiB on Linux but in bytes on macOS.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def collect() -> None:
    """Run the garbage collector, so a memory reading does not depend on when it last ran."""
    gc.collect()
