"""Functions built on the Tensor: softmax, cross-entropy, layer norm, GELU, dropout, linear (lesson 01;
layer norm and GELU are used from lesson 06, attention has its own module, ``attention``).

Each hot function exists twice:

* a *fused* op (``softmax``, ``log_softmax``, ``cross_entropy``, ``layer_norm``, ``gelu``): one
  graph node whose forward is a few NumPy calls and whose backward is the derivative worked out
  by hand. One node instead of ten means less Python overhead, fewer temporary arrays kept alive
  for the backward pass, and a numerically stable formula (the max-shift of softmax);
* a *composed* reference (``softmax_composed`` ...), the same maths written with Tensor
  primitives, so its gradient comes from the engine for free. It is slower, but there is
  nothing in it to get wrong; the tests prove that both versions agree in value and gradient.
"""

from __future__ import annotations

import numpy as np

from . import parallel
from .tensor import Tensor

_GELU_C = float(np.sqrt(2.0 / np.pi))


def _reduction_axis(x: Tensor, axis: int) -> int:
    if x.ndim == 0:
        raise ValueError("softmax needs at least a 1-D tensor")
    return axis % x.ndim


def row_peak(x: np.ndarray, axis: int, op: str) -> np.ndarray:
    """max(x) along ``axis`` (kept), or a clear error for a row that is entirely -inf or empty."""
    if x.shape[axis] == 0:
        raise ValueError(f"{op}: axis {axis} has length 0 (shape {x.shape}), so there is no "
                         f"distribution over it")
    peak = x.max(axis=axis, keepdims=True)
    if np.isneginf(peak).any():
        raise ValueError(f"{op}: a row is entirely -inf (every position masked), so it has no "
                         f"probability distribution")
    return peak


def _shifted(x: np.ndarray, axis: int, op: str) -> np.ndarray:
    """x - max(x): softmax is unchanged by a shift, and after it exp() cannot overflow."""
    return x - row_peak(x, axis, op)


