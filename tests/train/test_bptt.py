"""Truncated BPTT: lanes of consecutive windows, the carried state, exact resumption."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from tinygrad_llm.model.rnn import RNNConfig, RNNLanguageModel
from tinygrad_llm.train import bptt
from tinygrad_llm.train.bptt import (ConsecutiveWindows, StreamBatch, TruncatedBPTT, carried_state_loss,
                                     lane_starts)
from tinygrad_llm.train.trainer import TrainConfig, Trainer


def test_docstring_examples_run():
    assert doctest.testmod(bptt).failed == 0


def test_each_row_continues_the_row_before_until_the_pass_ends():
    tokens = np.arange(1000)
    source = ConsecutiveWindows(tokens, 8, np.random.default_rng(0))
    starts, windows = lane_starts(len(tokens), 4, 8, source.offset)
    batches = [source.next_batch(4) for _ in range(windows + 1)]
    for a, b in zip(batches, batches[1:windows]):
        assert np.array_equal(a.inputs[:, -1] + 1, b.inputs[:, 0])           # reading order
        assert np.array_equal(a.targets, a.inputs + 1)                        # shifted by one
    assert [b.first for b in batches] == [True] + [False] * (windows - 1) + [True]
    assert np.array_equal(batches[0].inputs[:, 0], starts)
    # within a pass no token is an input twice
    seen = np.concatenate([b.inputs.ravel() for b in batches[:windows]])
    assert len(np.unique(seen)) == seen.size


def test_the_number_of_lanes_is_fixed_by_the_first_batch():
    source = ConsecutiveWindows(np.arange(100), 4, np.random.default_rng(0))
    source.next_batch(3)
    with pytest.raises(ValueError, match="3 lanes"):
        source.next_batch(4)


def test_lanes_shorter_than_a_window_are_refused():
    with pytest.raises(ValueError, match="shorter than one window"):
        lane_starts(20, 4, 8)


def test_the_objective_carries_the_state_within_a_pass_and_resets_at_its_start():
    model = RNNLanguageModel(RNNConfig(vocab_size=10, context_length=4, d_model=3, hidden_size=4))
    objective = TruncatedBPTT()
    rows = np.random.default_rng(0).integers(0, 10, (2, 5))
    batch = StreamBatch(rows[:, :4], rows[:, 1:], first=True)
    fresh = objective(model, batch).item()
    carried = objective(model, StreamBatch(rows[:, :4], rows[:, 1:], first=False)).item()
    again = objective(model, batch).item()
    assert carried != fresh and again == fresh
    assert not objective.state[0][0].requires_grad
    with pytest.raises(TypeError, match="StreamBatch"):
        objective(model, (rows[:, :4], rows[:, 1:]))


def _trainer(tokens):
    model = RNNLanguageModel(RNNConfig(vocab_size=12, context_length=6, d_model=4, hidden_size=5, cell="lstm"),
                             rng=np.random.default_rng(1))
    objective = TruncatedBPTT()
    config = TrainConfig(steps=10, batch_size=3, warmup_steps=2, eval_interval=100, log_interval=100)
    return Trainer(model, config=config, log=None, batches=ConsecutiveWindows(tokens, 6, np.random.default_rng(2)),
                   objective=objective, hooks=[objective])


def test_a_resumed_run_continues_exactly(tmp_path):
    tokens = np.random.default_rng(3).integers(0, 12, 80)
    straight = _trainer(tokens)
    straight.train()
    first = _trainer(tokens)
    first.train(steps=5)
    first.save(tmp_path / "half.safetensors")
    resumed = _trainer(tokens)
    resumed.load(tmp_path / "half.safetensors")
    resumed.train()
    assert resumed.history.train_loss == straight.history.train_loss
    for a, b in zip(resumed.model.parameters(), straight.model.parameters()):
        assert np.array_equal(a.data, b.data)


def test_the_carried_state_loss_reads_every_window_once():
    model = RNNLanguageModel(RNNConfig(vocab_size=10, context_length=4, d_model=3, hidden_size=4))
    tokens = np.random.default_rng(5).integers(0, 10, 41)
    loss = carried_state_loss(model, tokens, 2, 4)
    assert np.isfinite(loss) and loss > 0
    # one lane holding all 40 targets: the mean of per-window losses equals one long window's loss
    assert np.isclose(carried_state_loss(model, tokens, 1, 4),
                      model(tokens[None, :40], tokens[None, 1:41])[1].item(), rtol=1e-5)
