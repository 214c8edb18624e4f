"""Fine-tuning a pretrained GPT to classify text (lesson 10).

A GPT turns a sequence into one vector per position (``GPT.hidden_states``, shape (B, T, C)). A
classifier needs one vector per sequence, so we *pool* (shapes: B batch, T time, C channels,
K classes):

* ``"last"``: the vector of the last real token. With causal attention it is the only position
  that has read the whole passage;
* ``"mean"``: the average over the real tokens, h = sum_t m_t h_t / sum_t m_t, with m_t = 1 for a
  real token and 0 for padding.

A new head maps that vector to K logits (a ``Linear``, or a small MLP), trained with cross-entropy.
What else trains is the choice this module is about (``freeze``):

* ``"head"``: the GPT is frozen. Its features never change, so they can be computed once under
  ``no_grad`` (``extract_features``) and the head trained on the cached (N, C) array: a step
  then costs a (B, C) x (C, K) product instead of a pass through the transformer;
* ``"top_k"``: the last k blocks and the final norm train too;
* ``"all"``: full fine-tuning.

Freezing is ``requires_grad_(False)`` on the parameters. The engine records a node only when a
parent requires grad, so below the first trainable layer no graph is built at all: frozen layers
cost no gradient memory, no saved activations and no backward compute. ``scale.memory``'s
``gradient_bytes`` and ``saved_activation_bytes`` measure that; its ``peak_memory`` traces the
allocations of a whole step.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..core import functional as F
from ..model.gpt import GPT
from ..model.nn import GELU, Dropout, Linear, Module
from ..core.tensor import Tensor
from ..scale.memory import optimizer_state_bytes
from ..train.batches import ShuffledRows, rows_of
from ..train.trainer import TrainConfig, Trainer, TrainHook

POOLINGS = ("last", "mean")
HEADS = ("linear", "mlp")
TRAINABLE = ("head", "top_k", "all")


# ----------------------------------------------------------------------------------------------
# Padding and pooling


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token sequences into ``(ids, attention_mask)``, both (B, T_max); the mask is True
    at real tokens.

        >>> ids, mask = pad_batch([[5, 6, 7], [8]])
        >>> ids.tolist(), mask.astype(int).tolist()
        ([[5, 6, 7], [8, 0, 0]], [[1, 1, 1], [1, 0, 0]])
    """
    if not sequences or any(len(s) == 0 for s in sequences):
        raise ValueError("pad_batch needs at least one sequence, and no empty ones")
    length = max(len(s) for s in sequences)
    ids = np.full((len(sequences), length), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), length), dtype=bool)
    for row, sequence in enumerate(sequences):
        ids[row, :len(sequence)] = sequence
        mask[row, :len(sequence)] = True
    return ids, mask


def check_attention_mask(attention_mask, shape: tuple[int, int]) -> np.ndarray:
    """The mask as a (B, T) bool array (True = real token), or a clear error."""
    mask = np.asarray(attention_mask)
    if mask.shape != tuple(shape):
        raise ValueError(f"attention_mask has shape {mask.shape}, the token ids {tuple(shape)}")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise ValueError("attention_mask must hold 0/1 or booleans (1 = real token, 0 = padding)")
        mask = mask.astype(bool)
    if not mask.any(axis=1).all():
        raise ValueError("every sequence needs at least one real token; a row of attention_mask is all 0")
    return mask


def padding_attention_mask(attention_mask: np.ndarray) -> np.ndarray:
    """The (B, 1, T, T) mask for ``GPT.hidden_states`` (True = may not attend): nobody attends to
    a padding key, except that every position may attend to itself.

    careful: a padding query whose every key is blocked would make a softmax over nothing (an
    error); letting it see itself keeps it defined, and no real token ever reads it."""
    pads = ~attention_mask                                              # (B, T)
    T = pads.shape[1]
    return (pads[:, None, None, :] & ~np.eye(T, dtype=bool))           # (B, 1, T, T)


