"""Data parallelism: every rank a shard of every batch, gradients averaged (lesson 19).

Each of R ranks holds the whole model and computes the gradient of the loss on its own B/R rows
of a global batch of B. The average of the R gradients is the gradient of the mean loss over all
B rows (every shard has the same number of rows and the loss is a mean), so after averaging every
rank takes the same optimizer step and the R copies of the model stay identical, equal to one
process training on the whole batch up to float rounding.

The gradients travel in a few large *buckets*: the parameters are packed into flat float32 (or
float64) buffers of about ``bucket_bytes`` each and every bucket is summed over ranks with one
buffer all-reduce, then divided by R. Fewer, larger messages cost less than one per parameter.

With the lesson-07 ``Trainer`` nothing in the loop changes: ``ShardedBatches`` hands each rank
its rows of the global batch (every rank draws the same global batch from the same seed) and
the ``AverageGradients`` hook averages the gradients after backward, before they are clipped.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Sequence

import numpy as np

from ..core.checks import check_int, check_positive_int
from ..model.nn import Parameter
from ..train.batches import BatchSource
from ..train.trainer import TrainHook
from .comm import Communicator

BUCKET_BYTES = 25 * 2 ** 20   # PyTorch DDP's default bucket size


def shard_rows(batch_size: int, rank: int, ranks: int) -> slice:
    """The rows of a global batch that ``rank`` of ``ranks`` computes: a contiguous B/R slice.

    >>> shard_rows(8, 1, 2)
    slice(4, 8, None)
    """
    batch_size = check_positive_int("batch_size", batch_size)
    ranks = check_positive_int("ranks", ranks)
    rank = check_int("rank", rank, minimum=0, maximum=ranks - 1)
    if batch_size % ranks:
        raise ValueError(f"a global batch of {batch_size} rows does not split evenly over {ranks} ranks")
    per_rank = batch_size // ranks
    return slice(rank * per_rank, (rank + 1) * per_rank)


class Bucket:
    """Parameters packed end to end into one flat buffer (and unpacked back)."""

    def __init__(self, params: Sequence[Parameter]) -> None:
        self.params = list(params)
        self.buffer = np.zeros(sum(p.size for p in self.params), dtype=self.params[0].dtype)
        offsets = np.cumsum([0] + [p.size for p in self.params])
        self.slices = [slice(int(a), int(b)) for a, b in zip(offsets[:-1], offsets[1:])]

    def pack_grads(self) -> np.ndarray:
        for p, part in zip(self.params, self.slices):
            # careful: a parameter the loss did not reach has no gradient; it counts as zero here
            self.buffer[part] = 0.0 if p.grad is None else p.grad.reshape(-1)
        return self.buffer

    def unpack_grads(self) -> None:
        for p, part in zip(self.params, self.slices):
            p.grad = self.buffer[part].reshape(p.shape).copy()

    def pack_data(self) -> np.ndarray:
        for p, part in zip(self.params, self.slices):
            self.buffer[part] = p.data.reshape(-1)
        return self.buffer

    def unpack_data(self) -> None:
        for p, part in zip(self.params, self.slices):
            p.data[...] = self.buffer[part].reshape(p.shape)


def make_buckets(params: Iterable[Parameter], bucket_bytes: int = BUCKET_BYTES) -> list[Bucket]:
    """Trainable parameters in order, grouped into buckets of at most ``bucket_bytes`` (a larger
    parameter gets a bucket of its own) and of one dtype each."""
    check_positive_int("bucket_bytes", bucket_bytes)
    buckets, current, size = [], [], 0
    for p in params:
        if not p.requires_grad:
            continue
        if current and (size + p.data.nbytes > bucket_bytes or p.dtype != current[0].dtype):
            buckets.append(Bucket(current))
            current, size = [], 0
        current.append(p)
        size += p.data.nbytes
    if current:
        buckets.append(Bucket(current))
    return buckets


class DataParallel:
    """Keeps R copies of a model identical: ``broadcast_parameters`` once at the start (rank 0's
    weights everywhere), ``average_gradients`` after every backward pass."""

    def __init__(self, params: Iterable[Parameter], comm: Communicator, bucket_bytes: int = BUCKET_BYTES) -> None:
        self.comm = comm
        self.buckets = make_buckets(params, bucket_bytes)
        if not self.buckets:
            raise ValueError("DataParallel got no trainable parameters")

    def broadcast_parameters(self) -> None:
        for bucket in self.buckets:
            bucket.pack_data()
            self.comm.broadcast_(bucket.buffer)
            bucket.unpack_data()

    def average_gradients(self) -> None:
        if self.comm.size == 1:
            return
        for bucket in self.buckets:
            self.comm.allreduce_(bucket.pack_grads())
            bucket.buffer /= self.comm.size
            bucket.unpack_grads()


class ShardedBatches:
    """A batch source for one of R ranks: the global batch of ``n`` rows from ``source`` (drawn
    the same way on every rank), of which this rank keeps ``shard_rows(n, rank, R)``."""

    def __init__(self, source: BatchSource, comm: Communicator) -> None:
        self.source, self.comm = source, comm

    def next_batch(self, n: int) -> Any:
        rows = shard_rows(n, self.comm.rank, self.comm.size)
        batch = self.source.next_batch(n)
        return tuple(part[rows] for part in batch) if isinstance(batch, tuple) else batch[rows]

    def generators(self) -> list[np.random.Generator]:
        return self.source.generators()

    def state_dict(self) -> dict:
        return self.source.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.source.load_state_dict(state)


class AverageGradients(TrainHook):
    """The ``Trainer`` hook of data parallelism: rank 0's weights everywhere before the first
    step, the gradients averaged over ranks after every backward; ``seconds`` counts the time
    spent in those collectives."""

    def __init__(self, params: Iterable[Parameter], comm: Communicator, bucket_bytes: int = BUCKET_BYTES) -> None:
        self.parallel = DataParallel(params, comm, bucket_bytes)
        self.parallel.broadcast_parameters()
        self.seconds = 0.0

    def after_backward(self, trainer) -> None:
        start = time.perf_counter()
        self.parallel.average_gradients()
        self.seconds += time.perf_counter() - start
