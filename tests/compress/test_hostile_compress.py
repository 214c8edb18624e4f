"""Hostile inputs to compression (lessons on quantization and pruning): sparsities that would
empty a matrix, weights too large for float32 scales."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm.compress.pruning import magnitude_masks
from tinygrad_llm.compress.quantize import QuantScheme, dequantize, quantize

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("sparsity", [0.999, 0.9999, 0.99999999])
@pytest.mark.parametrize("shape", [(16, 16), (1, 3), (2, 1)])
def test_a_sparsity_below_one_never_prunes_every_weight(sparsity, shape):
    w = np.random.default_rng(0).standard_normal(shape)
    mask = magnitude_masks({"w": w}, sparsity)["w"]
    assert mask.sum() == 1 and np.abs(w[mask]).item() == np.abs(w).max()


def test_global_pruning_also_keeps_at_least_one_weight():
    weights = {"a": np.ones((4, 4)), "b": np.full((2, 2), 2.0)}
    masks = magnitude_masks(weights, 0.999, scope="global")
    assert sum(int(m.sum()) for m in masks.values()) == 1


@pytest.mark.parametrize("sparsity, error, message", [
    (1.0, ValueError, r"sparsity must be a number in \[0, 1\)"),
    (NAN, ValueError, "sparsity must be a number"),
    (-0.1, ValueError, "sparsity must be a number"),
    (True, ValueError, "sparsity must be a number"),
])
def test_bad_sparsities_are_refused(sparsity, error, message):
    with pytest.raises(error, match=message):
        magnitude_masks({"w": np.ones((4, 4))}, sparsity)


SCHEMES = [QuantScheme(), QuantScheme(8, "channel"), QuantScheme(4, "group", group_size=2),
           QuantScheme(8, "channel", symmetric=False)]


@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
@pytest.mark.parametrize("big", [4.4e40, 1e300])
def test_weights_too_large_for_float32_scales_are_refused_not_nan(scheme, big):
    w = np.array([[big, 1.0, -2.0, 3.0], [0.5, 0.25, 1.0, 2.0]])
    with pytest.raises(ValueError, match="too large for the float32 scales"):
        quantize(w, scheme)


@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
def test_the_largest_float32_weights_still_quantize_to_finite_values(scheme):
    w = np.array([[3e38, 1.0, -3e38, 3.0], [0.5, 0.25, 1.0, 2.0]])
    assert np.isfinite(dequantize(quantize(w, scheme))).all()


@pytest.mark.parametrize("value", [NAN, INF])
def test_non_finite_weights_are_refused(value):
    with pytest.raises(ValueError, match="inf or NaN"):
        quantize(np.array([[value, 1.0]]))
