"""PPO on the one loop (tinygrad_llm.align.rlhf): the policy with a value head, rollouts, the
objective, and a toy reward that PPO must learn to collect."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tinygrad_llm import GPT, GPTConfig, TrainConfig, Trainer
from tinygrad_llm.align.rlhf import PolicyWithValue, PPOObjective, collect_rollout, rollout_batches
from tinygrad_llm.finetune.instruction_data import InstructionExample, PromptTemplate
from tinygrad_llm.text.bpe import BPETokenizer

TEXT = "yes no maybe so. yes no. no maybe no. maybe so. " * 30
TEMPLATE = PromptTemplate.compact()


@pytest.fixture(scope="module")
def setup():
    tokenizer = BPETokenizer.train(TEXT, 270, pattern="gpt4", special_tokens=("<|endoftext|>",))
    config = GPTConfig(vocab_size=tokenizer.vocab_size, context_length=24, d_model=32, n_layer=1, n_head=2)
    prompts = [InstructionExample(f"say {w}", "", "") for w in ("a", "b", "c", "d")] * 4
    yes = tokenizer.encode(" yes")
    # a policy that already speaks the language: it says yes, no, maybe and so, in some mix
    pretrained = GPT(config, rng=np.random.default_rng(2))
    ids = np.array(tokenizer.encode(TEXT))
    Trainer(pretrained, ids, None, TrainConfig(steps=60, batch_size=8, learning_rate=3e-3, warmup_steps=5,
                                               eval_interval=60, eval_batches=1, log_interval=60), log=None).train()
    return tokenizer, config, prompts, yes, pretrained.eval()


def yes_reward(yes_ids):
    def reward(rows):   # the share of answer tokens that are " yes": a reward with an easy optimum
        return np.array([np.isin(row.response_ids, yes_ids).mean() for row in rows])
    return reward


def test_the_value_head_reads_every_position_and_the_logits_are_the_policys(setup):
    tokenizer, config, _, _, _ = setup
    policy = GPT(config, rng=np.random.default_rng(0))
    model = PolicyWithValue(policy)
    ids = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    logits, values = model(ids)
    assert values.shape == (2, 4)
    np.testing.assert_allclose(logits.data, policy(ids).data, rtol=1e-6)


def test_a_rollout_masks_answers_and_starts_with_ratio_one(setup):
    tokenizer, config, prompts, yes, _ = setup
    policy = GPT(config, rng=np.random.default_rng(1))
    model, reference = PolicyWithValue(policy), GPT(config, rng=np.random.default_rng(1))
    rollout = collect_rollout(model, reference, tokenizer, prompts, yes_reward(yes), np.random.default_rng(0),
                              TEMPLATE, kl_coef=0.1, max_new_tokens=6)
    assert rollout.mask.any(axis=1).all() and not rollout.mask[:, 0].any()   # the prompt is never an answer
    np.testing.assert_allclose(rollout.kl(), 0.0, atol=1e-5)                # the policy is the reference
    assert abs(rollout.advantages[rollout.mask].mean()) < 1e-9
    loss, terms = PPOObjective()(model, rollout)
    assert terms["clip_fraction"] == 0.0 and terms["approx_kl"] == pytest.approx(0.0, abs=1e-6)


def test_ppo_in_the_one_loop_learns_to_collect_a_toy_reward(setup):
    tokenizer, config, prompts, yes, pretrained = setup
    model, reference = PolicyWithValue(copy.deepcopy(pretrained)), pretrained
    rng = np.random.default_rng(3)
    scores = []
    for _ in range(12):
        rollout = collect_rollout(model, reference, tokenizer, prompts, yes_reward(yes), rng, TEMPLATE,
                                  kl_coef=0.01, max_new_tokens=6)
        scores.append(rollout.scores.mean())
        config_ = TrainConfig(steps=4, batch_size=8, learning_rate=3e-3, min_learning_rate=3e-3, warmup_steps=0,
                              weight_decay=0.0, eval_interval=100, log_interval=100)
        model.train()
        Trainer(model, config=config_, log=None, batches=rollout_batches(rollout, rng), objective=PPOObjective()).train()
        model.eval()
    assert np.mean(scores[-3:]) > np.mean(scores[:3]) + 0.2, scores


def test_without_the_kl_penalty_the_policy_drifts_further_from_the_reference(setup):
    """The same PPO runs with beta_KL = 0.5 and 0: the penalty keeps the sampled KL near 0 (measured
    -0.2 nats per answer), without it the policy moves about 7 nats away."""
    tokenizer, config, prompts, yes, pretrained = setup
    kl = {}
    for kl_coef in (0.5, 0.0):
        model = PolicyWithValue(copy.deepcopy(pretrained))
        rng = np.random.default_rng(4)
        for _ in range(10):
            rollout = collect_rollout(model, pretrained, tokenizer, prompts, yes_reward(yes), rng, TEMPLATE,
                                      kl_coef=kl_coef, max_new_tokens=6)
            model.train()
            Trainer(model, config=TrainConfig(steps=4, batch_size=8, learning_rate=3e-3, min_learning_rate=3e-3,
                                              warmup_steps=0, weight_decay=0.0, eval_interval=100,
                                              log_interval=100),
                    log=None, batches=rollout_batches(rollout, rng), objective=PPOObjective()).train()
            model.eval()
        kl[kl_coef] = collect_rollout(model, pretrained, tokenizer, prompts, yes_reward(yes), rng, TEMPLATE,
                                      kl_coef=kl_coef, max_new_tokens=6).kl().mean()
    assert kl[0.0] > kl[0.5] + 2, kl   # k1 is a sampled estimate: near 0 it can be slightly negative
