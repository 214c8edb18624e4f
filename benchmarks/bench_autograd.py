"""How much does the autograd engine cost on top of NumPy, and does it give memory back?

    python benchmarks/bench_autograd.py            # about half a minute
    python benchmarks/bench_autograd.py --quick    # fewer repeats, a few seconds
    python benchmarks/bench_autograd.py --no-torch # ours only
    python benchmarks/bench_autograd.py --threads 2

On small tensors the arithmetic is nearly free, so what is measured is overhead: building the
graph node, the Python closure, the backward walk. Three measurements, one JSON line each:

* ``op``: forward + backward of one op on 16x16 float32 tensors, in microseconds (median over
  many repeats after a warm-up), next to PyTorch eager doing the same thing when it is
  installed: same data, same upstream gradient, gradients reset to None before every pass in
  both, and the same number of threads (``--threads``, NumPy's BLAS and ``torch.set_num_threads``).
  ``ratio`` is ours / torch; the target is at most 1.5.
* ``chain``: a 1,000-op graph (250 times matmul, tanh, scale, residual add) forward + backward.
* ``memory``: 100 forward/backward passes of a mid-size MLP (256x512 inputs). Resident memory
  after pass 10 and after pass 100 must be the same, because backward frees the graph. A control
  run that keeps every graph alive (``retain_graph=True`` and the losses stored) shows what
  growth looks like, so "does not grow" is a measurement and not an accident.

Threads default to 1: overhead is a single-thread property, and on a busy machine a library that
splits even a 16x16 softmax across threads waits for a descheduled thread at every barrier
(PyTorch with 2 threads on 2 busy cores took milliseconds per softmax here). Use ``--threads``
to measure with more.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from common import (collect, current_rss_mb, emit, machine_info, optional_import, peak_rss_mb, ratio,
                    set_blas_threads, time_call)
from tinygrad_llm import Tensor
from tinygrad_llm import functional as F

BENCHMARK = "autograd"
SEED = 0
N = 16                # small tensors: N x N
VOCAB = 64            # rows of the embedding table for the getitem case
CHAIN_STEPS = 250     # 4 ops per step: a 1,000-op graph
TARGET_RATIO = 1.5    # per-op overhead, ours / PyTorch eager

MEMORY_BATCH, MEMORY_IN, MEMORY_HIDDEN, MEMORY_CLASSES = 256, 512, 1024, 10
MEMORY_PASSES = (10, 100)  # read the memory after these passes
GROWTH_TOLERANCE_MB = 8.0  # allocator noise; keeping every graph adds about 4 MB a pass


# ----------------------------------------------------------------------------------------------
# The cases: the same maths for both libraries


def make_data(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Float32 arrays for the leaves and integer arrays for indices, shared by both libraries."""
    return {
        "a": rng.standard_normal((N, N)).astype(np.float32),
        "b": rng.standard_normal((N, N)).astype(np.float32),
        "weight": (1 + 0.1 * rng.standard_normal(N)).astype(np.float32),
        "bias": (0.1 * rng.standard_normal(N)).astype(np.float32),
        "table": rng.standard_normal((VOCAB, N)).astype(np.float32),
        "ids": rng.integers(0, VOCAB, size=N),  # repeats are likely: a scatter-add backward
        "targets": rng.integers(0, N, size=N),
        "mix": (rng.standard_normal((N, N)) / (2 * math.sqrt(N))).astype(np.float32),
    }


def op_cases(torch_f=None) -> dict[str, tuple[tuple[str, ...], object, object]]:
    """case -> (names of the leaves, ours(leaves, data), torch(leaves, data))."""
    def torch_ce(a, d):
        return torch_f.cross_entropy(a, d["targets_t"])

    return {
        "add": (("a", "b"), lambda a, b, d: a + b, lambda a, b, d: a + b),
        "mul": (("a", "b"), lambda a, b, d: a * b, lambda a, b, d: a * b),
        "matmul": (("a", "b"), lambda a, b, d: a @ b, lambda a, b, d: a @ b),
        "sum": (("a",), lambda a, d: a.sum(), lambda a, d: a.sum()),
        "softmax": (("a",), lambda a, d: F.softmax(a, axis=-1), lambda a, d: torch_f.softmax(a, dim=-1)),
        "cross_entropy": (("a",), lambda a, d: F.cross_entropy(a, d["targets"]), torch_ce),
        "layer_norm": (("a", "weight", "bias"), lambda a, w, b, d: F.layer_norm(a, w, b),
                       lambda a, w, b, d: torch_f.layer_norm(a, (N,), w, b)),
        "gelu": (("a",), lambda a, d: F.gelu(a), lambda a, d: torch_f.gelu(a, approximate="tanh")),
        "getitem": (("table",), lambda t, d: t[d["ids"]], lambda t, d: t[d["ids_t"]]),
    }


