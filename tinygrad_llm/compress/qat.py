"""Quantization-aware training: fake quantization with a straight-through estimator (lesson 13).

Post-training quantization (``quantize``) rounds weights that were never trained to be rounded. QAT puts the
rounding into the forward pass while training, so that the weights learn to sit where rounding
costs the least:

    forward:   fq(w) = s (clip(round(w / s) + z, q_lo, q_hi) - z)     quantize, then dequantize
    backward:  dL/dw = dL/dfq * 1[lo <= w <= hi],   lo = s (q_lo - z),  hi = s (q_hi - z)

round() is flat almost everywhere, so its true derivative would stop every gradient. The
straight-through estimator (Bengio et al., 2013) passes the gradient through the rounding as if
it were the identity and stops it only where the clip is active: the backward is the derivative
of the surrogate clip(w, lo, hi), which fq(w) follows to within s / 2. The float weights w (the
"latent" weights) are what the optimizer updates; fq(w) is what the layer computes with.

When the scales come from the tensor itself (absmax, or min and max) every entry lies inside
[lo, hi] and the gradient passes unchanged; the scale is treated as a constant of the step. A fixed
``scale`` (a calibrated activation range, say) clips, and blocks the gradient of what it clips.

``prepare_qat`` swaps a model's Linear and Embedding layers for QATLinear and QATEmbedding (same
Parameters, same state dict names); ``convert_qat`` swaps them back. ``quantize_model`` with the
same schemes then stores exactly the fake-quantized weights the model was trained with.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core import functional as F
from ..model.nn import Embedding, Linear, Module, Parameter, check_token_ids
from .quantize import QuantScheme, check_quantizable, float_layers, quantize
from ..core.tensor import Tensor


def fake_quantize(x: Tensor, scheme: QuantScheme, scale: float | None = None, zero_point: int = 0) -> Tensor:
    """fq(x): quantize then dequantize, in x's dtype, with a straight-through gradient (see the
    module docstring). Without ``scale`` the scales come from x with ``scheme`` (per tensor,
    channel or group). With a fixed ``scale`` (and ``zero_point``, asymmetric schemes only) the
    scheme must be per tensor; entries outside [lo, hi] are clipped and get no gradient."""
    a = x.data
    if scale is None:
        out = quantize(a, scheme).dequantize(a.dtype)
        return Tensor.from_op(out, (x,), lambda g: (g,))    # every entry is inside its block's range
    if scheme.granularity != "tensor":
        raise ValueError(f"a fixed scale is one number: it needs granularity 'tensor', got {scheme.granularity!r}")
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"the scale must be positive and finite, got {scale}")
    low, high = scheme.code_range
    if (scheme.symmetric and zero_point != 0) or not low <= zero_point <= high:
        raise ValueError(f"zero_point {zero_point} does not fit {scheme.name} (codes {low}..{high}; "
                         f"symmetric schemes have zero point 0)")
    codes = np.clip(np.rint(a / scale) + zero_point, low, high)
    out = ((codes - zero_point) * scale).astype(a.dtype)
    inside = (a >= scale * (low - zero_point)) & (a <= scale * (high - zero_point))
    return Tensor.from_op(out, (x,), lambda g: (g * inside,))


class QATLinear(Module):
    """A Linear that computes with fq(W) while training the float W: y = x fq(W)^T + b.

    It keeps the Linear's own ``weight`` and ``bias`` Parameters (not copies)."""

    def __init__(self, linear: Linear, scheme: QuantScheme):
        if not isinstance(linear, Linear):
            raise TypeError(f"QATLinear wraps a Linear, got {type(linear).__name__}")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias, self.scheme = linear.weight, linear.bias, scheme

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, fake_quantize(self.weight, self.scheme), self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, fake {self.scheme.name}"


class QATEmbedding(Module):
    """An Embedding that looks up rows of fq(W) while training the float table W.

    careful: ``weight`` is a property. The float Parameter sits in the instance dictionary under
    the name "weight" (so the state dict keeps ``token_embedding.weight`` and optimizers find it),
    but a property defined on the class wins over an instance attribute of the same name, so
    reading ``layer.weight`` returns fq(W). That is what makes a GPT's tied output head, which
    reads ``token_embedding.weight``, train through the quantization too. ``latent_weight`` is the
    float Parameter itself."""

    def __init__(self, embedding: Embedding, scheme: QuantScheme):
        if not isinstance(embedding, Embedding):
            raise TypeError(f"QATEmbedding wraps an Embedding, got {type(embedding).__name__}")
        self.num_embeddings, self.embedding_dim = embedding.num_embeddings, embedding.embedding_dim
        vars(self)["weight"] = embedding.weight
        self.scheme = scheme

    @property
    def latent_weight(self) -> Parameter:
        return vars(self)["weight"]

    @property
    def weight(self) -> Tensor:
        return fake_quantize(self.latent_weight, self.scheme)

    def forward(self, ids: np.ndarray) -> Tensor:
        ids = check_token_ids(ids, self.num_embeddings)
        return self.weight[ids]   # (..., embedding_dim)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, fake {self.scheme.name}"


def prepare_qat(model: Module, scheme: QuantScheme, embedding_scheme: QuantScheme | None = None,
                skip: Sequence[str] = ()) -> list[str]:
    """Swap every Linear (and Embedding, with ``embedding_scheme``, default ``scheme``) for its
    fake-quantized version, in place; names in ``skip`` (dotted suffixes) stay as they are.
    Schemes are checked against every layer first, so an error leaves the model unchanged."""
    embedding_scheme = embedding_scheme if embedding_scheme is not None else scheme
    layers = float_layers(model, skip)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no Linear or Embedding layer to prepare for QAT")
    for name, m in layers:
        try:
            check_quantizable(m.weight.shape, embedding_scheme if isinstance(m, Embedding) else scheme)
        except ValueError as error:
            raise ValueError(f"cannot prepare {name} for QAT: {error}") from None
    for name, m in layers:
        wrapped = QATEmbedding(m, embedding_scheme) if isinstance(m, Embedding) else QATLinear(m, scheme)
        model.set_submodule(name, wrapped)
    return [name for name, _ in layers]


def convert_qat(model: Module) -> list[str]:
    """Swap QAT layers back for plain Linear and Embedding layers holding the trained float
    Parameters; returns their names. Quantize the result with the schemes used for training."""
    names = []
    for name, m in list(model.named_modules()):
        if isinstance(m, QATLinear):
            plain = Linear(m.in_features, m.out_features, bias=m.bias is not None, dtype=m.weight.dtype)
            plain.weight, plain.bias = m.weight, m.bias
        elif isinstance(m, QATEmbedding):
            plain = Embedding(m.num_embeddings, m.embedding_dim, dtype=m.latent_weight.dtype)
            plain.weight = m.latent_weight
        else:
            continue
        model.set_submodule(name, plain)
        names.append(name)
    if not names:
        raise ValueError(f"{type(model).__name__} has no QAT layer to convert")
    return names
