"""Pruning: removing the weights a trained model needs least (lesson 14).

*Unstructured magnitude pruning* sets to zero the fraction s (the *sparsity*) of weights with the
smallest |w|: a small weight changes the output little, so removing it costs little. The count
is exact: k = round(s n) entries go, ties broken by position. It is done per matrix
(``scope="layer"``: every matrix loses the same fraction) or over all chosen matrices at once
(``scope="global"``: one threshold, so matrices whose weights are small lose more).

The default targets are the four Linear weights of every block (``attn.qkv``, ``attn.proj``,
``mlp.up``, ``mlp.down``): 73% of the course model's parameters. Biases and LayerNorms are tiny.
The tied token embedding / output head is *not* pruned by default: it is one matrix doing two
jobs, the input table and the output projection, so every entry removed is felt twice, in what
the first block reads and in the logits of every position; it also has a scale of its own, so a
global threshold would not treat it like the block weights. Lesson 14 measures what including it
costs: pass ``targets=DEFAULT_TARGETS + ("token_embedding",)``.

A ``PruningMask`` (True = kept) must be *held* while the model trains on: the gradient of a
pruned weight is not zero, and even with it zeroed AdamW's moments m and v still carry the
momentum of the steps before pruning, so the update lr m_hat / (sqrt(v_hat) + eps) would revive
the weight. ``MaskedOptimizer`` wraps any optimizer: it zeroes the pruned gradients before the
step (so the moments of pruned entries decay away) and re-applies the mask after it (so the
weights are exactly zero, whatever the moments did). Weight decay multiplies, so 0 stays 0.

*Structured pruning* removes whole attention heads and MLP neurons, scored by weight norms, and
can shrink the Linear shapes: the model then runs faster with ordinary dense code, while
unstructured zeros only save memory, and only when stored sparsely (``CSRMatrix``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, is_dataclass
from typing import Callable, Sequence

import numpy as np

from ..core import functional as F
from ..model.state import CheckpointError, load_safetensors, save_safetensors
from ..model.nn import Dropout, Embedding, Linear, Module, Parameter
from ..train.optim import Optimizer
from ..core.tensor import Tensor
from ..train.trainer import TrainConfig, Trainer, TrainHistory

DEFAULT_TARGETS = ("attn.qkv", "attn.proj", "mlp.up", "mlp.down")  # the Linear weights of the blocks
SCOPES = ("layer", "global")
SPARSE_FORMAT = "tinygrad_llm.sparse/1"  # written into the metadata of every sparse file


# ----------------------------------------------------------------------------------------------
# Choosing the weights and the entries to remove


def check_sparsity(sparsity: float, what: str = "sparsity") -> float:
    """The fraction of weights to remove, checked: a number in [0, 1) (1 would remove them all)."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float, np.integer, np.floating)) \
            or not 0.0 <= sparsity < 1.0:
        raise ValueError(f"{what} must be a number in [0, 1) (the fraction of weights to remove), "
                         f"got {sparsity!r}")
    return float(sparsity)


def prunable_weights(model: Module, targets: Sequence[str] = DEFAULT_TARGETS) -> dict[str, Parameter]:
    """The ``.weight`` of every Linear or Embedding whose dotted name is, or ends with, a target
    (``"mlp.up"`` matches ``blocks.2.mlp.up``), by parameter name, in model order."""
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    if not targets:
        raise ValueError("no pruning targets given")
    found: dict[str, Parameter] = {}
    for name, module in model.named_modules():
        if not name or not any(name == t or name.endswith("." + t) for t in targets):
            continue
        if not isinstance(module, (Linear, Embedding)):
            raise TypeError(f"pruning target {name!r} is a {type(module).__name__}; only the weights "
                            f"of Linear and Embedding layers are pruned")
        found[f"{name}.weight"] = module.weight
    if not found:
        layers = [n for n, m in model.named_modules() if isinstance(m, (Linear, Embedding))]
        raise ValueError(f"no Linear or Embedding layer matches the pruning targets {list(targets)}; "
                         f"the model has {', '.join(layers[:6])}{', ...' if len(layers) > 6 else ''}")
    return found


