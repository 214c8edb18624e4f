"""The case table: every Tensor op once, with what it means in NumPy and in PyTorch.

One row drives three tests: the forward against plain NumPy and a float64 gradient check of every
input entry (test_tensor.py, test_functional.py), and values and gradients against PyTorch
(test_torch_parity.py). A row's function is written for our Tensor. Our names and keywords follow
NumPy's and PyTorch's, so the very same expression usually runs on NumPy arrays and on torch
tensors too; a row gives ``numpy=`` or ``torch=`` only where the spelling differs.

Inputs come from a fixed seed per row (derived from its name, so adding a row changes no other
row). They are kept away from kinks, where a finite difference straddles two slopes and the
check would fail for no fault of the op:

* ``apart``: distinct values on a grid 0.25 apart, shifted 0.125 off the multiples of 0.25, so
  there are no ties for max/min and no entry sits at relu's or abs's 0 or at clip bounds like 0.5;
* ``positive``: in [0.5, 2] for log, sqrt and non-integer powers (far from the pole at 0);
* ``nonzero``: |x| in [0.5, 2] for denominators.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from tinygrad_llm import Tensor, concatenate, maximum, split, stack, where
from tinygrad_llm import functional as F


class _LazyTorch:
    """``torch``, imported on first use: this table must import without PyTorch installed."""

    def __getattr__(self, name: str):
        import torch

        return getattr(torch, name)


torch = _LazyTorch()


def as_torch(array: np.ndarray):
    """A NumPy constant (index array, mask, matrix) as a torch tensor of the same dtype."""
    return torch.from_numpy(np.array(array))


# ----------------------------------------------------------------------------------------------
# Input makers: each takes the row's rng and returns one float64 array.

Maker = Callable[[np.random.Generator], np.ndarray]


def normal(*shape: int) -> Maker:
    return lambda rng: np.asarray(rng.standard_normal(shape))


def positive(*shape: int) -> Maker:
    return lambda rng: np.asarray(rng.uniform(0.5, 2.0, shape))


def nonzero(*shape: int) -> Maker:
    return lambda rng: np.asarray(rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape))


def apart(*shape: int, offset: float = 0.125) -> Maker:
    """Distinct values k/4 + offset in random order (see the module docstring)."""
    def make(rng):
        n = int(np.prod(shape))
        grid = (np.arange(n) - n // 2) * 0.25 + offset
        return rng.permutation(grid).reshape(shape)
    return make


def transposed(make: Maker) -> Maker:
    """The transpose of another maker's array: a non-contiguous view."""
    return lambda rng: make(rng).T


def strided(make: Maker) -> Maker:
    """Every other row of another maker's array: a non-contiguous view."""
    return lambda rng: make(rng)[::2]


# ----------------------------------------------------------------------------------------------
# Constants used by the rows (fixed, so the NumPy and torch versions see the same values).

_constants = np.random.default_rng(1234)
A_2x3 = _constants.standard_normal((2, 3))
A_4x2 = _constants.standard_normal((4, 2))
ROW_4 = _constants.standard_normal(4)
COLUMN_2x1 = _constants.standard_normal((2, 1))
MASK_3x4 = _constants.random((3, 4)) < 0.5
MASK_3x1 = np.array([[True], [False], [True]])
CAUSAL_4x4 = np.triu(np.ones((4, 4), dtype=bool), k=1)
REPEATED_ROWS = np.array([0, 2, 0, 3, 2])
TOKEN_IDS = np.array([[1, 4, 1, 0], [4, 4, 2, 1]])  # (B, T) = (2, 4) into a (V, D) = (5, 3) table
TARGETS_4 = np.array([1, 0, 4, 4])
TARGETS_2x3 = np.array([[2, 0, 4], [1, 1, 3]])
TARGETS_IGNORED = np.array([3, -100, 0, -100, 2])