def pool(hidden: Tensor, attention_mask: np.ndarray | None = None, pooling: str = "last") -> Tensor:
    """One vector per sequence from hidden states (B, T, C) -> (B, C); padding never contributes."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    B, T, C = hidden.shape
    if attention_mask is None:
        mask = np.ones((B, T), dtype=bool)
    else:
        mask = check_attention_mask(attention_mask, (B, T))
    if pooling == "last":
        last = T - 1 - np.argmax(mask[:, ::-1], axis=1)                 # (B,) last real position
        return hidden[np.arange(B), last]                               # (B, C)
    weights = mask / mask.sum(axis=1, keepdims=True)                    # (B, T), rows sum to 1
    return (hidden * weights[:, :, None]).sum(axis=1)                   # (B, C)


# ----------------------------------------------------------------------------------------------
# The classifier


class ClassifierHead(Module):
    """Features (B, C) -> logits (B, K): a ``Linear`` (``"linear"``), or Linear -> GELU -> dropout
    -> Linear with ``hidden`` units (``"mlp"``). Accepts a Tensor or a NumPy array of features
    (cached ones), converted to the head's dtype."""

    def __init__(self, in_features: int, num_classes: int, kind: str = "linear", hidden: int | None = None,
                 dropout: float = 0.0, rng: np.random.Generator | None = None, dtype=np.float32):
        if kind not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {kind!r}")
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        rng = rng if rng is not None else np.random.default_rng(0)
        self.kind = kind
        self.dtype = np.dtype(dtype)
        if kind == "linear":
            self.out = Linear(in_features, num_classes, rng=rng, dtype=dtype)
        else:
            hidden = hidden or in_features
            self.up = Linear(in_features, hidden, rng=rng, dtype=dtype, std=1 / math.sqrt(in_features))
            self.act = GELU()
            self.dropout = Dropout(dropout, rng)
            self.out = Linear(hidden, num_classes, rng=rng, dtype=dtype)

    def forward(self, features) -> Tensor:
        x = features if isinstance(features, Tensor) else Tensor(np.asarray(features, dtype=self.dtype))
        if self.kind == "mlp":
            x = self.dropout(self.act(self.up(x)))
        return self.out(x)                                              # (B, K)

    def extra_repr(self) -> str:
        return self.kind


class GPTClassifier(Module):
    """A GPT body, a pooling rule and a new head: token ids (B, T) -> class logits (B, K).

    >>> from tinygrad_llm.model.gpt import GPTConfig
    >>> gpt = GPT(GPTConfig(vocab_size=50, context_length=8, d_model=16, n_layer=1, n_head=2))
    >>> GPTClassifier(gpt, num_classes=3, pooling="mean")(np.array([[1, 2, 3]])).shape
    (1, 3)
    """

    def __init__(self, gpt: GPT, num_classes: int, pooling: str = "last", head: str = "linear",
                 hidden: int | None = None, dropout: float = 0.0, rng: np.random.Generator | None = None):
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.gpt = gpt
        self.pooling = pooling
        self.head = ClassifierHead(gpt.config.d_model, num_classes, head, hidden, dropout, rng,
                                   dtype=gpt.token_embedding.weight.dtype)

    def features(self, idx: np.ndarray, attention_mask: np.ndarray | None = None) -> Tensor:
        """The pooled vectors (B, C) that the head reads."""
        idx = np.asarray(idx)
        mask = None
        if attention_mask is not None:
            attention_mask = check_attention_mask(attention_mask, idx.shape)
            if not attention_mask.all():
                mask = padding_attention_mask(attention_mask)
        hidden = self.gpt.hidden_states(idx, mask)                      # (B, T, C)
        return pool(hidden, attention_mask, self.pooling)               # (B, C)

    def forward(self, idx: np.ndarray, attention_mask: np.ndarray | None = None) -> Tensor:
        return self.head(self.features(idx, attention_mask))           # (B, K)

    def extra_repr(self) -> str:
        return f"pooling={self.pooling}"


