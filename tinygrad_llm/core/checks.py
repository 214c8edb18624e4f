"""Argument checks shared by every area (from lesson 01 on).

A setting that makes no sense must fail loudly where it is given, with a message that names the
setting as its caller spells it, never slip through and turn into a silent wrong answer later.
The traps these checks close, each seen in real use:

* ``NaN <= 0`` is False, so ``if value <= 0: raise`` lets NaN through; every range test here is
  written as "inside the range", which NaN never is;
* ``True`` is an ``int`` in Python, so ``GPTConfig(n_layer=True)`` would build one layer;
* ``1000.7`` cut to ``1000`` by ``int()`` hides a typo.

``name`` is the setting as the caller knows it (``"TrainConfig.learning_rate"`` in the library,
``"--lr"`` on the command line), so one message serves both.

    >>> check_int("n_layer", 4, minimum=1)
    4
    >>> check_int("n_layer", True, minimum=1)
    Traceback (most recent call last):
    ...
    TypeError: n_layer must be an integer, got True
    >>> check_float("learning_rate", float("nan"), low=0.0, low_open=True)
    Traceback (most recent call last):
    ...
    ValueError: learning_rate must be a finite number > 0, got nan
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def is_integer(value) -> bool:
    """True for Python and NumPy integers, never for bools or floats."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value) -> bool:
    """True for real numbers (ints, floats, NumPy scalars), never for bools."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int, or a TypeError (not an integer) / ValueError (out of range) naming ``name``."""
    if not is_integer(value):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an integer {_range_text(minimum, maximum, False, False)}, "
                         f"got {value}")
    return value


def check_positive_int(name: str, value) -> int:
    """An integer >= 1 (counts, sizes, steps)."""
    return check_int(name, value, minimum=1)


def check_float(name: str, value, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float inside [low, high] (an end is excluded when ``*_open``), or a
    TypeError / ValueError naming ``name``. NaN and infinities are always refused."""
    if not is_number(value):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    inside = math.isfinite(value)
    if inside and low is not None:
        inside = value > low if low_open else value >= low
    if inside and high is not None:
        inside = value < high if high_open else value <= high
    if not inside:
        raise ValueError(f"{name} must be a finite number {_range_text(low, high, low_open, high_open)}, "
                         f"got {value}")
    return value


def check_positive(name: str, value) -> float:
    """A finite number > 0 (learning rates, temperatures, scales)."""
    return check_float(name, value, low=0.0, low_open=True)


def check_non_negative(name: str, value) -> float:
    """A finite number >= 0 (weight decay, penalties)."""
    return check_float(name, value, low=0.0)


def check_fraction(name: str, value, low_open: bool = False, high_open: bool = False) -> float:
    """A finite number in [0, 1], with either end excluded on request (dropout p is [0, 1))."""
    return check_float(name, value, low=0.0, high=1.0, low_open=low_open, high_open=high_open)


def check_choice(name: str, value, choices) -> object:
    """One of ``choices``, or a ValueError listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def check_finite_array(name: str, array: np.ndarray) -> np.ndarray:
    """``array`` unchanged when every entry is finite, else a FloatingPointError saying how many are not."""
    array = np.asarray(array)
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise FloatingPointError(f"{name} has {bad} non-finite value{'s' if bad != 1 else ''} "
                                 f"(NaN or infinity) of {array.size}")
    return array


def _range_text(low, high, low_open: bool, high_open: bool) -> str:
    low, high = _plain(low), _plain(high)
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high}"
    return ""


def _plain(bound):
    """0.0 -> 0, 0.5 -> 0.5: bounds print as a person writes them."""
    return int(bound) if isinstance(bound, float) and bound.is_integer() else bound
