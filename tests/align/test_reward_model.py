"""The reward model (tinygrad_llm.align.reward_model): the reward is read at the last real token,
the Bradley-Terry loss, and training in the one loop to held-out pair accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from align_helpers import PAD, synthetic_pairs, tiny_gpt

from tinygrad_llm import Tensor
from tinygrad_llm.align.reward_model import (RewardModel, RewardObjective, pair_accuracy, pairwise_loss,
                                             reward_inputs, score)
from tinygrad_llm.align.sequences import pair_batches, pair_rows
from tinygrad_llm.core.gradcheck import gradcheck
from tinygrad_llm.finetune.instruction_data import EncodedExample
from tinygrad_llm.train.trainer import TrainConfig, Trainer


def test_the_reward_is_read_at_the_last_real_token():
    model = RewardModel(tiny_gpt())
    ids = np.array([[5, 6, 7, 0, 0], [5, 6, 7, 8, 9]])
    rewards = model(ids, np.array([3, 5])).data
    assert rewards[0] == pytest.approx(model(ids[:1, :3], np.array([3])).data[0], rel=1e-12)
    changed_padding = ids.copy()
    changed_padding[0, 3:] = [11, 12]
    assert model(changed_padding, np.array([3, 5])).data[0] == pytest.approx(rewards[0], rel=1e-12)
    hidden = model.backbone.hidden_states(ids).data[1, 4]
    assert rewards[1] == pytest.approx(hidden @ model.head.weight.data[0] + model.head.bias.data[0], rel=1e-12)


@pytest.mark.parametrize("lengths, match", [([0, 2], "1..5"), ([2, 6], "1..5"), ([2], "lengths"),
                                            ([1.0, 2.0], "integer")])
def test_bad_lengths_are_refused(lengths, match):
    with pytest.raises(ValueError, match=match):
        RewardModel(tiny_gpt())(np.ones((2, 5), dtype=np.int64), np.array(lengths))


def test_from_gpt_copies_the_backbone():
    gpt = tiny_gpt()
    model = RewardModel.from_gpt(gpt)
    model.backbone.token_embedding.weight.data[0] += 1.0
    assert not np.allclose(gpt.token_embedding.weight.data[0], model.backbone.token_embedding.weight.data[0])


def test_pairwise_loss_is_bradley_terry_and_sees_only_differences():
    chosen, rejected = np.array([2.0, -1.0, 0.5]), np.array([1.0, 1.0, -800.0])
    loss = pairwise_loss(Tensor(chosen), Tensor(rejected)).item()
    assert loss == pytest.approx(np.mean(np.logaddexp(0, -(chosen - rejected))), rel=1e-12)
    assert math.isfinite(pairwise_loss(Tensor(rejected), Tensor(chosen)).item())     # margin -800.5, no log 0
    shifted = pairwise_loss(Tensor(chosen + 7.0), Tensor(rejected + 7.0)).item()
    assert shifted == pytest.approx(loss, rel=1e-12)


def test_the_reward_model_gradient_passes_the_finite_difference_check():
    model = RewardModel(tiny_gpt(vocab_size=12, context_length=6))
    ids, lengths = np.array([[1, 2, 3, 0], [4, 5, 6, 7]]), np.array([3, 4])

    def loss(weight, embedding):
        model.head.weight, model.backbone.token_embedding.weight = weight, embedding
        rewards = model(ids, lengths)
        return pairwise_loss(rewards[:1], rewards[1:])

    gradcheck(loss, Tensor(model.head.weight.data.copy(), requires_grad=True),
              Tensor(model.backbone.token_embedding.weight.data.copy(), requires_grad=True))


def test_reward_inputs_cut_to_the_context_and_pad():
    rows = [EncodedExample(np.arange(1, 10), 2), EncodedExample(np.array([3, 4, 5]), 1)]
    ids, lengths = reward_inputs(rows, pad_id=0, context_length=6)
    assert ids.tolist() == [[1, 2, 3, 4, 5, 6], [3, 4, 5, 0, 0, 0]] and lengths.tolist() == [6, 3]


def test_the_reward_model_learns_held_out_preferences_in_the_one_loop():
    model = RewardModel(tiny_gpt(seed=1, dtype=np.float32), rng=np.random.default_rng(1))
    train, held_out = synthetic_pairs(64, 6), synthetic_pairs(32, 7)
    config = TrainConfig(steps=60, batch_size=8, learning_rate=3e-3, warmup_steps=5, log_interval=100,
                         eval_interval=100)
    trainer = Trainer(model, config=config, log=None, batches=pair_batches(train, np.random.default_rng(0)),
                      objective=RewardObjective(PAD))
    trainer.train()
    assert pair_accuracy(model, held_out, PAD) >= 0.9
    losses = trainer.history.train_loss
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    rewards = score(model, pair_rows(held_out), PAD)
    assert rewards.shape == (64,) and np.isfinite(rewards).all()
