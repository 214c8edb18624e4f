# %% [markdown]
"""
# 19. Data parallelism and ZeRO on MPI: the same model from R processes

**The question.** One process trains on one batch at a time. With R processes (on R cores or R
machines), can each take a share of every batch and still end with exactly the model one
process would have trained? And what does each process then have to hold and send?

**The idea.** Each of R *ranks* keeps a copy of the model, computes the gradient of its B/R rows
of a global batch of B, and the ranks average their gradients before every update. Since the
loss is a mean over equal shards,

    ∇ (1/B) Σ_b loss_b  =  (1/R) Σ_r ∇ (R/B) Σ_{b in shard r} loss_b ,

the average is the whole batch's gradient, every rank takes the same step, and the copies never
drift apart. The averaging is an *all-reduce*, which a ring does as a reduce-scatter followed by
an all-gather; ZeRO keeps those two halves apart and lets each rank update only its own 1/R of
the parameters, so that it needs only 1/R of Adam's state (stage 1) and of the gradients
(stage 2). MPI (`mpiexec -n R python ...`) starts the R processes, here or across hosts.

**Builds on:** lesson 07 (the `Trainer` and its hooks), lesson 17 (`rank_memory`, `ring_values`:
what a rank should hold and send).
**Adds:** `tinygrad_llm.distributed.comm`: `world`, `Communicator`, `SingleProcess`,
`MPICommunicator`; `tinygrad_llm.distributed.ddp`: `shard_rows`, `make_buckets`, `DataParallel`,
`ShardedBatches`, `AverageGradients`; `tinygrad_llm.distributed.zero`: `ZeroOptimizer`;
`tinygrad_llm.distributed.worker`: `train_replica`, `launch`.

**Run:** `python lessons/19_data_parallel.py` (under a minute on 2 cores; it starts
`mpiexec -n 2` itself, from the course install's `mpi4py` and `mpich`) or `--quick` (seconds).
"""

# %%
import shutil
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm.course import quick_mode, save_figure
from tinygrad_llm.course.figures import label_axes, legend_outside, series_style
from tinygrad_llm.distributed.comm import SingleProcess
from tinygrad_llm.distributed.ddp import shard_rows
from tinygrad_llm.distributed.worker import MODES, launch, train_replica
from tinygrad_llm.scale.memory import format_bytes
from tinygrad_llm.scale.sharding import STAGES, rank_memory, ring_values

# %% [markdown]
# ## Settings (quick mode shrinks everything for smoke tests)

# %%
SEED = 0
QUICK = quick_mode()
RANKS = 2                                   # this machine has two cores
STEPS = 10 if QUICK else 20                 # training steps of the exactness runs (tiny GPT)
BATCH_SIZE = 8                              # the global batch: 4 rows per rank
SPEED_SIZE, SPEED_STEPS, SPEED_BATCH = ("tiny", 4, 16) if QUICK else ("course", 8, 16)
RING_VALUES, RING_RANKS = 12, 4             # the ring all-reduce done by hand
CALCULATOR_RANKS = (1, 2, 8, 64, 1024)

rng = np.random.default_rng(SEED)
lesson_start = time.perf_counter()
work = Path(tempfile.mkdtemp(prefix="lesson19_"))   # the ranks' result files (small, thrown away)

# %% [markdown]
# ## 1. A ring all-reduce, by hand
# R ranks each hold a buffer of n values; all must end with the sum. Cut every buffer into R
# chunks. In R - 1 steps of a *reduce-scatter*, each rank passes one chunk to its right-hand
# neighbour, which adds it to its own: afterwards rank r holds the complete sum of chunk r + 1.
# In R - 1 steps of an *all-gather*, the completed chunks travel round the ring the same way.
# Each rank sends 2 (R - 1) chunks of n / R values: 2 (R - 1) / R × n, about 2n whatever R is.

# %%
buffers = [rng.integers(0, 10, RING_VALUES).astype(float) for _ in range(RING_RANKS)]
chunks = [np.array_split(b.copy(), RING_RANKS) for b in buffers]
sent = [0] * RING_RANKS
for step in range(RING_RANKS - 1):                      # reduce-scatter
    outgoing = [chunks[r][(r - step) % RING_RANKS].copy() for r in range(RING_RANKS)]
    for r in range(RING_RANKS):
        right = (r + 1) % RING_RANKS
        chunks[right][(r - step) % RING_RANKS] += outgoing[r]
        sent[r] += outgoing[r].size
for step in range(RING_RANKS - 1):                      # all-gather of the completed chunks
    outgoing = [chunks[r][(r + 1 - step) % RING_RANKS].copy() for r in range(RING_RANKS)]
    for r in range(RING_RANKS):
        right = (r + 1) % RING_RANKS
        chunks[right][(r + 1 - step) % RING_RANKS] = outgoing[r]
        sent[r] += outgoing[r].size