@dataclass(frozen=True)
class Case:
    """One op: ``fn(*tensors)`` on our Tensors, the same on NumPy arrays and on torch tensors."""

    name: str
    fn: Callable
    inputs: Sequence[Maker]
    numpy: Callable | None = None     # None: ``fn`` itself runs on NumPy arrays
    torch: Callable | None = None     # None: ``fn`` itself runs on torch tensors
    composed: Callable | None = None  # the composed reference of a fused op
    keeps_dtype: bool = True          # False only for astype

    def arrays(self) -> list[np.ndarray]:
        rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        return [make(rng) for make in self.inputs]

    def numpy_fn(self) -> Callable:
        return self.numpy or self.fn

    def torch_fn(self) -> Callable:
        return self.torch or self.fn


def joined(out):
    """Ops that return several tensors (split) are checked as one flat tensor of all the pieces."""
    if not isinstance(out, (list, tuple)):
        return out
    first = out[0]
    if isinstance(first, Tensor):
        return concatenate([piece.reshape(-1) for piece in out])
    if isinstance(first, np.ndarray):
        return np.concatenate([piece.reshape(-1) for piece in out])
    return torch.cat([piece.reshape(-1) for piece in out])


# ----------------------------------------------------------------------------------------------
# Plain NumPy references for the ops NumPy has no name for


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_gelu(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def np_log_softmax(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def np_softmax(x, axis=-1):
    return np.exp(np_log_softmax(x, axis))


def np_cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    logp = np_log_softmax(logits.reshape(-1, logits.shape[-1]))
    t = targets.reshape(-1)
    valid = t != ignore_index
    nll = np.where(valid, -logp[np.arange(t.size), np.where(valid, t, 0)], 0.0)
    if reduction == "none":
        return nll.reshape(targets.shape)
    if reduction == "sum":
        return nll.sum()
    return nll.sum() / valid.sum()


def np_layer_norm(x, weight=None, bias=None, eps=1e-5):
    out = (x - x.mean(axis=-1, keepdims=True)) / np.sqrt(x.var(axis=-1, keepdims=True) + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def torch_cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    """torch wants (N, C) logits; ours take (..., C) like the GPT's (B, T, V)."""
    flat = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), as_torch(targets.reshape(-1)),
        ignore_index=ignore_index, reduction=reduction)
    return flat.reshape(targets.shape) if reduction == "none" else flat


# ----------------------------------------------------------------------------------------------
# The ops of tinygrad_llm.core.tensor

OP_CASES = [
    # --- arithmetic, with broadcasting, numbers and NumPy constants on either side
    Case("add", lambda x, y: x + y, [normal(3, 4), normal(3, 4)]),
    Case("add_broadcast_column_row", lambda x, y: x + y, [normal(3, 1), normal(1, 4)]),
    Case("add_python_number", lambda x: x + 1.5, [normal(3, 4)]),
    Case("radd_python_number", lambda x: 1.5 + x, [normal(3, 4)]),
    Case("sub_broadcast_row_vector", lambda x, y: x - y, [normal(2, 3, 4), normal(4)]),
    Case("rsub_python_number", lambda x: 2.0 - x, [normal(3, 4)]),
    Case("rsub_numpy_array", lambda x: ROW_4 - x, [normal(3, 4)], torch=lambda x: as_torch(ROW_4) - x),
    Case("sub_numpy_array", lambda x: x - ROW_4, [normal(3, 4)], torch=lambda x: x - as_torch(ROW_4)),
    Case("mul", lambda x, y: x * y, [normal(3, 4), normal(3, 4)]),
    Case("mul_broadcast_column_row", lambda x, y: x * y, [normal(3, 1), normal(1, 4)]),
    Case("mul_scalar_tensor_with_matrix", lambda s, x: s * x, [normal(), normal(3, 4)]),
    Case("rmul_python_number", lambda x: 3.0 * x, [normal(3, 4)]),
    Case("mul_input_used_twice", lambda x: x * x, [normal(3, 4)]),
    Case("input_used_in_three_places", lambda x: x * x.tanh() + x, [normal(3, 4)],
         numpy=lambda x: x * np.tanh(x) + x),
    Case("div", lambda x, y: x / y, [normal(3, 4), nonzero(3, 4)]),
    Case("div_broadcast_3d_by_column", lambda x, y: x / y, [normal(2, 3, 4), nonzero(3, 1)]),
    Case("div_python_number", lambda x: x / 4.0, [normal(3, 4)]),
    Case("rdiv_python_number", lambda x: 2.0 / x, [nonzero(3, 4)]),
    Case("neg", lambda x: -x, [normal(3, 4)]),
    Case("pow_square", lambda x: x ** 2, [normal(3, 4)]),
    Case("pow_cube", lambda x: x ** 3, [normal(3, 4)]),
    Case("pow_half", lambda x: x ** 0.5, [positive(3, 4)]),
    Case("pow_minus_one", lambda x: x ** -1, [nonzero(3, 4)]),
    Case("pow_fractional", lambda x: x ** 1.7, [positive(3, 4)]),
    Case("pow_tensor_exponent_broadcast", lambda x, p: x ** p, [positive(3, 1), normal(1, 4)]),
    Case("rpow_python_number", lambda x: 2.0 ** x, [normal(3, 4)]),

    # --- matrix products: 2-D, batched, broadcasting, 1-D operands, constants
    Case("matmul_2d", lambda a, b: a @ b, [normal(3, 4), normal(4, 2)]),
    Case("matmul_batched", lambda a, b: a @ b, [normal(2, 3, 4), normal(2, 4, 5)]),
    Case("matmul_batched_broadcast", lambda a, b: a @ b, [normal(2, 1, 3, 4), normal(5, 4, 2)]),
    Case("matmul_shared_weight_on_3d_input", lambda x, w: x @ w, [normal(2, 3, 4), normal(4, 5)]),
    Case("matmul_matrix_on_batch", lambda a, b: a @ b, [normal(3, 4), normal(2, 4, 5)]),
    Case("matmul_vector_matrix", lambda a, b: a @ b, [normal(4), normal(4, 3)]),
    Case("matmul_matrix_vector", lambda a, b: a @ b, [normal(3, 4), normal(4)]),
    Case("matmul_vector_vector", lambda a, b: a @ b, [normal(4), normal(4)]),
    Case("matmul_vector_batch", lambda a, b: a @ b, [normal(4), normal(2, 4, 3)]),
    Case("matmul_batch_vector", lambda a, b: a @ b, [normal(2, 3, 4), normal(4)]),
    Case("matmul_input_used_twice", lambda x: x @ x.T, [normal(3, 4)]),
    Case("matmul_transposed_input", lambda a, b: a @ b, [transposed(normal(4, 3)), normal(4, 2)]),
    Case("matmul_numpy_array_on_the_right", lambda x: x @ A_4x2, [normal(3, 4)],
         torch=lambda x: x @ as_torch(A_4x2)),
    Case("rmatmul_numpy_array_on_the_left", lambda x: A_2x3 @ x, [normal(3, 4)],
         torch=lambda x: as_torch(A_2x3) @ x),

    # --- reductions over axis None, int, negative int, tuple; with and without keepdims.
    # max/min inputs have no ties (apart), so the argmax is unique and the gradient smooth.
    Case("sum_all", lambda x: x.sum(), [normal(2, 3, 4)]),
    Case("sum_axis_0", lambda x: x.sum(axis=0), [normal(2, 3, 4)]),
    Case("sum_negative_axis_keepdims", lambda x: x.sum(axis=-1, keepdims=True), [normal(2, 3, 4)]),
    Case("sum_tuple_axes", lambda x: x.sum(axis=(0, 2)), [normal(2, 3, 4)]),
    Case("sum_tuple_axes_keepdims", lambda x: x.sum(axis=(0, -1), keepdims=True), [normal(2, 3, 4)]),
    Case("sum_all_keepdims", lambda x: x.sum(keepdims=True), [normal(3, 4)],
         torch=lambda x: x.sum(dim=(0, 1), keepdim=True)),
    Case("mean_all", lambda x: x.mean(), [normal(2, 3, 4)]),
    Case("mean_axis_1", lambda x: x.mean(axis=1), [normal(2, 3, 4)]),
    Case("mean_negative_axis_keepdims", lambda x: x.mean(axis=-1, keepdims=True), [normal(2, 3, 4)]),
    Case("mean_tuple_axes", lambda x: x.mean(axis=(0, 2)), [normal(2, 3, 4)]),
    Case("max_all", lambda x: x.max(), [apart(2, 3, 4)]),
    Case("max_axis_0", lambda x: x.max(axis=0), [apart(2, 3, 4)],
         torch=lambda x: torch.amax(x, dim=0)),
    Case("max_negative_axis_keepdims", lambda x: x.max(axis=-1, keepdims=True), [apart(2, 3, 4)],
         torch=lambda x: torch.amax(x, dim=-1, keepdim=True)),
    Case("max_tuple_axes", lambda x: x.max(axis=(0, 2)), [apart(2, 3, 4)],
         torch=lambda x: torch.amax(x, dim=(0, 2))),
    Case("min_all", lambda x: x.min(), [apart(2, 3, 4)]),
    Case("min_axis_1", lambda x: x.min(axis=1), [apart(2, 3, 4)],
         torch=lambda x: torch.amin(x, dim=1)),
    Case("min_tuple_axes_keepdims", lambda x: x.min(axis=(1, 2), keepdims=True), [apart(2, 3, 4)],
         torch=lambda x: torch.amin(x, dim=(1, 2), keepdim=True)),
    Case("var_all", lambda x: x.var(), [normal(2, 3, 4)],
         torch=lambda x: x.var(correction=0)),
    Case("var_axis_1", lambda x: x.var(axis=1), [normal(2, 3, 4)],
         torch=lambda x: x.var(dim=1, correction=0)),
    Case("var_negative_axis_keepdims", lambda x: x.var(axis=-1, keepdims=True), [normal(2, 3, 4)],
         torch=lambda x: x.var(dim=-1, correction=0, keepdim=True)),
    Case("var_tuple_axes_ddof_1", lambda x: x.var(axis=(0, 2), ddof=1), [normal(2, 3, 4)],
         torch=lambda x: x.var(dim=(0, 2), correction=1)),

    # --- shapes
    Case("reshape", lambda x: x.reshape(4, 6), [normal(2, 3, 4)]),
    Case("reshape_tuple_with_minus_one", lambda x: x.reshape((3, -1)), [normal(2, 3, 4)]),
    Case("reshape_transposed_input", lambda x: x.reshape(-1), [transposed(normal(4, 3))]),
    Case("flatten_from_axis_1", lambda x: x.flatten(1), [normal(2, 3, 4)],
         numpy=lambda x: x.reshape(2, 12)),
    Case("unsqueeze", lambda x: x.unsqueeze(1), [normal(3, 4)],
         numpy=lambda x: np.expand_dims(x, 1)),
    Case("squeeze_axis", lambda x: x.squeeze(1), [normal(3, 1, 4)]),
    Case("transpose_2d", lambda x: x.T, [normal(3, 4)]),
    Case("transpose_reversed_3d", lambda x: x.transpose(), [normal(2, 3, 4)],
         torch=lambda x: x.permute(2, 1, 0)),
    Case("transpose_axes", lambda x: x.transpose(2, 0, 1), [normal(2, 3, 4)],
         torch=lambda x: x.permute(2, 0, 1)),
    Case("permute_negative_axes", lambda x: x.permute(1, -1, 0), [normal(2, 3, 4)],
         numpy=lambda x: x.transpose(1, -1, 0)),
    Case("swapaxes", lambda x: x.swapaxes(0, -1), [normal(2, 3, 4)]),
    Case("expand_column", lambda x: x.expand(2, 3, 4), [normal(3, 1)],
         numpy=lambda x: np.broadcast_to(x, (2, 3, 4))),
    Case("broadcast_to_row", lambda x: x.broadcast_to((3, 4)), [normal(4)],
         numpy=lambda x: np.broadcast_to(x, (3, 4))),

    # --- indexing: views, and integer arrays whose repeated indices must add up
    Case("getitem_basic_slices", lambda x: x[1:, ::2], [normal(3, 4)]),
    Case("getitem_negative_steps", lambda x: x[::-1, 3:0:-2], [normal(3, 4)],
         torch=lambda x: x.flip(0)[:, [3, 1]]),
    Case("getitem_int_gives_scalar", lambda x: x[-1, 2], [normal(3, 4)]),
    Case("getitem_none_and_ellipsis", lambda x: x[None, ..., 1], [normal(2, 3, 4)]),
    Case("getitem_int_array_repeated", lambda x: x[REPEATED_ROWS], [normal(4, 3)],
         torch=lambda x: x[as_torch(REPEATED_ROWS)]),
    Case("getitem_embedding_lookup", lambda table: table[TOKEN_IDS], [normal(5, 3)],
         torch=lambda table: table[as_torch(TOKEN_IDS)]),
    Case("getitem_negative_int_array", lambda x: x[np.array([-1, 0, -1])], [normal(4, 3)],
         torch=lambda x: x[as_torch(np.array([3, 0, 3]))]),
    Case("getitem_int_list_repeated", lambda x: x[[2, 0, 2]], [normal(3, 4)]),
    Case("getitem_int_array_on_strided_input", lambda x: x[np.array([2, 0, 2])], [strided(normal(6, 3))],
         torch=lambda x: x[as_torch(np.array([2, 0, 2]))]),
    Case("getitem_boolean_mask", lambda x: x[MASK_3x4], [normal(3, 4)],
         torch=lambda x: x[as_torch(MASK_3x4)]),
    Case("getitem_boolean_rows", lambda x: x[np.array([True, False, True])], [normal(3, 4)],
         torch=lambda x: x[as_torch(np.array([True, False, True]))]),
    Case("getitem_int_array_then_slice", lambda x: x[np.array([0, 2, 2]), 1:3], [normal(3, 4, 2)],
         torch=lambda x: x[as_torch(np.array([0, 2, 2])), 1:3]),
    Case("getitem_slice_then_int_array", lambda x: x[1:, np.array([0, 0, 3])], [normal(3, 4)],
         torch=lambda x: x[1:, as_torch(np.array([0, 0, 3]))]),
    Case("getitem_two_int_arrays_repeated_pairs",
         lambda x: x[np.array([0, 1, 1, 0]), np.array([2, 2, 0, 2])], [normal(3, 4)],
         torch=lambda x: x[as_torch(np.array([0, 1, 1, 0])), as_torch(np.array([2, 2, 0, 2]))]),

    # --- joining and splitting
    Case("concatenate_axis_0", lambda x, y: concatenate([x, y]), [normal(2, 3), normal(1, 3)],
         numpy=lambda x, y: np.concatenate([x, y]), torch=lambda x, y: torch.cat([x, y])),
    Case("concatenate_negative_axis_with_numpy_array", lambda x: concatenate([x, COLUMN_2x1], axis=-1),
         [normal(2, 3)], numpy=lambda x: np.concatenate([x, COLUMN_2x1], axis=-1),
         torch=lambda x: torch.cat([x, as_torch(COLUMN_2x1)], dim=-1)),
    Case("concatenate_input_used_twice", lambda x, y: concatenate([x, y, x], axis=1),
         [normal(2, 3), normal(2, 1)], numpy=lambda x, y: np.concatenate([x, y, x], axis=1),
         torch=lambda x, y: torch.cat([x, y, x], dim=1)),
    Case("stack_axis_0", lambda x, y: stack([x, y]), [normal(2, 3), normal(2, 3)],
         numpy=lambda x, y: np.stack([x, y]), torch=lambda x, y: torch.stack([x, y])),
    Case("stack_negative_axis_input_used_twice", lambda x, y: stack([x, y, x], axis=-1),
         [normal(2, 3), normal(2, 3)], numpy=lambda x, y: np.stack([x, y, x], axis=-1),
         torch=lambda x, y: torch.stack([x, y, x], dim=-1)),
    Case("split_equal_sections", lambda x: split(x, 2), [normal(4, 3)],
         numpy=lambda x: np.split(x, 2), torch=lambda x: torch.tensor_split(x, 2)),
    Case("split_cut_points_method", lambda x: x.split([1, 3], axis=1), [normal(2, 5)],
         numpy=lambda x: np.split(x, [1, 3], axis=1), torch=lambda x: torch.tensor_split(x, [1, 3], dim=1)),
    Case("split_negative_axis", lambda x: split(x, 3, axis=-1), [normal(2, 6)],
         numpy=lambda x: np.split(x, 3, axis=-1), torch=lambda x: torch.tensor_split(x, 3, dim=-1)),

    # --- elementwise functions (relu and abs on apart inputs: no entry at the kink 0)
    Case("exp", lambda x: x.exp(), [normal(3, 4)], numpy=np.exp),
    Case("exp_scalar_tensor", lambda x: x.exp(), [normal()], numpy=np.exp),
    Case("log", lambda x: x.log(), [positive(3, 4)], numpy=np.log),
    Case("sqrt", lambda x: x.sqrt(), [positive(3, 4)], numpy=np.sqrt),
    Case("tanh", lambda x: x.tanh(), [normal(3, 4)], numpy=np.tanh),
    Case("tanh_strided_input", lambda x: x.tanh(), [strided(normal(6, 4))], numpy=np.tanh),
    Case("sigmoid", lambda x: x.sigmoid(), [normal(3, 4)], numpy=np_sigmoid),
    Case("relu", lambda x: x.relu(), [apart(3, 4)], numpy=lambda x: np.maximum(x, 0.0)),
    Case("gelu", lambda x: x.gelu(), [normal(3, 4)], numpy=np_gelu,
         torch=lambda x: torch.nn.functional.gelu(x, approximate="tanh")),
    Case("abs", lambda x: x.abs(), [apart(3, 4)], numpy=np.abs),

    # --- selection (clip bounds are multiples of 0.25, which apart inputs never hit)
    Case("where_tensors", lambda x, y: where(MASK_3x4, x, y), [normal(3, 4), normal(3, 4)],
         numpy=lambda x, y: np.where(MASK_3x4, x, y),
         torch=lambda x, y: torch.where(as_torch(MASK_3x4), x, y)),
    Case("where_broadcast_operands", lambda x, y: where(MASK_3x1, x, y), [normal(1, 4), normal(3, 4)],
         numpy=lambda x, y: np.where(MASK_3x1, x, y),
         torch=lambda x, y: torch.where(as_torch(MASK_3x1), x, y)),
    Case("where_python_number", lambda x: where(MASK_3x4, 0.5, x), [normal(3, 4)],
         numpy=lambda x: np.where(MASK_3x4, 0.5, x),
         torch=lambda x: torch.where(as_torch(MASK_3x4), 0.5, x)),
    Case("masked_fill", lambda x: x.masked_fill(MASK_3x4, -5.0), [normal(3, 4)],
         numpy=lambda x: np.where(MASK_3x4, -5.0, x),
         torch=lambda x: x.masked_fill(as_torch(MASK_3x4), -5.0)),
    Case("masked_fill_causal_mask_broadcast", lambda x: x.masked_fill(CAUSAL_4x4, -5.0), [normal(2, 4, 4)],
         numpy=lambda x: np.where(CAUSAL_4x4, -5.0, x),
         torch=lambda x: x.masked_fill(as_torch(CAUSAL_4x4), -5.0)),
    Case("clip_both_bounds", lambda x: x.clip(-0.5, 0.5), [apart(3, 4)]),
    Case("clip_min_only", lambda x: x.clip(min=0.25), [apart(3, 4)]),
    Case("clip_max_only", lambda x: x.clip(max=-0.5), [apart(3, 4)]),
    # the two inputs sit on grids 1/16 apart, so they never tie (maximum's kink)
    Case("maximum", lambda x, y: maximum(x, y), [apart(3, 4), apart(3, 4, offset=0.0625)],
         numpy=np.maximum, torch=lambda x, y: torch.maximum(x, y)),
    Case("maximum_broadcast_method", lambda x, y: x.maximum(y), [apart(3, 1), apart(1, 4, offset=0.0625)],
         numpy=np.maximum, torch=lambda x, y: torch.maximum(x, y)),
    Case("maximum_python_number", lambda x: maximum(x, 0.25), [apart(3, 4)],
         numpy=lambda x: np.maximum(x, 0.25), torch=lambda x: x.clamp(min=0.25)),

    # --- dtype conversion: the identity in the float64 checks, a real cast in the float32 one
    Case("astype_float64", lambda x: x.astype(np.float64), [normal(3, 4)],
         torch=lambda x: x.to(torch.float64), keeps_dtype=False),
]


# ----------------------------------------------------------------------------------------------
# The fused ops of tinygrad_llm.core.functional, each with its composed reference

FUNCTIONAL_CASES = [
    Case("softmax_last_axis", lambda x: F.softmax(x), [normal(3, 5)], numpy=np_softmax,
         torch=lambda x: torch.softmax(x, dim=-1), composed=lambda x: F.softmax_composed(x)),
    Case("softmax_axis_0", lambda x: F.softmax(x, axis=0), [normal(4, 3)],
         numpy=lambda x: np_softmax(x, axis=0), torch=lambda x: torch.softmax(x, dim=0),
         composed=lambda x: F.softmax_composed(x, axis=0)),
    Case("softmax_3d_transposed_input", lambda x: F.softmax(x), [transposed(normal(4, 3, 2))],
         numpy=np_softmax, torch=lambda x: torch.softmax(x, dim=-1),
         composed=lambda x: F.softmax_composed(x)),
    Case("log_softmax_last_axis", lambda x: F.log_softmax(x), [normal(3, 5)], numpy=np_log_softmax,
         torch=lambda x: torch.log_softmax(x, dim=-1), composed=lambda x: F.log_softmax_composed(x)),
    Case("log_softmax_axis_1_of_3d", lambda x: F.log_softmax(x, axis=1), [normal(2, 4, 3)],
         numpy=lambda x: np_log_softmax(x, axis=1), torch=lambda x: torch.log_softmax(x, dim=1),
         composed=lambda x: F.log_softmax_composed(x, axis=1)),
    Case("cross_entropy_mean", lambda x: F.cross_entropy(x, TARGETS_4), [normal(4, 5)],
         numpy=lambda x: np_cross_entropy(x, TARGETS_4),
         torch=lambda x: torch_cross_entropy(x, TARGETS_4),
         composed=lambda x: F.cross_entropy_composed(x, TARGETS_4)),
    Case("cross_entropy_sum", lambda x: F.cross_entropy(x, TARGETS_4, reduction="sum"), [normal(4, 5)],
         numpy=lambda x: np_cross_entropy(x, TARGETS_4, reduction="sum"),
         torch=lambda x: torch_cross_entropy(x, TARGETS_4, reduction="sum"),
         composed=lambda x: F.cross_entropy_composed(x, TARGETS_4, reduction="sum")),
    Case("cross_entropy_none", lambda x: F.cross_entropy(x, TARGETS_4, reduction="none"), [normal(4, 5)],
         numpy=lambda x: np_cross_entropy(x, TARGETS_4, reduction="none"),
         torch=lambda x: torch_cross_entropy(x, TARGETS_4, reduction="none"),
         composed=lambda x: F.cross_entropy_composed(x, TARGETS_4, reduction="none")),
    Case("cross_entropy_3d_logits", lambda x: F.cross_entropy(x, TARGETS_2x3), [normal(2, 3, 5)],
         numpy=lambda x: np_cross_entropy(x, TARGETS_2x3),
         torch=lambda x: torch_cross_entropy(x, TARGETS_2x3),
         composed=lambda x: F.cross_entropy_composed(x, TARGETS_2x3)),
    Case("cross_entropy_3d_logits_none", lambda x: F.cross_entropy(x, TARGETS_2x3, reduction="none"),
         [normal(2, 3, 5)], numpy=lambda x: np_cross_entropy(x, TARGETS_2x3, reduction="none"),
         torch=lambda x: torch_cross_entropy(x, TARGETS_2x3, reduction="none"),
         composed=lambda x: F.cross_entropy_composed(x, TARGETS_2x3, reduction="none")),
    Case("cross_entropy_ignore_index_mean", lambda x: F.cross_entropy(x, TARGETS_IGNORED), [normal(5, 4)],
         numpy=lambda x: np_cross_entropy(x, TARGETS_IGNORED),
         torch=lambda x: torch_cross_entropy(x, TARGETS_IGNORED),
         composed=lambda x: F.cross_entropy_composed(x, TARGETS_IGNORED)),
    Case("cross_entropy_ignore_index_none",
         lambda x: F.cross_entropy(x, TARGETS_IGNORED, reduction="none"), [normal(5, 4)],
         numpy=lambda x: np_cross_entropy(x, TARGETS_IGNORED, reduction="none"),
         torch=lambda x: torch_cross_entropy(x, TARGETS_IGNORED, reduction="none"),
         composed=lambda x: F.cross_entropy_composed(x, TARGETS_IGNORED, reduction="none")),
    Case("cross_entropy_custom_ignore_index",
         lambda x: F.cross_entropy(x, TARGETS_4, ignore_index=4, reduction="sum"), [normal(4, 5)],
         numpy=lambda x: np_cross_entropy(x, TARGETS_4, ignore_index=4, reduction="sum"),
         torch=lambda x: torch_cross_entropy(x, TARGETS_4, ignore_index=4, reduction="sum"),
         composed=lambda x: F.cross_entropy_composed(x, TARGETS_4, ignore_index=4, reduction="sum")),
    Case("layer_norm_no_affine", lambda x: F.layer_norm(x), [normal(3, 6)], numpy=np_layer_norm,
         torch=lambda x: torch.nn.functional.layer_norm(x, (6,)),
         composed=lambda x: F.layer_norm_composed(x)),
    Case("layer_norm_weight_and_bias", lambda x, w, b: F.layer_norm(x, w, b),
         [normal(2, 3, 6), normal(6), normal(6)], numpy=np_layer_norm,
         torch=lambda x, w, b: torch.nn.functional.layer_norm(x, (6,), w, b),
         composed=lambda x, w, b: F.layer_norm_composed(x, w, b)),
    Case("layer_norm_weight_only", lambda x, w: F.layer_norm(x, w), [normal(3, 6), normal(6)],
         numpy=np_layer_norm, torch=lambda x, w: torch.nn.functional.layer_norm(x, (6,), w),
         composed=lambda x, w: F.layer_norm_composed(x, w)),
    Case("layer_norm_bias_only", lambda x, b: F.layer_norm(x, bias=b), [normal(3, 6), normal(6)],
         numpy=lambda x, b: np_layer_norm(x, bias=b),
         torch=lambda x, b: torch.nn.functional.layer_norm(x, (6,), bias=b),
         composed=lambda x, b: F.layer_norm_composed(x, bias=b)),
    Case("gelu_function", lambda x: F.gelu(x), [normal(3, 4)], numpy=np_gelu,
         torch=lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
         composed=lambda x: F.gelu_composed(x)),
    Case("log_sigmoid", lambda x: F.log_sigmoid(x), [normal(3, 4)], numpy=lambda x: -np.logaddexp(0.0, -x),
         torch=lambda x: torch.nn.functional.logsigmoid(x), composed=lambda x: F.log_sigmoid_composed(x)),
    Case("log_sigmoid_wide_range", lambda x: F.log_sigmoid(x * 8.0), [normal(4, 4)],
         numpy=lambda x: -np.logaddexp(0.0, -8.0 * x),
         torch=lambda x: torch.nn.functional.logsigmoid(x * 8.0),
         composed=lambda x: F.log_sigmoid_composed(x * 8.0)),
    Case("gelu_wide_range", lambda x: F.gelu(x * 3.0), [normal(4, 4)], numpy=lambda x: np_gelu(x * 3.0),
         torch=lambda x: torch.nn.functional.gelu(x * 3.0, approximate="tanh"),
         composed=lambda x: F.gelu_composed(x * 3.0)),
]


def case_ids(cases: Sequence[Case]) -> list[str]:
    return [case.name for case in cases]
