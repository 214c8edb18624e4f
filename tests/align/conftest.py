"""The alignment tests' fixture: a small tokenizer."""

from __future__ import annotations

import pytest

from tinygrad_llm.text.bpe import BPETokenizer

TEXT = ("Name a loop. for while spam Say hi. hello go away. ### Instruction: ### Response: "
        "The for statement iterates over a sequence; the while statement repeats while true. ") * 4


@pytest.fixture(scope="module")
def tiny_tokenizer() -> BPETokenizer:
    return BPETokenizer.train(TEXT, vocab_size=300, pattern="gpt4", special_tokens=("<|endoftext|>",))
