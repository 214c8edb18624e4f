"""The Tensor: every op against NumPy and central differences, then the engine's own behaviour.

The first half runs the case table (op_cases.py): each op's forward against plain NumPy, its
gradient against finite differences in float64, and its dtype in float32. The second half pins
down what the engine promises: accumulation, freeing the graph, no_grad, freezing, the dtype rule,
clear errors, and a 100,000-op chain.
"""

from __future__ import annotations

import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from op_cases import OP_CASES, apart, case_ids, joined, nonzero, normal
from tinygrad_llm import (Tensor, concatenate, enable_grad, gradcheck, is_grad_enabled, maximum,
                          no_grad, split, stack, where)

# Tighter than gradcheck's defaults (rtol=1e-5, atol=1e-7): every op passes with room to spare.
TOLERANCES = dict(rtol=1e-6, atol=1e-8)
HYPOTHESIS = settings(max_examples=30, deadline=None, derandomize=True, database=None)


def leaves(arrays, dtype=np.float64) -> list[Tensor]:
    return [Tensor(a.astype(dtype, copy=False), requires_grad=True) for a in arrays]


# ----------------------------------------------------------------------------------------------
# The case table


@pytest.mark.parametrize("case", OP_CASES, ids=case_ids(OP_CASES))
def test_op_forward_matches_numpy(case):
    arrays = case.arrays()
    ours = joined(case.fn(*leaves(arrays)))
    expected = np.asarray(joined(case.numpy_fn()(*arrays)))
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", OP_CASES, ids=case_ids(OP_CASES))
def test_op_gradient_matches_central_differences(case):
    assert gradcheck(lambda *xs: joined(case.fn(*xs)), *leaves(case.arrays()), **TOLERANCES)


@pytest.mark.parametrize("case", OP_CASES, ids=case_ids(OP_CASES))
def test_op_keeps_float32_in_forward_and_backward(case):
    """No silent upcast: float32 in, float32 out, float32 gradients (also after accumulating)."""
    arrays = case.arrays()
    inputs32, inputs64 = leaves(arrays, np.float32), leaves(arrays, np.float64)
    out32 = joined(case.fn(*inputs32))
    if case.keeps_dtype:
        assert out32.dtype == np.float32
    weights = np.random.default_rng(0).standard_normal(out32.shape)
    loss32 = (out32 * weights).sum()
    loss32.backward(retain_graph=True)
    loss32.backward()  # a second pass adds into .grad: the sum must stay float32 too
    (joined(case.fn(*inputs64)) * weights).sum().backward()
    for x32, x64 in zip(inputs32, inputs64):
        assert x32.grad.dtype == np.float32
        np.testing.assert_allclose(x32.grad, 2 * x64.grad, rtol=1e-4, atol=1e-5)


def test_non_contiguous_rows_really_get_non_contiguous_inputs():
    by_name = {case.name: case for case in OP_CASES}
    for name in ("matmul_transposed_input", "reshape_transposed_input", "tanh_strided_input",
                 "getitem_int_array_on_strided_input"):
        (array, *_) = by_name[name].arrays()
        assert not array.flags.c_contiguous, name
        assert not Tensor(array).data.flags.c_contiguous, name  # Tensor keeps the view


# ----------------------------------------------------------------------------------------------
# Random shapes (hypothesis): broadcasting, reductions, matrix products


def _arrays_for(shapes, seed, makers):
    rng = np.random.default_rng(seed)
    return [make(*shape)(rng) for make, shape in zip(makers, shapes)]


BINARY_OPS = {
    "add": (lambda x, y: x + y, np.add, (normal, normal)),
    "sub": (lambda x, y: x - y, np.subtract, (normal, normal)),
    "mul": (lambda x, y: x * y, np.multiply, (normal, normal)),
    "div": (lambda x, y: x / y, np.divide, (normal, nonzero)),
    # operands on grids 1/16 apart never tie, so maximum stays away from its kink
    "maximum": (maximum, np.maximum, (apart, lambda *s: apart(*s, offset=0.0625))),
}


