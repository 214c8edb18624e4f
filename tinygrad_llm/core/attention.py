"""Attention (lesson 05): the causal mask and scaled dot-product attention, fused, with its composed twin.

Unlike ``functional``, whose ops each touch one array, attention combines three (queries, keys and
values) into one graph node: softmax(q kᵀ / √d + mask) v, with the backward worked out by hand.
``packed_attention`` takes q, k and v stacked as the fused projection of ``MultiHeadAttention``
makes them, so its gradient lands in that one array's layout. Causal attention runs in blocks of
query rows that only meet the keys they may see. ``scaled_dot_product_attention_composed`` is the
same maths from Tensor primitives; the tests prove the two agree in value and gradient.
"""

from __future__ import annotations

import numpy as np

from . import parallel
from .functional import dropout_mask, row_peak, softmax_composed
from .tensor import Tensor


def causal_mask(n_queries: int, n_keys: int) -> np.ndarray:
    """Boolean (n_queries, n_keys) mask, True where a query may NOT look.

    The queries are the last ``n_queries`` positions of the ``n_keys`` (with a KV cache only the
    new tokens are queries), so query i sits at position n_keys - n_queries + i and sees keys
    0 .. that position.

    >>> causal_mask(2, 3).astype(int)
    array([[0, 0, 1],
           [0, 0, 0]])
    """
    offset = n_keys - n_queries
    return np.triu(np.ones((n_queries, n_keys), dtype=bool), k=offset + 1)


# Causal attention runs in blocks of query rows: a block of queries only needs the keys up to its
# last position, so with four blocks the scores, the softmax and the four matrix products behind
# them shrink to 10/16 of the full (T, T) square. Blocks have at least this many rows, below which
# the matrix products get too small to be efficient.
ATTENTION_BLOCK = 32


