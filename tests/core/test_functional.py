"""tinygrad_llm.core.functional: each fused op equals its composed reference, plus the edge cases that
make or break training (huge logits, -inf masks, ignored targets) and dropout."""

from __future__ import annotations

import numpy as np
import pytest

from op_cases import FUNCTIONAL_CASES, case_ids, np_log_softmax
from tinygrad_llm import Tensor, gradcheck
from tinygrad_llm import functional as F

TOLERANCES = dict(rtol=1e-6, atol=1e-8)


def leaves(arrays, dtype=np.float64) -> list[Tensor]:
    return [Tensor(a.astype(dtype, copy=False), requires_grad=True) for a in arrays]


def weighted_gradients(fn, arrays, seed=0) -> tuple[np.ndarray, list[np.ndarray]]:
    """fn's value and the gradients of sum(fn(...) * w) for fixed random weights w."""
    inputs = leaves(arrays)
    out = fn(*inputs)
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    (out * weights).sum().backward()
    return out.data, [x.grad for x in inputs]


# ----------------------------------------------------------------------------------------------
# The case table: forward, gradients, fused == composed


@pytest.mark.parametrize("case", FUNCTIONAL_CASES, ids=case_ids(FUNCTIONAL_CASES))
def test_fused_forward_matches_numpy(case):
    arrays = case.arrays()
    out = case.fn(*leaves(arrays))
    expected = case.numpy_fn()(*arrays)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", FUNCTIONAL_CASES, ids=case_ids(FUNCTIONAL_CASES))
def test_fused_gradient_matches_central_differences(case):
    assert gradcheck(case.fn, *leaves(case.arrays()), **TOLERANCES)


@pytest.mark.parametrize("case", FUNCTIONAL_CASES, ids=case_ids(FUNCTIONAL_CASES))
def test_composed_gradient_matches_central_differences(case):
    assert gradcheck(case.composed, *leaves(case.arrays()), **TOLERANCES)


