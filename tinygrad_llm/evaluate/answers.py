"""Scoring short answers against references: exact match after normalising, and ROUGE-L (lesson 11).

Unlike ``metrics``, which scores any text, these functions judge one-line answers to questions
whose reference answer is known, as the instruction-tuning lessons ask them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .metrics import rouge_l


def normalize_answer(text: str) -> str:
    """The form in which answers are compared: case-folded, every run of whitespace one space,
    no surrounding whitespace, and one final period dropped. Quotes and other punctuation stay:
    'The "for" statement' and 'The for statement' are different answers.

        >>> normalize_answer('  The "FOR"\\n statement. ')
        'the "for" statement'
    """
    if not isinstance(text, str):
        raise TypeError(f"an answer must be a str, got {type(text).__name__}")
    text = " ".join(text.split()).casefold()
    return text[:-1].rstrip() if text.endswith(".") else text


def exact_match(prediction: str, reference: str) -> bool:
    """True when both answers are equal after ``normalize_answer``."""
    return normalize_answer(prediction) == normalize_answer(reference)


@dataclass(frozen=True)
class ResponseScores:
    """Mean exact match and mean ROUGE-L F1 (``metrics.rouge_l``) over ``count`` answers."""

    exact_match: float
    rouge_l: float
    count: int


def score_responses(predictions: Sequence[str], references: Sequence[str]) -> ResponseScores:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if len(predictions) == 0:
        raise ValueError("there are no answers to score")
    matches = [exact_match(p, r) for p, r in zip(predictions, references)]
    rouge = [rouge_l(p, r).f1 for p, r in zip(predictions, references)]
    return ResponseScores(float(np.mean(matches)), float(np.mean(rouge)), len(predictions))
