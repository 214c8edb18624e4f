"""The one training loop that the lessons and the command line share (lesson 07).

One step: take a batch from the batch source (``batches``), compute the objective's loss,
backward, clip the gradient norm, set the learning rate from the schedule, update. By default
the batch is random windows of a token array, the objective next-token cross-entropy and the
update AdamW; every ``eval_interval`` steps the validation loss (and its perplexity, exp(loss))
is measured on a fixed set of windows, so the numbers are comparable across steps and runs.

A new task changes the batches and the loss, never the loop: instruction tuning (lesson 11)
passes shuffled rows and a response-only loss, classification (lesson 10) labelled rows and
a keep-the-best hook, distillation (lesson 15) a teacher's soft targets, pruning (lesson 14) an
optimizer that holds a mask. What they change:

* ``batches``: a ``BatchSource`` (``train.batches``);
* ``objective(model, batch)``: the loss Tensor, or ``(loss, terms)`` with named parts of it
  (Tensors or numbers, None for a part not computed) recorded per step in ``history.terms``;
* ``evaluator(model)``: a dict of named numbers recorded in ``history.metrics``;
* ``optimizer``: anything with AdamW's ``zero_grad``, ``step``, ``parameters``, ``lr``,
  ``state_dict`` and ``load_state_dict`` (a wrapper that masks, or shards, the update; one with
  ``clips_gradients = True`` clips in its ``step``, after it has summed the workers' gradients);
* ``hooks``: ``TrainHook`` objects called after backward (before clipping: where the gradients
  of several workers would be summed), before the update, after it, after each evaluation and
  at the end of ``train``. A hook that overrides none of these costs nothing.

Non-finite numbers stop training with a ``FloatingPointError`` naming the step: the loss and
the gradient norm of every step, the trained parameters after every update (one pass over the
weights, a small fraction of the update's own passes) and again before every save, so no
checkpoint ever holds NaN weights.

A checkpoint holds everything the next step depends on: the weights, the optimizer's moments,
the step count, the states of the random generators (batch sampling and dropout), the batch
sources' positions and the hooks' state. Resuming from it therefore continues exactly: 5 steps,
save, load, 5 steps equals 10 steps.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from ..core.checks import check_float, check_int, check_non_negative, check_positive, check_positive_int
from ..core.tensor import Tensor
from ..model.gpt import GPT, GPTConfig
from ..model.nn import Module, Parameter
from ..model.state import (CheckpointError, check_state, config_from_metadata, load_safetensors,
                           metadata_json, save_safetensors)
from ..text.data import random_batch
from .batches import BatchSource, RandomWindows
from .optim import AdamW, clip_grad_norm_, cosine_schedule, weight_decay_groups

CHECKPOINT_FORMAT = "tinygrad_llm.checkpoint"   # written into every training checkpoint (unchanged since 0.1)
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class TrainConfig:
    """How to train. The defaults suit the course model on the embedded corpus."""

    steps: int = 2000
    batch_size: int = 16
    learning_rate: float = 3e-3     # peak; small models tolerate a large rate
    # the end of the cosine decay (10% of the peak, as in GPT-3); None: learning_rate / 10
    min_learning_rate: float | None = 3e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    betas: tuple = (0.9, 0.95)      # a shorter memory for v than Adam's 0.999 steadies LLM training
    grad_clip: float = 1.0
    eval_interval: int = 100
    eval_batches: int = 20
    log_interval: int = 50
    seed: int = 0

    def __post_init__(self):
        name = type(self).__name__
        for count in ("steps", "batch_size", "eval_interval", "eval_batches", "log_interval"):
            check_positive_int(f"{name}.{count}", getattr(self, count))
        check_int(f"{name}.warmup_steps", self.warmup_steps, minimum=0)
        check_int(f"{name}.seed", self.seed, minimum=0)
        check_positive(f"{name}.learning_rate", self.learning_rate)
        if self.min_learning_rate is not None:  # above the peak the "decay" would raise the rate
            check_float(f"{name}.min_learning_rate", self.min_learning_rate, 0.0, self.learning_rate)
        check_non_negative(f"{name}.weight_decay", self.weight_decay)
        check_positive(f"{name}.grad_clip", self.grad_clip)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"{name}.betas must be a pair (beta1, beta2), got {self.betas!r}")
        for k, beta in enumerate(self.betas):
            check_float(f"{name}.betas[{k}]", beta, 0.0, 1.0, high_open=True)

    def learning_rate_at(self, step: int) -> float:
        """The rate of step ``step`` (0-based): linear warmup, then cosine decay to the minimum."""
        floor = self.learning_rate / 10 if self.min_learning_rate is None else self.min_learning_rate
        return cosine_schedule(step, self.learning_rate, self.warmup_steps, self.steps, floor)

    legacy_fields: ClassVar[tuple[str, ...]] = ("max_steps",)   # what older checkpoints call ``steps``

    @classmethod
    def from_dict(cls, settings: dict) -> TrainConfig:
        """The config a checkpoint stored (JSON turns the betas into a list; checkpoints written
        before the settings had one name each call the number of steps ``max_steps``)."""
        settings = dict(settings)
        if "max_steps" in settings:
            settings["steps"] = settings.pop("max_steps")
        if "betas" in settings:
            settings["betas"] = tuple(settings["betas"])
        return cls(**settings)


@dataclass
class TrainHistory:
    """What a run measured: the loss of every step (and its named parts, ``terms``), and the
    evaluation results (``metrics``, by name) at ``eval_steps``."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    terms: dict[str, list[float]] = field(default_factory=dict)
    eval_steps: list[int] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    tokens_per_second: float = 0.0
    seconds: float = 0.0   # time spent in training steps, evaluations excluded
    grad_norm: list[float] = field(default_factory=list)   # before clipping, one per step

    @property
    def val_loss(self) -> list[float]:
        """The validation loss at each evaluation (lesson 07's evaluator)."""
        return self.metrics.setdefault("val_loss", [])

    @property
    def val_perplexity(self) -> list[float]:
        return [math.exp(v) for v in self.val_loss]

    @classmethod
    def from_dict(cls, saved: dict) -> TrainHistory:
        """A history as a checkpoint stored it (older ones kept ``val_loss`` as a field)."""
        saved = dict(saved)
        metrics = dict(saved.pop("metrics", {}))
        if "val_loss" in saved:
            metrics["val_loss"] = saved.pop("val_loss")
        return cls(**saved, metrics=metrics)


