"""Direct preference optimisation (lesson 26): the policy learns from preference pairs
directly, with no reward model and no sampling, against a frozen reference model.

With the implicit reward r(x, y) = beta (log pi(y|x) - log pi_ref(y|x)), the Bradley-Terry loss of
``reward_model`` becomes a loss on the policy itself:

    L_DPO = -mean log s(beta (h_c - h_r)),   h = log pi(y|x) - log pi_ref(y|x)

(the sums over the response tokens, ``sequences.sequence_logprobs``). IPO replaces the log-sigmoid,
which keeps pushing the margin h_c - h_r up even when the pairs are already separated, with a
squared error to a fixed margin, (h_c - h_r - 1 / (2 beta))^2, which stops at that margin.

The reference's log-probabilities never change, so ``DPOObjective`` takes them computed once
(``sequences.reference_logprobs``) and each step costs one forward and backward pass of the policy
over the chosen and rejected rows.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core import functional as F
from ..core.tensor import Tensor
from .preferences import EncodedPair
from .sequences import pair_batch, sequence_logprobs

LOSSES = ("dpo", "ipo")


def preference_loss(policy_chosen: Tensor, policy_rejected: Tensor, reference_chosen: np.ndarray,
                    reference_rejected: np.ndarray, beta: float = 0.1, loss: str = "dpo") -> Tensor:
    """The DPO (or IPO) loss of a batch, from the summed response log-probabilities of the policy
    (Tensors, shape (B,)) and of the reference (arrays, shape (B,))."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if not np.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta must be a positive number, got {beta}")
    for name, value in (("reference_chosen", reference_chosen), ("reference_rejected", reference_rejected)):
        if np.shape(value) != policy_chosen.shape or policy_rejected.shape != policy_chosen.shape:
            raise ValueError(f"{name} has shape {np.shape(value)}; the policy's log-probabilities have "
                             f"{policy_chosen.shape} and {policy_rejected.shape}")
    dtype = policy_chosen.dtype
    reference_margin = np.asarray(reference_chosen - reference_rejected, dtype=dtype)
    margin = (policy_chosen - policy_rejected) - reference_margin          # h_c - h_r, (B,)
    if loss == "dpo":
        return -F.log_sigmoid(margin * beta).mean()
    return ((margin - 1.0 / (2.0 * beta)) ** 2).mean()


def implicit_rewards(policy: np.ndarray, reference: np.ndarray, beta: float) -> np.ndarray:
    """beta (log pi - log pi_ref): the reward DPO's policy implies (its preference accuracy is how
    often the chosen response's is the higher one)."""
    return beta * (np.asarray(policy, dtype=np.float64) - np.asarray(reference, dtype=np.float64))


class DPOObjective:
    """The Trainer objective of DPO or IPO over batches of ``(pair indices, pairs)``: ``pairs``
    are ``EncodedPair``s and ``reference`` the (N, 2) log-probabilities of every pair under the
    frozen reference, looked up by index. Terms: the batch's preference accuracy and margin."""

    def __init__(self, reference: np.ndarray, pad_id: int, beta: float = 0.1, loss: str = "dpo"):
        reference = np.asarray(reference, dtype=np.float64)
        if reference.ndim != 2 or reference.shape[1] != 2 or not np.isfinite(reference).all():
            raise ValueError(f"reference must be finite log-probabilities of shape (pairs, 2), got {reference.shape}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.reference, self.pad_id, self.beta, self.loss = reference, pad_id, beta, loss

    def __call__(self, model, batch: tuple[np.ndarray, Sequence[EncodedPair]]):
        index, pairs = batch
        logprobs = sequence_logprobs(model, *pair_batch(pairs, self.pad_id))   # (2B,): chosen, then rejected
        n = len(pairs)
        chosen, rejected = logprobs[:n], logprobs[n:]
        ref = self.reference[index]
        loss = preference_loss(chosen, rejected, ref[:, 0], ref[:, 1], self.beta, self.loss)
        margin = (chosen.data - rejected.data) - (ref[:, 0] - ref[:, 1])
        return loss, {"accuracy": float(np.mean(margin > 0)), "margin": float(np.mean(margin))}
