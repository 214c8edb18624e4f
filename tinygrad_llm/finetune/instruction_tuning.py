"""Instruction tuning: the training run and the answers it is judged by (lesson 11).

Unlike ``instruction_data``, which makes the examples and their batches, this module trains on
them (``InstructionTrainer``: AdamW on response-only batches, optionally with *replay*, a fraction
of every batch taken from pretraining text so that the model forgets less) and asks the tuned
model for greedy answers (``generate_responses``, ``evaluate_responses``), scored by
``evaluate.answers``. Forgetting is measured as the change in perplexity on the pretraining
validation text (``evaluate.perplexity``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..text.bpe import BPETokenizer
from ..text.data import random_batch
from ..model.generation import generate
from ..train.optim import AdamW, clip_grad_norm_, cosine_schedule, weight_decay_groups
from ..evaluate.perplexity import perplexity
from ..evaluate.answers import ResponseScores, score_responses
from .instruction_data import (DEFAULT_TEMPLATE, EncodedExample, InstructionExample, PromptTemplate,
                               PromptTooLongError, collate)

# ----------------------------------------------------------------------------------------------
# Training, with optional replay of pretraining text


@dataclass(frozen=True)
class InstructConfig:
    """How to instruction-tune. The defaults suit the course model (a few hundred steps)."""

    steps: int = 200
    batch_size: int = 16
    learning_rate: float = 1e-3
    min_learning_rate: float = 1e-4
    warmup_steps: int = 20
    # Weight decay pulls weights toward zero, not toward their pretrained values: here it would
    # only add forgetting, so it is off by default.
    weight_decay: float = 0.0
    betas: tuple = (0.9, 0.95)
    grad_clip: float = 1.0
    replay_fraction: float = 0.0   # the fraction of each batch that is pretraining text
    eval_interval: int = 50        # validation perplexity every this many steps (with val_tokens)
    log_interval: int = 50
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_interval", "log_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"InstructConfig.{name} must be a positive integer, got {value!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"InstructConfig.learning_rate must be positive, got {self.learning_rate}")
        replay_rows(self.batch_size, self.replay_fraction)  # raises for an impossible fraction


def replay_rows(batch_size: int, fraction: float) -> int:
    """How many of ``batch_size`` rows are pretraining windows: round(fraction * batch_size).

    A positive fraction must give at least one replay row and leave at least one instruction row.

        >>> replay_rows(16, 0.25), replay_rows(16, 0.0), replay_rows(10, 0.25)
        (4, 0, 2)
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"replay_fraction must be in [0, 1), got {fraction}")
    rows = int(round(fraction * batch_size))
    if fraction > 0 and not 0 < rows < batch_size:
        raise ValueError(f"replay_fraction {fraction} of a batch of {batch_size} is {rows} rows; "
                         f"it must give between 1 and {batch_size - 1} rows")
    return rows


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


