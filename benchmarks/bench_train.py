"""Training-step speed and memory of the GPT, side by side with PyTorch eager.

    python benchmarks/bench_train.py                  # tiny and small configs, ours and torch
    python benchmarks/bench_train.py --configs small --steps 10

Two fixed configs, float32, AdamW: tiny (vocab 512, d_model 128, 4 layers, 4 heads, context 128,
batch 16) and small (vocab 2,048, d_model 384, 6 layers, 6 heads, context 256, batch 8). Each
(config, implementation) pair runs in its own process, so that its peak RSS is its own. Printed
per pair: median and min ms per step (forward + backward + optimizer), tokens/s, peak RSS, the
achieved GFLOP/s (matrix-product FLOPs, ``model_stats.training_flops``) and its fraction of
NumPy's float32 matmul peak, measured in the same run. PyTorch runs with as many threads as
NumPy's BLAS uses. Each pair runs ``--rounds`` times, alternating with PyTorch, and the ratio is the
median of the rounds' ratios: on a shared machine speed drifts by tens of percent within minutes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import blas_threads, emit, machine_info, optional_import, peak_rss_mb, ratio  # noqa: E402

CONFIGS = {
    "tiny": ({"vocab_size": 512, "d_model": 128, "n_layer": 4, "n_head": 4, "context_length": 128}, 16),
    "small": ({"vocab_size": 2048, "d_model": 384, "n_layer": 6, "n_head": 6, "context_length": 256}, 8),
}


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """NumPy's float32 matrix product rate on this machine, now (best of ``repeats``)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def worker(name: str, impl: str, steps: int, warmup: int) -> dict:
    """Run ``steps`` timed training steps of one config in this process."""
    from tinygrad_llm import GPT, AdamW, GPTConfig
    from tinygrad_llm.scale.memory import training_flops

    settings, batch_size = CONFIGS[name]
    config = GPTConfig(**settings)
    rng = np.random.default_rng(0)
    T = config.context_length
    inputs = rng.integers(0, config.vocab_size, (batch_size, T))
    targets = rng.integers(0, config.vocab_size, (batch_size, T))
    model = GPT(config, rng=rng)

    if impl == "tinygrad_llm":
        optimizer = AdamW(model.parameters(), lr=1e-4)

        def step():
            _, loss = model(inputs, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    else:
        import torch

        from torch_reference import build_torch_gpt

        torch.set_num_threads(blas_threads() or 1)
        torch_model = build_torch_gpt(config, model.state_dict())
        del model
        optimizer = torch.optim.AdamW(torch_model.parameters(), lr=1e-4)
        x, y = torch.from_numpy(inputs), torch.from_numpy(targets)

        def step():
            _, loss = torch_model(x, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    for _ in range(warmup):
        step()
    times = [_timed(step) for _ in range(steps)]
    median = float(np.median(times))
    flops = training_flops(config, batch_size)
    return {"benchmark": "train", "case": name, "impl": impl, "median_ms": median * 1e3,
            "min_ms": min(times) * 1e3, "tokens_per_s": batch_size * T / median,
            "gflops": flops / median / 1e9, "peak_rss_mb": peak_rss_mb(), "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--steps", type=int, default=0, help="timed steps (default: 20 tiny, 8 small)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3,
                        help="worker runs per implementation, alternating with the reference (default 3); "
                             "the ratio printed is the median of the rounds' ratios")
    parser.add_argument("--worker", nargs=2, metavar=("CONFIG", "IMPL"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        name, impl = args.worker
        print(json.dumps(worker(name, impl, args.steps or (20 if name == "tiny" else 8), args.warmup)))
        return

    emit({"benchmark": "train", "case": "machine", **machine_info()})
    peak = matmul_peak_gflops()
    emit({"benchmark": "train", "case": "numpy_matmul_peak", "impl": "numpy", "gflops": peak})
    impls = ["tinygrad_llm"] + (["torch"] if optional_import("torch") is not None else [])
    for name in args.configs:
        runs = {impl: [] for impl in impls}
        for round_index in range(args.rounds):
            # alternate the order, so that a slow spell of a shared machine hits both sides
            for impl in (impls if round_index % 2 == 0 else impls[::-1]):
                command = [sys.executable, __file__, "--worker", name, impl, "--steps", str(args.steps),
                           "--warmup", str(args.warmup)]
                output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
                runs[impl].append(json.loads(output.strip().splitlines()[-1]))
        results = {impl: _combine(records) for impl, records in runs.items()}
        reference = results.get("torch")
        for impl, record in results.items():
            record["fraction_of_matmul_peak"] = record["gflops"] / peak
            if impl != "torch" and reference is not None:
                per_round = [a["median_ms"] / b["median_ms"] for a, b in zip(runs[impl], runs["torch"])]
                record["step_time_vs_torch"] = round(float(np.median(per_round)), 3)
                record["step_time_vs_torch_per_round"] = [round(r, 3) for r in per_round]
                record["peak_rss_vs_torch"] = ratio(record["peak_rss_mb"], reference["peak_rss_mb"])
            emit(record)


def _combine(records: list[dict]) -> dict:
    """One record from several rounds of a worker: the median of the rounds' median step times,
    the fastest step seen, the largest peak RSS."""
    median = float(np.median([r["median_ms"] for r in records]))
    combined = dict(records[0])
    combined.update(median_ms=round(median, 1), min_ms=min(r["min_ms"] for r in records),
                    tokens_per_s=round(records[0]["tokens_per_s"] * records[0]["median_ms"] / median, 1),
                    gflops=round(records[0]["gflops"] * records[0]["median_ms"] / median, 2),
                    peak_rss_mb=max(r["peak_rss_mb"] for r in records), rounds=len(records))
    return combined

if __name__ == "__main__":
    main()
