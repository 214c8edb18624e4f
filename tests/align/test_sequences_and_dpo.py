"""Response log-probabilities and DPO / IPO (tinygrad_llm.align.sequences, tinygrad_llm.align.dpo)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from align_helpers import PAD, synthetic_pairs, tiny_gpt

from tinygrad_llm import Tensor
from tinygrad_llm.align.dpo import DPOObjective, implicit_rewards, preference_loss
from tinygrad_llm.align.sequences import pair_batch, pair_batches, reference_logprobs, sequence_logprobs
from tinygrad_llm.finetune.instruction_data import EncodedExample, collate
from tinygrad_llm.train.trainer import TrainConfig, Trainer



def np_log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def test_sequence_logprob_is_the_sum_over_response_tokens_only():
    model = tiny_gpt()
    rows = [EncodedExample(np.array([5, 6, 7, 8, 9]), 3), EncodedExample(np.array([4, 3, 2]), 1)]
    inputs, targets = collate(rows, PAD)
    got = sequence_logprobs(model, inputs, targets).data
    logp = np_log_softmax(model(inputs).data)
    expected = [logp[0, 2, 8] + logp[0, 3, 9], logp[1, 0, 3] + logp[1, 1, 2]]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_padding_does_not_change_a_response_logprob():
    model = tiny_gpt()
    short = EncodedExample(np.array([4, 3, 2]), 1)
    alone = sequence_logprobs(model, *collate([short], PAD)).data[0]
    beside_long = sequence_logprobs(model, *collate([short, EncodedExample(np.arange(2, 12), 4)], PAD)).data[0]
    assert alone == pytest.approx(beside_long, rel=1e-12)


def test_a_row_without_response_tokens_is_refused():
    with pytest.raises(ValueError, match="no response token"):
        sequence_logprobs(tiny_gpt(), np.array([[1, 2]]), np.array([[-100, -100]]))


def test_reference_logprobs_match_the_batched_values_in_any_batch_size():
    model, pairs = tiny_gpt(), synthetic_pairs(5, 0)
    whole = sequence_logprobs(model, *pair_batch(pairs, PAD)).data
    for batch_size in (1, 2, 16):
        ref = reference_logprobs(model, pairs, PAD, batch_size=batch_size)
        np.testing.assert_allclose(ref[:, 0], whole[:5], rtol=1e-10)
        np.testing.assert_allclose(ref[:, 1], whole[5:], rtol=1e-10)


def test_pair_batches_give_every_pair_once_per_pass_with_its_index():
    pairs = synthetic_pairs(6, 1)
    source = pair_batches(pairs, np.random.default_rng(0))
    index, chunk = source.next_batch(6)
    assert sorted(index.tolist()) == list(range(6))
    assert all(pairs[i] is p for i, p in zip(index, chunk))
    with pytest.raises(ValueError, match="no preference pairs"):
        pair_batches([], np.random.default_rng(0))


def test_dpo_loss_is_log_2_when_the_policy_is_the_reference_and_matches_the_formula():
    rng = np.random.default_rng(2)
    pc, pr, rc, rr = (rng.normal(-10, 2, size=4) for _ in range(4))
    beta = 0.3
    zero = preference_loss(Tensor(rc), Tensor(rr), rc, rr, beta)
    assert zero.item() == pytest.approx(math.log(2), rel=1e-12)
    margin = beta * ((pc - pr) - (rc - rr))
    loss = preference_loss(Tensor(pc), Tensor(pr), rc, rr, beta)
    assert loss.item() == pytest.approx(np.mean(np.logaddexp(0, -margin)), rel=1e-12)
    ipo = preference_loss(Tensor(pc), Tensor(pr), rc, rr, beta, loss="ipo")
    assert ipo.item() == pytest.approx(np.mean((margin / beta - 1 / (2 * beta)) ** 2), rel=1e-12)


def test_dpo_gradient_raises_the_chosen_and_lowers_the_rejected_ipo_stops_at_its_margin():
    chosen, rejected = Tensor(np.array([-5.0]), requires_grad=True), Tensor(np.array([-5.0]), requires_grad=True)
    preference_loss(chosen, rejected, np.array([-5.0]), np.array([-5.0]), 0.5).backward()
    assert chosen.grad[0] < 0 < rejected.grad[0]        # descent raises log pi(chosen)
    beta = 0.5
    at_margin = Tensor(np.array([-5.0 + 1 / (2 * beta)]), requires_grad=True)
    loss = preference_loss(at_margin, Tensor(np.array([-5.0])), np.array([-5.0]), np.array([-5.0]), beta, "ipo")
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-24) and at_margin.grad[0] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("kwargs, match", [({"beta": 0.0}, "beta"), ({"loss": "kto"}, "loss must be"),
                                           ({"reference_chosen": np.zeros(3)}, "reference_chosen has shape")])
def test_preference_loss_refuses_bad_settings(kwargs, match):
    args = {"policy_chosen": Tensor(np.zeros(2)), "policy_rejected": Tensor(np.zeros(2)),
            "reference_chosen": np.zeros(2), "reference_rejected": np.zeros(2), **kwargs}
    with pytest.raises(ValueError, match=match):
        preference_loss(**args)


def test_implicit_rewards_are_beta_times_the_log_ratio():
    np.testing.assert_allclose(implicit_rewards([-3.0, -1.0], [-2.0, -2.0], 0.1), [-0.1, 0.1])


@pytest.mark.parametrize("loss", ["dpo", "ipo"])
def test_dpo_in_the_one_loop_learns_held_out_preferences(loss):
    """From a copy of the reference, 60 steps of DPO (or IPO) put the chosen
    response ahead of the rejected one on held-out pairs nearly always."""
    policy, reference = tiny_gpt(seed=3, dtype=np.float32), tiny_gpt(seed=3, dtype=np.float32)
    train, held_out = synthetic_pairs(64, 4), synthetic_pairs(32, 5)
    ref_train, ref_held = reference_logprobs(reference, train, PAD), reference_logprobs(reference, held_out, PAD)

    def accuracy():
        now = reference_logprobs(policy, held_out, PAD)
        return float(np.mean((now[:, 0] - now[:, 1]) - (ref_held[:, 0] - ref_held[:, 1]) > 0))

    before = accuracy()
    config = TrainConfig(steps=60, batch_size=8, learning_rate=3e-3, warmup_steps=5, log_interval=100,
                         eval_interval=100)
    trainer = Trainer(policy, config=config, log=None, batches=pair_batches(train, np.random.default_rng(0)),
                      objective=DPOObjective(ref_train, PAD, beta=0.5, loss=loss))
    trainer.train()
    assert before == 0.0    # the policy starts as the reference: every margin is exactly 0
    assert accuracy() >= 0.9
    assert np.mean(trainer.history.terms["accuracy"][-10:]) >= 0.9


def test_dpo_objective_refuses_a_bad_reference():
    with pytest.raises(ValueError, match="shape"):
        DPOObjective(np.zeros((3, 3)), PAD)
    with pytest.raises(ValueError, match="finite"):
        DPOObjective(np.array([[0.0, np.nan]]), PAD)
