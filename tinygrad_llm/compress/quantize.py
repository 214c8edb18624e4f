"""Quantization: int8 and int4 weights with scales, and the layers that use them (lesson 13).

A float32 weight costs 4 bytes. Quantization keeps a b-bit integer code q per weight and one
float32 scale s per block of weights: the whole tensor, one output channel (a row of W), or a
group of g consecutive weights of a row. With qmax = 2^(b-1) - 1 and qmin = -2^(b-1) (127 and
-128 for int8, 7 and -8 for int4):

    symmetric (absmax):  s = max|w| / qmax,          q = clip(round(w / s), -qmax, qmax),  w ~ s q
    asymmetric:          s = (hi - lo) / (2^b - 1),  z = qmin - round(lo / s),
                         q = clip(round(w / s) + z, qmin, qmax),                          w ~ s (q - z)

with lo = min(min w, 0) and hi = max(max w, 0): the range always holds 0, which therefore has an
exact code, the zero point z. Rounding to the nearest code errs by at most s / 2, so a block's
error is set by its range: one large weight (an outlier) coarsens the step of every weight that
shares its block. Smaller blocks follow the weights more closely and cost more scales.

Symmetric codes leave qmin unused (-128 of int8), so negating a weight negates its code exactly.
int4 codes are stored two per byte (``pack_int4``).

Computing with quantized weights. ``QuantizedLinear`` dequantizes its weight on the fly,
W~ = s (q - z) in float, and multiplies as usual: the layer *stores* 1 or 1/2 byte per weight,
the arithmetic stays float. With ``activations="dynamic"`` (one scale per token, at run time) or
``"static"`` (one scale per layer, measured by ``calibration.calibrate``) the input is quantized to int8 too,
and for symmetric per-tensor or per-channel weights the product is taken on the integer codes, as
int8 hardware does:

    y[n, o] = s_x[n] s_w[o] sum_i qx[n, i] qw[o, i] + b[o]

Each product of two codes is an integer of at most 127 * qmax, so the sum over in_features of
them stays an exact integer below 2^24 when in_features * 127 * qmax < 2^24 (in_features <= 1040
for int8 weights): a float32 matrix product then computes exactly what an int32 accumulator
would, on BLAS. Wider layers use float64, exact up to 2^53.

Saving and loading quantized models is in ``quantized_checkpoint.py``; measuring activation
ranges in ``calibration.py``; fake quantization for training in ``qat.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..core import functional as F
from ..model.nn import Embedding, Linear, Module, Parameter, check_token_ids
from ..core.tensor import Tensor, is_grad_enabled
from ..finetune.lora import register_frozen_base

GRANULARITIES = ("tensor", "channel", "group")
ACTIVATION_MODES = (None, "dynamic", "static")


# ----------------------------------------------------------------------------------------------
# Schemes and quantized arrays


@dataclass(frozen=True)
class QuantScheme:
    """How to quantize a weight: ``bits`` (8 or 4), ``granularity`` ("tensor", "channel": one
    scale per row, or "group": one per ``group_size`` consecutive weights of a row) and
    ``symmetric`` (absmax) or asymmetric (with a zero point)."""

    bits: int = 8
    granularity: str = "channel"
    symmetric: bool = True
    group_size: int | None = None

    def __post_init__(self):
        if not isinstance(self.bits, (int, np.integer)) or isinstance(self.bits, bool) or self.bits not in (4, 8):
            raise ValueError(f"quantization bits must be 8 or 4, got {self.bits!r}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {self.granularity!r}")
        if self.granularity == "group":
            if isinstance(self.group_size, bool) or not isinstance(self.group_size, (int, np.integer)) \
                    or self.group_size < 1:
                raise ValueError(f"granularity 'group' needs a positive integer group_size, got {self.group_size!r}")
        elif self.group_size is not None:
            raise ValueError(f"group_size is only used with granularity='group' (got {self.group_size} "
                             f"with {self.granularity!r})")

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1

    @property
    def code_range(self) -> tuple[int, int]:
        """Smallest and largest code: (-qmax, qmax) symmetric, (qmin, qmax) asymmetric."""
        return (-self.qmax if self.symmetric else -self.qmax - 1), self.qmax

    @property
    def name(self) -> str:
        """e.g. 'int8 per-channel', 'int4 group-64 asym'."""
        where = f"group-{self.group_size}" if self.granularity == "group" else f"per-{self.granularity}"
        return f"int{self.bits} {where}" + ("" if self.symmetric else " asym")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class QuantizedTensor:
    """Codes and scales of one quantized tensor. ``codes``: int8, or (bits 4) uint8 holding two
    codes per byte; ``scale``: float32 of shape () per tensor, (rows,) per channel, (rows,
    cols // group_size) per group; ``zero_point``: int8 shaped like ``scale`` (asymmetric only)."""

    codes: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray | None
    shape: tuple[int, ...]
    scheme: QuantScheme

    @property
    def nbytes(self) -> int:
        """Storage: codes + scales (+ zero points)."""
        return self.codes.nbytes + self.scale.nbytes + (0 if self.zero_point is None else self.zero_point.nbytes)

    def int_codes(self) -> np.ndarray:
        """The codes as int8, shaped like the float tensor (int4 unpacked)."""
        if self.scheme.bits == 4:
            return unpack_int4(self.codes, int(np.prod(self.shape))).reshape(self.shape)
        return self.codes.reshape(self.shape)

    def dequantize(self, dtype=np.float32) -> np.ndarray:
        """w~ = s (q - z), shaped like the float tensor."""
        return self.dequantize_rows(slice(None), dtype)

    def dequantize_rows(self, rows, dtype=np.float32) -> np.ndarray:
        """Dequantize only ``rows`` (an index into the first axis: embedding lookups)."""
        codes = self.int_codes()[rows].astype(dtype)           # (..., cols)
        if self.zero_point is not None:
            codes -= self._per_entry(self.zero_point, rows).astype(dtype)
        return codes * self._per_entry(self.scale, rows).astype(dtype)

    def _per_entry(self, values: np.ndarray, rows) -> np.ndarray:
        """Per-block ``values`` (scales or zero points), broadcastable to the selected codes."""
        if self.scheme.granularity == "tensor":
            return values
        if self.scheme.granularity == "channel":
            return values[rows][..., None]                     # (..., 1)
        return np.repeat(values[rows], self.scheme.group_size, axis=-1)   # (..., cols)


def _blocks(w: np.ndarray, scheme: QuantScheme) -> np.ndarray:
    """``w`` viewed as (rows, blocks per row, block size): one scale per (row, block)."""
    if scheme.granularity == "tensor":
        return w.reshape(1, 1, -1)
    rows, cols = w.shape
    if scheme.granularity == "channel":
        return w.reshape(rows, 1, cols)
    return w.reshape(rows, cols // scheme.group_size, scheme.group_size)


def check_quantizable(shape: tuple[int, ...], scheme: QuantScheme) -> None:
    """Raise a clear ValueError if a tensor of ``shape`` cannot take ``scheme``."""
    if scheme.granularity != "tensor" and len(shape) != 2:
        raise ValueError(f"{scheme.granularity} quantization needs a 2-D weight (rows, cols), got shape {shape}")
    if scheme.granularity == "group" and shape[1] % scheme.group_size:
        raise ValueError(f"group size {scheme.group_size} does not divide the row length {shape[1]} of a "
                         f"weight of shape {shape}; choose a divisor of {shape[1]}")


def quantize(w: np.ndarray, scheme: QuantScheme = QuantScheme()) -> QuantizedTensor:
    """Quantize a float array with ``scheme`` (see the module docstring for the maths).

    A block whose entries are all zero gets scale 1 (its codes are 0, so any scale restores it).

    >>> q = quantize(np.array([[0.5, -1.0, 0.25]]), QuantScheme(8, "channel"))
    >>> q.int_codes(), q.scale
    (array([[  64, -127,   32]], dtype=int8), array([0.00787402], dtype=float32))
    """
    w = np.asarray(w)
    if w.dtype.kind != "f":
        raise TypeError(f"quantize takes a floating point array, got {w.dtype}")
    check_quantizable(w.shape, scheme)
    if not np.all(np.isfinite(w)):
        raise ValueError("quantize: the array holds inf or NaN, which no scale can represent")
    blocks = _blocks(w.astype(np.float64), scheme)             # (rows, n_blocks, block)
    # careful: scales are float32; a float64 weight above ~127 * 3.4e38 would get an infinite
    # scale and NaN codes
    largest = float(np.abs(w).max()) if w.size else 0.0
    if largest / scheme.qmax > float(np.finfo(np.float32).max) / 2:
        raise ValueError(f"quantize: the array holds a value of magnitude {largest:.3g}, too large for "
                         f"the float32 scales of a quantized tensor")
    low, high = scheme.code_range
    if scheme.symmetric:
        scale = (np.abs(blocks).max(axis=-1) / scheme.qmax).astype(np.float32)
        scale[scale == 0] = 1.0
        codes = np.clip(np.rint(blocks / scale[..., None]), low, high)
        zero_point = None
    else:
        lo = np.minimum(blocks.min(axis=-1), 0.0)
        hi = np.maximum(blocks.max(axis=-1), 0.0)
        scale = ((hi - lo) / (2 ** scheme.bits - 1)).astype(np.float32)
        scale[scale == 0] = 1.0
        zero_point = np.clip(low - np.rint(lo / scale), low, high)
        codes = np.clip(np.rint(blocks / scale[..., None]) + zero_point[..., None], low, high)
        zero_point = zero_point.astype(np.int8)
    codes = codes.astype(np.int8).reshape(w.shape)
    squeeze = {"tensor": (), "channel": (w.shape[0],)}.get(scheme.granularity)
    if squeeze is not None:                                    # per group keeps (rows, n_blocks)
        scale = scale.reshape(squeeze)
        zero_point = None if zero_point is None else zero_point.reshape(squeeze)
    stored = pack_int4(codes) if scheme.bits == 4 else codes
    return QuantizedTensor(stored, scale, zero_point, tuple(w.shape), scheme)


def dequantize(quantized: QuantizedTensor, dtype=np.float32) -> np.ndarray:
    """w~ = s (q - z): the float values a quantized tensor stands for."""
    return quantized.dequantize(dtype)


def pack_int4(codes: np.ndarray) -> np.ndarray:
    """int4 codes (int8 values in -8..7) -> uint8, two per byte: each code offset by 8 into 0..15,
    the first of each pair in the low four bits (an odd count is padded with code 0, nibble 8).
    Here -8, 7 -> nibbles 0, 15 -> 0 + 15 * 16 = 240; 1 and the pad -> 9 + 8 * 16 = 137.

    >>> pack_int4(np.array([-8, 7, 1], dtype=np.int8))
    array([240, 137], dtype=uint8)
    """
    codes = np.asarray(codes)
    if codes.dtype.kind not in "iu" or (codes.size and (codes.min() < -8 or codes.max() > 7)):
        raise ValueError("pack_int4 takes integer codes in -8..7")
    nibbles = (codes.reshape(-1).astype(np.int16) + 8).astype(np.uint8)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(8))
    return nibbles[0::2] | (nibbles[1::2] << 4)


def unpack_int4(packed: np.ndarray, count: int) -> np.ndarray:
    """The inverse of ``pack_int4``: the first ``count`` codes as int8."""
    packed = np.asarray(packed)
    if packed.dtype != np.uint8 or packed.ndim != 1 or packed.size != (count + 1) // 2:
        raise ValueError(f"unpack_int4 needs a 1-D uint8 array of {(count + 1) // 2} bytes for "
                         f"{count} codes, got {packed.dtype} of shape {packed.shape}")
    nibbles = np.empty(2 * packed.size, dtype=np.int8)
    nibbles[0::2] = packed & 0x0F
    nibbles[1::2] = packed >> 4
    return nibbles[:count] - 8


# ----------------------------------------------------------------------------------------------
# Quantized layers


def _register(module: Module, quantized: QuantizedTensor) -> None:
    """Store a QuantizedTensor's arrays as the module's buffers (saved in the state dict)."""
    module.scheme = quantized.scheme
    module.register_buffer("qweight", quantized.codes)
    module.register_buffer("scale", quantized.scale)
    if quantized.zero_point is not None:
        module.register_buffer("zero_point", quantized.zero_point)


def _empty(shape: tuple[int, int], scheme: QuantScheme) -> QuantizedTensor:
    """Zero codes and unit scales of the right shapes and dtypes (filled by load_state_dict)."""
    check_quantizable(shape, scheme)
    return quantize(np.zeros(shape, dtype=np.float32), scheme)


class _QuantizedWeight:
    """What QuantizedLinear and QuantizedEmbedding share: the stored arrays and their float view."""

    @property
    def quantized(self) -> QuantizedTensor:
        return QuantizedTensor(self.qweight, self.scale, vars(self).get("zero_point"),
                               self.weight_shape, self.scheme)

    @property
    def weight(self) -> Tensor:
        """The dequantized weight, a new float Tensor (constant: the layer is frozen)."""
        return Tensor(self.quantized.dequantize(self.dtype))


@register_frozen_base   # LoRA adapters may sit beside it: QLoRA (qlora.py)
class QuantizedLinear(_QuantizedWeight, Module):
    """A frozen Linear whose weight is stored as codes and scales: y = x W~^T + b, W~ = s (q - z).

    ``activations``: None (float inputs), "dynamic" (int8 per token) or "static" (int8 with the
    calibrated ``input_scale``); see the module docstring. The bias stays float."""

    def __init__(self, in_features: int, out_features: int, scheme: QuantScheme = QuantScheme(),
                 bias: bool = True, activations: str | None = None, dtype=np.float32):
        if activations not in ACTIVATION_MODES:
            raise ValueError(f"activations must be one of {ACTIVATION_MODES}, got {activations!r}")
        self.in_features, self.out_features = in_features, out_features
        self.weight_shape, self.dtype, self.activations = (out_features, in_features), np.dtype(dtype), activations
        _register(self, _empty(self.weight_shape, scheme))
        self.bias = Parameter(np.zeros(out_features), dtype=dtype, requires_grad=False) if bias else None
        if activations == "static":
            self.register_buffer("input_scale", np.ones((), dtype=np.float32))

    @classmethod
    def from_linear(cls, linear: Linear, scheme: QuantScheme = QuantScheme(),
                    activations: str | None = None, input_absmax: float | None = None,
                    quantized: QuantizedTensor | None = None) -> QuantizedLinear:
        """Quantize a Linear (``quantized``: its weight already quantized, to share the arrays)."""
        layer = cls(linear.in_features, linear.out_features, scheme, linear.bias is not None,
                    activations, linear.weight.dtype)
        _register(layer, quantized if quantized is not None else quantize(linear.weight.data, scheme))
        if linear.bias is not None:
            layer.bias.data[...] = linear.bias.data
        if activations == "static":
            if input_absmax is None or not np.isfinite(input_absmax) or input_absmax <= 0:
                raise ValueError(f"static activation quantization needs a positive input_absmax from "
                                 f"calibrate(), got {input_absmax}")
            layer.input_scale[...] = input_absmax / 127
        return layer

    def forward(self, x: Tensor) -> Tensor:
        if self.activations is None:
            return F.linear(x, self.weight, self.bias)
        if is_grad_enabled() and (x.requires_grad or (self.bias is not None and self.bias.requires_grad)):
            raise RuntimeError("int8 activations are for inference: run under no_grad(), or quantize "
                               "with activations=None to train through the layer (QLoRA)")
        a = x.data.reshape(-1, self.in_features)               # (N, in)
        if self.activations == "dynamic":
            per_token = quantize(a, QuantScheme(8, "channel"))  # one scale per row = per token
            qx, sx = per_token.codes, per_token.scale[:, None]  # (N, in) int8, (N, 1)
        else:
            sx = self.input_scale                              # careful: outliers beyond it are clipped
            qx = np.clip(np.rint(a / sx), -127, 127)
        w = self.quantized
        if w.scheme.symmetric and w.scheme.granularity != "group":
            exact32 = self.in_features * 127 * w.scheme.qmax < 2 ** 24
            acc_dtype = np.float32 if exact32 else np.float64
            acc = qx.astype(acc_dtype) @ w.int_codes().astype(acc_dtype).T   # (N, out): exact integers
            y = acc * sx * w.scale                             # s_x per token, s_w per channel (or one)
        else:
            y = (qx * sx) @ w.dequantize(np.float32).T         # per-group scales sit inside the sum
        if self.bias is not None:
            y = y + self.bias.data
        return Tensor(y.astype(self.dtype).reshape(*x.shape[:-1], self.out_features))

    def extra_repr(self) -> str:
        extra = f", activations={self.activations}" if self.activations else ""
        return f"{self.in_features}, {self.out_features}, {self.scheme.name}{extra}"


class QuantizedEmbedding(_QuantizedWeight, Module):
    """A frozen lookup table stored as codes and scales; a lookup dequantizes only its rows.

    Per channel means per row, i.e. one scale per token: the same rows are the output channels
    when the table doubles as a tied output head, so one set of scales serves both uses."""

    def __init__(self, num_embeddings: int, embedding_dim: int, scheme: QuantScheme = QuantScheme(),
                 dtype=np.float32):
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight_shape, self.dtype = (num_embeddings, embedding_dim), np.dtype(dtype)
        _register(self, _empty(self.weight_shape, scheme))

    @classmethod
    def from_embedding(cls, embedding: Embedding, scheme: QuantScheme = QuantScheme(),
                       quantized: QuantizedTensor | None = None) -> QuantizedEmbedding:
        layer = cls(embedding.num_embeddings, embedding.embedding_dim, scheme, embedding.weight.dtype)
        _register(layer, quantized if quantized is not None else quantize(embedding.weight.data, scheme))
        return layer

    def forward(self, ids: np.ndarray) -> Tensor:
        ids = check_token_ids(ids, self.num_embeddings)
        return Tensor(self.quantized.dequantize_rows(ids, self.dtype))   # (..., embedding_dim)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, {self.scheme.name}"


QUANTIZED_LAYERS = (QuantizedLinear, QuantizedEmbedding)


# ----------------------------------------------------------------------------------------------
# Whole models


def float_layers(model: Module, skip: Sequence[str] = ()) -> list[tuple[str, Module]]:
    """The (name, layer) of every Linear and Embedding of ``model`` whose name is not in ``skip``
    (dotted suffixes: ``"head"`` skips ``"classifier.head"``): what quantization and QAT replace."""
    return [(name, m) for name, m in model.named_modules()
            if name and isinstance(m, (Linear, Embedding))
            and not any(name == s or name.endswith("." + s) for s in skip)]


def quantize_model(model: Module, scheme: QuantScheme = QuantScheme(),
                   embedding_scheme: QuantScheme | None = None, skip: Sequence[str] = (),
                   activations: str | None = None, calibration: dict | None = None) -> list[str]:
    """Replace every Linear and Embedding of ``model`` in place by its quantized version and
    return the replaced names. ``embedding_scheme`` (default ``scheme``) is used for embeddings;
    names in ``skip`` (dotted suffixes) stay float. ``activations``: see QuantizedLinear;
    "static" needs ``calibration``, the result of ``calibration.calibrate(model, ...)``.

    Tied weights. The GPT's output head has no module of its own: ``GPT.output_weight()`` reads
    ``token_embedding.weight``, which for a QuantizedEmbedding is the dequantized table. The
    shared matrix is therefore quantized once, stored once, and the head multiplies by exactly
    the values the lookup returns. Layers of other models that share one weight Parameter share
    its quantized arrays too. Every layer is checked before any is replaced, so an error (a
    group size that does not divide a row, say) leaves the model as it was."""
    if activations not in ACTIVATION_MODES:
        raise ValueError(f"activations must be one of {ACTIVATION_MODES}, got {activations!r}")
    embedding_scheme = embedding_scheme if embedding_scheme is not None else scheme
    layers = float_layers(model, skip)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no Linear or Embedding layer to quantize")
    if activations == "static":
        missing = [name for name, m in layers if isinstance(m, Linear) and name not in (calibration or {})]
        if missing:
            raise ValueError(f"static activations need calibrate() statistics for every Linear; "
                             f"missing: {', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}")
    shared: dict[int, tuple[QuantScheme, QuantizedTensor]] = {}
    replacements = []
    for name, m in layers:
        layer_scheme = embedding_scheme if isinstance(m, Embedding) else scheme
        if id(m.weight) in shared:
            if shared[id(m.weight)][0] != layer_scheme:
                raise ValueError(f"{name} shares its weight with another layer quantized with a different scheme")
        else:
            try:
                shared[id(m.weight)] = (layer_scheme, quantize(m.weight.data, layer_scheme))
            except ValueError as error:
                raise ValueError(f"cannot quantize {name} ({layer_scheme.name}): {error}") from None
        quantized = shared[id(m.weight)][1]
        if isinstance(m, Embedding):
            replacements.append((name, QuantizedEmbedding.from_embedding(m, layer_scheme, quantized)))
        else:
            absmax = calibration[name].absmax if activations == "static" else None
            replacements.append((name, QuantizedLinear.from_linear(m, layer_scheme, activations, absmax, quantized)))
    for name, layer in replacements:
        model.set_submodule(name, layer)
    return [name for name, _ in replacements]


def unique_arrays(arrays: Iterable[np.ndarray]) -> list[np.ndarray]:
    seen: dict[int, np.ndarray] = {}
    for array in arrays:
        seen.setdefault(id(array), array)
    return list(seen.values())


def weight_arrays(model: Module) -> list[np.ndarray]:
    """The arrays that hold weight matrices: the 2-D ``weight`` Parameter of each module (Linear,
    Embedding, LoRA and QAT layers), or the codes, scales and zero points of a quantized one.
    Biases, LayerNorms and LoRA adapters are not weight matrices. A tied weight is one array."""
    arrays = []
    for module in model.modules():
        own = vars(module)
        if "qweight" in own.get("_buffers", {}):
            arrays += [own[k] for k in ("qweight", "scale", "zero_point") if own.get(k) is not None]
        elif isinstance(own.get("weight"), Parameter) and own["weight"].ndim == 2:
            arrays.append(own["weight"].data)
    return unique_arrays(arrays)


def weight_bytes(model: Module) -> int:
    """Bytes of the weight matrices (see ``weight_arrays``): 4 per weight in float32; 1 (int8) or
    1/2 (int4) per weight plus 4 per scale (and 1 per zero point) when quantized."""
    return sum(a.nbytes for a in weight_arrays(model))


def model_bytes(model: Module) -> int:
    """Bytes of everything the model holds: parameters and persistent buffers, each array once."""
    arrays = [p.data for p in model.parameters()] + [b for _, b in model.named_buffers(persistent_only=True)]
    return sum(a.nbytes for a in unique_arrays(arrays))
