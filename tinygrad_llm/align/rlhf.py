"""PPO with a KL penalty, on the one training loop (the alignment lessons): the policy with its value
head, rollouts of sampled answers, and the objective that ``ppo``'s pieces make.

One PPO iteration:

1. **rollout**: sample answers to a batch of prompts from the policy; score each finished answer
   with the reward function (the reward model); read, at every answer token, the log-probability
   under the policy (``old``), under the frozen reference, and the value head's estimate; turn them
   into per-token rewards (``ppo.token_rewards``: the KL penalty plus the score at the last token)
   and advantages (``ppo.gae``, whitened);
2. **update**: a few passes of minibatches over the rollout through ``Trainer``, each step the
   clipped surrogate plus the value loss (``PPOObjective``).

Answers are re-encoded from their text, as the reward model reads them; the log-probabilities
of old and new policy are taken on those same tokens, so the ratio pi / pi_old is exact for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..core import functional as F
from ..core.tensor import Tensor
from ..finetune.instruction_data import (IGNORE_INDEX, EncodedExample, InstructionExample, PromptTemplate,
                                         collate, encode_example)
from ..model.gpt import GPT
from ..text.bpe import BPETokenizer
from ..train.batches import ShuffledRows
from .ppo import clipped_surrogate, gae, token_rewards, value_loss, whiten
from .reward_model import ScalarHeadGPT
from .sampling import sample_responses
from .sequences import token_logprobs


class PolicyWithValue(ScalarHeadGPT):
    """The policy (the backbone GPT, language-model head included) and, through the scalar head,
    the value V(s_t) at every position."""

    @property
    def policy(self) -> GPT:
        return self.backbone

    def forward(self, ids: np.ndarray) -> tuple[Tensor, Tensor]:
        """(logits (B, T, V), values (B, T))."""
        hidden = self.backbone.hidden_states(ids)                                   # (B, T, C)
        logits = F.linear(hidden, self.backbone.output_weight())                    # (B, T, V)
        return logits, self.head(hidden).reshape(ids.shape)                        # (B, T)


@dataclass(frozen=True, eq=False)
class Rollout:
    """A batch of sampled answers, every array (B, T) over the positions whose target is an answer
    token (``mask``), except ``scores`` (B,) and ``texts``."""

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    old_logprobs: np.ndarray
    reference_logprobs: np.ndarray
    values: np.ndarray
    scores: np.ndarray
    advantages: np.ndarray
    returns: np.ndarray
    texts: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.inputs)

    def rows(self, index: np.ndarray) -> Rollout:
        return Rollout(*(getattr(self, name)[index] for name in ("inputs", "targets", "mask", "old_logprobs",
                                                                "reference_logprobs", "values", "scores",
                                                                "advantages", "returns")),
                       tuple(self.texts[i] for i in index))

    def kl(self) -> np.ndarray:
        """Per answer, sum of log pi_old - log pi_ref over its tokens: the sampled KL estimate (k1)."""
        return np.where(self.mask, self.old_logprobs - self.reference_logprobs, 0.0).sum(axis=1)


def collect_rollout(model: PolicyWithValue, reference: GPT, tokenizer: BPETokenizer,
                    prompts: Sequence[InstructionExample], reward: Callable[[list[EncodedExample]], np.ndarray],
                    rng: np.random.Generator, template: PromptTemplate, kl_coef: float, max_new_tokens: int = 20,
                    temperature: float = 1.0, gamma: float = 1.0, lam: float = 0.95) -> Rollout:
    """Sample one answer per prompt from ``model``'s policy, score it with ``reward`` (encoded rows
    -> (B,) scores) and compute everything the update needs (see the module docstring)."""
    texts = [a[0] for a in sample_responses(model.policy, tokenizer, [e.prompt(template) for e in prompts], 1, rng,
                                            max_new_tokens, temperature)]
    context = model.config.context_length
    rows = [encode_example(tokenizer, InstructionExample(e.instruction, e.input, t), context, template)
            for e, t in zip(prompts, texts)]
    inputs, targets = collate(rows, tokenizer.eot_id)
    mask = targets != IGNORE_INDEX
    with model.inference(), reference.inference():
        logits, values = model(inputs)
        old = token_logprobs(logits, targets).data.astype(np.float64)
        ref = token_logprobs(reference(inputs), targets).data.astype(np.float64)
    scores = np.asarray(reward(rows), dtype=np.float64)
    rewards = token_rewards(old, ref, scores, mask, kl_coef)
    advantages, returns = gae(rewards, values.data.astype(np.float64), mask, gamma, lam)
    return Rollout(inputs, targets, mask, old, ref, values.data.astype(np.float64), scores,
                   whiten(advantages, mask), returns, tuple(texts))


def rollout_batches(rollout: Rollout, rng: np.random.Generator) -> ShuffledRows:
    """Minibatches of a rollout's rows, every row once per pass (PPO's epochs over one rollout)."""
    return ShuffledRows(len(rollout), rollout.rows, rng)


class PPOObjective:
    """The Trainer objective of a PPO update: the clipped surrogate plus ``value_coef`` times the
    value loss, on a minibatch of a rollout; terms: both losses, the clip fraction and the
    approximate KL to the policy that sampled."""

    def __init__(self, clip: float = 0.2, value_coef: float = 0.5):
        self.clip, self.value_coef = clip, value_coef

    def __call__(self, model: PolicyWithValue, batch: Rollout):
        logits, values = model(batch.inputs)
        logprobs = token_logprobs(logits, batch.targets)
        policy_loss, stats = clipped_surrogate(logprobs, batch.old_logprobs, batch.advantages, batch.mask, self.clip)
        critic = value_loss(values, batch.returns, batch.mask)
        return policy_loss + critic * self.value_coef, {"policy_loss": policy_loss, "value_loss": critic, **stats}
