"""Preference data for the alignment lessons (lesson 25): prompts with ranked responses, the pairs a ranking
holds, simulated labellers, and the JSON-lines file users bring.

A labeller who ranks K responses to one prompt, best first, states C(K, 2) = K (K - 1) / 2
preferences at once: response i is preferred to response j for every i < j. Both the reward model
and DPO learn from those ordered pairs (``ranking_pairs``).

The file format (``read_preferences``) is one JSON object per line, either a ranking or one pair:

    {"prompt": "Explain the for statement.", "responses": ["best ...", "middle ...", "worst ..."]}
    {"prompt": "Explain the for statement.", "chosen": "a good answer", "rejected": "a rude one"}

A malformed line is refused with an error naming the file and the line; nothing is guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..core.files import write_text_atomically
from ..finetune.instruction_data import (DEFAULT_TEMPLATE, EncodedExample, InstructionExample, PromptTemplate,
                                         encode_example)
from ..text.bpe import BPETokenizer


class PreferenceFileError(ValueError):
    """A preference file that cannot be read as the format says (the message names the line)."""


@dataclass(frozen=True)
class Ranking:
    """One prompt and its responses, best first (at least two, all different)."""

    prompt: str
    responses: tuple[str, ...]

    def __post_init__(self):
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise ValueError(f"a ranking needs a non-empty prompt string, got {self.prompt!r}")
        if not isinstance(self.responses, tuple) or len(self.responses) < 2:
            raise ValueError(f"a ranking needs a tuple of at least two responses, got {self.responses!r}")
        for k, response in enumerate(self.responses):
            if not isinstance(response, str) or not response.strip():
                raise ValueError(f"response {k} of the ranking is not a non-empty string: {response!r}")
        if len(set(self.responses)) != len(self.responses):
            raise ValueError("a ranking lists the same response twice; it cannot be preferred to itself")

    def pairs(self) -> list[tuple[str, str]]:
        """(chosen, rejected) for each of the C(K, 2) pairs the ranking states."""
        return [(self.responses[i], self.responses[j]) for i, j in ranking_pairs(len(self.responses))]


def ranking_pairs(k: int) -> list[tuple[int, int]]:
    """The ordered pairs (better, worse) of a ranking of ``k`` items, best first: all i < j.

        >>> ranking_pairs(3)
        [(0, 1), (0, 2), (1, 2)]
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 2:
        raise ValueError(f"a ranking needs at least 2 items, got {k!r}")
    return [(i, j) for i in range(k) for j in range(i + 1, k)]


def noisy_ranking(scores: Sequence[float], noise: float, rng: np.random.Generator) -> np.ndarray:
    """The order (best first) in which a simulated labeller ranks items with these judge
    ``scores``: sorted by score + noise * G with G standard Gumbel noise, which is a draw from the
    Plackett-Luce model with temperature ``noise``. ``noise = 0`` ranks exactly by score; for two
    items with score gap d the labeller prefers the better one with probability s(d / noise).

        >>> noisy_ranking([0.1, 0.9, 0.5], 0.0, np.random.default_rng(0)).tolist()
        [1, 2, 0]
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or len(scores) < 2:
        raise ValueError(f"scores must be a 1-D sequence of at least 2 numbers, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("the judge scores contain NaN or infinity")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"the label noise must be a finite number >= 0, got {noise}")
    noisy = scores + noise * rng.gumbel(size=len(scores)) if noise > 0 else scores
    return np.argsort(-noisy, kind="stable")


def _record(line: str, where: str) -> Ranking:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        raise PreferenceFileError(f"{where}: not JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise PreferenceFileError(f"{where}: expected an object with a prompt, got {type(value).__name__}")
    keys = set(value)
    if keys == {"prompt", "responses"}:
        responses = value["responses"]
        if not isinstance(responses, list):
            raise PreferenceFileError(f"{where}: 'responses' must be a list of strings, best first")
        responses = tuple(responses)
    elif keys == {"prompt", "chosen", "rejected"}:
        responses = (value["chosen"], value["rejected"])
    else:
        raise PreferenceFileError(f"{where}: expected the keys prompt + responses, or prompt + chosen + "
                                  f"rejected; got {sorted(keys)}")
    try:
        return Ranking(value["prompt"], responses)
    except ValueError as error:
        raise PreferenceFileError(f"{where}: {error}") from None


def read_preferences(path: str | Path) -> list[Ranking]:
    """The rankings of a JSON-lines preference file (blank lines are skipped); see the module
    docstring for the two record shapes."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PreferenceFileError(f"no preference file at {path}") from None
    except UnicodeDecodeError as error:
        raise PreferenceFileError(f"{path} is not UTF-8 text (byte {error.start})") from None
    rankings = [_record(line, f"{path}, line {n}") for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not rankings:
        raise PreferenceFileError(f"{path} holds no preference records")
    return rankings


def write_preferences(path: str | Path, rankings: Iterable[Ranking]) -> None:
    """Write rankings in the format ``read_preferences`` reads, atomically."""
    lines = [json.dumps({"prompt": r.prompt, "responses": list(r.responses)}, ensure_ascii=False)
             for r in rankings]
    write_text_atomically(path, "\n".join(lines) + "\n")


@dataclass(frozen=True, eq=False)
class EncodedPair:
    """A preference pair as token ids: prompt + chosen (and + rejected) + ``<|endoftext|>``."""

    chosen: EncodedExample
    rejected: EncodedExample


def encode_pairs(tokenizer: BPETokenizer, rankings: Sequence[Ranking], context_length: int,
                 template: PromptTemplate = DEFAULT_TEMPLATE) -> list[EncodedPair]:
    """Every pair of every ranking, encoded as lesson 11 encodes an instruction example (the
    prompt laid out by ``template``, never cut; the response cut to fit)."""
    pairs = []
    for ranking in rankings:
        for chosen, rejected in ranking.pairs():
            pairs.append(EncodedPair(
                *(encode_example(tokenizer, InstructionExample(ranking.prompt, "", response), context_length, template)
                  for response in (chosen, rejected))))
    return pairs
