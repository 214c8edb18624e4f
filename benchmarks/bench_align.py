"""How much does a step of preference training cost against a step of supervised fine-tuning?

    python benchmarks/bench_align.py             # the course model's shape, batches of 16 pairs
    python benchmarks/bench_align.py --repeats 3

On a GPT of the course model's shape (d_model 128, 4 layers, context 128, vocabulary 2,048) with
random weights and random token rows of prompt + answer (48 + 24 tokens), one training step of
each through the one ``Trainer``: supervised fine-tuning on 2B rows (the response-only loss of
lesson 11), a reward-model step on B pairs (2B rows and a scalar head) and a DPO step on B pairs
(2B rows; the frozen reference's log-probabilities computed once beforehand, as lesson 26 does).
One JSON object per line: the machine, the median milliseconds per step of each (over
``--steps`` timed steps after a warm-up step), and each one's ratio to the SFT step, per repeat.
PPO, which also samples, is not measured here yet.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import emit, machine_info  # noqa: E402

BENCHMARK = "align"
SHAPE = {"vocab_size": 2048, "context_length": 128, "d_model": 128, "n_layer": 4, "n_head": 4}
PROMPT, ANSWER = 48, 24


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=16, help="preference pairs per step (SFT: twice as many rows)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps of each kind")
    parser.add_argument("--repeats", type=int, default=1, help="rounds, alternating the kinds")
    args = parser.parse_args()

    from tinygrad_llm import GPT, GPTConfig, TrainConfig, Trainer
    from tinygrad_llm.align.dpo import DPOObjective
    from tinygrad_llm.align.preferences import EncodedPair
    from tinygrad_llm.align.reward_model import RewardModel, RewardObjective
    from tinygrad_llm.align.sequences import pair_batches, reference_logprobs
    from tinygrad_llm.finetune.instruction_data import EncodedExample, collate
    from tinygrad_llm.train.batches import ShuffledRows

    emit({"benchmark": BENCHMARK, "case": "machine", **machine_info()})
    rng = np.random.default_rng(0)
    V = SHAPE["vocab_size"]

    def row() -> EncodedExample:
        return EncodedExample(rng.integers(1, V, size=PROMPT + ANSWER + 1), PROMPT)

    pairs = [EncodedPair(row(), row()) for _ in range(8 * args.pairs)]
    rows = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    base = GPT(GPTConfig(**SHAPE), rng=np.random.default_rng(0))
    reference = reference_logprobs(base, pairs, 0)
    config = TrainConfig(steps=10_000, batch_size=args.pairs, warmup_steps=1, eval_interval=10_000,
                         log_interval=10_000)

    def trainers() -> dict:
        sft_config = TrainConfig(**{**config.__dict__, "batch_size": 2 * args.pairs})
        sft = Trainer(copy.deepcopy(base).train(), config=sft_config, log=None,
                      batches=ShuffledRows(len(rows), lambda index: collate([rows[i] for i in index], 0),
                                           np.random.default_rng(0)))
        rm = Trainer(RewardModel(copy.deepcopy(base)).train(), config=config, log=None,
                     batches=pair_batches(pairs, np.random.default_rng(0)), objective=RewardObjective(0))
        dpo = Trainer(copy.deepcopy(base).train(), config=config, log=None,
                      batches=pair_batches(pairs, np.random.default_rng(0)), objective=DPOObjective(reference, 0))
        return {"SFT": sft, "reward model": rm, "DPO": dpo}

    for repeat in range(args.repeats):
        medians = {}
        for name, trainer in trainers().items():
            trainer.train_step()                          # warm-up
            seconds = []
            for _ in range(args.steps):
                start = time.perf_counter()
                trainer.train_step()
                seconds.append(time.perf_counter() - start)
            medians[name] = float(np.median(seconds))
        for name, value in medians.items():
            emit({"benchmark": BENCHMARK, "case": name, "repeat": repeat, "pairs": args.pairs,
                  "rows": 2 * args.pairs, "ms_per_step": 1000 * value, "ratio_to_sft": value / medians["SFT"]})


if __name__ == "__main__":
    main()
