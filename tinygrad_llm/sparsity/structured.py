"""Structured pruning: whole attention heads and MLP neurons (lesson 14).

Unlike ``pruning``, which zeroes single weights wherever they are smallest, this module removes
whole attention heads and MLP neurons, scored by weight norms. Masking keeps the shapes (the
removed rows and columns are zero); shrinking cuts them out of the Linear layers, so the smaller
model runs faster with ordinary dense code, while unstructured zeros only save memory, and only
when stored sparsely (``sparse``).
"""


from __future__ import annotations


import numpy as np

from ..core.attention import scaled_dot_product_attention
from ..model.nn import Dropout, Linear, Module
from ..core.tensor import Tensor
from .pruning import check_sparsity


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
        y = scaled_dot_product_attention(q, k, v, causal=T > 1, mask=mask, dropout_p=self.dropout_p,
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