def magnitude_masks(weights: dict[str, np.ndarray], sparsity: float, scope: str = "layer",
                    keep: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Boolean masks (True = kept) that remove the k = round(sparsity * n) entries of smallest
    |w|, n counting each matrix alone (``scope="layer"``) or all of them together ("global").

    Entries already removed in ``keep`` stay removed (a mask never regrows): they are counted
    first, as if their |w| were -1. Ties in |w| go by position, so the result is deterministic.

    >>> masks = magnitude_masks({"w": np.array([[0.5, -0.1], [0.3, -2.0]])}, 0.5)
    >>> masks["w"]
    array([[ True, False],
           [False,  True]])
    """
    sparsity = check_sparsity(sparsity)
    if scope not in SCOPES:
        raise ValueError(f"pruning scope must be one of {SCOPES}, got {scope!r}")
    scores = {}
    for name, w in weights.items():
        score = np.abs(np.asarray(w, dtype=np.float64)).reshape(-1)
        if keep is not None:
            if keep[name].shape != np.shape(w):
                raise ValueError(f"mask of {name} has shape {keep[name].shape}, its weight {np.shape(w)}")
            score[~keep[name].reshape(-1)] = -1.0
        scores[name] = score
    groups = [[name] for name in scores] if scope == "layer" else [list(scores)]
    masks = {}
    for names in groups:
        score = np.concatenate([scores[name] for name in names])
        k = int(round(sparsity * score.size))
        already = int(np.sum(score < 0))
        if already > k:
            raise ValueError(f"{', '.join(names) if scope == 'layer' else 'the targets'} already have "
                             f"{already / score.size:.1%} of their weights pruned, more than the target "
                             f"{sparsity:.1%}; a pruning mask never brings weights back")
        kept = np.ones(score.size, dtype=bool)
        kept[np.argsort(score, kind="stable")[:k]] = False
        for name, part in zip(names, np.split(kept, np.cumsum([scores[n].size for n in names])[:-1])):
            masks[name] = part.reshape(np.shape(weights[name]))
    return masks


# ----------------------------------------------------------------------------------------------
# The mask, and holding it through training


class PruningMask:
    """Which entries of the chosen weights are kept (True) or pruned (False), for one model.

    ``prune`` raises the sparsity by magnitude and zeroes the removed weights; ``apply`` zeroes
    them again (after an optimizer step); ``mask_gradients`` zeroes their gradients."""

    def __init__(self, model: Module, targets: Sequence[str] = DEFAULT_TARGETS):
        self.params = prunable_weights(model, targets)
        self.keep = {name: np.ones(p.shape, dtype=bool) for name, p in self.params.items()}

    def prune(self, sparsity: float, scope: str = "layer") -> PruningMask:
        """Remove the smallest-|w| weights until ``sparsity`` of them are gone (see
        ``magnitude_masks``); earlier removals stay. Returns self."""
        self.keep = magnitude_masks({n: p.data for n, p in self.params.items()}, sparsity, scope, self.keep)
        self.apply()
        return self

    def apply(self) -> None:
        """Set every pruned weight to exactly zero (+0.0)."""
        for name, p in self.params.items():
            np.copyto(p.data, 0, where=~self.keep[name])

    def mask_gradients(self) -> None:
        """Set the gradient of every pruned weight to zero (parameters without a gradient are skipped)."""
        for name, p in self.params.items():
            if p.grad is not None:
                np.copyto(p.grad, 0, where=~self.keep[name])

    def pruned_are_zero(self) -> bool:
        """True when every pruned weight is exactly zero (what holding the mask guarantees)."""
        return all(not np.any(p.data[~self.keep[name]]) for name, p in self.params.items())

    @property
    def num_total(self) -> int:
        return sum(k.size for k in self.keep.values())

    @property
    def num_pruned(self) -> int:
        return sum(int(k.size - np.count_nonzero(k)) for k in self.keep.values())

    def sparsity(self) -> float:
        """Fraction of the chosen weights that are pruned."""
        return self.num_pruned / self.num_total

    def layer_sparsity(self) -> dict[str, float]:
        return {name: 1.0 - np.count_nonzero(k) / k.size for name, k in self.keep.items()}

    def report(self) -> list[dict]:
        """One row per weight: name, shape, kept, total and sparsity."""
        return [{"name": name, "shape": k.shape, "kept": int(np.count_nonzero(k)), "total": k.size,
                 "sparsity": 1.0 - np.count_nonzero(k) / k.size} for name, k in self.keep.items()]


def magnitude_prune(model: Module, sparsity: float, scope: str = "layer",
                    targets: Sequence[str] = DEFAULT_TARGETS) -> PruningMask:
    """One-shot pruning: a new ``PruningMask`` over ``targets``, pruned to ``sparsity``."""
    return PruningMask(model, targets).prune(sparsity, scope)


class MaskedOptimizer:
    """An optimizer that holds a pruning mask: each step is

        mask the gradients  ->  the wrapped optimizer's step  ->  re-apply the mask

    The second masking is the one that matters: AdamW's moments of a weight pruned mid-training
    still hold its momentum, so its update is not zero even with a zero gradient. It offers what
    the training loop uses (``step``, ``zero_grad``, ``parameters``, ``lr``, ``state_dict``), so a
    ``Trainer`` can train with it in place of its own optimizer (``hold_mask``).

    careful: a loop that clips gradients before ``step`` clips them with the pruned entries still
    in the norm; their share is small once the moments have decayed."""

    def __init__(self, optimizer: Optimizer, mask: PruningMask):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"MaskedOptimizer wraps an Optimizer, got {type(optimizer).__name__}")
        self.optimizer, self.mask = optimizer, mask

    @property
    def lr(self) -> float:
        return self.optimizer.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.optimizer.lr = value

    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups

    def parameters(self) -> list[Parameter]:
        return self.optimizer.parameters()

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def step(self) -> None:
        self.mask.mask_gradients()
        self.optimizer.step()
        self.mask.apply()

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)


def hold_mask(trainer: Trainer, mask: PruningMask) -> Trainer:
    """Make ``trainer`` keep the pruned weights of ``mask`` at zero (wraps its optimizer once)."""
    inner = trainer.optimizer
    if isinstance(inner, MaskedOptimizer):
        inner = inner.optimizer
    trainer.optimizer = MaskedOptimizer(inner, mask)
    return trainer


def finetune_pruned(model: Module, mask: PruningMask, train_tokens: np.ndarray, config: TrainConfig,
                    val_tokens: np.ndarray | None = None,
                    log: Callable[[str], None] | None = None) -> TrainHistory:
    """Train a pruned model ``config.max_steps`` steps with the mask held; back in eval mode after."""
    trainer = hold_mask(Trainer(model, train_tokens, val_tokens, config, log=log), mask)
    history = trainer.train()
    model.eval()
    return history


def sparsity_schedule(final_sparsity: float, rounds: int, initial_sparsity: float = 0.0,
                      power: float = 3.0) -> list[float]:
    """The sparsity after each of ``rounds`` pruning rounds, ramping from ``initial_sparsity``:

        s_t = s_final + (s_initial - s_final) (1 - t / rounds)^power,    t = 1 .. rounds

    (Zhu and Gupta, 2017, with power 3): large steps while many weights are redundant, small ones
    near the end where each removal hurts more. Non-decreasing; the last value is s_final.

    >>> [round(s, 4) for s in sparsity_schedule(0.8, 4)]
    [0.4625, 0.7, 0.7875, 0.8]
    """
    final_sparsity = check_sparsity(final_sparsity, "final sparsity")
    initial_sparsity = check_sparsity(initial_sparsity, "initial sparsity")
    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    if initial_sparsity > final_sparsity:
        raise ValueError(f"initial sparsity {initial_sparsity} is above the final {final_sparsity}")
    if power <= 0:
        raise ValueError(f"power must be positive, got {power}")
    return [final_sparsity + (initial_sparsity - final_sparsity) * (1 - t / rounds) ** power
            for t in range(1, rounds + 1)]


def iterative_prune(model: Module, train_tokens: np.ndarray, final_sparsity: float, rounds: int,
                    config: TrainConfig, scope: str = "layer", targets: Sequence[str] = DEFAULT_TARGETS,
                    val_tokens: np.ndarray | None = None,
                    log: Callable[[str], None] | None = None) -> tuple[PruningMask, list[dict]]:
    """Prune gradually: ``rounds`` times, prune to the next value of ``sparsity_schedule`` and
    train ``config.max_steps / rounds`` steps with the mask held. One Trainer runs through all
    rounds (one AdamW, one learning-rate schedule over ``config.max_steps``). Returns the mask and
    one record per round (sparsity, step, last training loss); the model ends in eval mode."""
    if config.max_steps < rounds:
        raise ValueError(f"{config.max_steps} training steps cannot be shared among {rounds} rounds")
    mask = PruningMask(model, targets)
    trainer = hold_mask(Trainer(model, train_tokens, val_tokens, config, log=log), mask)
    records = []
    for t, sparsity in enumerate(sparsity_schedule(final_sparsity, rounds), start=1):
        mask.prune(sparsity, scope)
        trainer.train(steps=config.max_steps * t // rounds - trainer.step)
        records.append({"round": t, "sparsity": mask.sparsity(), "step": trainer.step,
                        "train_loss": trainer.history.train_loss[-1]})
    model.eval()
    return mask, records


# ----------------------------------------------------------------------------------------------
# Structured pruning: whole attention heads and MLP neurons


def _attention_shape(attn: Module) -> tuple[int, int]:
    """(number of heads, head size) of a MultiHeadAttention or PrunedAttention."""
    return attn.n_head, attn.qkv.out_features // (3 * attn.n_head)


def head_scores(model: Module) -> list[np.ndarray]:
    """Per block, one score per head: ||W_v,h||_F ||W_proj[:, h]||_F, the norms of the weights
    that carry the head's output into the residual stream (its queries and keys only choose
    where it looks). Rows of qkv are laid out (3, n_head, head_size), columns of proj (n_head,
    head_size), as in ``MultiHeadAttention``."""
    scores = []
    for block in model.blocks:
        nh, hs = _attention_shape(block.attn)
        value = block.attn.qkv.weight.data.reshape(3, nh, hs, -1)[2]              # (nh, hs, C)
        out = block.attn.proj.weight.data.reshape(-1, nh, hs)                    # (C, nh, hs)
        scores.append(np.linalg.norm(value.reshape(nh, -1), axis=1)
                      * np.linalg.norm(out.transpose(1, 0, 2).reshape(nh, -1), axis=1))
    return scores


def neuron_scores(model: Module) -> list[np.ndarray]:
    """Per block, one score per MLP hidden neuron j: ||W_up[j, :]|| ||W_down[:, j]||, how strongly
    it can read from and write back to the residual stream."""
    return [np.linalg.norm(block.mlp.up.weight.data, axis=1)       # (4C,) rows of up
            * np.linalg.norm(block.mlp.down.weight.data, axis=0)   # (4C,) columns of down
            for block in model.blocks]


def lowest_scores(scores: list[np.ndarray], fraction: float) -> list[np.ndarray]:
    """Keep masks (True = kept) that remove round(fraction * n) lowest-scoring units of every
    layer (ties by position); at least one unit per layer is always kept."""
    fraction = check_sparsity(fraction, "fraction of units to remove")
    keeps = []
    for score in scores:
        k = min(int(round(fraction * score.size)), score.size - 1)
        keep = np.ones(score.size, dtype=bool)
        keep[np.argsort(score, kind="stable")[:k]] = False
        keeps.append(keep)
    return keeps


def _check_keeps(model: Module, keeps: list[np.ndarray], sizes: list[int], what: str) -> None:
    if len(keeps) != len(model.blocks):
        raise ValueError(f"{len(keeps)} {what} masks for a model of {len(model.blocks)} blocks")
    for i, (keep, size) in enumerate(zip(keeps, sizes)):
        keep = np.asarray(keep)
        if keep.dtype != bool or keep.shape != (size,):
            raise ValueError(f"block {i}: a {what} mask must be a bool array of shape ({size},), "
                             f"got {keep.dtype} {keep.shape}")
        if not keep.any():
            raise ValueError(f"block {i}: every {what} would be removed; keep at least one")


def _head_rows(nh: int, hs: int, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows of qkv, columns of proj) that belong to the kept heads."""
    columns = (np.arange(nh * hs).reshape(nh, hs)[keep]).reshape(-1)
    rows = (np.arange(3 * nh * hs).reshape(3, nh, hs)[:, keep]).reshape(-1)
    return rows, columns