@HYPOTHESIS
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
       op=st.sampled_from(sorted(BINARY_OPS)), seed=st.integers(0, 2**16))
def test_binary_ops_broadcast_like_numpy_with_correct_gradients(shapes, op, seed):
    ours, reference, makers = BINARY_OPS[op]
    arrays = _arrays_for(shapes.input_shapes, seed, makers)
    out = ours(*leaves(arrays))
    assert out.shape == shapes.result_shape
    np.testing.assert_allclose(out.data, reference(*arrays), rtol=1e-12, atol=1e-12)
    assert gradcheck(ours, *leaves(arrays), **TOLERANCES)


@st.composite
def shape_and_axis(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    ndim = len(shape)
    axis = draw(st.none() | st.integers(-ndim, ndim - 1) | hnp.valid_tuple_axes(ndim, min_size=1))
    return shape, axis


@HYPOTHESIS
@given(shape_axis=shape_and_axis(), keepdims=st.booleans(),
       op=st.sampled_from(["sum", "mean", "max", "min", "var"]), seed=st.integers(0, 2**16))
def test_reductions_over_random_axes_match_numpy_with_correct_gradients(shape_axis, keepdims, op, seed):
    shape, axis = shape_axis
    (array,) = _arrays_for([shape], seed, [apart])  # distinct values: no ties for max/min

    def fn(x):
        return getattr(x, op)(axis=axis, keepdims=keepdims)

    out = fn(Tensor(array))
    expected = getattr(np, op)(array, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(fn, *leaves([array]), **TOLERANCES)


@HYPOTHESIS
@given(shapes=hnp.mutually_broadcastable_shapes(signature="(m?,n),(n,p?)->(m?,p?)", max_dims=2,
                                                max_side=3),
       seed=st.integers(0, 2**16))
def test_matmul_over_random_shapes_matches_numpy_with_correct_gradients(shapes, seed):
    arrays = _arrays_for(shapes.input_shapes, seed, (normal, normal))
    out = Tensor(arrays[0]) @ Tensor(arrays[1])
    np.testing.assert_allclose(out.data, arrays[0] @ arrays[1], rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda a, b: a @ b, *leaves(arrays), **TOLERANCES)


# ----------------------------------------------------------------------------------------------
# Gradients: accumulation, retain_graph, freeing, aliasing


def test_gradients_accumulate_across_backward_calls():
    x = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 3.0)
    x.zero_grad()
    assert x.grad is None


def test_gradients_of_one_tensor_used_twice_add_up():
    x = Tensor(np.array([0.5, 2.0]), requires_grad=True)
    y = x * 2.0
    (y + y * y).sum().backward()  # d/dx (2x + 4x^2) = 2 + 8x
    np.testing.assert_allclose(x.grad, 2 + 8 * x.data)


def test_retain_graph_allows_a_second_backward():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (x.exp() * x).sum()
    loss.backward(retain_graph=True)
    first = x.grad.copy()
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * first)


def test_second_backward_on_a_freed_graph_raises():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="already freed.*retain_graph=True"):
        loss.backward()


def test_backward_through_a_part_freed_by_another_backward_raises():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    shared = x.tanh()
    (shared * 2.0).sum().backward()
    with pytest.raises(RuntimeError, match="already freed"):
        (shared * 3.0).sum().backward()


def test_backward_on_a_non_scalar_needs_a_gradient():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"scalar.*\(2, 3\)"):
        y.backward()
    y.backward(np.full((2, 3), 0.5))
    np.testing.assert_allclose(x.grad, np.full((2, 3), 1.0))


def test_backward_with_a_gradient_of_the_wrong_shape_raises():
    y = Tensor(np.ones((2, 3)), requires_grad=True) * 2.0
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        y.backward(np.ones(3))


def test_backward_on_a_tensor_that_does_not_require_grad_raises():
    x = Tensor(np.ones(3))
    with pytest.raises(RuntimeError, match="does not require grad"):
        (x * 2.0).sum().backward()


