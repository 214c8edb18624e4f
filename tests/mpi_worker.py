"""A tiny GPT trained for a few steps, alone or as one of R MPI ranks; writes its final weights.

    python tests/mpi_worker.py OUT.npz --mode single            one process, the whole batch
    mpiexec -n 2 python tests/mpi_worker.py OUT.npz --mode ddp  each rank half of every batch
    mpiexec -n 2 python tests/mpi_worker.py OUT.npz --mode zero1 (or zero2)
    python tests/mpi_worker.py OUT.npz --mode accumulate        one process, the two halves in turn

Run by tests/distributed/test_distributed.py; every mode sees the same global batches.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from tinygrad_llm import GPT, AdamW, GPTConfig, clip_grad_norm_, functional as F, weight_decay_groups
from tinygrad_llm.distributed.comm import world
from tinygrad_llm.distributed.ddp import DataParallel, shard_rows
from tinygrad_llm.distributed.zero import ZeroOptimizer
from tinygrad_llm.text.data import random_batch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--mode", choices=("single", "accumulate", "ddp", "zero1", "zero2"), default="single")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--clip", type=float, default=None)
    args = parser.parse_args()
    comm = world()
    dtype = np.dtype(args.dtype)
    config = GPTConfig(vocab_size=61, context_length=16, d_model=32, n_layer=2, n_head=2)
    # careful: every rank builds the model from the same seed; DataParallel broadcasts anyway
    model = GPT(config, rng=np.random.default_rng(0), dtype=dtype)
    tokens = np.random.default_rng(1).integers(0, config.vocab_size, 4000)
    optimizer = AdamW(weight_decay_groups(model, 0.1), lr=3e-3)
    params = [p for _, p in model.named_parameters()]
    dp = DataParallel(params, comm) if args.mode != "single" else None
    zero = ZeroOptimizer(optimizer, comm, stage=int(args.mode[-1])) if args.mode.startswith("zero") else None
    if dp is not None:
        dp.broadcast_parameters()
    rng = np.random.default_rng(2)
    if args.mode == "single":
        shards = [slice(None)]
    elif args.mode == "accumulate":   # the shards two ranks would take, one after the other
        shards = [shard_rows(8, rank, 2) for rank in range(2)]
    else:
        shards = [shard_rows(8, comm.rank, comm.size)]
    held = {}
    for _ in range(args.steps):
        inputs, targets = random_batch(tokens, 8, config.context_length, rng)
        optimizer.zero_grad()
        for rows in shards:   # the engine adds up the gradients of the shards
            logits = model(inputs[rows])
            loss = F.cross_entropy(logits.reshape(-1, config.vocab_size), targets[rows].reshape(-1))
            loss.backward()
        if len(shards) > 1:
            for p in params:
                p.grad /= len(shards)
        if zero is not None:
            zero.step(max_norm=args.clip)
            held = zero.held_bytes()
            continue
        if dp is not None:
            dp.average_gradients()
        if args.clip is not None:
            clip_grad_norm_(params, args.clip)
        optimizer.step()
    if comm.rank == 0:
        np.savez(args.out, **{name: p.data for name, p in model.named_parameters()})
        with open(args.out + ".json", "w") as f:
            json.dump({"ranks": comm.size, "bytes_sent": comm.bytes_sent, "held": held,
                       "parameters": int(sum(p.size for p in params))}, f)


if __name__ == "__main__":
    main()