def freeze(classifier: GPTClassifier, trainable: str = "head", k: int = 1) -> GPTClassifier:
    """Choose what trains: the head only (``"head"``), the head with the last ``k`` blocks and the
    final norm (``"top_k"``), or everything (``"all"``). Everything else gets
    ``requires_grad_(False)``: no gradient is computed or stored for it. Returns the classifier."""
    if trainable not in TRAINABLE:
        raise ValueError(f"trainable must be one of {TRAINABLE}, got {trainable!r}")
    gpt = classifier.gpt
    n_layer = len(gpt.blocks)
    if trainable == "top_k" and not 1 <= k <= n_layer:
        raise ValueError(f"k must be between 1 and the number of blocks ({n_layer}), got {k}")
    gpt.requires_grad_(trainable == "all")
    if trainable == "top_k":
        for block in list(gpt.blocks)[n_layer - k:]:
            block.requires_grad_(True)
        gpt.final_norm.requires_grad_(True)
    classifier.head.requires_grad_(True)
    return classifier


# ----------------------------------------------------------------------------------------------
# Inference and cached features


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def extract_features(classifier: GPTClassifier, inputs: np.ndarray, attention_mask: np.ndarray | None = None,
                     batch_size: int = 64) -> np.ndarray:
    """Pooled features (N, C) of every sequence, in eval mode and under ``no_grad``: computed once,
    a frozen body's features can train a head for any number of steps."""
    with classifier.inference():
        return np.concatenate([
            classifier.features(inputs[rows],
                                None if attention_mask is None else attention_mask[rows]).data
            for rows in _batches(len(inputs), batch_size)])


