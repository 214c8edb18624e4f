"""Instruction tuning: the training run and the answers it is judged by (lesson 11).

Unlike ``instruction_data``, which makes the examples and their batches, this module trains on
them (``InstructionTrainer``: lesson 07's ``Trainer`` on response-only batches, optionally with
*replay*, a fraction of every batch taken from pretraining text so that the model forgets less) and asks the tuned
model for greedy answers (``generate_responses``, ``evaluate_responses``), scored by
``evaluate.answers``. Forgetting is measured as the change in perplexity on the pretraining
validation text (``evaluate.perplexity``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..text.bpe import BPETokenizer
from ..core.tensor import Tensor
from ..model.generation import generate
from ..train.batches import Mix, RandomWindows, ShuffledRows, items_of, mix_rows
from ..train.trainer import MixedObjective, TrainConfig, Trainer, TrainHistory, next_token_loss
from ..evaluate.perplexity import perplexity
from ..evaluate.answers import ResponseScores, score_responses
from .instruction_data import (DEFAULT_TEMPLATE, EncodedExample, InstructionExample, PromptTemplate,
                               PromptTooLongError, collate)

# ----------------------------------------------------------------------------------------------
# Training, with optional replay of pretraining text


@dataclass(frozen=True)
class InstructConfig(TrainConfig):
    """How to instruction-tune: lesson 07's ``TrainConfig`` with defaults for the course model (a
    few hundred steps) and ``replay_fraction``, the fraction of each batch that is pretraining text."""

    steps: int = 200
    batch_size: int = 16
    learning_rate: float = 1e-3
    min_learning_rate: float | None = 1e-4
    warmup_steps: int = 20
    # Weight decay pulls weights toward zero, not toward their pretrained values: here it would
    # only add forgetting, so it is off by default.
    weight_decay: float = 0.0
    eval_interval: int = 50        # validation perplexity every this many steps (with val_tokens)
    replay_fraction: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        replay_rows(self.batch_size, self.replay_fraction)  # raises for an impossible fraction


replay_rows = mix_rows   # how many rows of a batch are pretraining windows


@dataclass
class InstructHistory:
    """What a run measured: the loss of every step (and its two parts, with replay), and the
    perplexity on the pretraining validation text at step 0 and every ``eval_interval`` steps."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    instruction_loss: list[float] = field(default_factory=list)
    replay_loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    val_perplexity: list[float] = field(default_factory=list)
    seconds: float = 0.0   # training time, evaluations excluded

    @classmethod
    def from_history(cls, history: TrainHistory) -> InstructHistory:
        """The instruction-tuning view of a ``Trainer``'s history."""
        loss = list(history.train_loss)
        return cls(steps=list(history.steps), loss=loss,
                   instruction_loss=list(history.terms.get("instruction", loss)),
                   replay_loss=list(history.terms.get("replay", [math.nan] * len(loss))),
                   eval_steps=list(history.eval_steps),
                   val_perplexity=list(history.metrics.get("validation_perplexity", [])),
                   seconds=history.seconds)


class InstructionTrainer(Trainer):
    """Instruction-tunes ``model`` on encoded examples: lesson 07's ``Trainer`` with other batches.

    Each step takes ``batch_size`` rows: the next instruction examples of a shuffled pass over
    ``examples`` (a fresh permutation each pass, ``ShuffledRows``) and, with replay,
    ``replay_rows(batch_size, replay_fraction)`` random windows of the pretraining tokens
    ``replay_tokens`` (plain next-token prediction on every position; ``Mix``), both drawn from
    one generator seeded with ``config.seed``. With w the replay fraction of rows, the loss is

        L = (1 - w) L_instruction + w L_replay,

    each part the mean over the tokens it counts, so w is the weight of pretraining text
    whatever the lengths of the rows. Only parameters that require grad are trained (a LoRA
    model trains its adapters). The perplexity on ``val_tokens`` is measured before the first
    step, every ``eval_interval`` steps and after the last. ``train`` returns an ``InstructHistory``.
    """

    def __init__(self, model, examples: Sequence[EncodedExample], config: InstructConfig = InstructConfig(),
                 pad_id: int = 0, replay_tokens: np.ndarray | None = None,
                 val_tokens: np.ndarray | None = None, log: Callable[[str], None] | None = print):
        if len(examples) == 0:
            raise ValueError("InstructionTrainer needs at least one encoded example")
        context = model.config.context_length
        too_long = [k for k, e in enumerate(examples) if len(e.ids) > context + 1]
        if too_long:
            raise ValueError(f"examples {too_long[:5]} have more than context_length + 1 = "
                             f"{context + 1} ids; encode them with this model's context length")
        self.n_replay = replay_rows(config.batch_size, getattr(config, "replay_fraction", 0.0))
        if self.n_replay and replay_tokens is None:
            raise ValueError(f"replay_fraction {config.replay_fraction} needs replay_tokens "
                             f"(the pretraining training tokens)")
        self.examples, self.pad_id, self.replay_tokens = list(examples), pad_id, replay_tokens
        rng = np.random.default_rng(config.seed)
        self.rows = ShuffledRows(len(self.examples), items_of(self.examples, self._collate), rng)
        batches, objective = self.rows, next_token_loss
        if self.n_replay:
            batches = Mix(self.rows, RandomWindows(replay_tokens, context, rng), config.replay_fraction)
            objective = MixedObjective(next_token_loss, next_token_loss, ("instruction", "replay"))
        evaluator = None
        if val_tokens is not None:
            evaluator = lambda m: {"validation_perplexity": perplexity(m, val_tokens)}  # noqa: E731
        super().__init__(model, None, val_tokens, config, log, batches=batches, objective=objective,
                         evaluator=evaluator, evaluate_first=True)
        self.rng = rng

    def _collate(self, chosen: list[EncodedExample]) -> tuple[np.ndarray, np.ndarray]:
        return collate(chosen, self.pad_id)

    def next_examples(self, n: int) -> list[EncodedExample]:
        """The next ``n`` examples of the shuffled pass, starting a new pass when one ends."""
        return [self.examples[i] for i in self.rows.next_indices(n)]

    def step_loss(self):
        """(loss, instruction loss, replay loss or None) of the next batch, as Tensors."""
        out = self.objective(self.model, self.batches.next_batch(self.config.batch_size))
        if isinstance(out, Tensor):
            return out, out, None
        loss, terms = out
        return loss, terms["instruction"], terms["replay"]

    def train(self, steps: int | None = None, time_limit: float | None = None) -> InstructHistory:
        """Train ``steps`` more steps (default: up to ``config.steps``); see ``Trainer.train``."""
        return InstructHistory.from_history(super().train(steps, time_limit))


