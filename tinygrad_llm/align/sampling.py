"""Sampling several responses to each prompt, for the alignment lessons (lesson 25): what the simulated
labellers rank, and later what PPO's rollouts are made of.

Prompts of the same token length are sampled together, each repeated ``k`` times in the batch;
a response ends at ``<|endoftext|>`` or at its first line break (lesson 11's rule), and its text
is what came before.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..finetune.instruction_tuning import stop_token_ids
from ..model.generation import generate
from ..text.bpe import BPETokenizer


def sample_responses(model, tokenizer: BPETokenizer, prompts: Sequence[str], k: int, rng: np.random.Generator,
                     max_new_tokens: int = 24, temperature: float = 1.0, top_k: int | None = None,
                     batch_size: int = 32) -> list[list[str]]:
    """``k`` sampled responses (texts) to each prompt (already laid out by the template), in the
    prompts' order."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if temperature <= 0:
        raise ValueError(f"sampling needs a temperature above 0, got {temperature} (greedy gives one response)")
    stops = stop_token_ids(tokenizer)
    encoded = [tokenizer.encode(p) for p in prompts]
    context = model.config.context_length
    for n, ids in enumerate(encoded):
        if len(ids) > context:
            raise ValueError(f"prompt {n} is {len(ids)} tokens, longer than the context length {context}")
    by_length: dict[int, list[int]] = {}
    for n, ids in enumerate(encoded):
        by_length.setdefault(len(ids), []).append(n)
    out: list[list[str]] = [[] for _ in prompts]
    per_batch = max(1, batch_size // k)
    for length in sorted(by_length):
        members = by_length[length]
        for start in range(0, len(members), per_batch):
            rows = [n for n in members[start:start + per_batch] for _ in range(k)]
            tokens = generate(model, np.array([encoded[n] for n in rows]), max_new_tokens, temperature=temperature,
                              top_k=top_k, stop_tokens=stops, rng=rng)
            for n, generated in zip(rows, tokens[:, length:]):
                out[n].append(_response_text(tokenizer, generated.tolist(), stops))
    return out


def _response_text(tokenizer: BPETokenizer, generated: list[int], stops: list[int]) -> str:
    kept = []
    stop_set = set(stops)
    for token in generated:
        if token == tokenizer.eot_id:
            break
        kept.append(token)
        if token in stop_set:
            break
    return tokenizer.decode(kept).split("\n", 1)[0].strip()
