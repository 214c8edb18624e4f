"""One training run as one of R MPI ranks, through the lesson-07 ``Trainer`` (lesson 19).

Unlike ``ddp`` and ``zero``, which hold the pieces, this module runs them: ``train_replica``
trains a GPT for a few steps on random tokens (the same on every rank, from one seed) as plain
data parallelism or ZeRO stage 1 or 2, and reports the final weights, the bytes this rank holds
and sends, and the time spent in steps and in collectives. Run it under MPI with

    mpiexec -n 2 python -m tinygrad_llm.distributed.worker OUT --modes ddp,zero1,zero2

(on several hosts: ``mpiexec -n 8 -f hosts python -m ...`` with MPICH's host file), or call
``launch``, which starts that command and reads back what rank 0 wrote. With one process every
collective is the identity, and ``train_replica`` is single-process training on the whole batch.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from ..core.checks import check_choice, check_positive_int
from ..model.gpt import GPT, GPTConfig
from ..train.batches import RandomWindows
from ..train.optim import AdamW, weight_decay_groups
from ..train.trainer import TrainConfig, Trainer
from .comm import EXTRA_HINT, Communicator, SingleProcess, world
from .ddp import AverageGradients, ShardedBatches
from .zero import ZeroOptimizer

MODES = ("ddp", "zero1", "zero2")
SIZES = {   # the models a run can train: a tiny one for exactness, the course GPT's shape for speed
    "tiny": GPTConfig(vocab_size=64, context_length=16, d_model=32, n_layer=2, n_head=2),
    "course": GPTConfig(vocab_size=2048, context_length=128, d_model=128, n_layer=4, n_head=4),
}


def train_replica(mode: str, comm: Communicator, size: str = "tiny", steps: int = 20, batch_size: int = 8,
                  dtype: str = "float32", seed: int = 0) -> tuple[dict[str, np.ndarray], dict]:
    """Train as this rank of ``comm`` (``mode``: "ddp", "zero1" or "zero2"); returns (final weights,
    measurements). Every rank builds the same model and draws the same global batches."""
    check_choice("mode", mode, MODES)
    config = SIZES[check_choice("size", size, tuple(SIZES))]
    steps, batch_size = check_positive_int("steps", steps), check_positive_int("batch_size", batch_size)
    model = GPT(config, rng=np.random.default_rng(seed), dtype=np.dtype(dtype))
    tokens = np.random.default_rng(seed + 1).integers(0, config.vocab_size, 20_000)
    settings = TrainConfig(steps=steps, batch_size=batch_size, learning_rate=3e-3, min_learning_rate=3e-4,
                           warmup_steps=2, eval_interval=10 ** 9, log_interval=10 ** 9, seed=seed)
    optimizer = AdamW(weight_decay_groups(model, settings.weight_decay), lr=settings.learning_rate,
                      betas=settings.betas)
    hooks, zero = [], None
    if mode == "ddp":
        hooks.append(AverageGradients([p for _, p in model.named_parameters()], comm))
    else:
        zero = optimizer = ZeroOptimizer(optimizer, comm, stage=int(mode[-1]), max_norm=settings.grad_clip)
    comm.bytes_sent = 0
    batches = ShardedBatches(RandomWindows(tokens, config.context_length, np.random.default_rng(seed)), comm)
    trainer = Trainer(model, batches=batches, config=settings, optimizer=optimizer, hooks=hooks, log=None)
    history = trainer.train()
    params = [p for _, p in model.named_parameters()]
    if zero is not None:
        held = zero.held_bytes()
    else:
        held = {"parameters": sum(p.data.nbytes for p in params),
                "gradients": sum(p.grad.nbytes for p in params if p.grad is not None),
                "optimizer": sum(v.nbytes for slots in optimizer.state.values() for v in slots.values()
                                 if getattr(v, "ndim", 0) > 0)}
    info = {"mode": mode, "ranks": comm.size, "rank": comm.rank, "steps": steps, "batch_size": batch_size,
            "parameters": int(sum(p.size for p in params)), "itemsize": np.dtype(dtype).itemsize,
            "held": held, "bytes_sent": comm.bytes_sent, "seconds": history.seconds,
            "comm_seconds": (zero.seconds if zero is not None else hooks[0].seconds),
            "final_loss": history.train_loss[-1],
            "threads": os.environ.get("OPENBLAS_NUM_THREADS", "")}
    return {name: p.data.copy() for name, p in model.named_parameters()}, info


def launch(out: str | Path, modes: tuple[str, ...] = MODES, ranks: int = 2, threads: int = 1,
           **options) -> dict[str, tuple[dict[str, np.ndarray], list[dict]]]:
    """Run ``modes`` on ``ranks`` MPI processes (``threads`` BLAS threads each) and read back, for
    each mode, rank 0's final weights and every rank's measurements. ``ranks=1`` runs one plain
    process (no MPI needed)."""
    ranks, threads = check_positive_int("ranks", ranks), check_positive_int("threads", threads)
    out = Path(out)
    command = [sys.executable, "-m", "tinygrad_llm.distributed.worker", str(out), "--modes", ",".join(modes)]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    if ranks > 1:
        if shutil.which("mpiexec") is None:
            raise RuntimeError(f"mpiexec is not on PATH. {EXTRA_HINT}")
        command = ["mpiexec", "-n", str(ranks)] + command
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    subprocess.run(command, check=True, env=env, timeout=600, capture_output=True)
    results = {}
    for mode in modes:
        with np.load(out / f"{mode}.npz") as arrays:
            weights = dict(arrays)
        infos = [json.loads((out / f"{mode}.rank{r}.json").read_text()) for r in range(ranks)]
        results[mode] = (weights, infos)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="train a GPT as one of R MPI ranks")
    parser.add_argument("out", help="a folder for MODE.npz (rank 0) and MODE.rankR.json (every rank)")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--size", default="tiny", choices=tuple(SIZES))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    comm = world()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for mode in args.modes.split(","):
        weights, info = train_replica(mode, comm, args.size, args.steps, args.batch_size, args.dtype, args.seed)
        if comm.rank == 0:
            np.savez(out / f"{mode}.npz", **weights)
        (out / f"{mode}.rank{comm.rank}.json").write_text(json.dumps(info))
        comm.barrier()


if __name__ == "__main__":
    main()
