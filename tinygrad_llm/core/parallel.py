"""Elementwise work on every core, for the engine of lesson 01 on: NumPy's matrix products use all cores (through BLAS), but its
elementwise functions (``np.tanh``, ``*``, ``+`` ...) run on one. NumPy releases Python's global
lock inside them, though, so the same function run on separate parts of an array from several
threads runs in parallel.

``in_parts(fn, size)`` calls ``fn(part)`` for slices ``part`` that cover ``range(size)``, on a
small thread pool, in pieces of ``PIECE`` elements, small enough that the temporaries of a
multi-step formula stay in the core's cache between steps. Every element gets the same arithmetic
whatever the number of threads, so the results do not depend on it.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

PIECE = 1 << 15       # elements per piece: 128 KiB of float32, several such arrays fit in L2
MIN_PARALLEL = 1 << 17  # below this, one thread: the hand-over costs more than it saves

_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def threads() -> int:
    """How many threads elementwise work uses (the cores this process may run on)."""
    return _threads


def set_threads(n: int) -> None:
    """Use ``n`` threads for elementwise work from now on (1 = none besides the caller)."""
    global _threads, _pool
    if int(n) < 1:
        raise ValueError(f"set_threads: need at least 1 thread, got {n}")
    with _lock:
        _threads = int(n)
        if _pool is not None:
            _pool.shutdown(wait=True)
            _pool = None


def _run_pieces(fn: Callable[[slice], None], start: int, stop: int, piece: int) -> None:
    for begin in range(start, stop, piece):
        fn(slice(begin, min(begin + piece, stop)))


def in_parts(fn: Callable[[slice], None], size: int, row_size: int = 1) -> None:
    """Call ``fn(part)`` for slices covering ``range(size)``: split between the threads, each
    going through its share piece by piece. ``fn`` must only write to its own part.

    With ``row_size`` > 1 the indices are rows of that many elements each (e.g. for a softmax
    over rows), and the pieces hold about ``PIECE`` elements' worth of whole rows."""
    global _pool
    piece = max(1, PIECE // row_size)
    n = _threads if size * row_size >= MIN_PARALLEL else 1
    if n == 1:
        _run_pieces(fn, 0, size, piece)
        return
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=n - 1, thread_name_prefix="tinygrad_llm")
        pool = _pool
    # shares rounded to whole pieces, the caller's thread taking the first
    pieces = -(-size // piece)
    bounds = [min(size, (pieces * i // n) * piece) for i in range(n + 1)]
    futures = [pool.submit(_run_pieces, fn, bounds[i], bounds[i + 1], piece) for i in range(1, n)]
    _run_pieces(fn, bounds[0], bounds[1], piece)
    for future in futures:
        future.result()


def _forget_pool_after_fork() -> None:
    """A forked child has none of the parent's threads: start a new pool when it needs one."""
    global _pool, _lock
    _pool = None
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)
