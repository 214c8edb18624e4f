"""Half precision emulated in NumPy: bfloat16 and float16 (lesson 13).

A float is (-1)^sign * 2^(exponent - bias) * 1.mantissa. The exponent bits set the range, the
mantissa bits the precision:

    format    exponent  mantissa   largest    smallest normal   smallest subnormal   spacing at 1
    float32       8        23      3.4e38        1.2e-38             1.4e-45            1.2e-7
    bfloat16      8         7      3.4e38        1.2e-38             9.2e-41            7.8e-3
    float16       5        10      65504         6.1e-5              6.0e-8             9.8e-4

bfloat16 is the top half of a float32: the same exponent, the mantissa cut from 23 bits to 7. It
keeps float32's range (what does not overflow in float32 does not overflow in bfloat16) with two to
three significant decimal digits. float16 has three more mantissa bits but only five exponent
bits: above 65504 everything overflows to inf, and below 6e-8 everything flushes to zero. That is
why float16 training multiplies the loss by a large factor before backward (and divides the
gradients by it after), and bfloat16 training does not need to.

NumPy has float16 but no bfloat16. ``float32_to_bfloat16_bits`` rounds to nearest, ties to even,
on the float32 bits: adding 0x7FFF plus the lowest kept bit, then dropping the low 16 bits, rounds
up exactly when the dropped half is above 0x8000, or equal to it with an odd kept half. NaN stays
a (quiet) NaN, since rounding its bits could turn it into inf; a value within half a step of the
largest bfloat16 rounds to inf, as IEEE rounding does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..model.state import bfloat16_to_float32
from ..model.nn import Module


@dataclass(frozen=True)
class FloatFormat:
    """An IEEE-style binary float format, described by its field widths."""

    name: str
    exponent_bits: int
    mantissa_bits: int

    @property
    def bits(self) -> int:
        return 1 + self.exponent_bits + self.mantissa_bits

    @property
    def max_exponent(self) -> int:
        return 2 ** (self.exponent_bits - 1) - 1                   # also the bias

    @property
    def max_finite(self) -> float:
        """(2 - 2^-m) 2^max_exponent."""
        return (2 - 2.0 ** -self.mantissa_bits) * 2.0 ** self.max_exponent

    @property
    def min_normal(self) -> float:
        """2^(1 - bias)."""
        return 2.0 ** (1 - self.max_exponent)

    @property
    def min_subnormal(self) -> float:
        """2^(1 - bias - m): below half of this, values flush to zero."""
        return self.min_normal * 2.0 ** -self.mantissa_bits

    @property
    def epsilon(self) -> float:
        """The spacing of representable numbers just above 1: 2^-m; rounding errs by half of it,
        relative to the value, at most."""
        return 2.0 ** -self.mantissa_bits

    @property
    def decimal_digits(self) -> float:
        """Significant decimal digits: (m + 1) log10(2)."""
        return (self.mantissa_bits + 1) * math.log10(2)


FORMATS = {"float32": FloatFormat("float32", 8, 23), "bfloat16": FloatFormat("bfloat16", 8, 7),
           "float16": FloatFormat("float16", 5, 10)}


def float32_to_bfloat16_bits(x) -> np.ndarray:
    """The bfloat16 nearest to each float32 (ties to even), as uint16 bit patterns.

    >>> float32_to_bfloat16_bits(np.array([1.0, -2.0, 1 + 2**-8, 1 + 3 * 2**-8], dtype=np.float32))
    array([16256, 49152, 16256, 16258], dtype=uint16)
    """
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise TypeError(f"float32_to_bfloat16_bits takes float32 values (convert first), got {x.dtype}")
    bits = x.view(np.uint32).astype(np.uint64)                  # room for the carry
    lowest_kept = (bits >> 16) & 1
    rounded = ((bits + 0x7FFF + lowest_kept) >> 16).astype(np.uint16)
    quiet_nan = ((bits >> 16) | 0x0040).astype(np.uint16)       # keep the sign, set the quiet bit
    return np.where(np.isnan(x), quiet_nan, rounded)


def round_to_bfloat16(x) -> np.ndarray:
    """Each value rounded to the nearest bfloat16, returned as float32 (bfloat16 emulation)."""
    return bfloat16_to_float32(float32_to_bfloat16_bits(x))


def round_to_float16(x) -> np.ndarray:
    """Each float32 value rounded to the nearest float16, returned as float32; beyond 65504 (and
    a half step) it becomes +-inf, below 6e-8 / 2 it becomes 0, silently, as in hardware."""
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise TypeError(f"round_to_float16 takes float32 values (convert first), got {x.dtype}")
    with np.errstate(over="ignore"):                            # overflow to inf is the point shown
        return x.astype(np.float16).astype(np.float32)


def round_to(x, format_name: str) -> np.ndarray:
    """``x`` (float32) rounded to "bfloat16", "float16" or "float32" (unchanged)."""
    if format_name not in FORMATS:
        raise ValueError(f"unknown float format {format_name!r}; choose from {', '.join(FORMATS)}")
    if format_name == "float32":
        return np.asarray(x, dtype=np.float32).copy()
    return round_to_bfloat16(x) if format_name == "bfloat16" else round_to_float16(x)


def range_report(x, format_name: str) -> dict[str, float]:
    """What rounding ``x`` (float32) to a format does: the fractions of entries that overflow
    (finite -> inf) and underflow (nonzero -> 0), and the largest relative error among the
    entries that stay finite and nonzero."""
    x = np.asarray(x, dtype=np.float32)
    y = round_to(x, format_name)
    finite, nonzero = np.isfinite(x), x != 0
    overflow = finite & ~np.isfinite(y)
    underflow = nonzero & (y == 0)
    kept = finite & nonzero & ~overflow & ~underflow
    relative = np.abs(y[kept] - x[kept]) / np.abs(x[kept]) if kept.any() else np.zeros(1)
    return {"overflow": float(overflow.mean()), "underflow": float(underflow.mean()),
            "max_relative_error": float(relative.max())}


def round_parameters_(model: Module, format_name: str) -> int:
    """Round every float32 parameter of ``model`` in place to ``format_name`` (the weights a model
    stored in bfloat16 or float16 would hold, computed on in float32); returns the count."""
    count = 0
    for p in model.parameters():
        if p.dtype != np.float32:
            raise TypeError(f"round_parameters_ emulates low precision for float32 models, found {p.dtype}")
        rounded = round_to(p.data, format_name)
        if not np.all(np.isfinite(rounded)):
            raise OverflowError(f"a parameter of {model.__class__.__name__} overflows {format_name}")
        p.data[...] = rounded
        count += p.size
    return count
