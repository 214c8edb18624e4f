"""Hostile inputs to quantization (lesson 13): weights too large for float32 scales, non-finite weights."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm.compress.quantize import QuantScheme, dequantize, quantize

NAN, INF = float("nan"), float("inf")


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
