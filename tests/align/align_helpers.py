"""Shared pieces of the alignment tests: a tiny float64 GPT and synthetic preference pairs."""

from __future__ import annotations

import numpy as np

from tinygrad_llm import GPT, GPTConfig
from tinygrad_llm.align.preferences import EncodedPair
from tinygrad_llm.finetune.instruction_data import EncodedExample

PAD = 0


def tiny_gpt(vocab_size: int = 40, context_length: int = 16, seed: int = 0, dtype=np.float64) -> GPT:
    config = GPTConfig(vocab_size=vocab_size, context_length=context_length, d_model=16, n_layer=1, n_head=2)
    return GPT(config, rng=np.random.default_rng(seed), dtype=dtype)


def synthetic_pairs(n: int, seed: int, vocab: int = 40) -> list[EncodedPair]:
    """Prompt of random tokens 3..19; the chosen response is tokens 20..24, the rejected 30..34."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        prompt = rng.integers(3, 20, size=rng.integers(2, 5)).tolist()
        good = rng.integers(20, 25, size=rng.integers(2, 5)).tolist()
        bad = rng.integers(30, 35, size=rng.integers(2, 5)).tolist()
        pairs.append(EncodedPair(EncodedExample(np.array(prompt + good + [1]), len(prompt)),
                                 EncodedExample(np.array(prompt + bad + [1]), len(prompt))))
    return pairs
