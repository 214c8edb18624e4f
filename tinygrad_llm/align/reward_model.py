"""The reward model of the alignment lessons (lesson 25): a GPT backbone with a scalar head, trained on
preference pairs with the Bradley-Terry loss.

The model reads prompt + response and returns one number, r(x, y), taken from the hidden state
of the response's last real token (the padding after it is never read). If labellers prefer
y_c to y_r with probability s(r(x, y_c) - r(x, y_r)) (Bradley-Terry; s is the logistic sigmoid),
the negative log-likelihood of their choices is

    L = -mean over pairs of log s(r_chosen - r_rejected)

which only sees differences of rewards: adding a constant to every reward changes nothing.
Training runs in the one loop: ``sequences.pair_batches`` is its batch source and ``reward_objective`` its
objective.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np

from ..core import functional as F
from ..core.tensor import Tensor
from ..model.gpt import GPT
from ..model.nn import Linear, Module
from .preferences import EncodedPair
from .sequences import pair_rows


class ScalarHeadGPT(Module):
    """A GPT ``backbone`` and a linear ``head`` from its final hidden state to one number: the
    reward model reads it at an answer's last token, PPO's value head at every position.
    ``from_gpt`` starts from a copy of a trained model, leaving the original untouched."""

    def __init__(self, backbone: GPT, rng: np.random.Generator | None = None):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.backbone = backbone
        self.config = backbone.config
        dtype = backbone.token_embedding.weight.dtype
        self.head = Linear(backbone.config.d_model, 1, rng=rng, dtype=dtype)

    @classmethod
    def from_gpt(cls, model: GPT, rng: np.random.Generator | None = None):
        return cls(copy.deepcopy(model), rng)


class RewardModel(ScalarHeadGPT):
    """r(x, y): the backbone (whose language-model head is not used) read at the last real token
    of prompt + answer, through the scalar head."""

    def forward(self, ids: np.ndarray, lengths: np.ndarray) -> Tensor:
        """Rewards of shape (B,): ``ids`` (B, T) right-padded, ``lengths`` (B,) the number of real
        tokens of each row (the reward is read at position length - 1)."""
        ids = np.asarray(ids)
        lengths = np.asarray(lengths)
        if ids.ndim != 2 or lengths.shape != (ids.shape[0],):
            raise ValueError(f"expected ids (batch, time) and lengths (batch,), got {ids.shape} and {lengths.shape}")
        if lengths.dtype.kind not in "iu" or (lengths < 1).any() or (lengths > ids.shape[1]).any():
            raise ValueError(f"every length must be an integer in 1..{ids.shape[1]}, got {lengths.tolist()}")
        hidden = self.backbone.hidden_states(ids)                      # (B, T, C)
        last = hidden[np.arange(len(lengths)), lengths - 1]            # (B, C): each row's last real token
        return self.head(last).reshape(-1)                             # (B,)


def reward_inputs(rows, pad_id: int, context_length: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, lengths) of encoded rows for ``RewardModel``: each row's ids cut to the context
    (a response cut there is scored on what fits) and right-padded with ``pad_id``."""
    cut = [row.ids[:context_length] for row in rows]
    lengths = np.array([len(ids) for ids in cut], dtype=np.int64)
    ids = np.full((len(cut), int(lengths.max())), pad_id, dtype=np.int64)
    for b, row in enumerate(cut):
        ids[b, :len(row)] = row
    return ids, lengths


def pairwise_loss(chosen: Tensor, rejected: Tensor) -> Tensor:
    """Bradley-Terry: -mean log s(r_chosen - r_rejected), with the stable log-sigmoid."""
    return -F.log_sigmoid(chosen - rejected).mean()


class RewardObjective:
    """The Trainer objective: ``pairwise_loss`` over a batch of pairs (one forward pass over the
    chosen and the rejected rows together), with the batch's pair accuracy as a term."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, model: RewardModel, batch: tuple[np.ndarray, Sequence[EncodedPair]]):
        _, pairs = batch
        rewards = model(*reward_inputs(pair_rows(pairs), self.pad_id, model.config.context_length))
        n = len(pairs)
        chosen, rejected = rewards[:n], rewards[n:]
        accuracy = float(np.mean(chosen.data > rejected.data))
        return pairwise_loss(chosen, rejected), {"accuracy": accuracy}


def score(model: RewardModel, rows, pad_id: int, batch_size: int = 32) -> np.ndarray:
    """Rewards of encoded rows (``EncodedExample``), in eval mode without a graph."""
    out = []
    with model.inference():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            out.append(model(*reward_inputs(chunk, pad_id, model.config.context_length)).data)
    return np.concatenate(out).astype(np.float64)


def pair_accuracy(model: RewardModel, pairs: Sequence[EncodedPair], pad_id: int) -> float:
    """The fraction of pairs whose chosen response gets the higher reward (ties count as wrong)."""
    rewards = score(model, pair_rows(pairs), pad_id)
    n = len(pairs)
    return float(np.mean(rewards[:n] > rewards[n:]))
