"""The training loop that the lessons and the command line share (lesson 07).

One step: sample a batch of random windows from the training tokens, forward, loss, backward,
clip the gradient norm, set the learning rate from the schedule, AdamW update. Every
``eval_interval`` steps the validation loss (and its perplexity, exp(loss)) is measured on a
fixed set of windows, so the numbers are comparable across steps and runs.

A checkpoint holds everything the next step depends on: the weights, the optimizer's moments,
the step count and the states of the random generators (batch sampling and dropout). Resuming
from it therefore continues exactly: 5 steps, save, load, 5 steps equals 10 steps.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..model.state import CheckpointError, load_safetensors, save_safetensors
from ..text.data import random_batch
from ..model.gpt import GPT, GPTConfig
from .optim import AdamW, clip_grad_norm_, cosine_schedule, weight_decay_groups
from ..core.tensor import Tensor, no_grad

CHECKPOINT_FORMAT = "tinygrad_llm.checkpoint"   # written into every training checkpoint (unchanged since 0.1)
CHECKPOINT_VERSION = 1


def check_positive(config, *names: str) -> None:
    """Raise a ValueError naming the first of ``names`` that is not positive on ``config``."""
    for name in names:
        if getattr(config, name) <= 0:
            raise ValueError(f"{type(config).__name__}.{name} must be positive, got {getattr(config, name)}")


@dataclass(frozen=True)
class TrainConfig:
    """How to train. The defaults suit the course model on the embedded corpus."""

    max_steps: int = 2000
    batch_size: int = 16
    learning_rate: float = 3e-3     # peak; small models tolerate a large rate
    min_learning_rate: float = 3e-4  # the end of the cosine decay (10% of the peak, as in GPT-3)
    warmup_steps: int = 100
    weight_decay: float = 0.1
    betas: tuple = (0.9, 0.95)      # a shorter memory for v than Adam's 0.999 steadies LLM training
    grad_clip: float = 1.0
    eval_interval: int = 100
    eval_batches: int = 20
    log_interval: int = 50
    seed: int = 0

    def __post_init__(self):
        check_positive(self, "max_steps", "batch_size", "eval_interval", "eval_batches", "log_interval",
                       "learning_rate")


@dataclass
class TrainHistory:
    """What a run measured: per-step training loss, and validation loss at each evaluation."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    tokens_per_second: float = 0.0
    grad_norm: list[float] = field(default_factory=list)   # before clipping, one per step

    @property
    def val_perplexity(self) -> list[float]:
        return [math.exp(v) for v in self.val_loss]