total = np.sum(buffers, axis=0)
ring_correct = all(np.array_equal(np.concatenate(c), total) for c in chunks)
print(f"{RING_RANKS} ranks, {RING_VALUES} values each: every rank ends with the sum: {ring_correct}; "
      f"values sent per rank {sent}, 2 (R - 1) / R n = {2 * (RING_RANKS - 1) / RING_RANKS * RING_VALUES:.0f}, "
      f"sharding.ring_values: {ring_values(RING_VALUES, RING_RANKS):.0f}")

# %% [markdown]
# ## 2. Two ranks train the model one process trains
# `worker.train_replica` runs the lesson-07 `Trainer` unchanged: `ShardedBatches` gives each rank
# its rows of the global batch (every rank draws the same global batch from the same seed) and
# the `AverageGradients` hook all-reduces the gradients, in flat buckets, after backward.
# `launch` starts `mpiexec -n 2 python -m tinygrad_llm.distributed.worker` and reads back rank
# 0's weights. With one process every collective is the identity: that is the reference, one
# process with the whole batch. In float64 the only difference is the order of the additions;
# in float32 the same reordering changes the last bits of each sum, and Adam, which divides by
# √v, lets those differences grow from step to step.

# %%
def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


runs = {}
for dtype in ("float64", "float32"):
    single, single_info = train_replica("ddp", SingleProcess(), steps=STEPS, batch_size=BATCH_SIZE, dtype=dtype)
    modes = MODES if dtype == "float64" else ("ddp",)
    runs[dtype] = (single, single_info, launch(work / dtype, modes, ranks=RANKS, steps=STEPS,
                                                batch_size=BATCH_SIZE, dtype=dtype))
differences = {dtype: max_difference(single, ranked["ddp"][0]) for dtype, (single, _, ranked) in runs.items()}
single64, info64, ranked64 = runs["float64"]
psi = info64["parameters"]
print(f"a GPT of {psi:,} parameters, {STEPS} steps, global batch {BATCH_SIZE} ({BATCH_SIZE // RANKS} rows per rank)")
for dtype, d in differences.items():
    print(f"{dtype}: largest difference between 2 ranks and 1 process after {STEPS} steps: {d:.1e}")
loss_single, loss_ranks = info64["final_loss"], [i["final_loss"] for i in ranked64["ddp"][1]]
print(f"last training loss: one process {loss_single:.6f}; the ranks, each on its own rows: "
      f"{', '.join(f'{v:.6f}' for v in loss_ranks)}")

# %% [markdown]
# ## 3. What each rank holds and sends: DDP against ZeRO stages 1 and 2
# Measured from each rank's arrays after the last step, against lesson 17's calculator
# `rank_memory` for the same Ψ and R (fp32: 4 bytes of weights, 4 of gradient, 8 of Adam's m and
# v per parameter). Traffic: the bytes each rank handed to the collectives per step, against a
# ring's 2 (R - 1) / R Ψ values (ZeRO adds one number per step: the global gradient norm, summed
# from the parts). Stage 3 shards the weights as well and gathers each layer's weights when it
# runs, which needs a forward and backward that fetch and free weights; our engine does not, so
# stage 3 appears in the calculator only.

# %%
itemsize = info64["itemsize"]
measured_state, expected_state = {}, {}
print(f"{'':>6} {'weights':>10} {'gradients':>10} {'optimizer':>10} {'total':>10} {'calculator':>11} "
      f"{'sent/step':>10} {'ring theory':>11} {'vs DDP':>8}")
for mode in MODES:
    weights, infos = ranked64[mode]
    stage = 0 if mode == "ddp" else int(mode[-1])
    held = infos[0]["held"]
    measured_state[stage] = held
    expected = rank_memory(psi, RANKS, stage, precision="fp32")
    expected_state[stage] = expected
    per_step = infos[0]["bytes_sent"] / STEPS
    print(f"{mode:>6} {held['parameters']:>10,} {held['gradients']:>10,} {held['optimizer']:>10,} "
          f"{sum(held.values()):>10,} {expected.total * itemsize / 4:>11,.0f} {per_step:>10,.0f} "
          f"{ring_values(psi, RANKS, stage) * itemsize:>11,.0f} {max_difference(weights, ranked64['ddp'][0]):>8.1e}")
same_as_ddp = {mode: max_difference(ranked64[mode][0], ranked64["ddp"][0]) for mode in MODES}

print(f"\nthe calculator for the same {psi:,} parameters (fp32, Adam) and for a 7.5B model (mixed precision):")
print(f"{'ranks':>6} " + " ".join(f"{'stage ' + str(s):>12}" for s in STAGES) + "   | " +
      " ".join(f"{'stage ' + str(s):>10}" for s in STAGES))
for r in CALCULATOR_RANKS:
    print(f"{r:>6} " + " ".join(f"{format_bytes(rank_memory(psi, r, s, 'fp32').total):>12}" for s in STAGES) + "   | " +
          " ".join(f"{rank_memory(7_500_000_000, r, s).total / 1e9:>8.1f}GB" for s in STAGES))

