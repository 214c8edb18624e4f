"""Span-corruption pretraining through the one Trainer: fixed shapes, teacher forcing, learning."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm import GPTConfig
from tinygrad_llm.model.seq2seq import EncoderDecoder
from tinygrad_llm.text.spans import restore_spans, sentinel_ids
from tinygrad_llm.train.spans import SpanCorruptedWindows, seq2seq_accuracy, seq2seq_loss
from tinygrad_llm.train.trainer import TrainConfig, Trainer

V = 32
SENTINELS = sentinel_ids(V, 6)
START = 25


def _source(tokens, seed=0):
    return SpanCorruptedWindows(tokens, 20, np.random.default_rng(seed), sentinels=SENTINELS, start_id=START)


def test_batches_have_fixed_shapes_and_the_decoder_input_is_the_target_shifted_right():
    tokens = np.random.default_rng(0).integers(0, 25, 400)
    source, decoder_inputs, targets = _source(tokens).next_batch(8)
    assert source.shape == (8, 20 - 3 + 1) and targets.shape == decoder_inputs.shape == (8, 3 + 1 + 1)
    assert np.all(decoder_inputs[:, 0] == START) and np.array_equal(decoder_inputs[:, 1:], targets[:, :-1])
    for s, t in zip(source, targets):
        restored = restore_spans(s, t, SENTINELS)
        assert len(restored) == 20 and not set(restored) & set(SENTINELS)


def test_the_trainer_learns_to_fill_spans_of_a_repeating_text():
    tokens = np.tile(np.arange(20), 30)
    model = EncoderDecoder(GPTConfig(vocab_size=V, context_length=20, d_model=16, n_layer=1, n_head=2))
    held_out = [_source(tokens, seed=9).next_batch(16)]
    before = seq2seq_accuracy(model, held_out)["span_accuracy"]
    trainer = Trainer(model, config=TrainConfig(steps=120, batch_size=16, learning_rate=1e-2, warmup_steps=10,
                                                eval_interval=120, log_interval=120),
                      log=None, batches=_source(tokens), objective=seq2seq_loss,
                      evaluator=lambda m: seq2seq_accuracy(m, held_out))
    assert trainer.train().metrics["span_accuracy"][-1] > 0.9 > before


def test_a_window_too_short_for_its_spans_is_refused():
    with pytest.raises(ValueError, match="longer than the sequence"):
        SpanCorruptedWindows(np.arange(100), 2, np.random.default_rng(0), sentinels=SENTINELS, start_id=START)
