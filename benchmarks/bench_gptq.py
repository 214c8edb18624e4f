"""How long do GPTQ and AWQ take to quantize the course model, and what does each cost in perplexity?

    python benchmarks/bench_gptq.py            # the lesson-07 course model (pretrained first if missing)
    python benchmarks/bench_gptq.py --quick    # the quick course model, a few seconds
    python benchmarks/bench_gptq.py --up       # also a model one size up, trained briefly (cached)

The course model (``course.recipe.course_model``) is quantized on the four Linears of every
block by rounding to nearest, GPTQ and AWQ (with its clipping search) at int4 with groups of 128
and 64 and at int3 with groups of 128 (32 and 16 for the quick model, whose rows are 32 wide), from
8 batches of 8 training windows (2 with ``--quick``). One JSON object per line: the machine; one
line per method and setting with the seconds it took to quantize, the bits per weight of the
quantized layers and the validation perplexity (the whole split; 4,096 tokens with ``--quick``);
the float32 line; and a summary: GPTQ's int4 perplexity increase as a share of rounding's (the
target: at most one half) and GPTQ's time on the course model (the target: under 30 s).

``--up`` adds the same lines and summary for a GPT one size up: twice the course model's width
(d_model 256, 4 layers, 4 heads, context 128: 4x its block weights), trained with the course's
recipe for ``--up-steps`` steps (default 300) and cached in the output folder's checkpoints, so
that its weights have the structure training gives them (a model with random weights would say
nothing about quantization error).
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
UP = {"d_model": 256, "n_layer": 4, "n_head": 4, "context_length": 128}
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
    parser.add_argument("--up", action="store_true", help="also a model one size up, trained briefly (cached)")
    parser.add_argument("--up-steps", type=int, default=300, help="training steps of the one-size-up model")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads for NumPy's BLAS (default: as many as it uses)")
    args = parser.parse_args()

    from tinygrad_llm import course_corpus, perplexity, random_batch
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
    base = perplexity(model, val)
    emit({"benchmark": BENCHMARK, "case": "course", "method": "float32", "setting": "", "bits_per_weight": 32,
          "seconds": 0.0, "val_ppl": base, "val_tokens": len(val), "parameters": model.num_parameters()})

    measure("course", model, calibration, val, base, settings(args.quick))

    if args.up:
        up = trained_one_size_up(model.config.vocab_size, corpus, args.up_steps)
        T = up.config.context_length
        up_calibration = [random_batch(corpus.train, 8, T, rng)[0] for _ in range(len(calibration))]
        up_base = perplexity(up, val)
        emit({"benchmark": BENCHMARK, "case": "one size up", "method": "float32", "setting": "",
              "bits_per_weight": 32, "seconds": 0.0, "val_ppl": up_base, "val_tokens": len(val),
              "parameters": up.num_parameters(), "train_steps": args.up_steps, **UP})
        measure("one size up", up, up_calibration, val, up_base, settings(False))


def trained_one_size_up(vocab_size: int, corpus, steps: int):
    """The one-size-up GPT trained for ``steps`` steps with the course recipe's rates (cached)."""
    from tinygrad_llm import GPT, GPTConfig, TrainConfig, Trainer
    from tinygrad_llm.course import output_dir
    from tinygrad_llm.train.trainer import load_model

    path = output_dir("checkpoints") / f"bench_gptq_up_{steps}.safetensors"
    if path.exists():
        model, _ = load_model(path)
        return model.eval()
    model = GPT(GPTConfig(vocab_size=vocab_size, dropout=0.1, **UP), rng=np.random.default_rng(SEED))
    config = TrainConfig(steps=steps, batch_size=16, learning_rate=2e-3, min_learning_rate=2e-4,
                         warmup_steps=max(1, steps // 10), eval_interval=steps, eval_batches=10,
                         log_interval=max(1, steps // 5))
    trainer = Trainer(model, corpus.train, corpus.val, config, log=lambda line: print(line, file=sys.stderr))
    trainer.train()
    trainer.save(path)
    return model.eval()


def measure(case: str, model, calibration, val, base: float, grid: dict) -> None:
    """One line per method and setting for ``model``, and the summary of its first setting."""
    from tinygrad_llm import perplexity

    state = {k: v.copy() for k, v in model.state_dict().items()}
    increase, gptq_seconds = {}, None
    for setting, (bits, group) in grid.items():
        for method, quantize_with in methods(calibration).items():
            lm = copy_of(model, state)
            start = time.perf_counter()
            grids = quantize_with(lm, bits, group)
            seconds = time.perf_counter() - start
            ppl = perplexity(lm.eval(), val)
            increase[(method, setting)] = ppl - base
            emit({"benchmark": BENCHMARK, "case": case, "method": method, "setting": setting,
                  "bits_per_weight": next(iter(grids.values())).bits_per_weight(), "seconds": seconds,
                  "val_ppl": ppl, "ppl_increase": ppl - base, "layers": len(grids)})
            if method == "GPTQ" and setting == next(iter(grid)):
                gptq_seconds = seconds
    main_setting = next(iter(grid))
    rtn_increase = increase[("round to nearest", main_setting)]
    share = increase[("GPTQ", main_setting)] / rtn_increase if rtn_increase > 0 else None
    emit({"benchmark": BENCHMARK, "case": f"{case} summary", "setting": main_setting,
          "gptq_share_of_rtn_increase": share, "target_share": GPTQ_SHARE_TARGET,
          "share_met": share is not None and share <= GPTQ_SHARE_TARGET,
          "awq_share_of_rtn_increase": increase[("AWQ", main_setting)] / rtn_increase if rtn_increase > 0 else None,
          "gptq_seconds": gptq_seconds, "target_seconds": GPTQ_SECONDS_TARGET,
          "seconds_met": gptq_seconds <= GPTQ_SECONDS_TARGET})


if __name__ == "__main__":
    main()