def mask_heads(model: Module, keeps: list[np.ndarray]) -> None:
    """Remove heads by zeroing their weights in place: their q, k, v rows and biases of qkv and
    their columns of proj. With v = 0 a head's output is exactly zero, whatever it attends to."""
    _check_keeps(model, keeps, [block.attn.n_head for block in model.blocks], "head")
    for block, keep in zip(model.blocks, keeps):
        attn = block.attn
        nh, hs = _attention_shape(attn)
        rows, columns = _head_rows(nh, hs, ~np.asarray(keep))
        attn.qkv.weight.data[rows] = 0
        if attn.qkv.bias is not None:
            attn.qkv.bias.data[rows] = 0
        attn.proj.weight.data[:, columns] = 0


def mask_neurons(model: Module, keeps: list[np.ndarray]) -> None:
    """Remove MLP neurons by zeroing their rows of up (and bias) and their columns of down:
    gelu(0) = 0, so a removed neuron adds exactly nothing."""
    _check_keeps(model, keeps, [block.mlp.up.out_features for block in model.blocks], "neuron")
    for block, keep in zip(model.blocks, keeps):
        removed = ~np.asarray(keep)
        block.mlp.up.weight.data[removed] = 0
        if block.mlp.up.bias is not None:
            block.mlp.up.bias.data[removed] = 0
        block.mlp.down.weight.data[:, removed] = 0