@pytest.mark.parametrize("case", FUNCTIONAL_CASES, ids=case_ids(FUNCTIONAL_CASES))
def test_fused_equals_composed_in_value_and_gradient(case):
    fused_value, fused_grads = weighted_gradients(case.fn, case.arrays())
    composed_value, composed_grads = weighted_gradients(case.composed, case.arrays())
    np.testing.assert_allclose(fused_value, composed_value, rtol=1e-12, atol=1e-12)
    for fused, composed in zip(fused_grads, composed_grads):
        np.testing.assert_allclose(fused, composed, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", FUNCTIONAL_CASES, ids=case_ids(FUNCTIONAL_CASES))
def test_fused_op_keeps_float32(case):
    inputs = leaves(case.arrays(), np.float32)
    out = case.fn(*inputs)
    assert out.dtype == np.float32
    (out * np.random.default_rng(0).standard_normal(out.shape)).sum().backward()
    assert all(x.grad.dtype == np.float32 for x in inputs)


# ----------------------------------------------------------------------------------------------
# softmax and log_softmax: huge logits and -inf masks


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_of_huge_logits_is_finite_and_exact(dtype):
    x = Tensor(np.array([[1e4, 0.0], [1e4, 1e4]], dtype=dtype), requires_grad=True)
    p = F.softmax(x)
    np.testing.assert_array_equal(p.data, [[1.0, 0.0], [0.5, 0.5]])
    logp = F.log_softmax(x).data
    np.testing.assert_array_equal(logp[0], [0.0, -1e4])
    np.testing.assert_allclose(logp[1], [-np.log(2)] * 2, rtol=1e-7)
    (p * np.array([[1.0, 2.0], [3.0, -1.0]])).sum().backward()
    assert np.isfinite(x.grad).all()


@pytest.mark.parametrize("softmax", [F.softmax, F.softmax_composed], ids=["fused", "composed"])
def test_softmax_gives_masked_entries_zero_probability_and_zero_gradient(softmax):
    x = Tensor(np.array([[0.5, -np.inf, 1.0, -np.inf], [-np.inf, 2.0, 0.0, 1.0]]), requires_grad=True)
    masked = np.isinf(x.data)
    p = softmax(x)
    assert np.all(p.data[masked] == 0.0)
    np.testing.assert_allclose(p.data.sum(axis=-1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(p.data[0, [0, 2]], np.exp(np_log_softmax(np.array([0.5, 1.0]))))
    (p * np.random.default_rng(0).standard_normal(p.shape)).sum().backward()
    assert np.isfinite(x.grad).all() and np.all(x.grad[masked] == 0.0)


@pytest.mark.parametrize("log_softmax", [F.log_softmax, F.log_softmax_composed], ids=["fused", "composed"])
def test_log_softmax_with_minus_inf_entries(log_softmax):
    x = Tensor(np.array([[0.5, -np.inf, 1.0, -np.inf], [-np.inf, 2.0, 0.0, 1.0]]), requires_grad=True)
    masked = np.isinf(x.data)
    logp = log_softmax(x)
    assert np.all(logp.data[masked] == -np.inf)
    np.testing.assert_allclose(logp.data[1, 1:], np_log_softmax(np.array([2.0, 0.0, 1.0])), rtol=1e-14)
    # a loss that reads only the unmasked log-probabilities (as cross-entropy does)
    weights = np.random.default_rng(0).standard_normal(x.shape)
    (logp.masked_fill(masked, 0.0) * weights).sum().backward()
    assert np.isfinite(x.grad).all() and np.all(x.grad[masked] == 0.0)


def test_fused_and_composed_log_softmax_agree_with_minus_inf_entries():
    data = np.array([[0.5, -np.inf, 1.0], [-np.inf, 2.0, 0.0]])
    grads = []
    for fn in (F.log_softmax, F.log_softmax_composed):
        x = Tensor(data.copy(), requires_grad=True)
        logp = fn(x)
        weights = np.array([[1.0, 2.0, -1.0], [0.5, -3.0, 2.0]])
        (logp.masked_fill(np.isinf(data), 0.0) * weights).sum().backward()
        grads.append(x.grad)
    np.testing.assert_allclose(*grads, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax, lambda x: F.cross_entropy(x, np.array([0, 1]))],
                         ids=["softmax", "log_softmax", "cross_entropy"])
def test_a_fully_masked_row_raises(fn):
    x = Tensor(np.array([[0.0, 1.0, 2.0], [-np.inf, -np.inf, -np.inf]]))
    with pytest.raises(ValueError, match="entirely -inf"):
        fn(x)


def test_softmax_of_a_scalar_raises():
    with pytest.raises(ValueError, match="1-D"):
        F.softmax(Tensor(np.array(1.0)))


# ----------------------------------------------------------------------------------------------
# cross_entropy


@pytest.mark.parametrize("cross_entropy", [F.cross_entropy, F.cross_entropy_composed],
                         ids=["fused", "composed"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_with_every_position_ignored_is_zero_with_zero_gradient(cross_entropy, reduction):
    """Documented: the mean over no positions is defined as 0 (nothing to learn from), not 0/0."""
    logits = Tensor(np.random.default_rng(0).standard_normal((2, 3, 5)), requires_grad=True)
    targets = np.full((2, 3), -100)
    loss = cross_entropy(logits, targets, reduction=reduction)
    assert loss.shape == ((2, 3) if reduction == "none" else ())
    np.testing.assert_array_equal(loss.data, np.zeros(loss.shape))
    (loss * np.ones(loss.shape)).sum().backward()
    np.testing.assert_array_equal(logits.grad, np.zeros((2, 3, 5)))


def test_cross_entropy_reductions_agree_with_each_other():
    logits = np.random.default_rng(1).standard_normal((6, 4))
    targets = np.array([0, 3, -100, 1, 1, -100])
    per_position = F.cross_entropy(Tensor(logits), targets, reduction="none").data
    total = F.cross_entropy(Tensor(logits), targets, reduction="sum").item()
    mean = F.cross_entropy(Tensor(logits), targets).item()
    assert per_position[2] == 0.0 and per_position[5] == 0.0
    assert total == pytest.approx(per_position.sum(), rel=1e-14)
    assert mean == pytest.approx(total / 4, rel=1e-14)  # 4 positions count


def test_cross_entropy_of_3d_logits_equals_the_flattened_loss():
    logits = np.random.default_rng(2).standard_normal((2, 3, 5))  # (B, T, C)
    targets = np.array([[4, 0, -100], [2, 2, 1]])
    value_3d, (grad_3d,) = weighted_gradients(lambda x: F.cross_entropy(x, targets), [logits])
    value_2d, (grad_2d,) = weighted_gradients(lambda x: F.cross_entropy(x.reshape(6, 5), targets.reshape(6)),
                                              [logits])
    assert value_3d == pytest.approx(value_2d, rel=1e-14)
    np.testing.assert_allclose(grad_3d, grad_2d, rtol=1e-14)


def test_cross_entropy_is_stable_for_huge_and_minus_inf_logits():
    logits = Tensor(np.array([[1e4, 0.0, -1e4], [0.0, -np.inf, 1.0]]), requires_grad=True)
    loss = F.cross_entropy(logits, np.array([1, 2]), reduction="none")
    np.testing.assert_allclose(loss.data, [1e4, np.log1p(np.exp(-1.0))], rtol=1e-14)
    loss.sum().backward()
    assert np.isfinite(logits.grad).all() and logits.grad[1, 1] == 0.0


@pytest.mark.parametrize("targets", [np.array([0, 3]), np.array([0, -1])], ids=["too_large", "negative"])
def test_cross_entropy_target_out_of_range_raises(targets):
    with pytest.raises(IndexError, match=f"target {targets[1]} is out of range for 3 classes"):
        F.cross_entropy(Tensor(np.zeros((2, 3))), targets)


def test_cross_entropy_rejects_bad_targets_and_reductions():
    logits = Tensor(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="integers"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="not a Tensor"):
        F.cross_entropy(logits, Tensor(np.array([0.0, 1.0])))
    with pytest.raises(ValueError, match=r"targets of shape \(2,\)"):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(logits, np.array([0, 1]), reduction="average")


def test_cross_entropy_of_uniform_logits_is_log_of_the_class_count():
    loss = F.cross_entropy(Tensor(np.zeros((4, 10))), np.arange(4))
    assert loss.item() == pytest.approx(np.log(10), rel=1e-6)


# ----------------------------------------------------------------------------------------------
# layer_norm and gelu


def test_layer_norm_rows_have_zero_mean_and_unit_variance():
    x = np.random.default_rng(3).standard_normal((4, 16)) * 5.0 + 3.0
    y = F.layer_norm(Tensor(x)).data
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-14)
    np.testing.assert_allclose(y.var(axis=-1), x.var(axis=-1) / (x.var(axis=-1) + 1e-5), rtol=1e-12)


def test_layer_norm_rejects_a_weight_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"weight has shape \(5,\), expected \(4,\)"):
        F.layer_norm(Tensor(np.ones((2, 4))), Tensor(np.ones(5)))


def test_gelu_known_values():
    y = F.gelu(Tensor(np.array([0.0, 10.0, -10.0, 1.0]))).data
    np.testing.assert_allclose(y, [0.0, 10.0, 0.0, 0.8411919906082768], atol=1e-12)


# ----------------------------------------------------------------------------------------------
# dropout


def test_dropout_is_the_identity_in_eval_mode_and_for_p_zero():
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0, training=True, rng=np.random.default_rng(0)) is x
    assert F.dropout(x, 0.5, training=False, rng=None) is x  # no rng needed when not training


def test_dropout_zeroes_about_p_and_preserves_the_mean():
    x = Tensor(np.ones(200_000, dtype=np.float32))
    y = F.dropout(x, 0.25, rng=np.random.default_rng(0)).data
    assert y.dtype == np.float32
    assert np.mean(y == 0.0) == pytest.approx(0.25, abs=0.005)
    np.testing.assert_allclose(y[y != 0.0], 1 / 0.75, rtol=1e-6)  # survivors scaled by 1/(1-p)
    assert y.mean() == pytest.approx(1.0, abs=0.01)


def test_dropout_with_the_same_seed_drops_the_same_entries():
    x = Tensor(np.ones((8, 8)))
    first = F.dropout(x, 0.5, rng=np.random.default_rng(7)).data
    second = F.dropout(x, 0.5, rng=np.random.default_rng(7)).data
    other = F.dropout(x, 0.5, rng=np.random.default_rng(8)).data
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_dropout_gradient_flows_only_through_kept_entries():
    x = Tensor(np.random.default_rng(1).standard_normal((4, 5)), requires_grad=True)
    y = F.dropout(x, 0.5, rng=np.random.default_rng(2))
    y.sum().backward()
    kept = y.data != 0.0
    np.testing.assert_array_equal(x.grad, np.where(kept, 2.0, 0.0))


def test_dropout_mask_keeps_one_minus_p_and_its_scale_makes_the_expectation_exact():
    keep, scale = F.dropout_mask((400_000,), 0.2, np.random.default_rng(3))
    assert keep.dtype == bool
    threshold = round(0.2 * 65536)  # p rounded to a multiple of 1/65536
    assert scale == 65536 / (65536 - threshold)
    assert abs(threshold / 65536 - 0.2) < 2e-5
    assert np.mean(keep) == pytest.approx(1 - 0.2, abs=0.003)
    assert np.mean(keep) * scale == pytest.approx(1.0, abs=0.004)


def test_dropout_passes_gradcheck_with_the_mask_replayed_from_the_seed():
    x = Tensor(np.random.default_rng(4).standard_normal((3, 7)), requires_grad=True)
    assert gradcheck(lambda x: F.dropout(x, 0.3, rng=np.random.default_rng(5)) * x, x)


def test_dropout_needs_an_rng_when_training():
    with pytest.raises(TypeError, match="rng"):
        F.dropout(Tensor(np.ones(3)), 0.5)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_probability_out_of_range_raises(p):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        F.dropout(Tensor(np.ones(3)), p, rng=np.random.default_rng(0))


def test_layer_norm_skips_the_gradients_of_frozen_parameters():
    """Called directly, the fused closure returns None for every parent that does not require grad
    (the engine would drop those gradients anyway; the point is never to compute them)."""
    rng = np.random.default_rng(4)
    for trainable in ({"x"}, {"weight", "bias"}, {"x", "bias"}):
        x, weight, bias = (Tensor(rng.standard_normal(shape), requires_grad=name in trainable)
                           for name, shape in (("x", (2, 4)), ("weight", (4,)), ("bias", (4,))))
        out = F.layer_norm(x, weight, bias)
        grads = out._backward(np.ones(out.shape))
        assert [g is not None for g in grads] == [n in trainable for n in ("x", "weight", "bias")]


def test_log_sigmoid_is_finite_where_the_composed_version_underflows():
    x = Tensor(np.array([-1000.0, -40.0, 0.0, 40.0]), requires_grad=True)
    out = F.log_sigmoid(x)
    np.testing.assert_allclose(out.data, [-1000.0, -40.0 - np.log1p(np.exp(-40.0)), -np.log(2.0), -np.exp(-40.0)],
                               rtol=1e-12)
    out.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0, 1.0, 0.5, np.exp(-40.0)], rtol=1e-12)
    with np.errstate(divide="ignore"):
        assert np.isinf(F.log_sigmoid_composed(Tensor(np.array([-1000.0]))).data[0])
