"""gradcheck itself: it passes correct ops, and it catches wrong ones, saying where."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tinygrad_llm import GradcheckError, Tensor, gradcheck


def leaf(array) -> Tensor:
    return Tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def square_with_a_wrong_entry(x: Tensor) -> Tensor:
    """x^2 whose backward is right everywhere except at index (1, 2)."""
    def backward(g):
        grad = 2 * x.data * g
        grad[1, 2] += 0.5
        return (grad,)
    return Tensor.from_op(x.data ** 2, (x,), backward)


def softmax_with_a_subtle_bug(x: Tensor) -> Tensor:
    """Softmax over the last axis whose backward uses mean(g) where sum(g * p) belongs:
    p * (g - mean(g)) instead of p * (g - sum(g * p)). Both vanish when g is all ones."""
    e = np.exp(x.data - x.data.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    return Tensor.from_op(p, (x,), lambda g: (p * (g - g.mean(axis=-1, keepdims=True)),))


def test_gradcheck_passes_correct_ops():
    rng = np.random.default_rng(0)
    x, w = leaf(rng.standard_normal((3, 4))), leaf(rng.standard_normal((4, 2)))
    assert gradcheck(lambda x, w: (x @ w).tanh() * x.sum(axis=1, keepdims=True), x, w)
    assert gradcheck(lambda t: t.exp() * t, leaf(0.7))  # a 0-d input and output


def test_gradcheck_passes_non_tensor_arguments_through_and_skips_frozen_tensors():
    rng = np.random.default_rng(1)
    x = leaf(rng.standard_normal((2, 3)))
    frozen = Tensor(rng.standard_normal((2, 3)))  # requires_grad=False: not perturbed, not checked
    assert gradcheck(lambda x, f, scale, mask: (x * f * scale).masked_fill(mask, 0.0), x, frozen, 3.0,
                     np.array([[True, False, False], [False, True, False]]))


def test_gradcheck_names_input_index_and_both_values_of_a_wrong_backward():
    rng = np.random.default_rng(2)
    good, bad = leaf(rng.standard_normal((2, 3))), leaf(rng.standard_normal((2, 3)))
    with pytest.raises(GradcheckError) as failure:
        gradcheck(lambda a, b: a * 2.0 + square_with_a_wrong_entry(b), good, bad)
    message = str(failure.value)
    assert "input 1" in message and "(1, 2)" in message and "1 of 6 entries fail" in message
    analytic = float(re.search(r"analytic (\S+),", message).group(1))
    numeric = float(re.search(r"numeric (\S+),", message).group(1))
    # the output is weighed with standard normal weights drawn from default_rng(seed=0)
    weight = np.random.default_rng(0).standard_normal((2, 3))[1, 2]
    assert numeric == pytest.approx(2 * bad.data[1, 2] * weight, abs=1e-7)
    assert analytic == pytest.approx(numeric + 0.5, abs=1e-7)


def test_gradcheck_error_is_an_assertion_error_and_can_be_returned_instead():
    x = leaf(np.ones((2, 3)))
    assert issubclass(GradcheckError, AssertionError)
    assert gradcheck(square_with_a_wrong_entry, x, raise_exception=False) is False


def test_gradcheck_catches_a_softmax_bug_that_a_plain_sum_cannot_see():
    x = leaf(np.random.default_rng(3).standard_normal((2, 4)))

    # The plain-sum check: softmax rows sum to 1, so sum(softmax(x)) is constant, its numeric
    # gradient is zero, and the buggy backward also returns zero. The bug goes unnoticed.
    softmax_with_a_subtle_bug(x).sum().backward()
    analytic, x.grad = x.grad, None
    eps = 1e-6
    numeric = np.zeros_like(x.data)
    for index in np.ndindex(x.shape):
        shifted = x.data.copy()
        shifted[index] += eps
        plus = softmax_with_a_subtle_bug(Tensor(shifted)).data.sum()
        shifted[index] -= 2 * eps
        minus = softmax_with_a_subtle_bug(Tensor(shifted)).data.sum()
        numeric[index] = (plus - minus) / (2 * eps)
    np.testing.assert_allclose(analytic, 0.0, atol=1e-12)
    np.testing.assert_allclose(numeric, 0.0, atol=1e-8)

    # gradcheck weighs the outputs with fixed random numbers, so the bug shows.
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(softmax_with_a_subtle_bug, x)


def test_gradcheck_needs_float64_inputs():
    with pytest.raises(TypeError, match="input 0 is float32.*float64"):
        gradcheck(lambda t: t * t, Tensor(np.ones(3, dtype=np.float32), requires_grad=True))


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="nothing to check"):
        gradcheck(lambda t: t * t, Tensor(np.ones(3)))


def test_gradcheck_needs_fn_to_return_a_tensor():
    with pytest.raises(TypeError, match="must return a Tensor"):
        gradcheck(lambda t: t.data * 2, leaf(np.ones(3)))


def test_gradcheck_leaves_the_inputs_and_their_gradients_as_it_found_them():
    values = np.array([[0.3, -1.2], [2.0, 0.5]])
    x = leaf(values.copy())
    x.grad = np.full((2, 2), 7.0)
    gradcheck(lambda t: (t * t).sum(axis=0), x)
    np.testing.assert_array_equal(x.data, values)
    np.testing.assert_array_equal(x.grad, np.full((2, 2), 7.0))


def test_gradcheck_never_writes_into_an_array_shared_with_the_caller():
    base = np.arange(6.0).reshape(2, 3)
    view = base.T  # x's data is a view of `base`
    before = base.copy()
    gradcheck(lambda t: t.exp(), Tensor(view, requires_grad=True))
    np.testing.assert_array_equal(base, before)


def test_gradcheck_tolerances_decide_pass_or_fail():
    # a backward off by a relative 1e-4 passes rtol=1e-3 and fails rtol=1e-5
    def slightly_wrong(x):
        return Tensor.from_op(x.data * 3.0, (x,), lambda g: (g * 3.0 * (1 + 1e-4),))

    x = leaf(np.array([1.0, -2.0]))
    assert gradcheck(slightly_wrong, x, rtol=1e-3)
    with pytest.raises(GradcheckError):
        gradcheck(slightly_wrong, x, rtol=1e-5)