# ----------------------------------------------------------------------------------------------
# softmax and log_softmax


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """p_i = exp(x_i) / sum_j exp(x_j), fused.

    Backward: dp_i/dx_j = p_i (delta_ij - p_j), so dx = p * (g - sum(g * p)).
    -inf entries (masked positions) get probability 0; a row that is all -inf raises.
    """
    axis = _reduction_axis(x, axis)
    e = np.exp(_shifted(x.data, axis, "softmax"))
    p = e / e.sum(axis=axis, keepdims=True)

    def backward(g):
        return (p * (g - (g * p).sum(axis=axis, keepdims=True)),)

    return Tensor.from_op(p, (x,), backward)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log p_i = x_i - logsumexp(x), fused; stable for logits of 1e4 and for -inf masks.

    Backward: d log p_i / dx_j = delta_ij - p_j, so dx = g - p * sum(g).
    """
    axis = _reduction_axis(x, axis)
    shifted = _shifted(x.data, axis, "log_softmax")
    e = np.exp(shifted)
    total = e.sum(axis=axis, keepdims=True)
    out = shifted - np.log(total)

    def backward(g):
        return (g - (e / total) * g.sum(axis=axis, keepdims=True),)

    return Tensor.from_op(out, (x,), backward)


def softmax_composed(x: Tensor, axis: int = -1) -> Tensor:
    """Reference softmax from primitives (exp, sum, division)."""
    e = (x - x.data.max(axis=axis, keepdims=True)).exp()
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax_composed(x: Tensor, axis: int = -1) -> Tensor:
    """Reference log-softmax from primitives."""
    shifted = x - x.data.max(axis=axis, keepdims=True)
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()


# ----------------------------------------------------------------------------------------------
# cross-entropy


_REDUCTIONS = ("mean", "sum", "none")


def _check_targets(logits: Tensor, targets, ignore_index: int, reduction: str) -> np.ndarray:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if isinstance(targets, Tensor):
        raise TypeError("cross_entropy: targets are class indices, an integer NumPy array, not a Tensor")
    targets = np.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integers (class indices), got {targets.dtype}")
    if logits.ndim < 1 or targets.shape != logits.shape[:-1]:
        raise ValueError(f"cross_entropy: logits of shape {logits.shape} need targets of shape "
                         f"{logits.shape[:-1]}, got {targets.shape}")
    n_classes = logits.shape[-1]
    used = targets[targets != ignore_index]
    if used.size and (used.min() < 0 or used.max() >= n_classes):
        bad = used[(used < 0) | (used >= n_classes)][0]
        raise IndexError(f"cross_entropy: target {bad} is out of range for {n_classes} classes "
                         f"(ignore_index is {ignore_index})")
    return targets


def cross_entropy(logits: Tensor, targets: np.ndarray, ignore_index: int = -100,
                  reduction: str = "mean") -> Tensor:
    """-log softmax(logits)[target], fused with the softmax.

    ``logits`` has shape (..., C) and ``targets`` integer class ids of shape (...). Positions
    whose target equals ``ignore_index`` contribute nothing (padding, prompt tokens).
    ``reduction``: "mean" over the positions that count, "sum", or "none" (one loss per position,
    0 at ignored ones). If every position is ignored, the mean is defined as 0 with a zero
    gradient (there is nothing to learn from), rather than 0/0 = NaN.

    Backward: d loss / d logits = softmax(logits) - onehot(target), times the reduction's weight.
    """
    targets = _check_targets(logits, targets, ignore_index, reduction)
    n_classes = logits.shape[-1]
    x = logits.data.reshape(-1, n_classes)
    t = targets.reshape(-1)
    valid = t != ignore_index
    t_safe = np.where(valid, t, 0)
    rows = np.arange(t.size)

    shifted = _shifted(x, 1, "cross_entropy")  # a new array: exp() may overwrite it
    picked = shifted[rows, t_safe]
    e = np.exp(shifted, out=shifted)
    total = e.sum(axis=1, keepdims=True)
    nll = (np.log(total[:, 0]) - picked) * valid  # (N,), 0 where ignored
    n_valid = int(valid.sum())
    dtype = x.dtype
    if reduction == "none":
        out = nll.reshape(targets.shape).astype(dtype, copy=False)
    elif reduction == "sum":
        out = np.asarray(nll.sum(), dtype=dtype)
    else:
        out = np.asarray(nll.sum() / n_valid if n_valid else 0.0, dtype=dtype)

    def backward(g):
        if reduction == "none":
            weight = g.reshape(-1, 1) * valid[:, None]
        elif reduction == "sum":
            weight = g * valid[:, None]
        else:
            weight = (g / n_valid if n_valid else 0 * g) * valid[:, None]
        grad = e / total  # softmax
        grad *= weight
        grad[rows, t_safe] -= weight[:, 0]  # minus the one-hot target
        return (grad.astype(dtype, copy=False).reshape(logits.shape),)

    return Tensor.from_op(out, (logits,), backward)


def cross_entropy_composed(logits: Tensor, targets: np.ndarray, ignore_index: int = -100,
                           reduction: str = "mean") -> Tensor:
    """Reference cross-entropy from primitives: log_softmax, an integer-array gather, a mean."""
    targets = _check_targets(logits, targets, ignore_index, reduction)
    n_classes = logits.shape[-1]
    logp = log_softmax_composed(logits.reshape(-1, n_classes))
    t = targets.reshape(-1)
    valid = t != ignore_index
    picked = logp[np.arange(t.size), np.where(valid, t, 0)]  # (N,)
    nll = -(picked * valid.astype(logits.dtype))
    if reduction == "none":
        return nll.reshape(targets.shape)
    if reduction == "sum":
        return nll.sum()
    return nll.sum() * (1.0 / max(int(valid.sum()), 1))


# ----------------------------------------------------------------------------------------------
# layer norm


def _column_sums(m: np.ndarray) -> np.ndarray:
    """Sums over the rows of a 2-D array, as ones @ m: a matrix-vector product that runs on every
    BLAS thread, about twice as fast here as ``m.sum(axis=0)``."""
    return np.ones(m.shape[0], dtype=m.dtype) @ m


def layer_norm(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise over the last axis, then scale and shift, fused:

        xhat = (x - mean) / sqrt(var + eps),   y = xhat * weight + bias

    Backward, with n entries per row, r = 1/sqrt(var + eps) and dxhat = g * weight:

        dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
        dweight = sum over rows of g * xhat,   dbias = sum over rows of g
    """
    a = x.data
    n = a.shape[-1]
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != (n,):
            raise ValueError(f"layer_norm: {name} has shape {p.shape}, expected ({n},) for input {a.shape}")
        if p is not None and p.dtype != x.dtype:
            raise TypeError(f"layer_norm: dtype mismatch between input {x.dtype} and {name} {p.dtype} "
                            f"(Tensors are never upcast silently)")
    # The row means as a matrix-vector product (on every BLAS thread), the variances as row dot
    # products (einsum): neither makes a temporary of x's size. The elementwise steps run over
    # parts of the rows on every core (``parallel.in_parts``).
    a2 = a.reshape(-1, n)
    mean = a2 @ np.full(n, 1.0 / n, dtype=a.dtype)  # (N,)
    xhat = np.empty(a2.shape, dtype=a.dtype)  # centred, then scaled in place
    rstd = np.empty((a2.shape[0], 1), dtype=a.dtype)
    out = xhat if weight is None and bias is None else np.empty_like(xhat)

    def forward_part(part):
        xh, r, o = xhat[part], rstd[part], out[part]
        np.subtract(a2[part], mean[part, None], out=xh)
        np.einsum("ij,ij->i", xh, xh, out=r[:, 0])  # n var
        r *= 1.0 / n
        r += eps
        np.sqrt(r, out=r)
        np.divide(1.0, r, out=r)
        xh *= r
        if weight is not None:
            np.multiply(xh, weight.data, out=o)
        if bias is not None:
            np.add(o if weight is not None else xh, bias.data, out=o)

    parallel.in_parts(forward_part, a2.shape[0], row_size=n)
    out = out.reshape(a.shape)
    parents = tuple(t for t in (x, weight, bias) if t is not None)

    def backward(g):
        g2 = g.reshape(-1, n)  # (N, n)
        w = weight.data if weight is not None else np.ones(n, dtype=a.dtype)
        gx = np.empty(g2.shape, dtype=np.result_type(g2, xhat))  # g * xhat: gives dweight, and
        # with w the second row mean below
        parallel.in_parts(lambda part: np.multiply(g2[part], xhat[part], out=gx[part]), g2.shape[0], row_size=n)
        grads = []
        if x.requires_grad:
            # the row means of dxhat = g w and of dxhat * xhat, as matrix-vector products
            mean_dxhat = (g2 @ w)[:, None] * (1.0 / n)  # (N, 1)
            mean_dxhat_xhat = (gx @ w)[:, None] * (1.0 / n)  # (N, 1)
            dx = np.empty(g2.shape, dtype=gx.dtype)

            def backward_part(part):
                d = dx[part]
                np.multiply(g2[part], w, out=d)
                d -= mean_dxhat[part]
                d -= xhat[part] * mean_dxhat_xhat[part]
                d *= rstd[part]

            parallel.in_parts(backward_part, g2.shape[0], row_size=n)
            grads.append(dx.reshape(a.shape))
        else:
            grads.append(None)
        if weight is not None:
            grads.append(_column_sums(gx) if weight.requires_grad else None)
        if bias is not None:
            grads.append(_column_sums(g2) if bias.requires_grad else None)
        return grads

    return Tensor.from_op(out, parents, backward)