def test_stored_leaf_gradients_do_not_alias_each_other():
    # add hands the same gradient array to both parents; each leaf must get its own copy
    x = Tensor(np.zeros(3), requires_grad=True)
    y = Tensor(np.zeros(3), requires_grad=True)
    (x + y).sum().backward()
    x.grad += 100.0
    np.testing.assert_array_equal(y.grad, np.ones(3))


def test_one_fresh_gradient_array_reaching_several_leaves_is_stored_once_and_copied_for_the_rest():
    # the product makes a fresh array that owns its memory; the two adds hand that same array on
    # to x, to s (whose gradient is retained) and through s to y and u. .grad takes an array
    # without copying when it can, so at most one of them may hold it; the others need copies.
    x, y, u = (Tensor(np.zeros(3), requires_grad=True) for _ in range(3))
    s = (y + u).retain_grad()
    ((x + s) * 1.0).backward(np.ones(3))
    grads = [x.grad, s.grad, y.grad, u.grad]
    for i, grad in enumerate(grads):
        grad += 10.0 * (i + 1)  # as clipping would, in place
    for i, grad in enumerate(grads):
        np.testing.assert_array_equal(grad, np.full(3, 1.0 + 10.0 * (i + 1)))


def test_stored_gradient_does_not_alias_the_gradient_passed_to_backward():
    x = Tensor(np.zeros((2, 2)), requires_grad=True)
    upstream = np.ones(4)
    x.reshape(4).backward(upstream)
    upstream[:] = 7.0
    np.testing.assert_array_equal(x.grad, np.ones((2, 2)))
    assert x.grad.flags.writeable


def test_backward_of_a_100000_op_chain_needs_no_recursion():
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    y.backward()
    np.testing.assert_allclose(x.grad, 1.00001 ** 100_000, rtol=1e-9)  # about e


def test_backward_frees_closures_and_intermediate_arrays():
    x = Tensor(np.random.default_rng(0).standard_normal(50), requires_grad=True)
    middle = (x * 3.0).tanh()
    alive = weakref.ref(middle.data)  # kept by `middle` and by the closures of the ops using it
    loss = (middle * middle).sum()
    del middle
    assert alive() is not None
    loss.backward()
    assert alive() is None
    assert loss._parents == ()


def test_retain_graph_keeps_intermediate_arrays_alive():
    x = Tensor(np.ones(5), requires_grad=True)
    middle = x.exp()
    alive = weakref.ref(middle.data)
    loss = (middle * middle).sum()
    del middle
    loss.backward(retain_graph=True)
    assert alive() is not None


# ----------------------------------------------------------------------------------------------
# no_grad, freezing, retain_grad, detach


def test_no_grad_records_no_graph():
    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        y = (x * 2.0).exp().sum()
    assert not y.requires_grad and y.is_leaf and y._parents == ()
    assert is_grad_enabled()


def test_no_grad_nests_and_enable_grad_reenables_inside_it():
    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        with no_grad():
            assert not is_grad_enabled()
        assert not is_grad_enabled()  # leaving the inner block keeps the outer one in force
        with enable_grad():
            assert (x * 2.0).requires_grad
        assert not (x * 2.0).requires_grad
    assert (x * 2.0).requires_grad


def test_no_grad_restores_grad_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert is_grad_enabled()


def test_frozen_leaf_gets_no_gradient():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    weight = Tensor(np.ones((3, 4)), requires_grad=True).requires_grad_(False)
    (x @ weight).sum().backward()
    assert weight.grad is None and not weight.requires_grad
    np.testing.assert_allclose(x.grad, np.full((2, 3), 4.0))


class _RecordingArray(np.ndarray):
    """An array that notes every NumPy operation it takes part in (for the freezing test)."""

    calls: list[str] = []

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _RecordingArray.calls.append(ufunc.__name__)
        plain = [a.view(np.ndarray) if isinstance(a, _RecordingArray) else a for a in inputs]
        return getattr(ufunc, method)(*plain, **kwargs)