def chain(x, mix):
    """1,000 ops: each step mixes the columns, squashes, scales and adds the residual."""
    y = x
    for _ in range(CHAIN_STEPS):
        y = (y @ mix).tanh() * 0.5 + y
    return y


def make_pass(leaves: list, compute, upstream_of):
    """A zero-argument callable: reset the gradients, forward, backward with a fixed upstream gradient.

    Written once for both libraries: a torch tensor has ``.grad`` and ``.backward(gradient)`` too.
    """
    upstream = upstream_of(tuple(compute(*leaves).shape))

    def one_pass():
        for leaf in leaves:
            leaf.grad = None  # as zero_grad(set_to_none=True) does before every step
        compute(*leaves).backward(upstream)

    return one_pass


# ----------------------------------------------------------------------------------------------
# Measurements


def bench_ops(data, rng, torch, timing: dict) -> list[float]:
    ratios = []
    torch_f = torch.nn.functional if torch else None
    upstream = {}  # the same upstream gradient for both libraries, by output shape

    def upstream_np(shape):
        if shape not in upstream:
            upstream[shape] = rng.standard_normal(shape).astype(np.float32)
        return upstream[shape]

    for case, (names, ours, theirs) in op_cases(torch_f).items():
        leaves = [Tensor(data[name].copy(), requires_grad=True) for name in names]
        ours_time = time_call(make_pass(leaves, lambda *t: ours(*t, data), upstream_np), **timing)
        record = {"benchmark": BENCHMARK, "case": case, "impl": "tinygrad_llm", "shape": [N, N],
                  **ours_time}
        if torch is not None:
            leaves_t = [torch.tensor(data[name], requires_grad=True) for name in names]
            data_t = {**data, "targets_t": torch.from_numpy(data["targets"]),
                      "ids_t": torch.from_numpy(data["ids"])}
            torch_time = time_call(make_pass(leaves_t, lambda *t: theirs(*t, data_t),
                                             lambda shape: torch.from_numpy(upstream_np(shape))),
                                   **timing)
            emit({"benchmark": BENCHMARK, "case": case, "impl": "torch", "shape": [N, N], **torch_time})
            record["torch_median_us"] = torch_time["median_us"]
            record["ratio"] = ratio(ours_time["median_us"], torch_time["median_us"])
            ratios.append(record["ratio"])
        emit(record)
    return ratios