class TrainHook:
    """Code run at fixed points of every step; override the methods you need.

    ``after_backward``: the gradients are complete and not yet clipped (sum them over workers
    here); ``before_step``: clipped, the learning rate set, just before the update; ``after_step``:
    just after the update (re-impose a constraint on the weights); ``after_evaluate``: with the
    evaluation's results; ``after_train``: when ``train`` returns. ``state_dict`` /
    ``load_state_dict`` carry what the hook must remember across a checkpoint (JSON-able values
    or NumPy arrays)."""

    def after_backward(self, trainer: Trainer) -> None: ...

    def before_step(self, trainer: Trainer) -> None: ...

    def after_step(self, trainer: Trainer) -> None: ...

    def after_evaluate(self, trainer: Trainer, metrics: dict[str, float]) -> None: ...

    def after_train(self, trainer: Trainer) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


_HOOK_POINTS = ("after_backward", "before_step", "after_step", "after_evaluate", "after_train")


def next_token_loss(model: GPT, batch: tuple[np.ndarray, np.ndarray]) -> Tensor:
    """The default objective: next-token cross-entropy of ``(inputs, targets)``."""
    inputs, targets = batch
    return model(inputs, targets)[1]


class MixedObjective:
    """The objective of a ``Mix`` of two sources: w_1 L_1 + w_2 L_2 with the batch's weights, each
    part by its own objective and recorded as a term under its name (lesson 11's replay)."""

    def __init__(self, first: Callable[[Module, Any], Tensor], second: Callable[[Module, Any], Tensor],
                 names: tuple[str, str] = ("first", "second")):
        self.first, self.second, self.names = first, second, names

    def __call__(self, model: Module, batch) -> tuple[Tensor, dict[str, Tensor]]:
        first = self.first(model, batch.parts[0])    # in this order: the model's dropout draws follow it
        second = self.second(model, batch.parts[1])
        w1, w2 = batch.weights
        return first * w1 + second * w2, {self.names[0]: first, self.names[1]: second}