def _format_seconds(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"


def estimate_loss(model: GPT, tokens: np.ndarray, batch_size: int, num_batches: int, seed: int = 1234) -> float:
    """Mean next-token loss over ``num_batches`` random windows drawn with a fixed seed (so the
    same windows every time), in eval mode and without a graph."""
    rng = np.random.default_rng(seed)
    was_training = model.training
    model.eval()
    losses = []
    with no_grad():
        for _ in range(num_batches):
            inputs, targets = random_batch(tokens, batch_size, model.config.context_length, rng)
            losses.append(model(inputs, targets)[1].item())
    model.train(was_training)
    return float(np.mean(losses))


class Trainer:
    """Trains a GPT on a token array; see the module docstring for what a step does."""

    def __init__(self, model: GPT, train_tokens: np.ndarray, val_tokens: np.ndarray | None = None,
                 config: TrainConfig = TrainConfig(), log: Callable[[str], None] | None = print,
                 tokenizer_ref: str = ""):
        context = model.config.context_length
        if len(train_tokens) <= context:
            raise ValueError(f"the training set has {len(train_tokens)} tokens, fewer than one window "
                             f"of context_length + 1 = {context + 1}")
        if val_tokens is not None and len(val_tokens) <= context:
            raise ValueError(f"the validation set has {len(val_tokens)} tokens, fewer than one window "
                             f"of context_length + 1 = {context + 1}")
        self.model, self.config, self.log = model, config, log
        self.train_tokens, self.val_tokens = train_tokens, val_tokens
        self.tokenizer_ref = tokenizer_ref
        self.optimizer = AdamW(weight_decay_groups(model, config.weight_decay),
                               lr=config.learning_rate, betas=config.betas)
        self.rng = np.random.default_rng(config.seed)  # batch sampling
        self.step = 0
        self.history = TrainHistory()

    def learning_rate(self, step: int) -> float:
        c = self.config
        return cosine_schedule(step, c.learning_rate, c.warmup_steps, c.max_steps, c.min_learning_rate)

    def batch_loss(self, inputs: np.ndarray, targets: np.ndarray) -> Tensor:
        """The loss to minimise on one batch: next-token cross-entropy. Subclasses change it
        (``distill.Distiller``, lesson 15) and keep the rest of the step."""
        _, loss = self.model(inputs, targets)
        return loss

    def train_step(self) -> float:
        model, optimizer, c = self.model, self.optimizer, self.config
        inputs, targets = random_batch(self.train_tokens, c.batch_size, model.config.context_length, self.rng)
        loss = self.batch_loss(inputs, targets)
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(
                f"training loss became {value} at step {self.step}; stopping instead of training on "
                f"garbage. Lower the learning rate (now {optimizer.lr:.3g}) or check the data")
        optimizer.zero_grad()
        loss.backward()
        norm = clip_grad_norm_(optimizer.parameters(), c.grad_clip)
        if not math.isfinite(norm):
            raise FloatingPointError(f"gradient norm became {norm} at step {self.step}; stopping. "
                                     f"Lower the learning rate (now {optimizer.lr:.3g})")
        optimizer.lr = self.learning_rate(self.step)
        optimizer.step()
        self.step += 1
        self.history.steps.append(self.step)
        self.history.train_loss.append(value)
        self.history.grad_norm.append(norm)
        return value

    def evaluate(self) -> float:
        tokens = self.val_tokens if self.val_tokens is not None else self.train_tokens
        loss = estimate_loss(self.model, tokens, self.config.batch_size, self.config.eval_batches,
                             seed=self.config.seed + 1)
        self.history.eval_steps.append(self.step)
        self.history.val_loss.append(loss)
        return loss

    def train(self, steps: int | None = None, time_limit: float | None = None) -> TrainHistory:
        """Train ``steps`` more steps (default: up to ``max_steps``), stopping early after
        ``time_limit`` seconds if given. Logs a progress line every ``log_interval`` steps."""
        c = self.config
        end = c.max_steps if steps is None else min(c.max_steps, self.step + steps)
        tokens_per_step = c.batch_size * self.model.config.context_length
        self.model.train()
        start, start_step = time.perf_counter(), self.step
        while self.step < end:
            loss = self.train_step()
            elapsed = time.perf_counter() - start
            done = self.step - start_step
            last = self.step == end or (time_limit is not None and elapsed >= time_limit)
            if self.step % c.eval_interval == 0 or last:
                val = self.evaluate()
                val_text = f" | val {val:.4f} (ppl {math.exp(val):.1f})"
            else:
                val_text = ""
            if self.log is not None and (self.step % c.log_interval == 0 or last or val_text):
                rate = done * tokens_per_step / max(elapsed, 1e-9)
                eta = (end - self.step) * elapsed / max(done, 1)
                self.log(f"step {self.step:5d}/{end} | loss {loss:.4f}{val_text} | {rate:,.0f} tok/s | "
                         f"{_format_seconds(elapsed)} elapsed | ETA {_format_seconds(eta)}")
            if last:
                break
        elapsed = time.perf_counter() - start
        self.history.tokens_per_second = (self.step - start_step) * tokens_per_step / max(elapsed, 1e-9)
        return self.history

    # --- checkpoints ------------------------------------------------------------------------

    def save(self, path) -> None:
        """Write weights, optimizer state, step, random states and both configs (atomically)."""
        tensors = {f"model.{name}": array for name, array in self.model.state_dict().items()}
        optimizer_state = self.optimizer.state_dict()
        tensors.update({f"optimizer.{key}": value for key, value in optimizer_state["state"].items()})
        metadata = {
            "format": CHECKPOINT_FORMAT,
            "version": str(CHECKPOINT_VERSION),
            "model_config": json.dumps(dataclasses.asdict(self.model.config)),
            "train_config": json.dumps(dataclasses.asdict(self.config)),
            "tokenizer": self.tokenizer_ref,
            "step": str(self.step),
            "optimizer": json.dumps({"step_count": optimizer_state["step_count"],
                                     "param_groups": optimizer_state["param_groups"]}),
            "rng_states": json.dumps([g.bit_generator.state for g in _generators(self)]),
            "history": json.dumps(dataclasses.asdict(self.history)),
        }
        save_safetensors(path, tensors, metadata)

    def load(self, path) -> None:
        """Restore a checkpoint written by ``save`` into this trainer (same model config)."""
        tensors, metadata = load_checkpoint_file(path)
        stored = GPTConfig(**json.loads(metadata["model_config"]))
        if stored != self.model.config:
            raise CheckpointError(f"{path}: the checkpoint's model config {stored} does not match "
                                  f"this model's {self.model.config}")
        self.model.load_state_dict(_section(tensors, "model."))
        optimizer = json.loads(metadata["optimizer"])
        self.optimizer.load_state_dict({"step_count": optimizer["step_count"],
                                        "param_groups": optimizer["param_groups"],
                                        "state": _section(tensors, "optimizer.")})
        for group in self.optimizer.param_groups:
            group["betas"] = tuple(group["betas"])
        generators = _generators(self)
        states = json.loads(metadata["rng_states"])
        if len(states) != len(generators):
            raise CheckpointError(f"{path}: {len(states)} random generator states for "
                                  f"{len(generators)} generators in this trainer")
        for generator, state in zip(generators, states):
            generator.bit_generator.state = state
        self.step = int(metadata["step"])
        self.history = TrainHistory(**json.loads(metadata.get("history", "{}")))


def _generators(trainer: Trainer) -> list[np.random.Generator]:
    """The trainer's batch generator, then every distinct generator held by the model's modules
    (dropout), in tree order."""
    found, seen = [trainer.rng], {id(trainer.rng)}
    for module in trainer.model.modules():
        for value in vars(module).values():
            if isinstance(value, np.random.Generator) and id(value) not in seen:
                seen.add(id(value))
                found.append(value)
    return found


def _section(tensors: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {name[len(prefix):]: array for name, array in tensors.items() if name.startswith(prefix)}


def load_checkpoint_file(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read one of our checkpoints, checking that it is one (format and version)."""
    tensors, metadata = load_safetensors(path)
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a tinygrad_llm checkpoint (format {metadata.get('format')!r})")
    if metadata.get("version") != str(CHECKPOINT_VERSION):
        raise CheckpointError(f"{path}: checkpoint version {metadata.get('version')}, this library "
                              f"reads version {CHECKPOINT_VERSION}")
    return tensors, metadata


def load_model(path, dtype=np.float32) -> tuple[GPT, dict[str, str]]:
    """A GPT built from a checkpoint's stored config and loaded with its weights, in eval mode
    (dropout off: ready for inference; call ``model.train()`` to train it further)."""
    tensors, metadata = load_checkpoint_file(path)
    model = GPT(GPTConfig(**json.loads(metadata["model_config"])), dtype=dtype)
    model.load_state_dict(_section(tensors, "model."))
    model.eval()
    return model, metadata
