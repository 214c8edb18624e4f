"""GPTQ: rounding that corrects its own error, layer by layer, from calibration data (lesson 16).

Unlike ``quantize``, which rounds every weight to its nearest code independently, GPTQ (Frantar
et al. 2022) rounds the columns of a Linear weight W (out, in) one at a time and after each one
moves the columns not yet rounded to make up for the error it made. What it minimises is the
layer's output error on calibration inputs x, not the weights' error:

    E(Q) = sum over calibration tokens of || (W - Q) x ||^2 = trace((W - Q) H (W - Q)^T),
    H = 2/n sum x x^T                     (in, in): the inputs' second moments

Rounding column i of every row by err_i = (w_i - q_i) costs err_i^2 / [H^-1]_ii, and the best
correction of the remaining columns j > i is w_j -= err_i [H^-1]_ij / [H^-1]_ii (the optimal
brain surgeon's update, restricted to the columns not yet fixed). With U the upper Cholesky
factor of H^-1, row i of U holds exactly these ratios for the remaining columns, so one
factorisation serves every step. Three details make it practical:

* damping: H += damp * mean(diag H) * I keeps H invertible when some inputs barely vary;
* blocks: columns go in blocks of ``block_size``; inside a block the update is applied column by
  column, to the other columns beyond the block once per block (``lazy batch`` updates: one
  matrix product instead of many rank-one ones, the same numbers up to rounding);
* groups: each ``group_size`` columns of a row share a scale and a zero point, measured from the
  weights as they are when the group's first column is reached (already corrected), on the
  same asymmetric min-max grid as ``quantize`` (so a 4- or 8-bit result is a ``QuantizedTensor``).
  With ``act_order`` the columns are visited by decreasing H_ii (the inputs that vary most first)
  and the groups' grids are fixed from the original weights beforehand ("static groups"), so
  that groups stay contiguous columns, as our quantized layers store them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..core.checks import check_fraction, check_int, check_positive_int
from ..model.nn import Linear, Module
from .calibration import run_observed
from .quantize import QuantizedTensor, QuantScheme, pack_int4

DEFAULT_TARGETS = ("attn.qkv", "attn.proj", "mlp.up", "mlp.down")


@dataclass
class GridWeights:
    """A weight on a b-bit asymmetric group grid: codes (out, in) in [-2^(b-1), 2^(b-1) - 1],
    scale and zero point per (row, group), and the values they stand for."""

    codes: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    bits: int
    group_size: int

    def dequantize(self, dtype=np.float32) -> np.ndarray:
        def per_entry(values):   # (out, groups) -> (out, in); careful: int8 codes minus zero points overflow int8
            return np.repeat(values.astype(dtype), self.group_size, axis=1)
        return (self.codes.astype(dtype) - per_entry(self.zero_point)) * per_entry(self.scale)

    def bits_per_weight(self) -> float:
        """Code bits plus the float32 scale and the zero point (``bits`` wide) of every group."""
        return self.bits + (32 + self.bits) / self.group_size

    def to_quantized_tensor(self) -> QuantizedTensor:
        """The same grid as a ``QuantizedTensor`` (4 and 8 bits: the widths our layers store)."""
        if self.bits not in (4, 8):
            raise ValueError(f"quantized layers store 4- or 8-bit codes; this weight has {self.bits} bits")
        scheme = QuantScheme(self.bits, "group", symmetric=False, group_size=self.group_size)
        codes = self.codes.astype(np.int8)
        return QuantizedTensor(pack_int4(codes) if self.bits == 4 else codes, self.scale.astype(np.float32),
                               self.zero_point.astype(np.int8), tuple(self.codes.shape), scheme)


def _code_range(bits: int) -> tuple[int, int]:
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def minmax_grid(w: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale and zero point per row of ``w`` (rows, k), exactly as ``quantize`` makes them for an
    asymmetric scheme: the range [min(w, 0), max(w, 0)] cut into 2^b - 1 steps."""
    qmin, qmax = _code_range(bits)
    lo = np.minimum(w.min(axis=1), 0.0)
    hi = np.maximum(w.max(axis=1), 0.0)
    scale = ((hi - lo) / (2 ** bits - 1)).astype(np.float32)
    scale[scale == 0] = 1.0
    zero = np.clip(qmin - np.rint(lo / scale), qmin, qmax)
    return scale, zero


