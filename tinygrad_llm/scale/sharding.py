"""Training memory per rank, by precision and ZeRO stage, and the bytes each step communicates
(lesson 17).

Unlike ``memory``, which sizes one model in one process, this module asks what each of R ranks
holds when data-parallel training shares the work. With Ψ parameters and Adam, every rank of plain
data parallelism (DDP) keeps everything: the weights, their gradients and the optimizer state.
Per parameter, in bytes (the ZeRO paper's accounting, Rajbhandari et al. 2020):

    precision   weights  gradients  optimizer state K             total
    fp32           4         4      8  (Adam's m and v)            16
    mixed          2         2      12 (fp32 master weights, m, v) 16

ZeRO removes the redundancy stage by stage: stage 1 shards the optimizer state over the R ranks,
stage 2 the gradients too, stage 3 (FSDP) the weights as well, gathering each layer's weights
when it runs and freeing them after:

    stage 0: (w + g + K) Ψ     stage 1: (w + g) Ψ + K Ψ / R
    stage 2: w Ψ + (g + K) Ψ / R     stage 3: (w + g + K) Ψ / R

Communication per step, in values: an all-reduce of the gradients moves 2Ψ (a reduce-scatter and
an all-gather of Ψ each); stages 1 and 2 do the same two halves, so 2Ψ; stage 3 all-gathers the
weights twice (forward and backward) and reduce-scatters the gradients once, 3Ψ. (A ring moves
(R - 1)/R of each, so the counts are the large-R limit; ``ring_values`` gives the exact figure.)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.checks import check_choice, check_int, check_positive_int

PRECISIONS = ("fp32", "mixed")
STAGES = (0, 1, 2, 3)
# (weights, gradients, optimizer state) bytes per parameter with Adam
BYTES_PER_PARAMETER = {"fp32": (4, 4, 8), "mixed": (2, 2, 12)}


@dataclass(frozen=True)
class RankMemory:
    """Bytes one rank holds for the model state (activations are separate: ``memory.activation_bytes``)."""

    weights: float
    gradients: float
    optimizer: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer


def rank_memory(n_parameters: int, ranks: int = 1, stage: int = 0, precision: str = "mixed") -> RankMemory:
    """Model-state bytes per rank for Ψ = ``n_parameters`` over ``ranks`` at a ZeRO ``stage``.

    >>> gb = lambda stage: round(rank_memory(7_500_000_000, 64, stage).total / 1e9, 1)
    >>> [gb(stage) for stage in (0, 1, 2, 3)]          # the ZeRO paper's 7.5B model on 64 GPUs
    [120.0, 31.4, 16.6, 1.9]
    """
    psi = check_positive_int("n_parameters", n_parameters)
    r = check_positive_int("ranks", ranks)
    stage = check_choice("stage", check_int("stage", stage), STAGES)
    w, g, k = BYTES_PER_PARAMETER[check_choice("precision", precision, PRECISIONS)]
    return RankMemory(weights=w * psi / (r if stage >= 3 else 1),
                      gradients=g * psi / (r if stage >= 2 else 1),
                      optimizer=k * psi / (r if stage >= 1 else 1))


def communication_values(n_parameters: int, stage: int = 0) -> int:
    """Values each rank sends (and receives) per training step: 2Ψ for DDP and stages 1-2, 3Ψ for stage 3."""
    psi = check_positive_int("n_parameters", n_parameters)
    stage = check_choice("stage", check_int("stage", stage), STAGES)
    return (3 if stage == 3 else 2) * psi


def ring_values(n_parameters: int, ranks: int, stage: int = 0) -> float:
    """Values each rank sends per step with ring collectives: (R - 1)/R of ``communication_values``."""
    r = check_positive_int("ranks", ranks)
    return communication_values(n_parameters, stage) * (r - 1) / r