def _format_seconds(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"


def estimate_loss(model: GPT, tokens: np.ndarray, batch_size: int, num_batches: int, seed: int = 1234) -> float:
    """Mean next-token loss over ``num_batches`` random windows drawn with a fixed seed (so the
    same windows every time), in eval mode and without a graph."""
    rng = np.random.default_rng(seed)
    losses = []
    with model.inference():
        for _ in range(num_batches):
            inputs, targets = random_batch(tokens, batch_size, model.config.context_length, rng)
            losses.append(model(inputs, targets)[1].item())
    return float(np.mean(losses))


class Trainer:
    """Trains ``model``; see the module docstring for what a step does and what can change.

    ``Trainer(model, train_tokens, val_tokens, config)`` is lesson 07's pretraining: random
    windows of ``train_tokens`` drawn from ``config.seed``, and the validation loss on
    ``val_tokens`` (or the training tokens). Pass ``batches`` instead of ``train_tokens`` for any
    other data. ``parameters``: the trained parameters in the order the gradient norm sums them
    (default: the optimizer's order)."""

    def __init__(self, model: Module, train_tokens: np.ndarray | None = None,
                 val_tokens: np.ndarray | None = None, config: TrainConfig = TrainConfig(),
                 log: Callable[[str], None] | None = print, tokenizer_ref: str = "", *,
                 batches: BatchSource | None = None,
                 objective: Callable[[Module, Any], Any] = next_token_loss,
                 evaluator: Callable[[Module], dict[str, float]] | None = None,
                 evaluate_first: bool = False, optimizer=None,
                 parameters: Sequence[Parameter] | None = None, hooks: Sequence[TrainHook] = ()):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.rng = np.random.default_rng(config.seed)  # batch sampling of the default windows
        if batches is None:
            if train_tokens is None:
                raise ValueError("Trainer needs train_tokens or a batch source (batches=...)")
            context = model.config.context_length
            for what, tokens in (("training", train_tokens), ("validation", val_tokens)):
                if tokens is not None and len(tokens) <= context:
                    raise ValueError(f"the {what} set has {len(tokens)} tokens, fewer than one window "
                                     f"of context_length + 1 = {context + 1}")
            batches = RandomWindows(train_tokens, context, self.rng)
            if evaluator is None:
                evaluator = self._validation_loss
        self.model, self.config, self.log = model, config, log
        self.train_tokens, self.val_tokens = train_tokens, val_tokens
        self.tokenizer_ref = tokenizer_ref
        self.batches, self.objective, self.evaluator = batches, objective, evaluator
        self.evaluate_first = evaluate_first
        if optimizer is None:
            groups = weight_decay_groups(model, config.weight_decay)
            if not any(group["params"] for group in groups):
                raise ValueError("the model has no trainable parameters (every parameter is frozen)")
            optimizer = AdamW(groups, lr=config.learning_rate, betas=config.betas)
        self.optimizer = optimizer
        self._parameters = list(parameters) if parameters is not None else None
        self.hooks = list(hooks)
        # bound methods of the hooks that override each point: an unused point is an empty loop
        self._calls = {point: [getattr(h, point) for h in self.hooks
                               if getattr(type(h), point) is not getattr(TrainHook, point)]
                       for point in _HOOK_POINTS}
        self.step = 0
        self.history = TrainHistory()

    @property
    def parameters(self) -> list[Parameter]:
        """The trained parameters (clipped together, checked for non-finite values)."""
        return self._parameters if self._parameters is not None else self.optimizer.parameters()

    def learning_rate(self, step: int) -> float:
        return self.config.learning_rate_at(step)

    def _validation_loss(self, model: GPT) -> dict[str, float]:
        tokens = self.val_tokens if self.val_tokens is not None else self.train_tokens
        return {"val_loss": estimate_loss(model, tokens, self.config.batch_size, self.config.eval_batches,
                                          seed=self.config.seed + 1)}

    def train_step(self) -> float:
        """One step (see the module docstring); returns its loss."""
        model, optimizer = self.model, self.optimizer
        out = self.objective(model, self.batches.next_batch(self.config.batch_size))
        loss, terms = (out, None) if isinstance(out, Tensor) else out
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(
                f"training loss became {value} at step {self.step}; stopping instead of training on "
                f"garbage. Lower the learning rate (now {optimizer.lr:.3g}) or check the data")
        if terms:   # read before backward, which may reuse the graph's arrays
            for name, term in terms.items():
                self.history.terms.setdefault(name, []).append(_term_value(term))
        optimizer.zero_grad()
        loss.backward()
        for call in self._calls["after_backward"]:
            call(self)
        # an optimizer that reduces the gradients itself (ZeRO) clips them too, once they are summed
        clips_itself = getattr(optimizer, "clips_gradients", False)
        if not clips_itself:
            norm = clip_grad_norm_(self.parameters, self.config.grad_clip)
            if not math.isfinite(norm):
                raise FloatingPointError(f"gradient norm became {norm} at step {self.step}; stopping. "
                                         f"Lower the learning rate (now {optimizer.lr:.3g})")
        optimizer.lr = self.learning_rate(self.step)
        for call in self._calls["before_step"]:
            call(self)
        optimizer.step()
        if clips_itself:
            norm = optimizer.last_norm
        for call in self._calls["after_step"]:
            call(self)
        self.check_parameters(self.step + 1)
        self.step += 1
        self.history.steps.append(self.step)
        self.history.train_loss.append(value)
        self.history.grad_norm.append(norm)
        return value

    def check_parameters(self, step: int | None = None) -> None:
        """Raise a FloatingPointError naming the step (default: the last one done) if any trained
        parameter is NaN or infinite."""
        step = self.step if step is None else step
        params = self.parameters
        # fast path, one BLAS pass per parameter: a sum of squares is finite when every entry
        # is (huge entries can overflow it, so a non-finite sum is confirmed entry by entry)
        if math.isfinite(sum(float(np.vdot(p.data, p.data)) for p in params)):
            return
        names = {id(p): name for name, p in self.model.named_parameters()}
        for k, p in enumerate(params):
            if not np.isfinite(p.data).all():
                name = names.get(id(p), f"number {k}")
                raise FloatingPointError(f"the parameter {name} (shape {p.shape}) became "
                                         f"non-finite at step {step}; stopping. Lower the learning "
                                         f"rate (now {self.optimizer.lr:.3g})")

    def evaluate(self) -> dict[str, float] | None:
        """Run the evaluator, record its results at the current step and pass them to the hooks
        (None without an evaluator)."""
        if self.evaluator is None:
            return None
        metrics = self.evaluator(self.model)
        self.history.eval_steps.append(self.step)
        for name, value in metrics.items():
            self.history.metrics.setdefault(name, []).append(value)
        for call in self._calls["after_evaluate"]:
            call(self, metrics)
        return metrics

    def train(self, steps: int | None = None, time_limit: float | None = None) -> TrainHistory:
        """Train ``steps`` more steps (default: up to ``config.steps``), stopping early after
        ``time_limit`` seconds if given. Evaluates every ``eval_interval`` steps and after the
        last (and before the first, with ``evaluate_first``); logs a progress line every
        ``log_interval`` steps."""
        c = self.config
        if steps is not None:
            steps = check_int("steps", steps, minimum=0)
        if time_limit is not None:
            time_limit = check_non_negative("time_limit", time_limit)
        end = c.steps if steps is None else min(c.steps, self.step + steps)
        if self.evaluate_first and self.step == 0 and not self.history.eval_steps:
            self.evaluate()
        context = getattr(getattr(self.model, "config", None), "context_length", 1)
        tokens_per_step = c.batch_size * context
        self.model.train()
        start, start_step = time.perf_counter(), self.step
        evaluating = 0.0
        while self.step < end:
            loss = self.train_step()
            elapsed = time.perf_counter() - start
            done = self.step - start_step
            last = self.step == end or (time_limit is not None and elapsed >= time_limit)
            metrics = None
            if self.step % c.eval_interval == 0 or last:
                evaluation_start = time.perf_counter()
                metrics = self.evaluate()
                evaluating += time.perf_counter() - evaluation_start
            if self.log is not None and (self.step % c.log_interval == 0 or last or metrics):
                rate = done * tokens_per_step / max(elapsed, 1e-9)
                eta = (end - self.step) * elapsed / max(done, 1)
                self.log(f"step {self.step:5d}/{end} | loss {loss:.4f}{_metrics_text(metrics)} | "
                         f"{rate:,.0f} tok/s | {_format_seconds(elapsed)} elapsed | ETA {_format_seconds(eta)}")
            if last:
                break
        elapsed = time.perf_counter() - start
        self.history.seconds += elapsed - evaluating
        self.history.tokens_per_second = (self.step - start_step) * tokens_per_step / max(elapsed, 1e-9)
        for call in self._calls["after_train"]:
            call(self)
        return self.history

    # --- checkpoints ------------------------------------------------------------------------

    def save(self, path) -> None:
        """Write weights, optimizer state, step, random states, the batch sources' positions, the
        hooks' state and both configs (atomically). Refuses non-finite weights."""
        self.check_parameters()
        tensors = {f"model.{name}": array for name, array in self.model.state_dict().items()}
        optimizer_state = self.optimizer.state_dict()
        tensors.update({f"optimizer.{key}": value for key, value in optimizer_state["state"].items()})
        batches = _split_state("batches.", self.batches.state_dict(), tensors)
        hooks = [_split_state(f"hooks.{k}.", hook.state_dict(), tensors) for k, hook in enumerate(self.hooks)]
        model_config = getattr(self.model, "config", None)
        metadata = {
            "format": CHECKPOINT_FORMAT,
            "version": str(CHECKPOINT_VERSION),
            "model_config": json.dumps(dataclasses.asdict(model_config)
                                       if dataclasses.is_dataclass(model_config) else None),
            "train_config": json.dumps(dataclasses.asdict(self.config)),
            "tokenizer": self.tokenizer_ref,
            "step": str(self.step),
            "optimizer": json.dumps({"step_count": optimizer_state["step_count"],
                                     "param_groups": optimizer_state["param_groups"]}),
            "rng_states": json.dumps([g.bit_generator.state for g in _generators(self)]),
            "history": json.dumps(dataclasses.asdict(self.history)),
            "batches": json.dumps(batches),
            "hooks": json.dumps(hooks),
            "model_family": type(self.model).__name__,   # a GPT, an Encoder, an EncoderDecoder, ...
        }
        save_safetensors(path, tensors, metadata)

    def load(self, path) -> None:
        """Restore a checkpoint written by ``save`` into this trainer (same model config)."""
        tensors, metadata = load_checkpoint_file(path)
        family = metadata.get("model_family")
        if family is not None and family != type(self.model).__name__:
            raise CheckpointError(f"{path}: the checkpoint's model family is {family}, this trainer's is "
                                  f"{type(self.model).__name__}")
        model_config = getattr(self.model, "config", None)
        if isinstance(model_config, GPTConfig) and json.loads(metadata.get("model_config", "null")) is not None:
            stored = config_from_metadata(path, metadata, "model_config", GPTConfig)
            if stored != model_config:
                raise CheckpointError(f"{path}: the checkpoint's model config {stored} does not match "
                                      f"this model's {model_config}")
        state = _section(tensors, "model.")
        check_state(path, state, self.model.state_dict())
        self.model.load_state_dict(state)
        optimizer = metadata_json(path, metadata, "optimizer")
        self.optimizer.load_state_dict({"step_count": optimizer["step_count"],
                                        "param_groups": optimizer["param_groups"],
                                        "state": _section(tensors, "optimizer.")})
        for group in self.optimizer.param_groups:
            group["betas"] = tuple(group["betas"])
        generators = _generators(self)
        states = metadata_json(path, metadata, "rng_states", list)
        if len(states) != len(generators):
            raise CheckpointError(f"{path}: {len(states)} random generator states for "
                                  f"{len(generators)} generators in this trainer")
        for generator, state in zip(generators, states):
            generator.bit_generator.state = state
        self.batches.load_state_dict(_join_state("batches.", json.loads(metadata.get("batches", "{}")), tensors))
        hooks = json.loads(metadata.get("hooks", "[]"))
        if len(hooks) != len(self.hooks):
            raise CheckpointError(f"{path}: the state of {len(hooks)} hooks for the {len(self.hooks)} "
                                  f"hooks of this trainer")
        for k, (hook, state) in enumerate(zip(self.hooks, hooks)):
            hook.load_state_dict(_join_state(f"hooks.{k}.", state, tensors))
        self.step = metadata_json(path, metadata, "step", int)
        self.history = TrainHistory.from_dict(json.loads(metadata.get("history", "{}")))


def _term_value(term) -> float:
    """A term of the loss as a number: a Tensor's value, a number as it is, NaN for None."""
    if term is None:
        return math.nan
    return term.item() if isinstance(term, Tensor) else float(term)


def _metrics_text(metrics: dict[str, float] | None) -> str:
    """`` | val 3.2100 (ppl 24.8)`` for a validation loss, `` | name value`` for other numbers."""
    if not metrics:
        return ""
    parts = []
    for name, value in metrics.items():
        if name == "val_loss":
            parts.append(f" | val {value:.4f} (ppl {math.exp(value):.1f})")
        else:
            parts.append(f" | {name.replace('_', ' ')} {value:.4g}")
    return "".join(parts)


def _split_state(prefix: str, state: dict, tensors: dict[str, np.ndarray]) -> dict:
    """The JSON-able part of ``state``; its arrays go into ``tensors`` under ``prefix``."""
    plain = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            tensors[prefix + key] = value
        else:
            plain[key] = value
    return plain


def _join_state(prefix: str, plain: dict, tensors: dict[str, np.ndarray]) -> dict:
    return {**plain, **_section(tensors, prefix)}


def _generators(trainer: Trainer) -> list[np.random.Generator]:
    """The batch sources' generators, then every distinct generator held by the model's modules
    (dropout), in tree order."""
    found, seen = [], set()
    candidates = list(trainer.batches.generators())
    for module in trainer.model.modules():
        candidates.extend(v for v in vars(module).values() if isinstance(v, np.random.Generator))
    for generator in candidates:
        if id(generator) not in seen:
            seen.add(id(generator))
            found.append(generator)
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
    family = metadata.get("model_family", "GPT")   # checkpoints written before families were recorded hold GPTs
    if family != "GPT":
        raise CheckpointError(f"{path}: the checkpoint's model family is {family}, not GPT; build that model "
                              f"from the stored config and load its weights instead")
    model = GPT(config_from_metadata(path, metadata, "model_config", GPTConfig), dtype=dtype)
    state = _section(tensors, "model.")
    check_state(path, state, model.state_dict())
    model.load_state_dict(state)
    model.eval()
    return model, metadata
