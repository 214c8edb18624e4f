"""Data parallelism and ZeRO: exact against one process, and the memory and traffic they claim.

The two-rank cases start ``mpiexec -n 2`` on ``tests/mpi_worker.py`` and skip with a reason when
MPI (the ``distributed`` extra) is not installed.
"""

from __future__ import annotations

import doctest
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_llm import GPT, AdamW, GPTConfig, functional as F, weight_decay_groups
from tinygrad_llm.distributed import comm as comm_module, ddp
from tinygrad_llm.distributed.comm import SingleProcess, world
from tinygrad_llm.distributed.ddp import DataParallel, make_buckets, shard_rows
from tinygrad_llm.distributed.zero import ZeroOptimizer

WORKER = Path(__file__).resolve().parents[1] / "mpi_worker.py"


def _mpi_available() -> str | None:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return 'mpi4py is not installed (pip install -e ".[distributed]")'
    if shutil.which("mpiexec") is None:
        return "mpiexec is not on PATH"
    return None


needs_mpi = pytest.mark.skipif(_mpi_available() is not None, reason=str(_mpi_available()))


def run_worker(tmp_path, mode, ranks=1, **options):
    out = tmp_path / f"{mode}-{'-'.join(f'{k}{v}' for k, v in options.items())}.npz"
    command = [sys.executable, str(WORKER), str(out), "--mode", mode]
    for key, value in options.items():
        command += [f"--{key}", str(value)]
    if ranks > 1:
        command = ["mpiexec", "-n", str(ranks)] + command
    subprocess.run(command, check=True, timeout=300, capture_output=True)
    with np.load(out) as arrays:
        weights = dict(arrays)
    return weights, json.loads(Path(str(out) + ".json").read_text())


def max_difference(a, b):
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def test_docstring_examples_run():
    assert doctest.testmod(ddp).failed == 0


def test_shard_rows_cover_the_batch_once_and_refuse_an_uneven_split():
    parts = [shard_rows(12, r, 3) for r in range(3)]
    assert np.array_equal(np.concatenate([np.arange(12)[p] for p in parts]), np.arange(12))
    with pytest.raises(ValueError, match="does not split evenly"):
        shard_rows(10, 0, 3)
    with pytest.raises(ValueError, match="rank"):
        shard_rows(8, 2, 2)


def test_buckets_pack_and_unpack_every_parameter_and_respect_their_size():
    model = GPT(GPTConfig(vocab_size=23, context_length=8, d_model=16, n_layer=2, n_head=2))
    params = [p for _, p in model.named_parameters()]
    buckets = make_buckets(params, bucket_bytes=4096)
    assert [p for b in buckets for p in b.params] == params
    assert all(b.buffer.nbytes <= 4096 or len(b.params) == 1 for b in buckets)
    for p in params:
        p.grad = np.full(p.shape, 2.0, dtype=p.dtype)
    for b in buckets:
        b.pack_grads()
        b.buffer *= 3
        b.unpack_grads()
    assert all(np.all(p.grad == 6.0) for p in params)


def test_one_process_without_mpi_is_a_single_rank():
    comm = world()
    assert (comm.rank, comm.size) == (0, 1)
    x = np.arange(4.0)
    assert comm.allreduce_(x) is x and comm.bytes_sent == 0


def test_a_launch_by_mpiexec_without_mpi4py_says_which_extra_to_install(monkeypatch):
    def no_mpi():
        raise ImportError(comm_module.EXTRA_HINT)
    monkeypatch.setattr(comm_module, "_mpi", no_mpi)
    monkeypatch.setenv("PMI_SIZE", "2")
    with pytest.raises(ImportError, match=r'pip install -e "\.\[distributed\]"'):
        world()


def _tiny_training(optimizer_of, steps=5):
    model = GPT(GPTConfig(vocab_size=31, context_length=8, d_model=16, n_layer=1, n_head=2),
                rng=np.random.default_rng(0), dtype=np.float64)
    optimizer = AdamW(weight_decay_groups(model, 0.1), lr=1e-2)
    step = optimizer_of(optimizer)
    rng = np.random.default_rng(1)
    for _ in range(steps):
        ids = rng.integers(0, 31, (4, 9))
        optimizer.zero_grad()
        F.cross_entropy(model(ids[:, :-1]).reshape(-1, 31), ids[:, 1:].reshape(-1)).backward()
        step()
    return {n: p.data.copy() for n, p in model.named_parameters()}


def test_zero_on_one_rank_takes_exactly_adamw_steps():
    plain = _tiny_training(lambda opt: opt.step)
    sharded = _tiny_training(lambda opt: ZeroOptimizer(opt, SingleProcess(), stage=2).step)
    assert max_difference(plain, sharded) == 0.0


