"""How long do GPTQ and AWQ take to quantize the course model, and what does each cost in perplexity?

    python benchmarks/bench_gptq.py            # the lesson-07 course model (pretrained first if missing)
    python benchmarks/bench_gptq.py --quick    # the quick course model, a few seconds
    python benchmarks/bench_gptq.py --up       # also time a model one size up (random weights)

The course model (``course.recipe.course_model``) is quantized on the four Linears of every
block by rounding to nearest, GPTQ and AWQ (with its clipping search) at int4 with groups of 128
and 64 and at int3 with groups of 128 (32 and 16 for the quick model, whose rows are 32 wide), from
8 batches of 8 training windows (2 with ``--quick``). One JSON object per line: the machine; one
line per method and setting with the seconds it took to quantize, the bits per weight of the
quantized layers and the validation perplexity (the whole split; 4,096 tokens with ``--quick``);
the float32 line; and a summary: GPTQ's int4 perplexity increase as a share of rounding's (the
target: at most one half) and GPTQ's time on the course model (the target: under 30 s).

``--up`` adds timing lines for a GPT one size up (d_model 256, 8 layers, 8 heads, context 256:
about 8x the course model's block weights), with random weights: its perplexity would mean
nothing, its quantization time is what grows.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import blas_threads, emit, machine_info, set_blas_threads  # noqa: E402

BENCHMARK = "gptq"
SEED = 0
UP = {"d_model": 256, "n_layer": 8, "n_head": 8, "context_length": 256}
GPTQ_SHARE_TARGET = 0.5     # GPTQ's int4 perplexity increase at most half of rounding's
GPTQ_SECONDS_TARGET = 30.0  # quantizing the course model


def settings(quick: bool) -> dict[str, tuple[int, int]]:
    big, small = (32, 16) if quick else (128, 64)
    return {f"int4 g{big}": (4, big), f"int4 g{small}": (4, small), f"int3 g{big}": (3, big)}


def methods(calibration):
    from tinygrad_llm.compress.awq import awq_model
    from tinygrad_llm.compress.gptq import gptq_model, rtn_model
    return {"round to nearest": lambda lm, b, g: rtn_model(lm, b, g),
            "GPTQ": lambda lm, b, g: gptq_model(lm, calibration, b, g),
            "AWQ": lambda lm, b, g: {k: v.grid for k, v in awq_model(lm, calibration, b, g, clip=True).items()}}


def copy_of(model, state):
    from tinygrad_llm import GPT
    fresh = GPT(model.config, rng=np.random.default_rng(SEED))
    fresh.load_state_dict(state)
    return fresh.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick course model, a few seconds")
    parser.add_argument("--up", action="store_true", help="also time a model one size up (random weights)")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads for NumPy's BLAS (default: as many as it uses)")
    args = parser.parse_args()

    from tinygrad_llm import GPT, GPTConfig, course_corpus, perplexity, random_batch
    from tinygrad_llm.course import course_model

    threads = args.threads or blas_threads() or 1
    emit({"benchmark": BENCHMARK, "case": "machine", **machine_info(), "threads": threads,
          "numpy_threads_set": set_blas_threads(threads)})

    model, _ = course_model(args.quick, log=None)
    corpus = course_corpus(args.quick)
    val = corpus.val[:4096] if args.quick else corpus.val
    rng = np.random.default_rng(SEED)
    T = model.config.context_length
    calibration = [random_batch(corpus.train, 8, T, rng)[0] for _ in range(2 if args.quick else 8)]
    state = {k: v.copy() for k, v in model.state_dict().items()}
    base = perplexity(model, val)
    emit({"benchmark": BENCHMARK, "case": "course", "method": "float32", "setting": "", "bits_per_weight": 32,
          "seconds": 0.0, "val_ppl": base, "val_tokens": len(val), "parameters": model.num_parameters()})

    increase = {}
    for setting, (bits, group) in settings(args.quick).items():
        for method, quantize_with in methods(calibration).items():
            lm = copy_of(model, state)
            start = time.perf_counter()
            grids = quantize_with(lm, bits, group)
            seconds = time.perf_counter() - start
            ppl = perplexity(lm.eval(), val)
            increase[(method, setting)] = ppl - base
            emit({"benchmark": BENCHMARK, "case": "course", "method": method, "setting": setting,
                  "bits_per_weight": next(iter(grids.values())).bits_per_weight(), "seconds": seconds,
                  "val_ppl": ppl, "ppl_increase": ppl - base, "layers": len(grids)})
            if method == "GPTQ" and setting == next(iter(settings(args.quick))):
                gptq_seconds = seconds

    main_setting = next(iter(settings(args.quick)))
    rtn_increase = increase[("round to nearest", main_setting)]
    share = increase[("GPTQ", main_setting)] / rtn_increase if rtn_increase > 0 else None
    emit({"benchmark": BENCHMARK, "case": "summary", "setting": main_setting,
          "gptq_share_of_rtn_increase": share, "target_share": GPTQ_SHARE_TARGET,
          "share_met": share is not None and share <= GPTQ_SHARE_TARGET,
          "awq_share_of_rtn_increase": increase[("AWQ", main_setting)] / rtn_increase if rtn_increase > 0 else None,
          "gptq_seconds": gptq_seconds, "target_seconds": GPTQ_SECONDS_TARGET,
          "seconds_met": gptq_seconds <= GPTQ_SECONDS_TARGET})

    if args.up:
        config = GPTConfig(vocab_size=model.config.vocab_size, **UP)
        up = GPT(config, rng=np.random.default_rng(SEED)).eval()
        up_state = {k: v.copy() for k, v in up.state_dict().items()}
        batches = [random_batch(corpus.train, 8, config.context_length, rng)[0] for _ in range(len(calibration))]
        bits, group = next(iter(settings(False).values()))
        for method, quantize_with in methods(batches).items():
            lm = copy_of(up, up_state)
            start = time.perf_counter()
            quantize_with(lm, bits, group)
            emit({"benchmark": BENCHMARK, "case": "one size up", "method": method, "setting": f"int4 g{group}",
                  "seconds": time.perf_counter() - start, "parameters": up.num_parameters(), **UP})


if __name__ == "__main__":
    main()