def round_to_grid(w: np.ndarray, scale: np.ndarray, zero: np.ndarray, bits: int) -> np.ndarray:
    """Codes of ``w`` (rows,) or (rows, k) on per-row grids: clip(round(w / s) + z)."""
    qmin, qmax = _code_range(bits)
    if w.ndim == 2:
        scale, zero = scale[:, None], zero[:, None]
    return np.clip(np.rint(w / scale) + zero, qmin, qmax)


def check_grid(weight: np.ndarray, bits: int, group_size: int) -> tuple[int, int]:
    """(bits, group_size) checked for a 2-D weight whose rows the groups divide."""
    bits = check_int("bits", bits, minimum=2, maximum=8)
    group_size = check_positive_int("group_size", group_size)
    if weight.ndim != 2:
        raise ValueError(f"a weight of shape (out, in) is needed, got shape {weight.shape}")
    if weight.shape[1] % group_size:
        raise ValueError(f"group size {group_size} does not divide the {weight.shape[1]} input columns")
    return bits, group_size


def rtn(weight: np.ndarray, bits: int = 4, group_size: int = 128) -> GridWeights:
    """Round to nearest on the same grid (the baseline GPTQ is measured against)."""
    w = np.asarray(weight, dtype=np.float64)
    bits, group_size = check_grid(w, bits, group_size)
    rows, cols = w.shape
    grids = [minmax_grid(w[:, g:g + group_size], bits) for g in range(0, cols, group_size)]
    scale = np.stack([s for s, _ in grids], axis=1)
    zero = np.stack([z for _, z in grids], axis=1)
    codes = np.concatenate([round_to_grid(w[:, g:g + group_size], scale[:, k], zero[:, k], bits)
                            for k, g in enumerate(range(0, cols, group_size))], axis=1)
    return GridWeights(codes.astype(np.int8), scale, zero.astype(np.int8), bits, group_size)


class HessianAccumulator:
    """H = 2/n sum x x^T over every calibration row x seen so far (a running mean, in float64)."""

    def __init__(self, in_features: int):
        self.H = np.zeros((in_features, in_features))
        self.rows = 0

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.H.shape[0])   # (N, in)
        n = x.shape[0]
        self.H *= self.rows / (self.rows + n)
        self.rows += n
        x = x * np.sqrt(2.0 / self.rows)
        self.H += x.T @ x


