"""Hostile inputs to pruning (lesson 14): sparsities that would empty a matrix or make no sense."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm.sparsity.pruning import magnitude_masks

NAN = float("nan")


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