@pytest.mark.parametrize("input_shape", [(2, 3), (2, 5, 3)], ids=["2d_input", "3d_input_shared_weight"])
@pytest.mark.parametrize("op", ["matmul", "mul"])
def test_frozen_weight_gradient_is_never_computed(op, input_shape):
    """A weight's gradient is a product with the input (x^T g for matmul, g * x for mul). With the
    weight frozen, backward must not compute any product with the input at all."""
    rng = np.random.default_rng(0)
    weight_shape = (3, 4) if op == "matmul" else (3,)
    forward = (lambda x, w: x @ w) if op == "matmul" else (lambda x, w: x * w)
    for frozen, expected_products in ((True, 0), (False, 1)):
        x = Tensor(rng.standard_normal(input_shape), requires_grad=True)
        x.data = x.data.view(_RecordingArray)
        weight = Tensor(rng.standard_normal(weight_shape), requires_grad=not frozen)
        loss = forward(x, weight).sum()
        _RecordingArray.calls.clear()
        loss.backward()
        products = [name for name in _RecordingArray.calls if name in ("matmul", "multiply")]
        assert len(products) == expected_products, (frozen, _RecordingArray.calls)
        assert (weight.grad is None) == frozen
        assert x.grad is not None


def _closure_gradients(make, frozen):
    """Call one op's backward closure directly (not through the engine, which would drop a
    gradient it does not need anyway); return which parents got a gradient array."""
    rng = np.random.default_rng(0)
    tensors = [Tensor(rng.uniform(0.5, 2.0, (2, 3)), requires_grad=i not in frozen) for i in range(2)]
    out = make(*tensors)
    return [g is not None for g in out._backward(np.ones(out.shape))]


@pytest.mark.parametrize("make", [
    pytest.param(lambda a, b: a * b, id="mul"),
    pytest.param(lambda a, b: a / b, id="div"),
    pytest.param(lambda a, b: a ** b, id="pow"),
    pytest.param(lambda a, b: a @ b.T, id="matmul"),
    pytest.param(lambda a, b: where(np.eye(2, 3, dtype=bool), a, b), id="where"),
    pytest.param(maximum, id="maximum"),
])
def test_op_closures_skip_the_gradient_of_a_frozen_parent(make):
    assert _closure_gradients(make, frozen={1}) == [True, False]
    assert _closure_gradients(make, frozen={0}) == [False, True]


def test_requires_grad_false_on_an_intermediate_raises():
    y = Tensor(np.ones(2), requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)


def test_retain_grad_keeps_an_intermediate_gradient():
    x = Tensor(np.array([1.0, -3.0]), requires_grad=True)
    y = (x * 2.0).retain_grad()
    (y * y).sum().backward()  # d/dy y^2 = 2y
    np.testing.assert_allclose(y.grad, 2 * y.data)
    np.testing.assert_allclose(x.grad, 4 * y.data)


def test_detach_shares_data_and_cuts_the_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 3.0
    d = y.detach()
    assert not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.data, y.data)
    (x * d).sum().backward()  # d is a constant: the gradient is d, not 2 * 3x
    np.testing.assert_allclose(x.grad, d.data)


# ----------------------------------------------------------------------------------------------
# Construction, properties, dtypes


def test_construction_properties_item_and_numpy():
    x = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.dtype == np.float32 and x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and len(x) == 2
    assert not x.requires_grad and x.grad is None and x.is_leaf
    assert x.numpy() is x.data  # shared, not copied
    assert Tensor(np.array(2.5)).item() == 2.5 and isinstance(Tensor([2.5]).item(), float)
    with pytest.raises(ValueError, match="one element"):
        x.item()


def test_float64_arrays_stay_float64_and_python_data_defaults_to_float32():
    assert Tensor(np.zeros(2)).dtype == np.float64
    assert Tensor([1, 2]).dtype == np.float32
    assert Tensor(3.0).dtype == np.float32
    assert Tensor([1, 2], dtype=np.float64).dtype == np.float64
    array = np.zeros(3)
    assert Tensor(array).data is array  # no copy


