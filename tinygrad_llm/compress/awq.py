"""AWQ: scale the salient input channels up before rounding (lesson 16).

Unlike ``gptq``, which corrects rounding errors after the fact, AWQ (Lin et al. 2023) changes what
gets rounded. A few input channels of a layer carry much larger activations than the rest; the
weights that meet them matter most, and rounding them to a grid shared with small weights costs
the output most. Multiplying column j of W by s_j > 1 and the input channel by 1/s_j leaves the
product unchanged,

    W x = (W diag(s)) (diag(s)^-1 x),

but on the grid the scaled column is rounded relatively more finely (its group's step is set by
the group's range, which the scaled column dominates less than it gains). The scales come from
the calibration activations' mean magnitude per channel, s = mean|x|^alpha, with alpha in [0, 1)
chosen by a grid search (20 points) that minimises the layer's output error after rounding.

The 1/s on the input is folded into whatever produced it, so the model's function is unchanged
before rounding: the LayerNorm before ``attn.qkv`` and ``mlp.up`` (its weight and bias divided by
s), and the value rows of ``attn.qkv`` before ``attn.proj`` (attention mixes positions, not
channels, so scaling v's output channel j scales proj's input channel j). ``mlp.down`` reads
GELU's output, which no scale passes through unchanged: it is rounded without scales.
An optional clipping search shrinks each group's range (ratios 1.0 down to 0.5) where rounding
a few extreme weights harder lowers the output error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..core.checks import check_int, check_positive_int
from ..model.nn import Linear, Module
from .calibration import run_observed
from .gptq import GridWeights, calibration_blocks, check_grid, minmax_grid, round_to_grid

ALPHAS = tuple(np.arange(20) / 20)            # 0, 0.05, ..., 0.95
CLIP_RATIOS = tuple(1.0 - np.arange(11) / 20)  # 1.0, 0.95, ..., 0.5
MAX_ROWS = 4096                                # calibration rows kept per layer


def grid_quantize(weight: np.ndarray, bits: int, group_size: int,
                  ratios: np.ndarray | None = None) -> GridWeights:
    """Round to nearest on the asymmetric group grid; ``ratios`` (out, groups) shrink each
    group's range [min, max] before the grid is made (1.0: no clipping)."""
    w = np.asarray(weight, dtype=np.float64)
    bits, group_size = check_grid(w, bits, group_size)
    rows, cols = w.shape
    scales, zeros, codes = [], [], []
    for k, g in enumerate(range(0, cols, group_size)):
        block = w[:, g:g + group_size]
        ratio = 1.0 if ratios is None else ratios[:, k:k + 1]
        scale, zero = minmax_grid(block * ratio, bits)   # the grid of the shrunk range
        scales.append(scale)
        zeros.append(zero)
        codes.append(round_to_grid(block, scale, zero, bits))
    return GridWeights(np.concatenate(codes, axis=1).astype(np.int8), np.stack(scales, axis=1),
                       np.stack(zeros, axis=1).astype(np.int8), bits, group_size)


def output_error(x: np.ndarray, weight: np.ndarray, approximation: np.ndarray) -> float:
    """Mean squared difference of x W^T and x W~^T over calibration rows x (N, in)."""
    difference = x @ (np.asarray(weight, dtype=np.float64) - approximation).T
    return float(np.mean(difference ** 2))


def search_scales(x: np.ndarray, weight: np.ndarray, bits: int, group_size: int,
                  alphas=ALPHAS) -> tuple[np.ndarray, float, dict[float, float]]:
    """(s, best alpha, error for every alpha): s = mean|x|^alpha per input channel, normalised so
    that max(s) min(s) = 1, the alpha whose rounded W diag(s) gives the smallest output error."""
    x = np.asarray(x, dtype=np.float64)
    W = np.asarray(weight, dtype=np.float64)
    magnitude = np.abs(x).mean(axis=0) + 1e-8
    errors, best = {}, None
    for alpha in alphas:
        s = magnitude ** alpha
        s = s / np.sqrt(s.max() * s.min())
        rounded = grid_quantize(W * s, bits, group_size).dequantize(np.float64) / s
        errors[float(alpha)] = output_error(x, W, rounded)
        if best is None or errors[float(alpha)] < errors[best[1]]:
            best = (s, float(alpha))
    return best[0], best[1], errors