def _query_blocks(n_queries: int, n_keys: int, causal: bool) -> list[tuple[int, int, int]]:
    """(first query, end of queries, end of keys) per block of query rows: four blocks, or fewer
    of ``ATTENTION_BLOCK`` rows. Query i sits at position n_keys - n_queries + i, so under a
    causal mask a block ending at query e sees keys up to n_keys - n_queries + e; without it every
    block would see all keys, so there is one."""
    size = max(ATTENTION_BLOCK, -(-n_queries // 4))
    if not causal or n_queries <= size:
        return [(0, n_queries, n_keys)]
    offset = n_keys - n_queries
    return [(s, min(s + size, n_queries), offset + min(s + size, n_queries))
            for s in range(0, n_queries, size)]


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, causal: bool = True,
                                 mask: np.ndarray | None = None, dropout_p: float = 0.0,
                                 training: bool = False, rng: np.random.Generator | None = None) -> Tensor:
    """softmax(q k^T / sqrt(d) + masks) v, fused into one node.

    Shapes: q (..., Tq, d), k and v (..., Tk, d), with Tq <= Tk under the causal mask (the queries
    are the last Tq positions); without it any Tq (cross-attention). ``mask`` (bool, broadcast to (..., Tq, Tk), True = may not attend) adds to the
    causal mask, e.g. for padding. Dropout on the attention weights uses ``rng``: one mask of
    shape (..., Tq, Tk) per call, as ``dropout_mask`` draws it.

    Backward, with S = q k^T s, P = softmax(S), P' = P * dropout, Y = P' v:
        dv = P'^T g,  dP' = g v^T,  dP = dP' * dropout,  dS = P * (dP - sum(dP * P)),
        where sum_j dP_ij P_ij = sum_d g_id Y_id (so it costs (Tq, d), not (Tq, Tk)),
        dq = dS k s,  dk = dS^T q s.
    Only P (and the dropout mask) is kept for the backward pass, not the scores. With a causal
    mask the rows go in blocks (see ``_query_blocks``), each against only the keys it may see: the
    same numbers, without computing most of the masked upper triangle.
    """
    out, attention_backward = _attention(q.data, k.data, v.data, causal, mask, dropout_p, training, rng)

    def backward(g):
        lead = out.shape[:-2]
        grads = [np.empty(lead + t.shape[-2:], dtype=out.dtype) if t.requires_grad else None
                 for t in (q, k, v)]
        attention_backward(g, *grads)
        return grads

    return Tensor.from_op(out, (q, k, v), backward)


def packed_attention(qkv: Tensor, causal: bool = True, mask: np.ndarray | None = None,
                     dropout_p: float = 0.0, training: bool = False,
                     rng: np.random.Generator | None = None) -> Tensor:
    """``scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], ...)`` for queries, keys and values
    stacked on the first axis, as a fused projection makes them: (3, ..., T, d).

    The same numbers, but one node with one gradient array, written in qkv's own memory layout.
    Three separate slices would each scatter their gradient into a zero array of qkv's full size
    and then add the three up.
    """
    if qkv.ndim < 3 or qkv.shape[0] != 3:
        raise ValueError(f"packed_attention: expected queries, keys and values stacked as (3, ..., T, d), "
                         f"got shape {qkv.shape}")
    data = qkv.data
    out, attention_backward = _attention(data[0], data[1], data[2], causal, mask, dropout_p, training, rng)

    def backward(g):
        grad = np.empty_like(data)  # in qkv's layout, so that undoing the head split is free
        attention_backward(g, grad[0], grad[1], grad[2])
        return (grad,)

    return Tensor.from_op(out, (qkv,), backward)


def _attention(qd: np.ndarray, kd: np.ndarray, vd: np.ndarray, causal: bool, mask, dropout_p: float,
               training: bool, rng):
    """The arrays of attention: (out, backward), where ``backward(g, dq, dk, dv)`` writes the
    gradients into the given arrays (of q's, k's and v's shapes, or None to skip one)."""
    # careful: only a causal mask needs Tq <= Tk (the queries are the last positions); cross-attention
    # may have more queries than keys
    if qd.shape[-1] != kd.shape[-1] or kd.shape[-2] != vd.shape[-2] or (causal and qd.shape[-2] > kd.shape[-2]):
        raise ValueError(f"attention: incompatible shapes q {qd.shape}, k {kd.shape}, v {vd.shape}")
    if not qd.dtype == kd.dtype == vd.dtype:
        raise TypeError(f"attention: dtype mismatch between q {qd.dtype}, k {kd.dtype} and v {vd.dtype}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"attention dropout must be in [0, 1), got {dropout_p}")
    n_queries, n_keys = qd.shape[-2], kd.shape[-2]
    lead = np.broadcast_shapes(qd.shape[:-2], kd.shape[:-2], vd.shape[:-2])
    scores_shape = lead + (n_queries, n_keys)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        try:
            mask = np.broadcast_to(mask, scores_shape)  # a view: sliced per block below
        except ValueError:
            raise ValueError(f"attention: mask of shape {mask.shape} does not broadcast to the "
                             f"scores' shape {scores_shape}") from None
    keep = None
    if training and dropout_p > 0.0:
        if not isinstance(rng, np.random.Generator):
            raise TypeError("attention dropout in training mode needs rng=np.random.default_rng(seed)")
        keep, keep_scale = dropout_mask(scores_shape, dropout_p, rng)
        keep_scale = np.asarray(keep_scale, dtype=qd.dtype)

    scale = np.asarray(1.0 / np.sqrt(qd.shape[-1]), dtype=qd.dtype)
    q_scaled = qd * scale  # scaling q is Tk/d times cheaper than scaling the scores
    blocks = _query_blocks(n_queries, n_keys, causal)
    out = np.empty(lead + (n_queries, vd.shape[-1]), dtype=qd.dtype)
    probabilities, used = [], []  # P and P' per block, for backward
    for s, e, ke in blocks:
        scores = q_scaled[..., s:e, :] @ np.swapaxes(kd[..., :ke, :], -1, -2)  # (..., e - s, ke)
        blocked = causal_mask(e - s, ke) if causal else None
        if mask is not None:
            blocked = mask[..., s:e, :ke] if blocked is None else (blocked | mask[..., s:e, :ke])
        if blocked is not None:
            np.copyto(scores, -np.inf, where=blocked)  # blocked broadcasts over the leading axes
        p = _softmax_rows_inplace(scores, "attention")
        p_used = p
        if keep is not None:
            p_used = np.multiply(p, keep[..., s:e, :ke])
            p_used *= keep_scale
        np.matmul(p_used, vd[..., :ke, :], out=out[..., s:e, :])
        probabilities.append(p)
        used.append(p_used)

    def backward(g, dq, dk, dv):
        # The last block sees every key, so going backwards it sets dk and dv, and the blocks
        # before it add to their leading keys.
        for i, ((s, e, ke), p, p_used) in enumerate(reversed(list(zip(blocks, probabilities, used)))):
            g_block = g[..., s:e, :]
            if dv is not None:
                _matmul_into(np.swapaxes(p_used, -1, -2), g_block, dv[..., :ke, :], add=i > 0)
            if dq is None and dk is None:
                continue
            dp = g_block @ np.swapaxes(vd[..., :ke, :], -1, -2)
            if keep is not None:
                dp *= keep[..., s:e, :ke]
                dp *= keep_scale
            # sum_j dP_ij P_ij = g_i . sum_j P'_ij v_j = g_i . out_i: a (Tq, d) product instead of
            # a (Tq, Tk) one (the same identity FlashAttention uses)
            row_sums = np.einsum("...qd,...qd->...q", g_block, out[..., s:e, :])
            # dS / scale = P (dP - row sums), in place; the scale goes to the smaller products below
            _subtract_rows_and_scale(dp, row_sums, p)
            ds = dp
            if dq is not None:
                np.matmul(ds, kd[..., :ke, :], out=dq[..., s:e, :])
                dq[..., s:e, :] *= scale
            if dk is not None:
                _matmul_into(np.swapaxes(ds, -1, -2), q_scaled[..., s:e, :], dk[..., :ke, :], add=i > 0)

    return out, backward


def _matmul_into(a: np.ndarray, b: np.ndarray, out: np.ndarray, add: bool) -> None:
    """out = a @ b, or out += a @ b."""
    if add:
        out += a @ b
    else:
        np.matmul(a, b, out=out)


def _softmax_rows_inplace(x: np.ndarray, op: str) -> np.ndarray:
    """softmax over the last axis of ``x`` (a temporary we own, overwritten), over parts of the
    rows on every core (``parallel.in_parts``)."""
    x = np.ascontiguousarray(x)  # so that the rows below are a view
    rows = x.reshape(-1, x.shape[-1])

    def part(part):
        block = rows[part]
        block -= row_peak(block, -1, op)
        np.exp(block, out=block)
        block /= block.sum(axis=-1, keepdims=True)

    parallel.in_parts(part, rows.shape[0], row_size=rows.shape[1])
    return x


def _subtract_rows_and_scale(ds: np.ndarray, row_values: np.ndarray, p: np.ndarray) -> None:
    """ds = (ds - row_values[..., None]) * p, in place, over parts of the rows on every core."""
    if not ds.flags.c_contiguous:  # the rows below would be a copy
        ds -= row_values[..., None]
        ds *= p
        return
    rows, values, weights = ds.reshape(-1, ds.shape[-1]), row_values.reshape(-1, 1), p.reshape(-1, p.shape[-1])

    def part(part):
        block = rows[part]
        block -= values[part]
        block *= weights[part]

    parallel.in_parts(part, rows.shape[0], row_size=rows.shape[1])


def scaled_dot_product_attention_composed(q: Tensor, k: Tensor, v: Tensor, causal: bool = True,
                                          mask: np.ndarray | None = None) -> Tensor:
    """Reference attention from primitives (matmul, masked_fill, softmax), without dropout."""
    scores = (q @ k.swapaxes(-1, -2)) * (1.0 / np.sqrt(q.shape[-1]))
    blocked = causal_mask(q.shape[-2], k.shape[-2]) if causal else None
    if mask is not None:
        blocked = mask if blocked is None else (blocked | np.asarray(mask, dtype=bool))
    if blocked is not None:
        scores = scores.masked_fill(np.broadcast_to(blocked, scores.shape), -np.inf)
    return softmax_composed(scores) @ v
