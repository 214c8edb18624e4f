"""Calibration: what the inputs of each Linear layer look like (lesson 13).

Quantizing activations needs their range. ``calibrate`` runs a model on a few batches and records,
at the input of every Linear (or QuantizedLinear), the largest |x| overall and per input channel.
A static int8 scheme then uses one scale per layer, s = max|x| / 127, and clips whatever a later
input exceeds; a dynamic scheme measures the scale of each token as it goes and needs no
calibration. The per-channel ranges show *outliers*: channels whose range is far above the
others, which coarsen a scale shared across channels for all of them.

The recording (``run_observed``) swaps each layer for a small wrapper module for the duration of
the run and puts the original back afterwards, even if a batch fails; GPTQ and AWQ record their
calibration inputs with it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from ..model.nn import Linear, Module
from .quantize import QuantizedLinear
from ..core.tensor import Tensor


@dataclass
class ActivationStats:
    """The inputs one Linear layer received during ``calibrate``."""

    absmax: float                  # max |x| over every entry
    channel_absmax: np.ndarray     # (in_features,) max |x| per input channel
    tokens: int                    # rows seen

    @property
    def outlier_ratio(self) -> float:
        """Largest channel range over the median one: how far one channel stretches a shared scale."""
        return float(self.channel_absmax.max() / max(np.median(self.channel_absmax), 1e-12))


class _Observed(Module):
    """Stands in for a layer during a recording run: hands its input to ``see``, then calls it."""

    def __init__(self, inner: Module, see: Callable[[np.ndarray], None]):
        self.inner, self.see = inner, see

    def forward(self, x: Tensor) -> Tensor:
        self.see(x.data)
        return self.inner(x)


def run_observed(model: Module, observers: dict[str, Callable[[np.ndarray], None]],
                 batches: Iterable[np.ndarray]) -> None:
    """Run ``model`` on ``batches`` (eval mode, no graph), handing the input array of each named
    layer to its observer on every call. The layers are put back afterwards, even if a batch fails:
    the one recording loop behind ``calibrate``, GPTQ's Hessians and AWQ's activation samples."""
    originals = {name: model.get_submodule(name) for name in observers}
    try:
        for name, layer in originals.items():
            model.set_submodule(name, _Observed(layer, observers[name]))
        with model.inference():
            for batch in batches:
                model(batch)
    finally:
        for name, layer in originals.items():
            model.set_submodule(name, layer)


def calibrate(model: Module, batches: Iterable[np.ndarray]) -> dict[str, ActivationStats]:
    """Run ``model`` on a few batches of token ids (eval mode, no graph) and return the input
    statistics of every Linear and QuantizedLinear by name. The model is left as it was."""
    names = [name for name, m in model.named_modules() if isinstance(m, (Linear, QuantizedLinear))]
    if not names:
        raise ValueError(f"{type(model).__name__} has no Linear layer to calibrate")
    stats: dict[str, ActivationStats] = {}

    def observer(name: str) -> Callable[[np.ndarray], None]:
        def see(x: np.ndarray) -> None:
            a = np.abs(x.reshape(-1, x.shape[-1]))            # (N, in)
            channel = a.max(axis=0)
            old = stats.get(name)
            if old is not None:
                channel = np.maximum(channel, old.channel_absmax)
            stats[name] = ActivationStats(float(channel.max()), channel, len(a) + (old.tokens if old else 0))
        return see

    run_observed(model, {name: observer(name) for name in names}, batches)
    if not stats:
        raise ValueError("calibrate: no batch was given")
    return stats