class InstructionTrainer:
    """Instruction-tunes ``model`` on encoded examples.

    Each step takes ``batch_size`` rows: ``replay_rows(batch_size, replay_fraction)`` random
    windows of the pretraining tokens ``replay_tokens`` (plain next-token prediction on every
    position) and the next instruction examples of a shuffled pass over ``examples`` (a fresh
    permutation each pass). With w the replay fraction of rows, the loss is

        L = (1 - w) L_instruction + w L_replay,

    each part the mean over the tokens it counts, so w is the weight of pretraining text
    whatever the lengths of the rows. Only parameters that require grad are trained (a LoRA
    model trains its adapters). Warmup then cosine decay, gradient clipping, AdamW.
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
        self.n_replay = replay_rows(config.batch_size, config.replay_fraction)
        if self.n_replay and replay_tokens is None:
            raise ValueError(f"replay_fraction {config.replay_fraction} needs replay_tokens "
                             f"(the pretraining training tokens)")
        if self.n_replay and len(replay_tokens) <= context:
            raise ValueError(f"replay_tokens has {len(replay_tokens)} tokens, fewer than one window "
                             f"of context_length + 1 = {context + 1}")
        groups = weight_decay_groups(model, config.weight_decay)
        if not any(group["params"] for group in groups):
            raise ValueError("the model has no trainable parameters (every parameter is frozen)")
        self.model, self.examples, self.config, self.pad_id = model, list(examples), config, pad_id
        self.replay_tokens, self.val_tokens, self.log = replay_tokens, val_tokens, log
        self.optimizer = AdamW(groups, lr=config.learning_rate, betas=config.betas)
        self.rng = np.random.default_rng(config.seed)
        self.order, self.cursor = self.rng.permutation(len(self.examples)), 0
        self.step = 0
        self.history = InstructHistory()

    def next_examples(self, n: int) -> list[EncodedExample]:
        """The next ``n`` examples of the shuffled pass, starting a new pass when one ends."""
        chosen = []
        while len(chosen) < n:
            if self.cursor == len(self.order):
                self.order, self.cursor = self.rng.permutation(len(self.examples)), 0
            take = min(n - len(chosen), len(self.order) - self.cursor)
            chosen += [self.examples[i] for i in self.order[self.cursor:self.cursor + take]]
            self.cursor += take
        return chosen

    def step_loss(self):
        """(loss, instruction loss, replay loss or None) of the next batch, as Tensors."""
        c = self.config
        inputs, targets = collate(self.next_examples(c.batch_size - self.n_replay), self.pad_id)
        _, instruction = self.model(inputs, targets)
        if not self.n_replay:
            return instruction, instruction, None
        windows, next_tokens = random_batch(self.replay_tokens, self.n_replay,
                                            self.model.config.context_length, self.rng)
        _, replay = self.model(windows, next_tokens)
        w = self.n_replay / c.batch_size
        return instruction * (1 - w) + replay * w, instruction, replay

    def learning_rate(self, step: int) -> float:
        c = self.config
        return cosine_schedule(step, c.learning_rate, c.warmup_steps, c.steps, c.min_learning_rate)

    def train_step(self) -> float:
        loss, instruction, replay = self.step_loss()
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"instruction-tuning loss became {value} at step {self.step}; "
                                     f"lower the learning rate (now {self.optimizer.lr:.3g})")
        self.optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(self.optimizer.parameters(), self.config.grad_clip)
        self.optimizer.lr = self.learning_rate(self.step)
        self.optimizer.step()
        self.step += 1
        h = self.history
        h.steps.append(self.step)
        h.loss.append(value)
        h.instruction_loss.append(instruction.item())
        h.replay_loss.append(replay.item() if replay is not None else float("nan"))
        return value

    def evaluate(self) -> float | None:
        """Perplexity on ``val_tokens`` (recorded in the history), or None without them."""
        if self.val_tokens is None:
            return None
        value = perplexity(self.model, self.val_tokens)
        self.history.eval_steps.append(self.step)
        self.history.val_perplexity.append(value)
        return value

    def train(self, steps: int | None = None) -> InstructHistory:
        """Train ``steps`` more steps (default: up to ``config.steps``); evaluates before the
        first step, every ``eval_interval`` steps and after the last."""
        c = self.config
        end = c.steps if steps is None else min(c.steps, self.step + steps)
        if self.step == 0 and not self.history.eval_steps:
            self.evaluate()
        self.model.train()
        for _ in range(self.step, end):
            start = time.perf_counter()
            loss = self.train_step()
            self.history.seconds += time.perf_counter() - start
            ppl = self.evaluate() if (self.step % c.eval_interval == 0 or self.step == end) else None
            if self.log is not None and (self.step % c.log_interval == 0 or self.step == end):
                extra = f" | validation perplexity {ppl:.1f}" if ppl is not None else ""
                self.log(f"step {self.step:4d}/{end} | loss {loss:.3f}{extra} | "
                         f"{self.history.seconds:.0f} s")
        return self.history


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
