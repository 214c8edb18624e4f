"""Masked language modelling through the one Trainer: the batch source, the objective, the accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm import GPTConfig
from tinygrad_llm.model.encoder import Encoder
from tinygrad_llm.text.masking import IGNORE
from tinygrad_llm.train.mlm import MaskedWindows, masked_accuracy, masked_lm_loss
from tinygrad_llm.train.trainer import TrainConfig, Trainer

V, CLS, SEP, MASK, PAD = 24, 20, 21, 22, 23


def _source(tokens, seed=0):
    return MaskedWindows(tokens, 10, np.random.default_rng(seed), cls_id=CLS, sep_id=SEP, mask_id=MASK,
                         vocab_size=V, special_ids=(CLS, SEP, MASK, PAD))


def test_windows_are_wrapped_in_cls_and_sep_which_are_never_masked():
    tokens = np.random.default_rng(0).integers(0, 20, 500)
    inputs, labels = _source(tokens).next_batch(64)
    assert inputs.shape == labels.shape == (64, 10)
    assert np.all(inputs[:, 0] == CLS) and np.all(inputs[:, -1] == SEP)
    assert np.all(labels[:, [0, -1]] == IGNORE)
    assert 0.05 < (labels != IGNORE).mean() < 0.2


def test_the_trainer_learns_a_repeating_text_by_masked_language_modelling():
    tokens = np.tile(np.arange(20), 40)                 # the next and previous token say it all
    model = Encoder(GPTConfig(vocab_size=V, context_length=10, d_model=16, n_layer=1, n_head=2), pad_id=PAD)
    held_out = [_source(tokens, seed=9).next_batch(32) for _ in range(2)]
    before = masked_accuracy(model, held_out)["mlm_accuracy"]
    trainer = Trainer(model, config=TrainConfig(steps=150, batch_size=32, learning_rate=1e-2, warmup_steps=10,
                                                eval_interval=150, log_interval=150),
                      log=None, batches=_source(tokens), objective=masked_lm_loss,
                      evaluator=lambda m: masked_accuracy(m, held_out))
    history = trainer.train()
    assert history.metrics["mlm_accuracy"][-1] > 0.8 > before


def test_a_rate_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="masking rate"):
        MaskedWindows(np.arange(50), 10, np.random.default_rng(0), cls_id=CLS, sep_id=SEP, mask_id=MASK,
                      vocab_size=V, special_ids=(), rate=1.0)
