"""Where a training step's batch comes from (lesson 07, and every fine-tuning lesson after it).

``Trainer`` asks a *batch source* for the next batch of ``n`` rows and does not care what a row
is. Three sources cover the course:

* ``RandomWindows``: ``n`` windows of a token array at uniformly random starts (pretraining,
  lesson 07: no epochs, a fresh batch per step);
* ``ShuffledRows``: the next ``n`` of a fixed set of rows in a shuffled order, a fresh
  permutation each pass, turned into a batch by a ``take`` function (instruction examples and
  their collate, lesson 11; classification rows, lesson 10);
* ``Mix``: ``n - k`` rows from one source and ``k = round(fraction n)`` from another, as a pair
  (replay of pretraining text during instruction tuning, lesson 11).

A source's position is part of what a checkpoint must hold for a resumed run to continue exactly:
``state_dict`` returns it (JSON-able values and arrays) and ``generators`` the NumPy generators it
draws from, whose states the trainer saves with the others (two sources may share one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from ..core.checks import check_fraction, check_int, check_positive_int
from ..text.data import random_batch


class BatchSource(Protocol):
    """What ``Trainer`` needs from a source of batches."""

    def next_batch(self, n: int) -> Any:
        """The next batch of ``n`` rows (what the objective receives)."""

    def generators(self) -> list[np.random.Generator]:
        """The random generators this source draws from (saved in checkpoints)."""

    def state_dict(self) -> dict:
        """The position in the data besides the generators: JSON-able values or NumPy arrays."""

    def load_state_dict(self, state: dict) -> None:
        """Restore a position returned by ``state_dict``."""


def check_generator(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a np.random.Generator, e.g. np.random.default_rng(seed), "
                        f"got {type(rng).__name__}")
    return rng


class FreshDraws:
    """A batch source whose every batch is an independent draw from ``self.rng``: the generator is
    its whole state, so a checkpoint needs nothing of its own (random windows, masked windows,
    span-corrupted windows)."""

    rng: np.random.Generator

    def generators(self) -> list[np.random.Generator]:
        return [self.rng]

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class RandomWindows(FreshDraws):
    """``(inputs, targets)`` windows of ``context_length`` tokens at random starts (``random_batch``)."""

    def __init__(self, tokens: np.ndarray, context_length: int, rng: np.random.Generator):
        context_length = check_positive_int("context_length", context_length)
        if len(tokens) <= context_length:
            raise ValueError(f"the token array has {len(tokens)} tokens, fewer than one window of "
                             f"context_length + 1 = {context_length + 1}")
        self.tokens, self.context_length, self.rng = tokens, context_length, check_generator(rng)

    def next_batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        return random_batch(self.tokens, n, self.context_length, self.rng)   # (n, T) each


class ShuffledRows:
    """Passes over ``count`` rows in random order; ``take(indices)`` makes the batch of those rows.

    The first permutation is drawn when the source is made. ``drop_last=False`` fills a batch
    that reaches the end of a pass from the next pass (every row is seen equally often);
    ``drop_last=True`` starts a new pass instead when fewer than ``n`` rows are left (every batch
    comes from one pass; the left-over rows of a pass are skipped).

        >>> rows = ShuffledRows(5, lambda idx: idx.tolist(), np.random.default_rng(0))
        >>> seen = rows.next_batch(3) + rows.next_batch(3)   # the second batch crosses into pass 2
        >>> sorted(seen[:5])
        [0, 1, 2, 3, 4]
    """

    def __init__(self, count: int, take: Callable[[np.ndarray], Any], rng: np.random.Generator,
                 drop_last: bool = False):
        self.count = check_positive_int("the number of rows", count)
        self.take, self.rng, self.drop_last = take, check_generator(rng), drop_last
        self.order, self.cursor = self.rng.permutation(self.count), 0

    def next_indices(self, n: int) -> np.ndarray:
        """The indices of the next ``n`` rows."""
        if self.drop_last:
            if n > self.count:
                raise ValueError(f"a batch of {n} rows cannot come from one pass over {self.count} rows")
            if self.cursor + n > self.count:
                self.order, self.cursor = self.rng.permutation(self.count), 0
            self.cursor += n
            return self.order[self.cursor - n:self.cursor]
        parts, needed = [], n
        while needed:
            if self.cursor == self.count:
                self.order, self.cursor = self.rng.permutation(self.count), 0
            step = min(needed, self.count - self.cursor)
            parts.append(self.order[self.cursor:self.cursor + step])
            self.cursor += step
            needed -= step
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def next_batch(self, n: int) -> Any:
        return self.take(self.next_indices(n))

    def generators(self) -> list[np.random.Generator]:
        return [self.rng]

    def state_dict(self) -> dict:
        return {"order": np.asarray(self.order, dtype=np.int64), "cursor": int(self.cursor)}

    def load_state_dict(self, state: dict) -> None:
        order = np.asarray(state["order"], dtype=np.int64)
        if order.shape != (self.count,):
            raise ValueError(f"a saved order of {order.shape} rows for a source of {self.count} rows")
        self.order, self.cursor = order, check_int("cursor", state["cursor"], 0, self.count)


def mix_rows(batch_size: int, fraction: float) -> int:
    """How many of ``batch_size`` rows come from the second source: round(fraction * batch_size).

    A positive fraction must give at least one such row and leave at least one of the first.

        >>> mix_rows(16, 0.25), mix_rows(16, 0.0), mix_rows(10, 0.25)
        (4, 0, 2)
    """
    fraction = check_fraction("replay_fraction", fraction, high_open=True)
    rows = int(round(fraction * batch_size))
    if fraction > 0 and not 0 < rows < batch_size:
        raise ValueError(f"replay_fraction {fraction} of a batch of {batch_size} is {rows} rows; "
                         f"it must give between 1 and {batch_size - 1} rows")
    return rows


@dataclass(frozen=True)
class MixedBatch:
    """Two batches drawn for one step, and the weight of each in the loss (they sum to 1)."""

    parts: tuple[Any, Any]
    weights: tuple[float, float]


class Mix:
    """Each batch of ``n`` rows: ``n - k`` from ``first`` then ``k = mix_rows(n, fraction)`` from
    ``second``, returned as a ``MixedBatch`` with weights (1 - k / n, k / n). The two parts are
    drawn in that order, so sources that share a generator draw from it in a fixed order."""

    def __init__(self, first: BatchSource, second: BatchSource, fraction: float):
        self.first, self.second = first, second
        self.fraction = check_fraction("replay_fraction", fraction, high_open=True)

    def next_batch(self, n: int) -> MixedBatch:
        k = mix_rows(n, self.fraction)
        w = k / n
        return MixedBatch((self.first.next_batch(n - k), self.second.next_batch(k)), (1 - w, w))

    def generators(self) -> list[np.random.Generator]:
        return self.first.generators() + self.second.generators()

    def state_dict(self) -> dict:
        return {**{f"first.{k}": v for k, v in self.first.state_dict().items()},
                **{f"second.{k}": v for k, v in self.second.state_dict().items()}}

    def load_state_dict(self, state: dict) -> None:
        for prefix, source in (("first.", self.first), ("second.", self.second)):
            source.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})


def rows_of(*arrays: np.ndarray) -> Callable[[np.ndarray], tuple]:
    """A ``take`` for ``ShuffledRows`` over arrays of one length: the chosen rows of each.

        >>> rows_of(np.array([10, 11, 12]), np.array([0, 1, 0]))(np.array([2, 0]))
        (array([12, 10]), array([0, 0]))
    """
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"arrays of different lengths {sorted(lengths)} cannot be rows of one set")
    return lambda indices: tuple(a[indices] for a in arrays)


def items_of(items: Sequence, collate: Callable[[list], Any]) -> Callable[[np.ndarray], Any]:
    """A ``take`` for ``ShuffledRows`` over a sequence of items: ``collate`` of the chosen ones."""
    return lambda indices: collate([items[i] for i in indices])
