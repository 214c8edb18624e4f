"""Generation speed with and without the KV cache, side by side with PyTorch eager.

    python benchmarks/bench_generate.py                   # 200 new tokens, 3 runs of each case
    python benchmarks/bench_generate.py --threads 1 --repeats 5

The "small" config of bench_train.py (vocab 2,048, d_model 384, 6 layers, 6 heads, context 256),
float32, random weights, batch 1, a 16-token random prompt, greedy decoding of ``--new-tokens``
tokens (prompt + new tokens fit the context, so the window never slides). Four cases: our
``generate`` with and without its ``KVCache``, and the same weights in PyTorch eager
(``torch_reference``) with and without a cache of its own, when torch is installed. Both libraries
run with ``--threads`` threads (default: as many as NumPy's BLAS uses, as bench_train.py).

One JSON object per line: the machine, one line per case (seconds per run, best and median;
tokens/s from the best run, since other processes on a shared machine only ever add time;
whether the tokens equal ours), then a summary with the ratios and the targets of the decoding
issue: our cached generation within 1.5x of PyTorch's cached one, and at least 3x faster than
our own uncached generation. Runs of the four cases are interleaved, so a burst of load elsewhere
hits them alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import blas_threads, emit, machine_info, optional_import, set_blas_threads  # noqa: E402

SMALL = {"vocab_size": 2048, "d_model": 384, "n_layer": 6, "n_head": 6, "context_length": 256}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each case")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads for both libraries (default: as many as NumPy's BLAS uses)")
    args = parser.parse_args()

    from tinygrad_llm import GPT, GPTConfig, generate

    threads = args.threads or blas_threads() or 1
    threads_set = set_blas_threads(threads)
    emit({"benchmark": "generate", "case": "machine", **machine_info(), "threads": threads,
          "numpy_threads_set": threads_set})

    config = GPTConfig(**SMALL)
    if args.prompt_tokens + args.new_tokens > config.context_length:
        raise SystemExit("prompt + new tokens must fit the context of 256 (this benchmark does not slide)")
    rng = np.random.default_rng(0)
    model = GPT(config, rng=rng)
    prompt = rng.integers(0, config.vocab_size, args.prompt_tokens)

    def ours(use_cache: bool):
        return lambda n: generate(model, prompt, n, temperature=0, use_cache=use_cache)

    cases = {("tinygrad_llm", True): ours(True), ("tinygrad_llm", False): ours(False)}
    torch = optional_import("torch")
    if torch is not None:
        from torch_reference import build_torch_gpt, torch_generate

        torch.set_num_threads(threads)
        torch_model = build_torch_gpt(config, model.state_dict()).eval()
        torch_prompt = torch.from_numpy(prompt.astype(np.int64))[None, :]

        def theirs(use_cache: bool):
            return lambda n: torch_generate(torch_model, torch_prompt, n, use_cache=use_cache)[0].numpy()

        cases[("torch", True)] = theirs(True)
        cases[("torch", False)] = theirs(False)

    for run in cases.values():  # warm-up: first calls allocate and fill caches
        run(8)

    times = {key: [] for key in cases}
    outputs = {}
    for _ in range(args.repeats):
        for key, run in cases.items():
            start = time.perf_counter()
            outputs[key] = run(args.new_tokens)
            times[key].append(time.perf_counter() - start)

    best = {key: min(seconds) for key, seconds in times.items()}
    ours_cached = outputs["tinygrad_llm", True]
    for (impl, use_cache), seconds in times.items():
        emit({"benchmark": "generate", "case": "small", "impl": impl, "kv_cache": use_cache,
              "batch": 1, "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens,
              "threads": threads, "best_s": best[impl, use_cache], "median_s": statistics.median(seconds),
              "tokens_per_s": args.new_tokens / best[impl, use_cache],
              "same_tokens_as_ours": bool(np.array_equal(outputs[impl, use_cache], ours_cached)),
              "repeats": args.repeats})

    summary = {"benchmark": "generate", "case": "summary", "new_tokens": args.new_tokens, "threads": threads}
    cache_speedup = best["tinygrad_llm", False] / best["tinygrad_llm", True]
    summary.update(cache_speedup=cache_speedup, target_cache_3x=cache_speedup >= 3)
    if torch is not None:
        vs_torch = best["tinygrad_llm", True] / best["torch", True]
        summary.update(cached_time_vs_torch_cached=vs_torch, target_within_1_5x_of_torch=vs_torch <= 1.5,
                       torch_cache_speedup=best["torch", False] / best["torch", True],
                       uncached_time_vs_torch_uncached=best["tinygrad_llm", False] / best["torch", False])
    emit(summary)


if __name__ == "__main__":
    main()