def bench_chain(data, rng, torch, timing: dict) -> None:
    n_ops = 4 * CHAIN_STEPS
    timing = {**timing, "number": 1, "repeats": max(timing["repeats"] // 10, 5)}
    upstream = rng.standard_normal((N, N)).astype(np.float32)
    x = Tensor(data["a"].copy(), requires_grad=True)
    mix = Tensor(data["mix"])
    ours = time_call(make_pass([x], lambda x: chain(x, mix), lambda shape: upstream), **timing)
    record = {"benchmark": BENCHMARK, "case": f"chain_{n_ops}_ops", "impl": "tinygrad_llm",
              "ops": n_ops, "median_ms": ours["median_us"] / 1e3, "min_ms": ours["min_us"] / 1e3,
              "per_op_us": ours["median_us"] / n_ops}
    if torch is not None:
        x_t = torch.tensor(data["a"], requires_grad=True)
        mix_t = torch.from_numpy(data["mix"])
        theirs = time_call(make_pass([x_t], lambda x: chain(x, mix_t),
                                     lambda shape: torch.from_numpy(upstream)), **timing)
        emit({"benchmark": BENCHMARK, "case": record["case"], "impl": "torch", "ops": n_ops,
              "median_ms": theirs["median_us"] / 1e3, "min_ms": theirs["min_us"] / 1e3,
              "per_op_us": theirs["median_us"] / n_ops})
        record["torch_median_ms"] = theirs["median_us"] / 1e3
        record["ratio"] = ratio(ours["median_us"], theirs["median_us"])
    emit(record)


def bench_memory(rng, keep_graphs: bool) -> None:
    """RSS after pass 10 and pass 100 of an MLP's forward/backward (tinygrad_llm only)."""
    def weight(rows, cols):
        return Tensor((rng.standard_normal((rows, cols)) / math.sqrt(rows)).astype(np.float32),
                      requires_grad=True)

    x = rng.standard_normal((MEMORY_BATCH, MEMORY_IN)).astype(np.float32)
    targets = rng.integers(0, MEMORY_CLASSES, size=MEMORY_BATCH)
    w1, w2 = weight(MEMORY_IN, MEMORY_HIDDEN), weight(MEMORY_HIDDEN, MEMORY_CLASSES)
    b1 = Tensor(np.zeros(MEMORY_HIDDEN, dtype=np.float32), requires_grad=True)
    kept = []
    readings = {}
    for step in range(1, MEMORY_PASSES[-1] + 1):
        for p in (w1, w2, b1):
            p.grad = None
        loss = F.cross_entropy(F.gelu(Tensor(x) @ w1 + b1) @ w2, targets)
        loss.backward(retain_graph=keep_graphs)
        if keep_graphs:
            kept.append(loss)  # the control: every graph stays reachable
        if step in MEMORY_PASSES:
            collect()
            readings[step] = (current_rss_mb(), peak_rss_mb())
    (rss_a, peak_a), (rss_b, peak_b) = readings[MEMORY_PASSES[0]], readings[MEMORY_PASSES[-1]]
    grows = peak_b - peak_a > GROWTH_TOLERANCE_MB or (rss_b is not None and rss_b - rss_a > GROWTH_TOLERANCE_MB)
    first, last = MEMORY_PASSES
    emit({"benchmark": BENCHMARK, "case": "memory_graph_kept" if keep_graphs else "memory_graph_freed",
          "impl": "tinygrad_llm", "shape": [MEMORY_BATCH, MEMORY_IN], "hidden": MEMORY_HIDDEN,
          f"rss_mb_after_{first}": rss_a, f"rss_mb_after_{last}": rss_b,
          f"peak_rss_mb_after_{first}": peak_a, f"peak_rss_mb_after_{last}": peak_b,
          "tolerance_mb": GROWTH_TOLERANCE_MB, "grows": bool(grows)})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke test)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--threads", type=int, default=1, help="BLAS and PyTorch threads (default 1)")
    args = parser.parse_args(argv)
    timing = {"repeats": 30, "number": 5, "warmup": 10} if args.quick else \
             {"repeats": 300, "number": 20, "warmup": 50}

    rng = np.random.default_rng(SEED)
    set_blas_threads(args.threads)
    info = machine_info()  # read before torch is imported, so the BLAS found is NumPy's
    torch = None if args.no_torch else optional_import("torch")
    if torch is not None:
        torch.set_num_threads(info["blas_threads"] or args.threads)
        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    emit({"benchmark": BENCHMARK, "case": "machine", **info,
          "torch": info.get("torch", "not installed" if not args.no_torch else "skipped")})

    data = make_data(rng)
    ratios = bench_ops(data, rng, torch, timing)
    bench_chain(data, rng, torch, timing)
    if ratios:
        emit({"benchmark": BENCHMARK, "case": "op_summary", "impl": "tinygrad_llm",
              "geomean_ratio": math.exp(sum(math.log(r) for r in ratios) / len(ratios)),
              "max_ratio": max(ratios), "target_ratio": TARGET_RATIO,
              "within_target": all(r <= TARGET_RATIO for r in ratios)})
    bench_memory(rng, keep_graphs=False)
    bench_memory(rng, keep_graphs=True)


if __name__ == "__main__":
    main()