def layer_norm_composed(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None,
                        eps: float = 1e-5) -> Tensor:
    """Reference layer norm from primitives (mean, var, sqrt, division)."""
    xhat = (x - x.mean(axis=-1, keepdims=True)) / (x.var(axis=-1, keepdims=True) + eps).sqrt()
    if weight is not None:
        xhat = xhat * weight
    if bias is not None:
        xhat = xhat + bias
    return xhat


# ----------------------------------------------------------------------------------------------
# GELU and dropout


def gelu(x: Tensor) -> Tensor:
    """GELU, tanh approximation, fused (see ``Tensor.gelu`` for the derivative)."""
    return x.gelu()


def gelu_composed(x: Tensor) -> Tensor:
    """Reference GELU from primitives: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1 + (_GELU_C * (x + 0.044715 * x ** 3)).tanh())


def log_sigmoid(x: Tensor) -> Tensor:
    """log s(x) = -log(1 + e^-x), fused and stable for any x: min(x, 0) - log1p(e^-|x|), so a
    margin of -1000 gives -1000 rather than log(0). d/dx log s(x) = 1 - s(x) = s(-x).

    The pairwise losses of the alignment lessons, -log s(r_chosen - r_rejected), are built on it;
    ``log_sigmoid_composed`` is the naive ``x.sigmoid().log()`` it is checked against."""
    a = x.data
    soft = np.log1p(np.exp(-np.abs(a)))
    out = np.minimum(a, 0) - soft
    one_minus_s = np.exp(np.minimum(-a, 0) - soft)   # s(-x) = exp(log s(-x)): no cancellation for large x

    return Tensor.from_op(out, (x,), lambda g: (g * one_minus_s,))


def log_sigmoid_composed(x: Tensor) -> Tensor:
    """Reference log-sigmoid from primitives (underflows to log 0 for very negative x)."""
    return x.sigmoid().log()


def dropout_mask(shape: tuple, p: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(keep, scale): a boolean mask that keeps each entry with probability 1 - p, and the factor
    1 / P(keep) that leaves the expected value unchanged.

    The mask compares 16-bit random integers with a threshold, which is 2-3x cheaper than drawing
    float64 uniforms; p is then rounded to a multiple of 1/65536 (an error below 2e-5), and the
    scale uses the rounded value, so the expectation is still exact.
    """
    threshold = int(round(p * 65536))
    keep = rng.integers(0, 65536, size=shape, dtype=np.uint16) >= threshold  # P = 1 - threshold/65536
    return keep, 65536.0 / (65536 - threshold)