def predict_logits(model: Module, inputs: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """``model(inputs)`` in batches, eval mode, no graph: logits (N, K). ``inputs`` are token ids
    for a ``GPTClassifier``, features for a ``ClassifierHead``."""
    with model.inference():
        return np.concatenate([model(inputs[rows]).data for rows in _batches(len(inputs), batch_size)])


# ----------------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class FineTuneConfig(TrainConfig):
    """How to train a classifier: lesson 07's ``TrainConfig`` with defaults for a head or a few
    blocks (AdamW on the trainable parameters, linear warmup then cosine decay to a tenth of the
    peak rate, clipped gradients). ``train_classifier`` keeps the weights of the best validation
    accuracy (ties go to the lower validation loss)."""

    steps: int = 200
    batch_size: int = 16
    learning_rate: float = 1e-3
    min_learning_rate: float | None = None   # learning_rate / 10
    warmup_steps: int = 10
    weight_decay: float = 0.01
    betas: tuple = (0.9, 0.999)
    eval_interval: int = 20
    log_interval: int = 20


@dataclass
class FineTuneHistory:
    """What a run measured. ``seconds_per_step`` times the training steps only."""

    train_loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_step: int = 0
    seconds_per_step: float = 0.0
    optimizer_state_bytes: int = 0


def _validation(model: Module, inputs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    logits = predict_logits(model, inputs)
    loss = F.cross_entropy(Tensor(logits), labels).item()
    return float(np.mean(np.argmax(logits, axis=1) == labels)), loss


def _validation_metrics(inputs: np.ndarray, labels: np.ndarray) -> Callable[[Module], dict[str, float]]:
    """The evaluator of a classifier: validation accuracy and loss on ``(inputs, labels)``."""
    def evaluate(model: Module) -> dict[str, float]:
        accuracy, loss = _validation(model, inputs, labels)
        return {"val_accuracy": accuracy, "val_loss": loss}
    return evaluate


def classification_loss(model: Module, batch: tuple[np.ndarray, np.ndarray]) -> Tensor:
    """The objective: cross-entropy of ``model(inputs)`` (B, K) against the labels (B,)."""
    inputs, labels = batch
    return F.cross_entropy(model(inputs), labels)


class KeepBest(TrainHook):
    """Remembers the trained weights at the evaluation with the highest validation accuracy (ties:
    the lower validation loss) and puts them back when the last step is done."""

    def __init__(self, params: list):
        self.params = params
        self.key: tuple[float, float] | None = None
        self.best_step = 0
        self.weights: list[np.ndarray] | None = None

    def after_evaluate(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        key = (metrics["val_accuracy"], -metrics["val_loss"])
        if self.key is None or key > self.key:
            self.key, self.best_step = key, trainer.step
            self.weights = [p.data.copy() for p in self.params]

    def after_train(self, trainer: Trainer) -> None:
        if trainer.step >= trainer.config.steps and self.weights is not None:
            for p, saved in zip(self.params, self.weights):
                np.copyto(p.data, saved)

    def state_dict(self) -> dict:
        state = {"key": None if self.key is None else list(self.key), "best_step": self.best_step}
        state.update({f"weight.{k}": w for k, w in enumerate(self.weights or [])})
        return state

    def load_state_dict(self, state: dict) -> None:
        self.key = None if state.get("key") is None else tuple(state["key"])
        self.best_step = int(state.get("best_step", 0))
        weights = [np.array(state[f"weight.{k}"]) for k in range(len(self.params)) if f"weight.{k}" in state]
        self.weights = weights or None


def classifier_trainer(model: Module, inputs: np.ndarray, labels: np.ndarray, config: FineTuneConfig,
                       rng: np.random.Generator, val: tuple[np.ndarray, np.ndarray] | None = None,
                       log: Callable[[str], None] | None = None) -> Trainer:
    """The ``Trainer`` that ``train_classifier`` runs (see there); its hooks hold a ``KeepBest``
    when ``val`` is given."""
    labels = np.asarray(labels, dtype=np.int64)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: every parameter of the model is frozen")
    if len(inputs) != len(labels):
        raise ValueError(f"{len(inputs)} inputs but {len(labels)} labels")
    config = dataclasses.replace(config, batch_size=min(config.batch_size, len(labels)))
    rows = ShuffledRows(len(labels), rows_of(inputs, labels), rng, drop_last=True)
    evaluator = None if val is None else _validation_metrics(val[0], np.asarray(val[1], dtype=np.int64))
    hooks = [] if val is None else [KeepBest(params)]
    # the gradient norm sums over the parameters in model order, as it always has
    return Trainer(model, config=config, log=log, batches=rows, objective=classification_loss,
                   evaluator=evaluator, parameters=params, hooks=hooks)


def train_classifier(model: Module, inputs: np.ndarray, labels: np.ndarray, config: FineTuneConfig,
                     rng: np.random.Generator, val: tuple[np.ndarray, np.ndarray] | None = None,
                     log: Callable[[str], None] | None = None) -> FineTuneHistory:
    """Train the parameters of ``model`` that require grad to map ``inputs`` to ``labels``.

    ``model(inputs[batch])`` must return logits (B, K): a ``GPTClassifier`` on token ids, or a
    ``ClassifierHead`` on cached features. Batches are drawn without replacement from a fresh
    permutation (``rng``) each epoch. With ``val = (inputs, labels)`` the model is evaluated every
    ``eval_interval`` steps and at the end, and the best weights are restored. The model is left
    in eval mode. The loop is lesson 07's ``Trainer`` (``classifier_trainer``)."""
    trainer = classifier_trainer(model, inputs, labels, config, rng, val, log)
    h = trainer.train()
    model.eval()
    best = [hook.best_step for hook in trainer.hooks if isinstance(hook, KeepBest)]
    return FineTuneHistory(train_loss=list(h.train_loss), eval_steps=list(h.eval_steps),
                           val_accuracy=list(h.metrics.get("val_accuracy", [])),
                           val_loss=list(h.metrics.get("val_loss", [])), best_step=best[0] if best else 0,
                           seconds_per_step=h.seconds / trainer.config.steps,
                           optimizer_state_bytes=optimizer_state_bytes(trainer.optimizer))