def test_zero_refuses_what_it_cannot_shard():
    model = GPT(GPTConfig(vocab_size=11, context_length=4, d_model=8, n_layer=1, n_head=2))
    from tinygrad_llm import SGD
    with pytest.raises(TypeError, match="Adam"):
        ZeroOptimizer(SGD(model.parameters()), SingleProcess())
    with pytest.raises(ValueError, match="stage"):
        ZeroOptimizer(AdamW(model.parameters()), SingleProcess(), stage=3)
    with pytest.raises(ValueError, match="no trainable"):
        DataParallel([], SingleProcess())


@needs_mpi
def test_two_ranks_train_the_same_model_as_one_process_with_the_whole_batch(tmp_path):
    single, _ = run_worker(tmp_path, "single")
    two, info = run_worker(tmp_path, "ddp", ranks=2)
    assert info["ranks"] == 2
    assert max_difference(single, two) <= 1e-10   # float64: only the order of the sums differs


@needs_mpi
def test_two_ranks_equal_gradient_accumulation_over_the_same_shards_bit_for_bit(tmp_path):
    # the same additions in the same order: float32 gives identical weights, clipping included
    accumulated, _ = run_worker(tmp_path, "accumulate", dtype="float32", clip=1.0)
    two, _ = run_worker(tmp_path, "ddp", ranks=2, dtype="float32", clip=1.0)
    assert max_difference(accumulated, two) == 0.0


@needs_mpi
@pytest.mark.parametrize("stage", [1, 2])
def test_zero_stages_give_the_ddp_model_with_half_the_state_per_rank(tmp_path, stage):
    two, ddp_info = run_worker(tmp_path, "ddp", ranks=2)
    sharded, info = run_worker(tmp_path, f"zero{stage}", ranks=2)
    assert max_difference(two, sharded) == 0.0   # elementwise Adam on parts = Adam on the whole
    # clipping needs the global norm, which ZeRO sums from the parts in another order
    clipped_ddp, _ = run_worker(tmp_path, "ddp", ranks=2, clip=1.0)
    clipped, _ = run_worker(tmp_path, f"zero{stage}", ranks=2, clip=1.0)
    assert max_difference(clipped_ddp, clipped) <= 1e-12
    psi, itemsize, steps = info["parameters"], 8, 20
    held = info["held"]
    assert held["parameters"] == psi * itemsize
    assert held["optimizer"] == 2 * psi * itemsize // 2           # m and v, half of them
    assert held["gradients"] == psi * itemsize // (2 if stage == 2 else 1)
    # traffic: 2 psi values per step, of which a ring sends (R - 1)/R: psi values for R = 2
    assert ddp_info["bytes_sent"] == steps * psi * itemsize
    assert info["bytes_sent"] == steps * (psi * itemsize + itemsize)   # + the gradient norm's sum


def test_sharded_batches_give_each_rank_its_rows_of_the_same_global_batch():
    from tinygrad_llm.distributed.ddp import ShardedBatches
    from tinygrad_llm.train.batches import RandomWindows

    class Rank(SingleProcess):
        def __init__(self, rank, size):
            super().__init__()
            self.rank, self.size = rank, size

    tokens = np.arange(500)
    whole = RandomWindows(tokens, 8, np.random.default_rng(3)).next_batch(6)
    parts = [ShardedBatches(RandomWindows(tokens, 8, np.random.default_rng(3)), Rank(r, 3)).next_batch(6)
             for r in range(3)]
    for k in range(2):
        np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), whole[k])


def test_one_process_replica_is_plain_trainer_training_and_zero_matches_it():
    from tinygrad_llm.distributed.worker import train_replica
    ddp_weights, info = train_replica("ddp", SingleProcess(), steps=5, dtype="float64")
    for mode in ("zero1", "zero2"):
        weights, _ = train_replica(mode, SingleProcess(), steps=5, dtype="float64")
        assert max_difference(ddp_weights, weights) <= 1e-12   # the Trainer's clipping against ZeRO's
    assert info["ranks"] == 1 and info["bytes_sent"] == 0


@needs_mpi
def test_the_worker_on_two_ranks_trains_the_single_process_model(tmp_path):
    from tinygrad_llm.distributed.worker import MODES, launch, train_replica
    single, _ = train_replica("ddp", SingleProcess(), steps=10, dtype="float64")
    results = launch(tmp_path, MODES, ranks=2, steps=10, dtype="float64")
    for mode, (weights, infos) in results.items():
        assert [i["rank"] for i in infos] == [0, 1] and max_difference(single, weights) < 1e-10, mode