def dropout(x: Tensor, p: float, training: bool = True, rng: np.random.Generator | None = None) -> Tensor:
    """Zero each entry with probability ``p`` and scale the rest by 1/(1-p), so the expected value
    is unchanged (inverted dropout); the identity when not training or when p == 0.

    The random numbers come from ``rng`` (a ``np.random.Generator``), so runs are reproducible.
    Backward: the same mask and scale applied to the gradient.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    if not isinstance(rng, np.random.Generator):
        raise TypeError("dropout in training mode needs rng=np.random.default_rng(seed)")
    keep, scale = dropout_mask(x.shape, p, rng)
    scale = np.asarray(scale, dtype=x.dtype)
    out = np.multiply(x.data, keep)
    out *= scale

    def backward(g):
        dx = np.multiply(g, keep)
        dx *= scale
        return (dx,)

    return Tensor.from_op(out, (x,), backward)


# ----------------------------------------------------------------------------------------------
# Linear layer and attention (lessons 05-06)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x @ weight^T + bias, fused; ``weight`` has shape (out, in) as in PyTorch.

    Backward, with the leading axes of x flattened into rows: dx = g @ W, dW = g^T @ x,
    dbias = sum of g over rows. One node instead of three (transpose, matmul, add), and the
    weight gradient is one large matrix product rather than a batch of small ones.
    """
    a, w = x.data, weight.data
    if w.ndim != 2 or a.shape[-1] != w.shape[1]:
        raise ValueError(f"linear: input of shape {a.shape} does not fit a weight of shape {w.shape} "
                         f"(expected last input dimension {w.shape[-1] if w.ndim else '?'})")
    if x.dtype != weight.dtype or (bias is not None and bias.dtype != weight.dtype):
        raise TypeError(f"linear: dtype mismatch between input {x.dtype} and weight {weight.dtype}")
    a2 = a.reshape(-1, a.shape[-1])  # (N, in): one large matrix product, not one per batch row
    out = a2 @ w.T  # (N, out)
    if bias is not None:
        out += bias.data
    out = out.reshape(a.shape[:-1] + (w.shape[0],))
    parents = (x, weight) if bias is None else (x, weight, bias)

    def backward(g):
        g2 = g.reshape(-1, g.shape[-1])  # (N, out)
        return ((g2 @ w).reshape(a.shape) if x.requires_grad else None,
                g2.T @ a2 if weight.requires_grad else None,
                _column_sums(g2) if bias is not None and bias.requires_grad else None)

    return Tensor.from_op(out, parents, backward)
