"""ZeRO: sharding Adam's state (stage 1) and the gradients (stage 2) over the ranks (lesson 19).

Unlike ``ddp``, where every rank keeps the optimizer state of every parameter and takes the same
step R times over, each rank here owns 1/R of every parameter group's elements:

1. the gradients are summed with a *reduce-scatter* instead of an all-reduce: rank r receives
   only the sum of part r (and divides it by R, the average);
2. it updates part r of the weights with its part of Adam's m and v (the update is elementwise,
   so the result is the same as updating everything);
3. an *all-gather* of the updated parts gives every rank the whole model again.

The two collectives move the same 2Ψ values as one all-reduce, for 1/R of the optimizer memory.
Stage 2 also drops each full gradient once its part has been taken, so a rank holds 1/R of the
gradients between steps. Stage 3 (sharding the weights too, gathered layer by layer) needs the
model's forward and backward to fetch and free weights, which this engine's closures do not do:
``scale.sharding`` computes what it would hold.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..core.checks import check_choice, check_positive
from ..train.optim import Adam, OptimizerWrapper, adam_update_part
from .comm import Communicator
from .ddp import Bucket

STAGES = (1, 2)


class _GroupShard:
    """One parameter group packed flat (padded to a multiple of R) and this rank's part of it."""

    def __init__(self, group: dict, comm: Communicator) -> None:
        self.settings = group
        self.bucket = Bucket([p for p in group["params"] if p.requires_grad])
        n = self.bucket.buffer.size
        self.padded = -(-n // comm.size) * comm.size
        self.part = slice(comm.rank * self.padded // comm.size, (comm.rank + 1) * self.padded // comm.size)
        dtype = self.bucket.buffer.dtype
        self.flat = np.zeros(self.padded, dtype=dtype)   # the whole group's weights, gathered
        self.m = np.zeros(self.padded // comm.size, dtype=dtype)
        self.v = np.zeros_like(self.m)
        self.grad: np.ndarray | None = None   # stage 2: this rank's part of the averaged gradient
        self.step = 0


class ZeroOptimizer(OptimizerWrapper):
    """Wraps an ``Adam``/``AdamW``: same settings (its ``lr`` is read at every step, so schedules
    keep working), state sharded over ``comm``'s ranks. Call ``step()`` after ``backward()``.

    It sums the ranks' gradients itself, so it also clips them (to ``max_norm``, when given) and
    tells the ``Trainer`` so (``clips_gradients``; the norm before clipping is ``last_norm``)."""

    clips_gradients = True

    def __init__(self, optimizer: Adam, comm: Communicator, stage: int = 1, max_norm: float | None = None) -> None:
        if not isinstance(optimizer, Adam):
            raise TypeError(f"ZeRO shards Adam's moments; got {type(optimizer).__name__}")
        super().__init__(optimizer)
        self.comm = comm
        self.stage = check_choice("stage", stage, STAGES)
        self.groups = [_GroupShard(g, comm) for g in optimizer.param_groups
                       if any(p.requires_grad for p in g["params"])]
        self.step_count = 0
        self.max_norm = max_norm
        self.last_norm = float("nan")
        self.seconds = 0.0   # time spent in this rank's collectives

    def zero_grad(self) -> None:
        super().zero_grad()
        for shard in self.groups:
            shard.grad = None

    def step(self, max_norm: float | None = None) -> float:
        """Average, (clip,) update this rank's part, gather; returns the gradient norm before clipping.
        ``max_norm`` defaults to the one given at construction."""
        max_norm = self.max_norm if max_norm is None else max_norm
        size = self.comm.size
        parts = []
        for shard in self.groups:
            full = np.zeros(shard.padded, dtype=shard.flat.dtype)
            full[:shard.bucket.buffer.size] = shard.bucket.pack_grads()
            begin = time.perf_counter()
            part = self.comm.reduce_scatter(full)
            self.seconds += time.perf_counter() - begin
            part /= size
            parts.append(part)
            if self.stage == 2:   # the full gradients are not kept: this rank holds its part only
                for p in shard.bucket.params:
                    p.grad = None
                shard.grad = part
        # the global norm from the parts: each rank's sum of squares, summed over ranks
        squares = np.array([sum(float(np.vdot(part, part)) for part in parts)])
        begin = time.perf_counter()
        norm = math.sqrt(float(self.comm.allreduce_(squares)[0]))
        self.seconds += time.perf_counter() - begin
        scale = None
        if max_norm is not None:
            check_positive("max_norm", max_norm)
            if math.isfinite(norm) and norm > max_norm:
                scale = max_norm / (norm + 1e-6)   # the rule of clip_grad_norm_
        self.step_count += 1
        decoupled = self.optimizer.decoupled
        for shard, grad in zip(self.groups, parts):
            if scale is not None:
                grad *= scale
            group = shard.settings
            beta1, beta2 = group["betas"]
            lr, eps, decay = group["lr"], group["eps"], group["weight_decay"]
            shard.flat[:shard.bucket.buffer.size] = shard.bucket.pack_data()
            weights = shard.flat[shard.part]
            if decay and not decoupled:
                grad = grad + decay * weights
            shard.step += 1
            root_correction = math.sqrt(1 - beta2 ** shard.step)
            step_size = lr * root_correction / (1 - beta1 ** shard.step)
            shrink = 1 - lr * decay if decay and decoupled else None
            adam_update_part(weights, grad, shard.m, shard.v, beta1, beta2, shrink, eps * root_correction, step_size)
            begin = time.perf_counter()
            gathered = self.comm.allgather_(np.ascontiguousarray(weights), np.empty_like(shard.flat))
            self.seconds += time.perf_counter() - begin
            shard.bucket.buffer[...] = gathered[:shard.bucket.buffer.size]
            shard.bucket.unpack_data()
        self.last_norm = norm
        return norm

    def held_bytes(self) -> dict[str, int]:
        """Bytes this rank holds now: weights, gradients, optimizer state (measured from its arrays)."""
        params = [p for shard in self.groups for p in shard.bucket.params]
        return {"parameters": sum(p.data.nbytes for p in params),
                "gradients": sum(p.grad.nbytes for p in params if p.grad is not None)
                + sum(shard.grad.nbytes for shard in self.groups if shard.grad is not None),
                "optimizer": sum(shard.m.nbytes + shard.v.nbytes for shard in self.groups)}
