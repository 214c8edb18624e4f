"""Recurrent language models: gradients through time checked by finite differences, PyTorch parity."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from tinygrad_llm import Tensor, gradcheck
from tinygrad_llm.model import rnn
from tinygrad_llm.model.rnn import CELLS, RecurrentLayer, RNNConfig, RNNLanguageModel, detach_state


def test_docstring_examples_run():
    assert doctest.testmod(rnn).failed == 0


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_through_time_match_finite_differences(cell):
    layer = RecurrentLayer(cell, 3, 4, rng=np.random.default_rng(0), dtype=np.float64)
    x = Tensor(np.random.default_rng(1).normal(size=(2, 5, 3)), requires_grad=True)
    h0 = Tensor(np.random.default_rng(2).normal(size=(2, 4)) * 0.5, requires_grad=True)
    c0 = Tensor(np.random.default_rng(3).normal(size=(2, 4)) * 0.5, requires_grad=True)
    state = (h0, c0) if cell == "lstm" else (h0,)

    def run(x, *state):
        out, last = layer(x, state)
        return out.sum(axis=1) + last[-1]   # every step and the final (cell) state

    assert gradcheck(run, x, *state)
    assert gradcheck(lambda w, u: run(x, *state), layer.input.weight, layer.recurrent.weight)
    assert gradcheck(lambda b, c: run(x, *state), layer.input.bias, layer.recurrent.bias)


def test_the_language_model_trains_its_embedding_and_head_through_the_recurrence():
    model = RNNLanguageModel(RNNConfig(vocab_size=11, d_model=4, hidden_size=5, n_layer=2, cell="gru"),
                             dtype=np.float64)
    ids = np.random.default_rng(4).integers(0, 11, (2, 6))
    (logits, state), loss = model(ids[:, :-1], targets=ids[:, 1:])
    assert logits.shape == (2, 5, 11) and len(state) == 2
    loss.backward()
    assert all(p.grad is not None and np.abs(p.grad).sum() > 0 for p in model.parameters())


def test_a_detached_state_carries_values_but_no_graph():
    model = RNNLanguageModel(RNNConfig(vocab_size=7, d_model=3, hidden_size=4, cell="lstm"))
    _, state = model(np.array([[1, 2, 3]]))
    carried = detach_state(state)
    assert np.array_equal(carried[0][1].data, state[0][1].data)
    assert not carried[0][0].requires_grad


@pytest.mark.parametrize("bad, fragment", [
    (dict(cell="transformer"), "RNNConfig.cell"),
    (dict(hidden_size=0), "RNNConfig.hidden_size"),
    (dict(dropout=1.0), "RNNConfig.dropout"),
    (dict(n_layer=True), "RNNConfig.n_layer"),
])
def test_bad_configs_are_refused_by_name(bad, fragment):
    with pytest.raises((ValueError, TypeError), match=fragment):
        RNNConfig(vocab_size=10, **bad)


def test_an_empty_sequence_is_refused():
    with pytest.raises(ValueError, match="time >= 1"):
        RNNLanguageModel(RNNConfig(vocab_size=5))(np.zeros((1, 0), dtype=np.int64))


torch = pytest.importorskip("torch", reason="PyTorch is not installed (the reference extra)")


@pytest.mark.parametrize("cell, reference", [("elman", "RNN"), ("gru", "GRU"), ("lstm", "LSTM")])
def test_layers_match_pytorch_given_the_same_weights(cell, reference):
    layer = RecurrentLayer(cell, 3, 4, rng=np.random.default_rng(0), dtype=np.float64)
    theirs = getattr(torch.nn, reference)(3, 4, batch_first=True).double()
    with torch.no_grad():
        theirs.weight_ih_l0.copy_(torch.from_numpy(layer.input.weight.data))
        theirs.weight_hh_l0.copy_(torch.from_numpy(layer.recurrent.weight.data))
        theirs.bias_ih_l0.copy_(torch.from_numpy(layer.input.bias.data))
        theirs.bias_hh_l0.copy_(torch.from_numpy(layer.recurrent.bias.data))
    x = np.random.default_rng(1).normal(size=(2, 6, 3))
    ours, _ = layer(Tensor(x))
    expected, _ = theirs(torch.from_numpy(x))
    np.testing.assert_allclose(ours.data, expected.detach().numpy(), rtol=1e-12, atol=1e-12)
