"""Benchmark: multiple-choice examples scored per second by the harness on the course-sized GPT.

    python benchmarks/bench_harness.py [--count 200] [--fewshot 0]

The model has the course configuration (4 layers, width 128, 128 tokens, vocabulary 2,048) with
its initial weights: speed does not depend on what the weights have learned. One JSON line per
task, plus one for all four together.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import emit, machine_info

from tinygrad_llm import GPT
from tinygrad_llm.course.recipe import course_model_config, train_course_tokenizer
from tinygrad_llm.evaluate.benchmarks import builtin_tasks
from tinygrad_llm.evaluate.harness import evaluate_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="test documents per task")
    parser.add_argument("--fewshot", type=int, default=0, help="demonstrations per prompt")
    parser.add_argument("--quick", action="store_true", help="the quick tokenizer (seconds to train)")
    args = parser.parse_args()
    emit({"benchmark": "harness", "case": "machine", **machine_info()})
    tokenizer = train_course_tokenizer(quick=args.quick)
    model = GPT(course_model_config(tokenizer.vocab_size), rng=np.random.default_rng(0)).eval()
    tasks = builtin_tasks(args.count)
    total_docs, total_seconds = 0, 0.0
    for task in tasks:
        evaluate_task(model, tokenizer, task, num_fewshot=args.fewshot, limit=8)   # warm caches
        start = time.perf_counter()
        result = evaluate_task(model, tokenizer, task, num_fewshot=args.fewshot)
        seconds = time.perf_counter() - start
        total_docs, total_seconds = total_docs + result.count, total_seconds + seconds
        emit({"benchmark": "harness", "case": task.name, "fewshot": args.fewshot, "examples": result.count,
              "seconds": seconds, "examples_per_s": result.count / seconds, "truncated": result.truncated})
    emit({"benchmark": "harness", "case": "all", "fewshot": args.fewshot, "examples": total_docs,
          "seconds": total_seconds, "examples_per_s": total_docs / total_seconds})


if __name__ == "__main__":
    main()