def _sliced_linear(layer: Linear, rows: np.ndarray | None = None,
                   columns: np.ndarray | None = None) -> Linear:
    """A new, smaller Linear holding the chosen output rows / input columns of ``layer``."""
    weight = layer.weight.data
    weight = weight if rows is None else weight[rows]
    weight = weight if columns is None else weight[:, columns]
    new = Linear(weight.shape[1], weight.shape[0], bias=layer.bias is not None, dtype=weight.dtype)
    new.weight.data[...] = weight
    if layer.bias is not None:
        new.bias.data[...] = layer.bias.data if rows is None else layer.bias.data[rows]
    return new


class PrunedAttention(Module):
    """Causal self-attention that kept ``n_head`` heads of ``head_size`` each: qkv maps C to
    3 n_head head_size and proj maps n_head head_size back to C, narrower than d_model. Built by
    ``shrink_heads``; the same parameter names as ``MultiHeadAttention``.

    With a KV cache (allocated for the config's n_head heads) it uses the first n_head slots."""

    def __init__(self, qkv: Linear, proj: Linear, n_head: int, dropout_p: float,
                 rng: np.random.Generator | None = None):
        self.n_head, self.head_size = n_head, qkv.out_features // (3 * n_head)
        self.dropout_p = dropout_p
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.qkv, self.proj = qkv, proj
        self.resid_dropout = Dropout(dropout_p, self.rng)

    def forward(self, x: Tensor, mask: np.ndarray | None = None, kv: tuple | None = None) -> Tensor:
        B, T, _ = x.shape
        nh, hs = self.n_head, self.head_size
        qkv = self.qkv(x).reshape(B, T, 3, nh, hs).transpose(2, 0, 3, 1, 4)  # (3, B, nh, T, hs)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if kv is not None:
            keys, values, start = kv
            keys, values = keys[:, :nh], values[:, :nh]  # views: writes land in the cache
            keys[:, :, start:start + T] = k.data
            values[:, :, start:start + T] = v.data
            k, v = Tensor(keys[:, :, :start + T]), Tensor(values[:, :, :start + T])
        y = F.scaled_dot_product_attention(q, k, v, causal=T > 1, mask=mask, dropout_p=self.dropout_p,
                                           training=self.training, rng=self.rng)  # (B, nh, T, hs)
        return self.resid_dropout(self.proj(y.transpose(0, 2, 1, 3).reshape(B, T, nh * hs)))

    def extra_repr(self) -> str:
        return f"n_head={self.n_head}, head_size={self.head_size}"


