"""Shared fixtures of the alignment tests: a small tokenizer and a tiny float64 GPT."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm import GPT, GPTConfig
from tinygrad_llm.text.bpe import BPETokenizer

TEXT = ("Name a loop. for while spam Say hi. hello go away. ### Instruction: ### Response: "
        "The for statement iterates over a sequence; the while statement repeats while true. ") * 4


@pytest.fixture(scope="module")
def tiny_tokenizer() -> BPETokenizer:
    return BPETokenizer.train(TEXT, vocab_size=300, pattern="gpt4", special_tokens=("<|endoftext|>",))


def tiny_gpt(vocab_size: int = 40, context_length: int = 16, seed: int = 0, dtype=np.float64) -> GPT:
    config = GPTConfig(vocab_size=vocab_size, context_length=context_length, d_model=16, n_layer=1, n_head=2)
    return GPT(config, rng=np.random.default_rng(seed), dtype=dtype)