@pytest.mark.parametrize("make", [
    pytest.param(lambda x: x * np.float64(2.0), id="mul_np_float64"),
    pytest.param(lambda x: np.float64(2.0) * x, id="rmul_np_float64"),
    pytest.param(lambda x: x + np.float64(1.0), id="add_np_float64"),
    pytest.param(lambda x: x - np.float64(1.0), id="sub_np_float64"),
    pytest.param(lambda x: np.float64(1.0) - x, id="rsub_np_float64"),
    pytest.param(lambda x: x / np.float64(2.0), id="div_np_float64"),
    pytest.param(lambda x: x ** np.float64(2.0), id="pow_np_float64"),
    pytest.param(lambda x: x * 2, id="mul_int"),
    pytest.param(lambda x: x * 0.5, id="mul_float"),
    pytest.param(lambda x: x + np.ones(3), id="add_float64_array"),
    pytest.param(lambda x: np.ones(3) * x, id="rmul_float64_array"),
    pytest.param(lambda x: x @ np.ones((3, 2)), id="matmul_float64_array"),
    pytest.param(lambda x: np.ones((2, 3)) @ x.reshape(3, 1), id="rmatmul_float64_array"),
    pytest.param(lambda x: x.clip(np.float64(0.1), np.float64(0.9)), id="clip_np_float64_bounds"),
    pytest.param(lambda x: where(np.array([True, False, True]), x, 0.5), id="where_python_number"),
    pytest.param(lambda x: maximum(x, np.float64(0.5)), id="maximum_np_float64"),
    pytest.param(lambda x: concatenate([x, np.ones(2)]), id="concatenate_float64_array"),
])
def test_numbers_and_numpy_arrays_take_the_tensor_dtype(make):
    x = Tensor(np.array([0.25, 0.5, 0.75], dtype=np.float32), requires_grad=True)
    out = make(x)
    assert out.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32


@pytest.mark.parametrize("make", [
    pytest.param(lambda a, b: a + b, id="add"),
    pytest.param(lambda a, b: a - b, id="sub"),
    pytest.param(lambda a, b: a * b, id="mul"),
    pytest.param(lambda a, b: a / b, id="div"),
    pytest.param(lambda a, b: a ** b, id="pow"),
    pytest.param(lambda a, b: a @ b, id="matmul"),
    pytest.param(lambda a, b: b @ a, id="matmul_float64_on_the_left"),
    pytest.param(lambda a, b: where(np.ones(2, dtype=bool), a, b), id="where"),
    pytest.param(lambda a, b: maximum(a, b), id="maximum"),
    pytest.param(lambda a, b: concatenate([a, b]), id="concatenate"),
    pytest.param(lambda a, b: stack([a, b]), id="stack"),
])
def test_mixing_float32_and_float64_tensors_raises(make):
    a = Tensor(np.ones(2, dtype=np.float32))
    b = Tensor(np.ones(2, dtype=np.float64))
    with pytest.raises(TypeError, match="float32.*float64|float64.*float32"):
        make(a, b)


def test_astype_converts_and_its_gradient_comes_back_in_the_original_dtype():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = x.astype(np.float64)
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [2.0, 4.0])
    with pytest.raises(TypeError, match="float16, float32 or float64"):
        x.astype(np.int32)


@pytest.mark.parametrize("data", [np.arange(3), np.array([True, False]), np.arange(4, dtype=np.uint8)],
                         ids=["int64", "bool", "uint8"])
def test_integer_and_boolean_arrays_are_rejected_with_a_clear_error(data):
    with pytest.raises(TypeError, match="floating point"):
        Tensor(data)
    assert Tensor(data, dtype=np.float32).dtype == np.float32  # an explicit conversion is fine


def test_non_numeric_data_is_rejected():
    with pytest.raises(TypeError):
        Tensor(["a", "b"])
    with pytest.raises(TypeError, match="float16, float32 or float64"):
        Tensor([1.0], dtype=np.int64)