def shrink_heads(model: Module, keeps: list[np.ndarray]) -> None:
    """Remove heads for real: every block's attention becomes a ``PrunedAttention`` with only
    the kept heads' rows of qkv and columns of proj (fewer weights, less work per token)."""
    _check_keeps(model, keeps, [block.attn.n_head for block in model.blocks], "head")
    for block, keep in zip(model.blocks, keeps):
        attn = block.attn
        nh, hs = _attention_shape(attn)
        rows, columns = _head_rows(nh, hs, np.asarray(keep))
        pruned = PrunedAttention(_sliced_linear(attn.qkv, rows=rows),
                                 _sliced_linear(attn.proj, columns=columns),
                                 int(np.sum(keep)), attn.dropout_p, attn.rng)
        pruned.train(attn.training)
        block.attn = pruned


def shrink_neurons(model: Module, keeps: list[np.ndarray]) -> None:
    """Remove MLP neurons for real: up keeps the kept rows, down the kept columns."""
    _check_keeps(model, keeps, [block.mlp.up.out_features for block in model.blocks], "neuron")
    for block, keep in zip(model.blocks, keeps):
        keep = np.asarray(keep)
        block.mlp.up = _sliced_linear(block.mlp.up, rows=keep)
        block.mlp.down = _sliced_linear(block.mlp.down, columns=keep)


