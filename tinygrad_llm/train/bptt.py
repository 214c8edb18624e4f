"""Truncated backpropagation through time (lesson 20): consecutive windows and the objective that
carries a recurrent model's state from one window to the next.

Unlike ``RandomWindows`` of ``batches``, whose windows start anywhere and know nothing of each other,
``ConsecutiveWindows`` cuts the token array into one *lane* per row of the batch and serves each
lane's windows in reading order: row b of batch k + 1 continues exactly where row b of batch k
stopped. A recurrent model can then start each window from the state the previous one ended in
(its values, not its graph: gradients stop at the window's edge, which is what makes the
backpropagation *truncated*), so it is trained with a memory that reaches back beyond T tokens
while each backward pass is only T steps long. ``TruncatedBPTT`` is that objective; passed to the
``Trainer`` as a hook as well, it saves the carried state in checkpoints, so a resumed run
continues exactly.

Each pass over the data starts the lanes at a new random offset in [0, T), so that window edges
fall in different places from pass to pass; the first batch of a pass says so (``first``) and the
objective starts from a zero state there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.checks import check_int, check_positive_int
from ..core.tensor import Tensor
from ..model.nn import Module
from ..model.rnn import detach_state
from .batches import check_generator
from .trainer import TrainHook


@dataclass(frozen=True)
class StreamBatch:
    """One window per lane: ``inputs`` and ``targets`` (B, T) int64, and ``first``: True when the
    windows begin a new pass (no state to carry into them)."""

    inputs: np.ndarray
    targets: np.ndarray
    first: bool


def lane_starts(n_tokens: int, lanes: int, context_length: int, offset: int = 0) -> tuple[np.ndarray, int]:
    """The first token of each of ``lanes`` equal lanes after ``offset``, and the number of whole
    windows of ``context_length`` inputs (plus one target) each lane holds.

        >>> starts, windows = lane_starts(26, 2, 4, offset=1)   # lanes of 12 tokens: 1..12, 13..24
        >>> starts.tolist(), windows
        ([1, 13], 3)
    """
    length = (n_tokens - offset - 1) // lanes    # the last target of the last lane must exist
    windows = length // context_length
    if windows < 1:
        raise ValueError(f"{n_tokens} tokens cut into {lanes} lanes (after an offset of {offset}) give "
                         f"lanes of {length} tokens, shorter than one window of {context_length}; "
                         f"use fewer rows or a shorter context")
    return offset + length * np.arange(lanes), windows


class ConsecutiveWindows:
    """Batches (``StreamBatch``) of consecutive windows: row b of every batch continues row b of the one
    before (see the module docstring). The number of lanes is the batch size of the first call
    and may not change afterwards.

        >>> source = ConsecutiveWindows(np.arange(40), 4, np.random.default_rng(0))
        >>> a, b = source.next_batch(2), source.next_batch(2)
        >>> bool(np.array_equal(a.inputs[:, -1] + 1, b.inputs[:, 0])), a.first, b.first
        (True, True, False)
    """

    def __init__(self, tokens: np.ndarray, context_length: int, rng: np.random.Generator):
        self.tokens = np.asarray(tokens)
        if self.tokens.ndim != 1 or not np.issubdtype(self.tokens.dtype, np.integer):
            raise ValueError(f"tokens must be a 1-D array of integer ids, got shape {self.tokens.shape}")
        self.context_length = check_positive_int("context_length", context_length)
        self.rng = check_generator(rng)
        self.lanes = 0                  # set by the first batch
        self.offset = int(self.rng.integers(0, self.context_length))
        self.window = 0                 # the next window of the current pass

    def next_batch(self, n: int) -> StreamBatch:
        n = check_positive_int("the batch size", n)
        if self.lanes == 0:
            self.lanes = n
        elif n != self.lanes:
            raise ValueError(f"consecutive windows run in {self.lanes} lanes (the first batch size); "
                             f"a batch of {n} rows would break them")
        starts, windows = lane_starts(len(self.tokens), n, self.context_length, self.offset)
        if self.window == windows:      # the pass is over: new window edges for the next
            self.offset, self.window = int(self.rng.integers(0, self.context_length)), 0
            starts, _ = lane_starts(len(self.tokens), n, self.context_length, self.offset)
        T = self.context_length
        positions = starts[:, None] + self.window * T + np.arange(T + 1)       # (B, T + 1)
        rows = self.tokens[positions].astype(np.int64)
        first = self.window == 0
        self.window += 1
        return StreamBatch(np.ascontiguousarray(rows[:, :-1]), np.ascontiguousarray(rows[:, 1:]), first)

    def generators(self) -> list[np.random.Generator]:
        return [self.rng]

    def state_dict(self) -> dict:
        return {"lanes": self.lanes, "offset": self.offset, "window": self.window}

    def load_state_dict(self, state: dict) -> None:
        self.lanes = check_int("lanes", state["lanes"], minimum=0)
        self.offset = check_int("offset", state["offset"], 0, self.context_length - 1)
        self.window = check_int("window", state["window"], minimum=0)


class TruncatedBPTT(TrainHook):
    """The objective of truncated BPTT: next-token loss of a ``StreamBatch`` for a recurrent model
    called as ``model(inputs, targets, state=...)`` -> ``((logits, state), loss)``, starting from
    the state the previous window ended in (zero at the start of a pass).

    Pass it as ``objective`` and also in ``hooks``: its ``state_dict`` holds the carried state, so
    checkpoints keep it."""

    def __init__(self):
        self.state: list[tuple[Tensor, ...]] | None = None

    def __call__(self, model: Module, batch: StreamBatch) -> Tensor:
        if not isinstance(batch, StreamBatch):
            raise TypeError(f"TruncatedBPTT needs StreamBatch batches (from ConsecutiveWindows), got {type(batch).__name__}")
        carried = None if batch.first else self.state
        (_, state), loss = model(batch.inputs, batch.targets, state=carried)
        self.state = detach_state(state)   # values carried, gradients stop here
        return loss

    def state_dict(self) -> dict:
        if self.state is None:
            return {}
        return {f"state.{i}.{j}": t.data for i, layer in enumerate(self.state) for j, t in enumerate(layer)}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            self.state = None
            return
        layers: dict[int, dict[int, np.ndarray]] = {}
        for key, array in state.items():
            _, i, j = key.split(".")
            layers.setdefault(int(i), {})[int(j)] = np.asarray(array)
        self.state = [tuple(Tensor(layer[j].copy()) for j in sorted(layer)) for _, layer in sorted(layers.items())]


def carried_state_loss(model: Module, tokens: np.ndarray, lanes: int, context_length: int) -> float:
    """Mean next-token loss over every window of ``tokens`` read in ``lanes`` lanes with the state
    carried from window to window (offset 0; eval mode, no graph): the recurrent model's loss with
    all the context it can keep, where a window from a zero state keeps only its own T tokens."""
    starts, windows = lane_starts(len(tokens), lanes, context_length)
    state, losses = None, []
    with model.inference():
        for k in range(windows):
            positions = starts[:, None] + k * context_length + np.arange(context_length + 1)
            rows = np.asarray(tokens)[positions].astype(np.int64)
            (_, state), loss = model(rows[:, :-1], rows[:, 1:], state=state)
            losses.append(loss.item())
    return float(np.mean(losses))