# ----------------------------------------------------------------------------------------------
# Errors that name the problem


def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\) @ \(5, 2\)"):
        Tensor(np.ones((3, 4))) @ Tensor(np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"\(2, 3, 4\) @ \(3, 4, 5\)"):
        Tensor(np.ones((2, 3, 4))) @ Tensor(np.ones((3, 4, 5)))
    with pytest.raises(ValueError, match=r"\(\) and \(3,\)"):
        Tensor(np.array(2.0)) @ Tensor(np.ones(3))


def test_log_and_sqrt_of_negative_entries_raise_instead_of_clamping():
    x = Tensor(np.array([1.0, -0.5]))
    with pytest.raises(ValueError, match="log.*negative"):
        x.log()
    with pytest.raises(ValueError, match="sqrt.*negative"):
        x.sqrt()


def test_log_of_zero_is_minus_infinity():
    assert Tensor(np.array([0.0])).log().data[0] == -np.inf


def test_indexing_with_a_tensor_raises():
    x = Tensor(np.ones(4))
    with pytest.raises(TypeError, match="not with a Tensor"):
        x[Tensor(np.array([0.0]))]


def test_masked_fill_and_where_need_boolean_numpy_masks():
    x = Tensor(np.ones((2, 2)))
    with pytest.raises(TypeError, match="boolean"):
        x.masked_fill(np.array([[1, 0], [0, 1]]), 0.0)
    with pytest.raises(TypeError, match="not a Tensor"):
        x.masked_fill(Tensor(np.ones((2, 2))), 0.0)
    with pytest.raises(ValueError, match="does not broadcast"):
        x.masked_fill(np.ones((3, 2, 2), dtype=bool), 0.0)
    with pytest.raises(TypeError, match="boolean"):
        where(np.ones(2), x, x)


def test_split_into_unequal_sections_raises():
    with pytest.raises(ValueError, match="length 5 into 2 equal parts"):
        split(Tensor(np.ones(5)), 2)


# ----------------------------------------------------------------------------------------------
# Op behaviours at a glance (exact numbers)


def test_embedding_lookup_gradient_counts_repeated_tokens():
    table = Tensor(np.zeros((5, 3)), requires_grad=True)
    ids = np.array([[1, 4, 1, 0], [4, 4, 2, 1]])  # (B, T): token 4 three times, token 3 never
    table[ids].sum().backward()
    np.testing.assert_array_equal(table.grad[:, 0], [1.0, 3.0, 1.0, 0.0, 3.0])


def test_max_shares_the_gradient_equally_among_ties():
    # NOTE: this is the kink the gradient checks avoid; the choice is PyTorch's (max() and amax())
    x = Tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5])


def test_relu_abs_clip_and_maximum_at_their_kinks():
    x = Tensor(np.array([0.0, 1.0]), requires_grad=True)
    (x.relu() + x.abs() + x.clip(0.0, 1.0) + maximum(x, np.array([0.0, 2.0]))).sum().backward()
    # as in PyTorch: relu and abs give 0 at 0, clip passes its boundary values, maximum splits a
    # tie in half
    np.testing.assert_array_equal(x.grad, [0.0 + 0.0 + 1.0 + 0.5, 1.0 + 1.0 + 1.0 + 0.0])


def test_sigmoid_does_not_overflow_for_large_inputs():
    x = Tensor(np.array([-1000.0, 1000.0]), requires_grad=True)
    with np.errstate(over="raise"):
        y = x.sigmoid()
    np.testing.assert_array_equal(y.data, [0.0, 1.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


def test_split_pieces_carry_their_gradient_back_to_the_right_place():
    x = Tensor(np.zeros((2, 5)), requires_grad=True)
    first, middle, last = x.split([1, 3], axis=1)
    assert [p.shape for p in (first, middle, last)] == [(2, 1), (2, 2), (2, 2)]
    (middle * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 2, 2, 0, 0]] * 2)
