"""Hostile inputs to the core (lesson 01's Tensor, functional ops, gradcheck, the shared checks):
each bad value ends in a clear error of the right class whose message names the problem."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm import Tensor, gradcheck
from tinygrad_llm.core import functional as F
from tinygrad_llm.core.checks import (check_choice, check_finite_array, check_fraction, check_int,
                                      check_non_negative, check_positive, check_positive_int)

NAN, INF = float("nan"), float("inf")

CHECK_CASES = [
    (lambda: check_int("n_layer", True), TypeError, "n_layer must be an integer, got True"),
    (lambda: check_int("n_layer", 2.0), TypeError, "n_layer must be an integer, got 2.0"),
    (lambda: check_int("n_layer", "3"), TypeError, "n_layer must be an integer"),
    (lambda: check_positive_int("steps", 0), ValueError, "steps must be an integer >= 1, got 0"),
    (lambda: check_positive_int("steps", np.bool_(True)), TypeError, "steps must be an integer"),
    (lambda: check_positive("lr", NAN), ValueError, "lr must be a finite number > 0, got nan"),
    (lambda: check_positive("lr", INF), ValueError, "lr must be a finite number > 0, got inf"),
    (lambda: check_positive("lr", -1), ValueError, "got -1"),
    (lambda: check_positive("lr", False), TypeError, "lr must be a number, got False"),
    (lambda: check_non_negative("wd", NAN), ValueError, "wd must be a finite number >= 0"),
    (lambda: check_fraction("p", 1.0, high_open=True), ValueError, r"p must be a finite number in \[0, 1\)"),
    (lambda: check_choice("position", "rotary", ("learned",)), ValueError, "one of 'learned'"),
    (lambda: check_finite_array("x", np.array([1.0, NAN, INF])), FloatingPointError, "2 non-finite values"),
]

TENSOR_CASES = [
    (lambda: F.softmax(Tensor(np.zeros((2, 0)))), ValueError, "softmax: axis 1 has length 0"),
    (lambda: F.log_softmax(Tensor(np.zeros((0,)))), ValueError, "log_softmax: axis 0 has length 0"),
    (lambda: F.softmax(Tensor(np.full((1, 3), -np.inf))), ValueError, "entirely -inf"),
    (lambda: Tensor(np.zeros((0,))).max(), ValueError, r"max\(\) of an empty tensor: shape \(0,\)"),
    (lambda: Tensor(np.zeros((0, 3))).min(axis=0), ValueError, "no entries along axis 0"),
    (lambda: Tensor(np.array([-1.0, 4.0])) ** 0.5, ValueError, r"x \*\* 0.5 of a tensor with negative"),
    (lambda: Tensor(np.array([-8.0])) ** (1 / 3), ValueError, "non-integer power needs x >= 0"),
    (lambda: Tensor(np.array([-1.0])) ** Tensor(np.array([0.5])), ValueError, "negative entries"),
    (lambda: Tensor(np.array([-1.0])).sqrt(), ValueError, "sqrt of a tensor with negative entries"),
]


@pytest.mark.parametrize("call, error, message", CHECK_CASES + TENSOR_CASES)
def test_hostile_core_input_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_integer_powers_of_negative_entries_still_work():
    x = Tensor(np.array([-2.0, 3.0]))
    assert (x ** 2).data.tolist() == [4.0, 9.0] and (x ** -1).data.tolist() == [-0.5, 1 / 3]


@pytest.mark.parametrize("value", [NAN, INF])
def test_gradcheck_refuses_a_non_finite_input(value):
    x = Tensor(np.array([0.5, value]), requires_grad=True)
    with pytest.raises(FloatingPointError, match="gradcheck: input 0 has 1 non-finite value"):
        gradcheck(lambda t: t * t, x)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # inf - inf, on purpose
def test_gradcheck_counts_nan_differences_as_failures():
    # t * inf: the central difference is inf - inf = NaN, which must fail, not pass silently
    x = Tensor(np.array([0.5, 1.5]), requires_grad=True)
    with pytest.raises(Exception, match="2 of 2 entries fail"):
        gradcheck(lambda t: t * np.inf, x)