def _inverse_cholesky(H: np.ndarray, damp: float, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper Cholesky factor of (H + damp mean(diag H) I)^-1; inputs that never varied (H_ii = 0)
    get H_ii = 1 and their weight column 0, as they cannot affect the output."""
    H = H.copy()
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    weight[:, dead] = 0.0
    H[np.diag_indices_from(H)] += damp * np.mean(np.diag(H))
    inverse = np.linalg.inv(np.linalg.cholesky(H))            # L^-1, with H = L L^T
    return np.linalg.cholesky(inverse.T @ inverse).T, dead    # H^-1 = U^T U, U upper


def gptq(weight: np.ndarray, H: np.ndarray, bits: int = 4, group_size: int = 128, block_size: int = 128,
         damp: float = 0.01, act_order: bool = False) -> GridWeights:
    """Quantize ``weight`` (out, in) with GPTQ for inputs of second moments ``H`` (in, in)."""
    W = np.array(weight, dtype=np.float64)
    bits, group_size = check_grid(W, bits, group_size)
    block_size = check_positive_int("block_size", block_size)
    damp = check_fraction("damp", damp, low_open=True)
    rows, cols = W.shape
    if H.shape != (cols, cols):
        raise ValueError(f"H must be ({cols}, {cols}) for a weight with {cols} input columns, got {H.shape}")
    if act_order:   # static groups: every group's grid from the original weights
        grids = [minmax_grid(W[:, g:g + group_size], bits) for g in range(0, cols, group_size)]
        order = np.argsort(-np.diag(H), kind="stable")
    else:
        grids, order = [None] * (cols // group_size), np.arange(cols)
    W, Hp = W[:, order], H[np.ix_(order, order)]
    U, _ = _inverse_cholesky(Hp, damp, W)
    codes = np.zeros_like(W)
    scale = np.zeros((rows, cols // group_size), dtype=np.float32)
    zero = np.zeros((rows, cols // group_size))
    for start in range(0, cols, block_size):
        end = min(start + block_size, cols)
        errors = np.zeros((rows, end - start))
        for i in range(start, end):
            column = order[i]
            group = column // group_size
            if grids[group] is None:   # the first column of its group: measure the grid now
                grids[group] = minmax_grid(W[:, i:i + group_size], bits)
            s, z = grids[group]
            scale[:, group], zero[:, group] = s, z
            q = round_to_grid(W[:, i], s, z, bits)
            codes[:, i] = q
            error = (W[:, i] - s * (q - z)) / U[i, i]
            W[:, i + 1:end] -= np.outer(error, U[i, i + 1:end])   # inside the block: one column at a time
            errors[:, i - start] = error
        W[:, end:] -= errors @ U[start:end, end:]                 # beyond it: once per block
    unpermuted = np.empty_like(codes)
    unpermuted[:, order] = codes
    return GridWeights(unpermuted.astype(np.int8), scale, zero.astype(np.int8), bits, group_size)


def output_error(weight: np.ndarray, quantized: np.ndarray, H: np.ndarray) -> float:
    """trace((W - Q) H (W - Q)^T): the summed squared output error on the calibration inputs
    (times 2/n, the scale of H)."""
    difference = np.asarray(weight, dtype=np.float64) - np.asarray(quantized, dtype=np.float64)
    return float(np.einsum("oi,ij,oj->", difference, H, difference))


def calibration_blocks(model: Module, batches: Iterable[np.ndarray], who: str) -> tuple[list, list[str]]:
    """The calibration batches as arrays and the names of the model's transformer blocks
    (``blocks.N``), in order: what a block-by-block method walks; an error names ``who``."""
    batches = [np.asarray(b) for b in batches]
    if not batches:
        raise ValueError(f"{who} needs at least one calibration batch")
    blocks = [name for name, m in model.named_modules() if name.startswith("blocks.") and name.count(".") == 1]
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no transformer blocks (blocks.N) to quantize")
    return batches, blocks


def gptq_model(model: Module, batches: Iterable[np.ndarray], bits: int = 4, group_size: int = 128,
               targets: tuple[str, ...] = DEFAULT_TARGETS, block_size: int = 128, damp: float = 0.01,
               act_order: bool = False) -> dict[str, GridWeights]:
    """Quantize the ``targets`` Linears of every block of a GPT with GPTQ, block by block: each
    block's inputs come from the model with the blocks before it already quantized, so later
    blocks correct for the earlier ones' errors too. The weights are replaced in place by their
    dequantized values (the model then computes what the quantized one will); returns the grids
    by layer name."""
    batches, blocks = calibration_blocks(model, batches, "gptq_model")
    results: dict[str, GridWeights] = {}
    with model.inference():
        for block in blocks:
            names = [f"{block}.{t}" for t in targets]
            layers = {name: model.get_submodule(name) for name in names}
            accumulators = {name: HessianAccumulator(layer.weight.shape[1]) for name, layer in layers.items()}
            run_observed(model, {name: accumulators[name].add for name in names}, batches)
            for name, layer in layers.items():
                grid = gptq(layer.weight.data, accumulators[name].H, bits, group_size, block_size, damp, act_order)
                layer.weight.data[...] = grid.dequantize(layer.weight.dtype)
                results[name] = grid
    return results


def rtn_model(model: Module, bits: int = 4, group_size: int = 128,
              targets: tuple[str, ...] = DEFAULT_TARGETS) -> dict[str, GridWeights]:
    """Round to nearest on the same layers and grid as ``gptq_model``, in place."""
    results = {}
    for name, layer in model.named_modules():
        if isinstance(layer, Linear) and any(name.endswith("." + t) for t in targets):
            grid = rtn(layer.weight.data, bits, group_size)
            layer.weight.data[...] = grid.dequantize(layer.weight.dtype)
            results[name] = grid
    return results