def prune_structured(model: Module, head_fraction: float = 0.0, neuron_fraction: float = 0.0,
                     shrink: bool = True) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Remove the lowest-scoring ``head_fraction`` of each block's heads and ``neuron_fraction``
    of its MLP neurons (``head_scores``, ``neuron_scores``): shrunk, or zeroed in place with
    ``shrink=False`` (the same function, the full shapes). Returns the (head, neuron) keep masks."""
    head_keeps = lowest_scores(head_scores(model), head_fraction)
    neuron_keeps = lowest_scores(neuron_scores(model), neuron_fraction)
    if shrink:
        shrink_heads(model, head_keeps)
        shrink_neurons(model, neuron_keeps)
    else:
        mask_heads(model, head_keeps)
        mask_neurons(model, neuron_keeps)
    return head_keeps, neuron_keeps


# ----------------------------------------------------------------------------------------------
# Storing sparse weights: values + indices


def index_dtype(n_columns: int) -> np.dtype:
    """The smallest index type for column numbers: uint16 below 65,536 columns, else int32."""
    return np.dtype(np.uint16) if n_columns <= 1 << 16 else np.dtype(np.int32)


@dataclass(frozen=True)
class CSRMatrix:
    """Compressed sparse rows: the kept entries row by row (``values``), their column numbers
    (``col_indices``) and where each row starts (``row_ptr``: row i is entries row_ptr[i] to
    row_ptr[i+1])."""

    values: np.ndarray        # (nnz,) float
    col_indices: np.ndarray   # (nnz,) uint16 or int32 (index_dtype)
    row_ptr: np.ndarray       # (rows + 1,) int32
    shape: tuple[int, int]

    @property
    def nnz(self) -> int:
        return int(self.values.size)

    @property
    def nbytes(self) -> int:
        return self.values.nbytes + self.col_indices.nbytes + self.row_ptr.nbytes

    def to_dense(self) -> np.ndarray:
        dense = np.zeros(self.shape, dtype=self.values.dtype)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.row_ptr))
        dense[rows, self.col_indices.astype(np.int64)] = self.values
        return dense


def to_csr(dense: np.ndarray, keep: np.ndarray | None = None) -> CSRMatrix:
    """The entries of a 2-D array where ``keep`` is True (default: where it is nonzero)."""
    dense = np.asarray(dense)
    if dense.ndim != 2:
        raise ValueError(f"CSR stores 2-D matrices, got shape {dense.shape}")
    keep = dense != 0 if keep is None else np.asarray(keep, dtype=bool)
    if keep.shape != dense.shape:
        raise ValueError(f"mask of shape {keep.shape} for a matrix of shape {dense.shape}")
    rows, columns = np.nonzero(keep)  # row-major order, as CSR needs
    row_ptr = np.zeros(dense.shape[0] + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=dense.shape[0]), out=row_ptr[1:])
    return CSRMatrix(dense[rows, columns], columns.astype(index_dtype(dense.shape[1])), row_ptr, dense.shape)


def csr_bytes(shape: tuple[int, int], nnz: int, value_bytes: int = 4) -> int:
    """nnz (value + column index) + (rows + 1) int32 row starts."""
    return nnz * (value_bytes + index_dtype(shape[1]).itemsize) + (shape[0] + 1) * 4


def bitmap_bytes(shape: tuple[int, int], nnz: int, value_bytes: int = 4) -> int:
    """One bit per position (kept or not), then the kept values: ceil(rows cols / 8) + nnz values."""
    return math.ceil(shape[0] * shape[1] / 8) + nnz * value_bytes


def break_even_sparsity(shape: tuple[int, int], format: str = "csr", value_bytes: int = 4) -> float:
    """The smallest sparsity at which the sparse format takes fewer bytes than the dense matrix
    (rows cols value_bytes): sparse is smaller exactly when (n - nnz) / n >= this. CSR with uint16
    indices and float32 values needs 6 nnz + 4 (rows + 1) < 4 n, sparsity above about 1/3; a
    bitmap n / 8 + 4 nnz < 4 n, above about 1/32.

    >>> round(break_even_sparsity((384, 128)), 4), round(break_even_sparsity((384, 128), "bitmap"), 4)
    (0.3386, 0.0313)
    """
    size = {"csr": csr_bytes, "bitmap": bitmap_bytes}.get(format)
    if size is None:
        raise ValueError(f"unknown sparse format {format!r}; choose 'csr' or 'bitmap'")
    n = shape[0] * shape[1]
    dense = n * value_bytes
    per_entry = value_bytes + (index_dtype(shape[1]).itemsize if format == "csr" else 0)
    fixed = size(shape, 0, value_bytes)
    # fixed + per_entry nnz < dense holds for nnz up to ceil((dense - fixed) / per_entry) - 1
    nnz = min(n, max(0, math.ceil((dense - fixed) / per_entry) - 1))
    return 1.0 - nnz / n


def storage_bytes(model: Module, mask: PruningMask | None = None, format: str = "csr") -> int:
    """Bytes of every parameter and persistent buffer, the masked weights stored in ``format``
    ("dense", "csr" or "bitmap") and everything else dense. Each shared array counts once."""
    sizes = {"csr": csr_bytes, "bitmap": bitmap_bytes}
    if format != "dense" and format not in sizes:
        raise ValueError(f"unknown storage format {format!r}; choose 'dense', 'csr' or 'bitmap'")
    sparse_ids = set() if mask is None or format == "dense" else {id(p.data) for p in mask.params.values()}
    total = sum(a.nbytes for a in model.state_dict().values() if id(a) not in sparse_ids)
    if sparse_ids:
        for name, p in mask.params.items():
            total += sizes[format](p.shape, int(np.count_nonzero(mask.keep[name])), p.data.itemsize)
    return total


def save_sparse(model: Module, mask: PruningMask, path: str | os.PathLike) -> None:
    """Write the model to a safetensors file with the masked weights in CSR form (``<name>.values``,
    ``.col_indices``, ``.row_ptr``) and everything else dense; the metadata lists the sparse
    weights and their shapes (and the model's config when it has one)."""
    sparse = set(mask.params)
    tensors = {name: array for name, array in model.state_dict().items() if name not in sparse}
    for name, p in mask.params.items():
        csr = to_csr(p.data, mask.keep[name])
        tensors.update({f"{name}.values": csr.values, f"{name}.col_indices": csr.col_indices,
                        f"{name}.row_ptr": csr.row_ptr})
    shapes = {name: list(p.shape) for name, p in mask.params.items()}
    metadata = {"format": SPARSE_FORMAT, "sparse": json.dumps(shapes)}
    config = getattr(model, "config", None)
    if is_dataclass(config):
        metadata["model_config"] = json.dumps(asdict(config))
    save_safetensors(path, tensors, metadata)


def load_sparse(model: Module, path: str | os.PathLike) -> PruningMask:
    """Load a file written by ``save_sparse`` into ``model`` (same architecture) and return its
    mask (the stored positions are the kept ones). Corrupt or mismatched files raise
    CheckpointError naming the problem."""
    tensors, metadata = load_safetensors(path)
    if metadata.get("format") != SPARSE_FORMAT:
        raise CheckpointError(f"{path}: not a sparse model file (format {metadata.get('format')!r}, "
                              f"expected {SPARSE_FORMAT!r})")
    try:
        shapes = {name: tuple(shape) for name, shape in json.loads(metadata["sparse"]).items()}
    except (KeyError, json.JSONDecodeError, AttributeError, TypeError) as error:
        raise CheckpointError(f"{path}: corrupt sparse metadata ({error})") from None
    parts = {f"{name}.{part}" for name in shapes for part in ("values", "col_indices", "row_ptr")}
    state = {name: array for name, array in tensors.items() if name not in parts}
    keeps = {}
    for name, shape in shapes.items():
        try:
            csr = CSRMatrix(tensors[f"{name}.values"], tensors[f"{name}.col_indices"],
                            tensors[f"{name}.row_ptr"], shape)
        except KeyError as error:
            raise CheckpointError(f"{path}: sparse weight {name} is missing {error}") from None
        ptr = csr.row_ptr.astype(np.int64)
        if len(shape) != 2 or ptr.shape != (shape[0] + 1,) or ptr[0] != 0 or np.any(np.diff(ptr) < 0) \
                or ptr[-1] != csr.nnz or csr.col_indices.shape != (csr.nnz,) \
                or (csr.nnz and int(csr.col_indices.max()) >= shape[1]):
            raise CheckpointError(f"{path}: sparse weight {name} of shape {shape} has inconsistent "
                                  f"CSR arrays (row_ptr {ptr.shape}, {csr.nnz} values)")
        state[name] = csr.to_dense()
        keep = np.zeros(shape, dtype=bool)
        keep[np.repeat(np.arange(shape[0]), np.diff(ptr)), csr.col_indices.astype(np.int64)] = True
        keeps[name] = keep
    try:
        model.load_state_dict(state)
    except KeyError as error:
        raise CheckpointError(f"{path}: does not fit {type(model).__name__}: {error}") from None
    mask = PruningMask(model, [name.removesuffix(".weight") for name in shapes])
    mask.keep = keeps
    return mask