# %% [markdown]
# The measured bytes are the calculator's to the byte (the runs are float64, 8 bytes a value, so
# the calculator's fp32 figures are doubled). Stage 1 and 2 communicate what DDP does, halve what
# they can, and end with the same weights as DDP: Adam's update is elementwise, so updating two
# halves is updating the whole.
#
# ## 4. Speed on this machine
# The same global batch on the course GPT's shape, three ways: one process with one BLAS thread,
# one process with two, and two ranks with one thread each. The time of the collectives is
# counted apart from the steps. On a shared machine these are timings of the moment; the lesson
# prints them and checks none.

# %%
speed = {}
for label, ranks, threads in (("1 rank x 1 thread", 1, 1), ("1 rank x 2 threads", 1, 2), ("2 ranks x 1 thread", 2, 1)):
    _, infos = launch(work / f"speed{ranks}{threads}", ("ddp",), ranks=ranks, threads=threads, size=SPEED_SIZE,
                      steps=SPEED_STEPS, batch_size=SPEED_BATCH)["ddp"]
    seconds = max(i["seconds"] for i in infos) / SPEED_STEPS
    comm_seconds = max(i["comm_seconds"] for i in infos) / SPEED_STEPS
    speed[label] = (seconds, comm_seconds)
    print(f"{label:>19}: {seconds * 1e3:7.0f} ms per step, of which collectives {comm_seconds * 1e3:5.1f} ms")
base = speed["1 rank x 1 thread"][0]
for label, (seconds, _) in speed.items():
    print(f"{label:>19}: {base / seconds:.2f}x the throughput of one rank with one thread")
two_ranks_vs_threads = speed["1 rank x 2 threads"][0] / speed["2 ranks x 1 thread"][0]
print(f"two ranks against one process using both cores through BLAS threads: {two_ranks_vs_threads:.2f}x its throughput")

fig, ax = plt.subplots(figsize=(6.5, 3.5))
labels = list(speed)
ax.barh(labels, [speed[k][0] * 1e3 for k in labels], color=[series_style(i)["color"] for i in range(len(labels))],
        label="a training step")
ax.barh(labels, [speed[k][1] * 1e3 for k in labels], color="black", label="in collectives")
label_axes(ax, "milliseconds per step (global batch of the same size)", "how the step is run",
           f"{SPEED_SIZE} GPT, batch {SPEED_BATCH}")
legend_outside(ax)
save_figure(fig, "19_data_parallel_speed")

# %% [markdown]
# ## 5. The same run across machines
# Nothing in the code knows how many hosts there are: MPI starts the ranks and connects them.
# On this machine, `mpiexec -n 2 python -m tinygrad_llm.distributed.worker OUT`; across hosts,
# with MPICH's host file (one line per host, `name:cores`), `mpiexec -f hosts -n 8 python -m
# tinygrad_llm.distributed.worker OUT`, with the project installed at the same path on every host.

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
assert ring_correct and all(s == ring_values(RING_VALUES, RING_RANKS) for s in sent), "the ring by hand"
assert shard_rows(BATCH_SIZE, 1, RANKS) == slice(BATCH_SIZE // 2, BATCH_SIZE)
assert differences["float64"] < 1e-10, "in float64, two ranks give the single-process model"
assert differences["float32"] < 1e-4, "in float32 too, up to rounding"
assert all(info["ranks"] == RANKS for _, infos in ranked64.values() for info in infos)
for stage, held in measured_state.items():
    e = expected_state[stage]
    assert (held["parameters"], held["gradients"], held["optimizer"]) == tuple(
        int(x * itemsize / 4) for x in (e.weights, e.gradients, e.optimizer)), f"stage {stage}: the calculator's bytes"
assert sum(measured_state[1].values()) < sum(measured_state[0].values()), "stage 1 holds less than DDP"
assert sum(measured_state[2].values()) < sum(measured_state[1].values()), "stage 2 less again"
assert ranked64["ddp"][1][0]["bytes_sent"] == STEPS * ring_values(psi, RANKS) * itemsize, "DDP sends 2(R-1)/R Psi"
assert all(ranked64[m][1][0]["bytes_sent"] == STEPS * (ring_values(psi, RANKS) + 1) * itemsize for m in ("zero1", "zero2"))
assert all(d == 0.0 for d in same_as_ddp.values()), "ZeRO stages 1 and 2 end with DDP's weights"
assert rank_memory(7_500_000_000, 1024, 3).total < rank_memory(7_500_000_000, 1024, 2).total / 10
shutil.rmtree(work)
print(f"lesson 19 checks passed ({time.perf_counter() - lesson_start:.0f} s)")

# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **A rank's rows.** The contiguous rows of a global batch that one rank computes. Edit
#    `exercises/19_1.py`, then run `tinygrad-llm exercise check 19.1`.
# 2. **Predict: the bytes of a ring all-reduce.** Predict the bytes one of 4 ranks sends in a
#    ring all-reduce of 1,000,000 float32 values. Edit `exercises/19_2.py`, then run
#    `tinygrad-llm exercise check 19.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
