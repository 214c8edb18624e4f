"""PyTorch parity: values and gradients of every op in the case table, and of a few small models,
agree with PyTorch in float64 to 1e-10. Skipped when torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the parity tests need PyTorch: pip install -e '.[reference]'")

from op_cases import FUNCTIONAL_CASES, OP_CASES, case_ids, joined  # noqa: E402
from tinygrad_llm import Tensor  # noqa: E402
from tinygrad_llm import functional as F  # noqa: E402
from tinygrad_llm.core import attention as A  # noqa: E402

TF = torch.nn.functional
TOLERANCE = dict(rtol=1e-10, atol=1e-10)
CASES = OP_CASES + FUNCTIONAL_CASES


def ours_and_theirs(arrays) -> tuple[list[Tensor], list]:
    ours = [Tensor(a.astype(np.float64), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    return ours, theirs


def backward_with_weights(ours_out: Tensor, theirs_out, seed: int = 0) -> None:
    """Backpropagate sum(out * w) with the same fixed random weights in both libraries."""
    weights = np.random.default_rng(seed).standard_normal(ours_out.shape)
    (ours_out * weights).sum().backward()
    (theirs_out * torch.from_numpy(weights)).sum().backward()


def assert_same_gradients(ours: list[Tensor], theirs: list) -> None:
    for index, (x, t) in enumerate(zip(ours, theirs)):
        assert t.grad is not None, f"torch computed no gradient for input {index}"
        np.testing.assert_allclose(x.grad, t.grad.numpy(), **TOLERANCE, err_msg=f"input {index}")


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_op_matches_torch_in_value_and_gradient(case):
    arrays = case.arrays()
    ours, theirs = ours_and_theirs(arrays)
    ours_out = joined(case.fn(*ours))
    theirs_out = joined(case.torch_fn()(*theirs))
    assert ours_out.shape == tuple(theirs_out.shape)
    np.testing.assert_allclose(ours_out.data, theirs_out.detach().numpy(), **TOLERANCE)
    backward_with_weights(ours_out, theirs_out)
    assert_same_gradients(ours, theirs)


# ----------------------------------------------------------------------------------------------
# Small models


@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh"])
def test_two_layer_mlp_with_cross_entropy_matches_torch(activation):
    rng = np.random.default_rng(10)
    arrays = [rng.standard_normal((8, 5)),                       # x: (N, D)
              rng.standard_normal((5, 16)) * 0.5, rng.standard_normal(16) * 0.1,   # layer 1
              rng.standard_normal((16, 3)) * 0.5, rng.standard_normal(3) * 0.1]    # layer 2
    targets = np.array([0, 2, 1, 1, 0, 2, -100, 1])
    ours, theirs = ours_and_theirs(arrays)

    x, w1, b1, w2, b2 = ours
    hidden = getattr(x @ w1 + b1, activation)()
    loss = F.cross_entropy(hidden @ w2 + b2, targets)

    tx, tw1, tb1, tw2, tb2 = theirs
    torch_activation = {"relu": torch.relu, "tanh": torch.tanh,
                        "gelu": lambda h: TF.gelu(h, approximate="tanh")}[activation]
    torch_loss = TF.cross_entropy(torch_activation(tx @ tw1 + tb1) @ tw2 + tb2, torch.from_numpy(targets))

    assert loss.item() == pytest.approx(torch_loss.item(), rel=1e-12)
    loss.backward()
    torch_loss.backward()
    assert_same_gradients(ours, theirs)


def _our_attention(x, wq, wk, wv, variant):
    q, k, v = x @ wq, x @ wk, x @ wv                              # (B, T, hs) each
    if variant == "fused_attention_op":
        return A.scaled_dot_product_attention(q, k, v, causal=True)
    T, hs = x.shape[1], wq.shape[1]
    scores = (q @ k.swapaxes(-1, -2)) * (1.0 / np.sqrt(hs))      # (B, T, T)
    causal = np.triu(np.ones((T, T), dtype=bool), k=1)           # True above the diagonal: the future
    scores = scores.masked_fill(causal, -np.inf)
    softmax = F.softmax if variant == "masked_fill_fused_softmax" else F.softmax_composed
    return softmax(scores) @ v                                    # (B, T, hs)


def _torch_attention(x, wq, wk, wv):
    q, k, v = x @ wq, x @ wk, x @ wv
    T, hs = x.shape[1], wq.shape[1]
    scores = (q @ k.transpose(-1, -2)) / hs ** 0.5
    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    return torch.softmax(scores.masked_fill(causal, float("-inf")), dim=-1) @ v


@pytest.mark.parametrize("variant", ["masked_fill_fused_softmax", "masked_fill_composed_softmax",
                                     "fused_attention_op"])
def test_causal_self_attention_matches_torch(variant):
    rng = np.random.default_rng(11)
    arrays = [rng.standard_normal((2, 5, 8)),                    # x: (B, T, C)
              *(rng.standard_normal((8, 4)) * 0.5 for _ in range(3))]  # query, key, value weights
    ours, theirs = ours_and_theirs(arrays)
    out = _our_attention(*ours, variant)
    torch_out = _torch_attention(*theirs)
    np.testing.assert_allclose(out.data, torch_out.detach().numpy(), **TOLERANCE)
    backward_with_weights(out, torch_out)
    assert_same_gradients(ours, theirs)


def test_tied_embedding_language_model_head_matches_torch():
    """Embedding lookup with repeated tokens, layer norm, and the same table as the output layer
    (an input used twice), then cross-entropy with ignored positions."""
    rng = np.random.default_rng(12)
    ids = np.array([[1, 4, 1, 0], [4, 4, 2, 6]])                  # (B, T)
    targets = np.array([[4, 1, 0, -100], [4, 2, 6, 6]])
    arrays = [rng.standard_normal((7, 6)), 1 + 0.1 * rng.standard_normal(6), 0.1 * rng.standard_normal(6)]
    ours, theirs = ours_and_theirs(arrays)

    table, weight, bias = ours
    hidden = F.layer_norm(table[ids], weight, bias)              # (B, T, D)
    loss = F.cross_entropy(hidden @ table.T, targets)            # logits (B, T, V)

    t_table, t_weight, t_bias = theirs
    t_hidden = TF.layer_norm(t_table[torch.from_numpy(ids)], (6,), t_weight, t_bias)
    t_logits = t_hidden @ t_table.T
    torch_loss = TF.cross_entropy(t_logits.reshape(-1, 7), torch.from_numpy(targets.reshape(-1)))

    assert loss.item() == pytest.approx(torch_loss.item(), rel=1e-12)
    loss.backward()
    torch_loss.backward()
    assert_same_gradients(ours, theirs)
