"""A GGUF export run by the real llama.cpp (llama-cpp-python), against our own decoding.

Skips without llama-cpp-python, which builds llama.cpp from source (several minutes), so it is
not part of the default install: ``pip install -e ".[llama]"``.
"""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm import GPT, BPETokenizer, GPTConfig, TrainConfig, Trainer, generate
from tinygrad_llm.compress.export import export_gguf, load_gguf
from tinygrad_llm.text.corpus import corpus_text, load_documents

llama_cpp = pytest.importorskip("llama_cpp", reason='llama-cpp-python is not installed (pip install -e ".[llama]")')

PROMPTS = ["The for statement", "A function definition", "Exceptions are", 'x = "abc"\n', "2024-12-07: 3 + 4"]
TRICKY = ["  leading spaces", "tabs\tand\nnewlines\n\n", "naïve café ✓", "it's don't WE'LL", "a<|endoftext|>b",
          "1234567", "((x))[y]{z}", "    def f():\n        return 1"]
NEW_TOKENS = 16


@pytest.fixture(scope="module")
def trained():
    text = corpus_text(load_documents())[:150_000]
    tokenizer = BPETokenizer.train(text, 512, special_tokens=("<|endoftext|>",))
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, context_length=64, d_model=64, n_layer=2, n_head=2),
                rng=np.random.default_rng(0))
    ids = np.array(tokenizer.encode(text, allowed_special="all"))
    config = TrainConfig(steps=150, batch_size=16, learning_rate=3e-3, warmup_steps=10, eval_interval=150,
                         eval_batches=2, log_interval=150)
    Trainer(model, ids[:-5000], ids[-5000:], config, log=None).train()
    return model.eval(), tokenizer


def llama_greedy(path, prompt_ids):
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=64, verbose=False)
    out = []
    for token in llm.generate(prompt_ids, temp=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0):
        out.append(token)
        if len(out) == NEW_TOKENS:
            break
    return llm, out


def ours_greedy(model, prompt_ids):
    return generate(model, np.array([prompt_ids]), NEW_TOKENS, temperature=0.0)[0, len(prompt_ids):].tolist()


@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_llama_cpp_continues_exactly_as_we_do(tmp_path, trained, dtype):
    model, tokenizer = trained
    path = export_gguf(model, tokenizer, tmp_path / f"m-{dtype}.gguf", dtype)
    reference, _ = load_gguf(path)   # for f16: the weights llama.cpp holds
    for prompt in PROMPTS:
        ids = tokenizer.encode(prompt)
        llm, theirs = llama_greedy(path, ids)
        assert theirs == ours_greedy(reference, ids), prompt


def test_llama_cpp_tokenizes_like_us(tmp_path, trained):
    model, tokenizer = trained
    llm = llama_cpp.Llama(model_path=str(export_gguf(model, tokenizer, tmp_path / "m.gguf")), n_ctx=64, verbose=False)
    for text in TRICKY:
        ours = tokenizer.encode(text, allowed_special="all")
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == ours, text


def test_q8_0_continuations_agree_closely(tmp_path, trained):
    model, tokenizer = trained
    path = export_gguf(model, tokenizer, tmp_path / "m-q8_0.gguf", "q8_0")
    dequantized, _ = load_gguf(path)
    agree = total = 0
    for prompt in PROMPTS:
        ids = tokenizer.encode(prompt)
        _, theirs = llama_greedy(path, ids)
        ours = ours_greedy(dequantized, ids)
        agree += sum(a == b for a, b in zip(theirs, ours))
        total += NEW_TOKENS
    # llama.cpp also rounds the activations to 8 bits inside each product: close, not always equal
    assert agree / total >= 0.9, f"{agree} of {total} greedy tokens agree"