# ----------------------------------------------------------------------------------------------
# Answering and scoring


def stop_token_ids(tokenizer: BPETokenizer) -> list[int]:
    """``<|endoftext|>`` and every token whose bytes contain a line break: an answer is one line."""
    special = set(tokenizer.special_tokens.values())  # their "bytes" are their names
    stops = {tokenizer.eot_id}
    stops.update(i for i in range(tokenizer.vocab_size)
                 if i not in special and b"\n" in tokenizer.token_bytes(i))
    return sorted(stops)


def generate_responses(model, tokenizer: BPETokenizer, examples: Sequence[InstructionExample],
                       template: PromptTemplate = DEFAULT_TEMPLATE, max_new_tokens: int = 16,
                       batch_size: int = 32, use_cache: bool = True) -> list[str]:
    """The model's greedy answer to each example's prompt (``use_cache``: see ``generate``).

    Decoding stops at ``<|endoftext|>`` or at the first token that contains a line break, and
    the answer is the text before that break, stripped of surrounding whitespace (or what was
    generated when ``max_new_tokens`` ran out). Prompts of the same token length are answered
    together in one batch (right padding would put pads before the answer)."""
    stops = stop_token_ids(tokenizer)
    prompts = [tokenizer.encode(example.prompt(template)) for example in examples]
    context = model.config.context_length
    too_long = [k for k, p in enumerate(prompts) if len(p) > context]
    if too_long:
        raise PromptTooLongError(f"prompts {too_long[:5]} are longer than the context length {context}")
    answers: list[str] = [""] * len(examples)
    by_length: dict[int, list[int]] = {}
    for k, prompt in enumerate(prompts):
        by_length.setdefault(len(prompt), []).append(k)
    for length, members in by_length.items():
        for start in range(0, len(members), batch_size):
            rows = members[start:start + batch_size]
            out = generate(model, np.array([prompts[k] for k in rows]), max_new_tokens,
                           temperature=0.0, stop_tokens=stops, use_cache=use_cache)
            for k, generated in zip(rows, out[:, length:]):
                kept = []
                for token in generated.tolist():
                    if token == tokenizer.eot_id:
                        break
                    kept.append(token)
                    if token in stops:
                        break
                answers[k] = tokenizer.decode(kept).split("\n", 1)[0].strip()
    return answers


@dataclass(frozen=True)
class ResponseEvaluation:
    """Examples with the model's answers; ``scores`` of all of them or of those ``keep`` selects."""

    examples: tuple[InstructionExample, ...]
    predictions: tuple[str, ...]

    def scores(self, keep: Callable[[InstructionExample], bool] | None = None) -> ResponseScores:
        pairs = [(p, e.response) for e, p in zip(self.examples, self.predictions)
                 if keep is None or keep(e)]
        if not pairs:
            raise ValueError("no example is selected, so there is nothing to score")
        return score_responses([p for p, _ in pairs], [r for _, r in pairs])


def evaluate_responses(model, tokenizer: BPETokenizer, examples: Sequence[InstructionExample],
                       template: PromptTemplate = DEFAULT_TEMPLATE,
                       max_new_tokens: int = 16) -> ResponseEvaluation:
    """Greedy answers to ``examples`` (``generate_responses``) with their references."""
    predictions = generate_responses(model, tokenizer, examples, template, max_new_tokens)
    return ResponseEvaluation(tuple(examples), tuple(predictions))