def search_clipping(x: np.ndarray, weight: np.ndarray, bits: int, group_size: int,
                    ratios=CLIP_RATIOS) -> np.ndarray:
    """Per (row, group), the range ratio whose rounding gives that group the smallest output error
    (its contribution x_g w_g^T, measured on the calibration rows)."""
    x = np.asarray(x, dtype=np.float64)
    W = np.asarray(weight, dtype=np.float64)
    rows, cols = W.shape
    best = np.ones((rows, cols // group_size))
    for k, g in enumerate(range(0, cols, group_size)):
        xg, wg = x[:, g:g + group_size], W[:, g:g + group_size]
        lowest = np.full(rows, np.inf)
        for ratio in ratios:
            scale, zero = minmax_grid(wg * ratio, bits)
            rounded = scale[:, None] * (round_to_grid(wg, scale, zero, bits) - zero[:, None])
            error = np.mean((xg @ (wg - rounded).T) ** 2, axis=0)   # (rows,)
            better = error < lowest
            best[better, k], lowest[better] = ratio, error[better]
    return best


@dataclass
class AWQLayer:
    """What AWQ did to one Linear: its input scales (None: not scaled), alpha, and the grid."""

    scales: np.ndarray | None
    alpha: float | None
    grid: GridWeights


def _recorded_inputs(model: Module, layers: dict[str, Linear], batches, rng) -> dict[str, np.ndarray]:
    rows: dict[str, list] = {name: [] for name in layers}
    run_observed(model, {name: (lambda x, kept=rows[name]: kept.append(x.reshape(-1, x.shape[-1]).astype(np.float64)))
                         for name in layers}, batches)
    out = {}
    for name, parts in rows.items():
        x = np.concatenate(parts)
        out[name] = x[rng.choice(len(x), MAX_ROWS, replace=False)] if len(x) > MAX_ROWS else x
    return out


def _fold_into_norm(norm: Module, s: np.ndarray) -> None:
    norm.weight.data[...] /= s.astype(norm.weight.dtype)
    if getattr(norm, "bias", None) is not None:
        norm.bias.data[...] /= s.astype(norm.bias.dtype)


def apply_scales(model: Module, block: str, name: str, s: np.ndarray) -> None:
    """Scale input channel j of ``block.name`` by s_j and fold 1/s_j into what produces it."""
    parts = model.get_submodule(block)
    layer = model.get_submodule(f"{block}.{name}")
    if name == "attn.qkv":
        _fold_into_norm(parts.norm1, s)
    elif name == "mlp.up":
        _fold_into_norm(parts.norm2, s)
    elif name == "attn.proj":
        qkv = parts.attn.qkv
        C = layer.weight.shape[1]
        qkv.weight.data[2 * C:] /= s[:, None].astype(qkv.weight.dtype)   # the value rows
        if qkv.bias is not None:
            qkv.bias.data[2 * C:] /= s.astype(qkv.bias.dtype)
    else:
        raise ValueError(f"no scale can be folded before {name!r} (only attn.qkv, attn.proj, mlp.up)")
    layer.weight.data[...] *= s[None, :].astype(layer.weight.dtype)


SCALED = ("attn.proj", "attn.qkv", "mlp.up")   # the order in which scales are searched and folded
ROUNDED = ("attn.qkv", "attn.proj", "mlp.up", "mlp.down")


def awq_model(model: Module, batches: Iterable[np.ndarray], bits: int = 4, group_size: int = 128,
              clip: bool = False, alphas=ALPHAS, seed: int = 0) -> dict[str, AWQLayer]:
    """AWQ on every block of a GPT, block by block (each block calibrated on the model with the
    blocks before it already quantized): search and fold the scales, then round the four Linears
    (with the clipping search when ``clip``). Weights are replaced in place by their dequantized
    values, LayerNorms and value rows by their folded ones; returns what was done per layer."""
    bits = check_int("bits", bits, minimum=2, maximum=8)
    group_size = check_positive_int("group_size", group_size)
    batches, blocks = calibration_blocks(model, batches, "awq_model")
    rng = np.random.default_rng(seed)
    results: dict[str, AWQLayer] = {}
    with model.inference():
        for block in blocks:
            layers = {f"{block}.{n}": model.get_submodule(f"{block}.{n}") for n in ROUNDED}
            inputs = _recorded_inputs(model, layers, batches, rng)
            searched = {}
            for name in SCALED:
                full = f"{block}.{name}"
                s, alpha, _ = search_scales(inputs[full], layers[full].weight.data, bits, group_size, alphas)
                apply_scales(model, block, name, s)
                inputs[full] = inputs[full] / s     # what the layer now receives
                searched[full] = (s, alpha)
            for full, layer in layers.items():
                x, W = inputs[full], layer.weight.data
                ratios = search_clipping(x, W, bits, group_size) if clip else None
                grid = grid_quantize(W, bits, group_size, ratios)
                layer.weight.data[...] = grid.dequantize(layer.weight.dtype)
                s, alpha = searched.get(full, (None, None))
                results[full] = AWQLayer(s, alpha, grid)
    return results
