# %% [markdown]
"""
# 17. The arithmetic of scale: parameters, memory, FLOPs and the compute-optimal model

**The question.** "1B parameters take 4 GB." "Training costs about 6 N D FLOPs." "GPT-3 took
thousands of petaflop/s-days and was under-trained." "ZeRO makes a 7.5B model fit on GPUs of
16 GB." Each of these is a few lines of arithmetic. This lesson does that arithmetic by hand,
then with the package, checks it against the published numbers, and measures on our own engine
whatever a laptop can measure: the bytes a training step holds and the FLOPs per second it runs.

**The idea.** Four formulas, for a GPT with N parameters trained on D tokens:

    parameters   N ≈ V C + T C + L (12 C² + 13 C)            (C width, L layers, V vocabulary, T context)
    memory       16 N bytes with Adam: weights 4 + gradient 4 + Adam's m and v 8 (fp32), or
                 2 + 2 + 12 (mixed precision with fp32 master weights); ZeRO divides parts of it by R ranks
    compute      C ≈ 6 N D  (+ 6 L T C D for attention)        1 PF/s-day = 8.64e19 FLOPs
    Chinchilla   L(N, D) = E + A / N^α + B / D^β, minimised under 6 N D = C: N and D both grow as ~√C

**Builds on:** lesson 06 (`parameter_counts`, `memory_table`), lesson 07 (the `Trainer`),
lesson 10 (`gradient_bytes`, `optimizer_state_bytes`, `saved_activation_bytes`, `peak_memory`).
**Adds:** `tinygrad_llm.scale.compute`: `training_flops`, `petaflop_s_days`, `PETAFLOP_S_DAY`,
`LossLaw`, `rule_of_thumb_optimal`, `TOKENS_PER_PARAMETER`, `fit_loss_law`;
`tinygrad_llm.scale.sharding`: `rank_memory`, `RankMemory`, `BYTES_PER_PARAMETER`,
`communication_values`, `ring_values`; `tinygrad_llm.model.recompute`: `checkpoint`,
`checkpoint_blocks`, `uncheckpoint_blocks`, `Checkpointed`.

**Run:** `python lessons/17_scale_arithmetic.py` (under a minute on 2 cores) or `--quick`
(a few seconds).
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import GPT, GPTConfig
from tinygrad_llm.course import quick_mode, save_figure
from tinygrad_llm.course.figures import label_axes, legend_outside, series_style
from tinygrad_llm.model.recompute import checkpoint_blocks
from tinygrad_llm.scale.compute import (PETAFLOP_S_DAY, TOKENS_PER_PARAMETER, LossLaw, petaflop_s_days,
                                        rule_of_thumb_optimal, training_flops)
from tinygrad_llm.scale.memory import (activation_bytes, format_bytes, gradient_bytes, optimizer_state_bytes,
                                       parameter_counts, peak_memory, saved_activation_bytes)
from tinygrad_llm.scale.memory import training_flops as step_flops
from tinygrad_llm.scale.sharding import BYTES_PER_PARAMETER, STAGES, communication_values, rank_memory
from tinygrad_llm.train.trainer import TrainConfig, Trainer

# %% [markdown]
# ## Settings (quick mode shrinks everything for smoke tests)

# %%
SEED = 0
QUICK = quick_mode()
# the model measured on this machine: the course GPT (lesson 07), or a tiny one in quick mode
MEASURED = (GPTConfig(vocab_size=512, context_length=32, d_model=32, n_layer=2, n_head=2) if QUICK else
            GPTConfig(vocab_size=2048, context_length=128, d_model=128, n_layer=4, n_head=4))
BATCH_SIZE = 4 if QUICK else 8
TIMED_STEPS = 2 if QUICK else 6        # training steps timed per variant (after one warm-up step)
MATMUL_SIZE = 128 if QUICK else 512    # a square float32 matrix product: what BLAS reaches here
ZERO_RANKS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
BUDGETS = (1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25)   # FLOPs, for the iso-FLOP curves

rng = np.random.default_rng(SEED)
lesson_start = time.perf_counter()

# %% [markdown]
# ## 1. Parameters, by hand: the four GPT-2 models
# A block holds two LayerNorms (2 C each, weight and bias), the attention's query/key/value
# matrix (C × 3C + 3C) and output projection (C × C + C), and the MLP's two matrices
# (C × 4C + 4C and 4C × C + C): 12 C² + 13 C in all. Add the token table (V C), the position
# table (T C) and a final LayerNorm (2 C); the output head reuses the token table. The names
# "124M" and "1.5B" are these counts, rounded. (The GPT-2 paper's own table says 117M and
# 1542M: it left out the position table and counted slightly differently; the released
# checkpoints hold the numbers below.)

# %%
def gpt_parameters_by_hand(V: int, T: int, C: int, L: int) -> int:
    return V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C


gpt2_names = ("124M", "355M", "774M", "1.5B")
gpt2_counts = {}
print(f"{'GPT-2':>6} {'width':>6} {'layers':>6} {'by hand':>15} {'parameter_counts':>17} {'per layer':>12}")
for name in gpt2_names:
    c = GPTConfig.gpt2(name)
    by_hand = gpt_parameters_by_hand(c.vocab_size, c.context_length, c.d_model, c.n_layer)
    package = parameter_counts(c)["total"]
    assert by_hand == package, name
    gpt2_counts[name] = package
    print(f"{name:>6} {c.d_model:>6} {c.n_layer:>6} {by_hand:>15,} {package:>17,} "
          f"{12 * c.d_model ** 2 + 13 * c.d_model:>12,}")

measured_model = GPT(MEASURED, rng=np.random.default_rng(SEED))
N_measured = measured_model.num_parameters()
assert N_measured == gpt_parameters_by_hand(MEASURED.vocab_size, MEASURED.context_length,
                                            MEASURED.d_model, MEASURED.n_layer)
share_embedding = MEASURED.vocab_size * MEASURED.d_model / N_measured
share_embedding_124m = 50257 * 768 / gpt2_counts["124M"]
print(f"\nthe model we measure below: {N_measured:,} parameters, by hand = built GPT. The token table "
      f"is {share_embedding:.0%} of it ({share_embedding_124m:.0%} of GPT-2 124M): small models are "
      f"mostly embedding, large ones mostly blocks (12 C² per layer grows with the square of the width)")

# %% [markdown]
# ## 2. Memory of the model state: 4 GB, 16 GB
# A float32 number is 4 bytes, so 1B parameters are 4 GB of weights (decimal gigabytes, as
# papers count; `format_bytes` prints binary GiB). Training with Adam keeps, for every
# parameter, its gradient and Adam's two moments m and v as well: 16 bytes. Mixed precision
# stores the weights and gradients in 16 bits but keeps an fp32 master copy of the weights
# beside m and v, so it is 16 bytes too (2 + 2 + 12): it saves activation memory and time, not
# model-state memory.

# %%
print(f"{'precision':>9} {'weights':>8} {'grads':>6} {'optimizer':>10} {'total':>6}  (bytes per parameter)")
for precision, (w, g, k) in BYTES_PER_PARAMETER.items():
    print(f"{precision:>9} {w:>8} {g:>6} {k:>10} {w + g + k:>6}")
one_billion = rank_memory(1_000_000_000, precision="fp32")
print(f"\n1B parameters, fp32: weights {one_billion.weights / 1e9:.0f} GB, training with Adam "
      f"{one_billion.total / 1e9:.0f} GB")
for name, n in gpt2_counts.items():
    print(f"GPT-2 {name:>4}: weights {format_bytes(4 * n):>10}, Adam training state "
          f"{format_bytes(rank_memory(n, precision='fp32').total):>10}")

# %% [markdown]
# Measured on our engine: after one `Trainer` step, the model's weights, the gradients in its
# parameters and AdamW's state hold exactly 4 + 4 + 8 bytes per parameter.

# %%
train_tokens = rng.integers(0, MEASURED.vocab_size, size=20_000)   # memory and speed do not depend on the text
config = TrainConfig(steps=1000, batch_size=BATCH_SIZE, warmup_steps=1, eval_interval=1000, log_interval=1000)


def make_trainer(checkpointed: bool) -> Trainer:
    model = GPT(MEASURED, rng=np.random.default_rng(SEED))
    if checkpointed:
        checkpoint_blocks(model)
    trainer = Trainer(model, train_tokens, None, config, log=None)
    trainer.train_step()    # warm-up: creates the gradients and Adam's m and v
    return trainer


plain = make_trainer(checkpointed=False)
state_bytes = {"weights": sum(p.data.nbytes for p in plain.model.parameters()),
               "gradients": gradient_bytes(plain.model),
               "optimizer": optimizer_state_bytes(plain.optimizer)}
print(", ".join(f"{k} {v:,} B ({v / N_measured:.0f} per parameter)" for k, v in state_bytes.items()))
print(f"total {sum(state_bytes.values()) / N_measured:.0f} bytes per parameter; "
      f"the calculator: {rank_memory(N_measured, precision='fp32').total / N_measured:.0f}")

# %% [markdown]
# ## 3. Activations, and recomputing them
# The model state is fixed; the activations grow with the batch. Backward needs, for every op,
# the inputs it saw: per layer and token about 19 C numbers plus the attention probabilities
# (n_head × T), then the logits (`activation_bytes`, an estimate). `saved_activation_bytes`
# walks the graph and counts what it really holds, and `peak_memory` traces a whole step.
#
# *Activation checkpointing* (`model.recompute`) keeps only each block's input and recomputes
# the inside during backward: the activations of one block at a time instead of all of them,
# for one more forward pass (backward costs about two forwards, so a step costs about 4/3).

# %%
def measure(trainer: Trainer) -> dict:
    inputs, targets = trainer.batches.next_batch(BATCH_SIZE)
    trainer.model.train()
    _, loss = trainer.model(inputs, targets)
    saved = saved_activation_bytes(loss)       # before backward, which frees the graph
    loss.backward()
    _, peak = peak_memory(trainer.train_step)
    seconds = []
    for _ in range(TIMED_STEPS):   # the median step: the machine is shared and single steps stall
        start = time.perf_counter()
        trainer.train_step()
        seconds.append(time.perf_counter() - start)
    return {"saved": saved, "peak": peak, "seconds": float(np.median(seconds))}


checkpointed = make_trainer(checkpointed=True)
runs = {"plain": measure(plain), "checkpointed": measure(checkpointed)}
estimate = activation_bytes(MEASURED, BATCH_SIZE)
print(f"activations of a batch of {BATCH_SIZE} x {MEASURED.context_length}: estimate {format_bytes(estimate)}")
for name, r in runs.items():
    print(f"{name:>13}: graph keeps {format_bytes(r['saved']):>10}, peak of a step {format_bytes(r['peak']):>10}, "
          f"{r['seconds'] * 1e3:6.0f} ms per step")
memory_saving = 1 - runs["checkpointed"]["peak"] / runs["plain"]["peak"]
time_cost = runs["checkpointed"]["seconds"] / runs["plain"]["seconds"]
print(f"checkpointing: peak memory {memory_saving:.0%} lower, a step {time_cost:.2f}x as long")

# %% [markdown]
# ## 4. ZeRO: what each of R ranks holds
# Data parallelism copies the whole model state to every rank. ZeRO shards it: stage 1 the
# optimizer state, stage 2 the gradients too, stage 3 the weights as well. By hand, in mixed
# precision (2 + 2 + 12 bytes), for the ZeRO paper's example, a 7.5B model on 64 GPUs:

# %%
psi, R = 7_500_000_000, 64
by_hand_zero = {0: (2 + 2 + 12) * psi, 1: (2 + 2) * psi + 12 * psi / R,
                2: 2 * psi + (2 + 12) * psi / R, 3: (2 + 2 + 12) * psi / R}
published_zero = {0: 120.0, 1: 31.4, 2: 16.6, 3: 1.9}   # GB per GPU, the ZeRO paper's figure 1
for stage in STAGES:
    package = rank_memory(psi, R, stage).total
    assert package == by_hand_zero[stage]
    print(f"stage {stage}: {package / 1e9:6.1f} GB per GPU (paper {published_zero[stage]:5.1f}), "
          f"communicates {communication_values(psi, stage) / psi:.0f} Psi values per step")

fig, ax = plt.subplots(figsize=(7, 4))
for stage in STAGES:
    ax.plot(ZERO_RANKS, [rank_memory(psi, r, stage).total / 1e9 for r in ZERO_RANKS],
            label=f"stage {stage}", **series_style(stage))
ax.axhline(16, color="grey", linestyle=":", label="a 16 GB GPU")
ax.set_xscale("log", base=2)
ax.set_yscale("log")
label_axes(ax, "ranks R", "model-state memory per rank (GB)", "7.5B parameters, mixed precision with Adam")
legend_outside(ax)
save_figure(fig, "17_zero_memory_per_rank")
fits_16gb = {stage: next((r for r in ZERO_RANKS if rank_memory(psi, r, stage).total <= 16e9), None)
             for stage in STAGES}
print("fewest ranks (of those plotted) for a 16 GB GPU: " +
      ", ".join(f"stage {s}: {r if r else 'never'}" for s, r in fits_16gb.items()))

# %% [markdown]
# Stages 1 and 2 leave at least the weights (and in stage 1 the gradients) on every rank, so
# they level off; only stage 3 falls as 1/R without limit. It pays with communication: the
# weights are gathered once for the forward pass and once for the backward, 3Ψ values per step
# instead of 2Ψ.
#
# ## 5. Compute: 6 N D
# The forward pass spends 2 FLOPs per parameter per token (a multiply and an add for every
# weight the token meets); the backward pass computes a gradient for each input and for each
# weight, twice the forward. So a token costs 6 N to train on, and D tokens 6 N D. Attention
# adds 2 n_ctx d_model per layer and token in the forward pass (scores and weighted sum over
# the causal half), 6 L T C D in training. GPT-3: 175B parameters, 300B tokens, 96 layers of
# width 12,288 over 2,048 tokens.

# %%
N_gpt3, D_gpt3 = 175e9, 300e9
gpt3 = GPTConfig(vocab_size=50257, context_length=2048, d_model=12288, n_layer=96, n_head=96)
by_hand_flops = 6 * N_gpt3 * D_gpt3
attention_flops = 6 * gpt3.n_layer * gpt3.context_length * gpt3.d_model * D_gpt3
assert by_hand_flops == training_flops(N_gpt3, D_gpt3)
assert by_hand_flops + attention_flops == training_flops(N_gpt3, D_gpt3, gpt3)
gpt3_pfsd = petaflop_s_days(by_hand_flops)
print(f"GPT-3: 6 N D = {by_hand_flops:.3g} FLOPs (paper: 3.14e23) = {gpt3_pfsd:,.0f} PF/s-days "
      f"(paper: 3,640); 1 PF/s-day = {PETAFLOP_S_DAY:.3g} FLOPs")
print(f"the attention term adds {attention_flops:.3g} FLOPs, {attention_flops / by_hand_flops:.1%} more")

# %% [markdown]
# Measured: `memory.training_flops` counts the matrix products of one of our training steps
# exactly (the weights, the output head, and both attention products over the full T × T
# square, which our masked attention computes). Divided by the time of a step it is the
# FLOP rate our engine reaches, to compare with what a single large matrix product reaches
# on this machine.

# %%
tokens_per_step = BATCH_SIZE * MEASURED.context_length
counted = step_flops(MEASURED, BATCH_SIZE)
six_nd = training_flops(N_measured, tokens_per_step, MEASURED)
engine_rate = counted / runs["plain"]["seconds"]
a = rng.standard_normal((MATMUL_SIZE, MATMUL_SIZE)).astype(np.float32)
matmul_seconds = []
for _ in range(11):
    start = time.perf_counter()
    a @ a
    matmul_seconds.append(time.perf_counter() - start)
matmul_rate = 2 * MATMUL_SIZE ** 3 / float(np.median(matmul_seconds))   # the median: the machine is shared
print(f"one step of {tokens_per_step:,} tokens: {counted:.3g} FLOPs counted op by op, 6 N D + attention "
      f"{six_nd:.3g} ({counted / six_nd:.2f}x: they differ by the parameters that cost no product, the "
      f"position table, biases and norms, and by attention counted over its full square)")
print(f"our engine: {engine_rate / 1e9:.2f} GFLOP/s in a training step; one {MATMUL_SIZE}x{MATMUL_SIZE} "
      f"matrix product: {matmul_rate / 1e9:.2f} GFLOP/s ({engine_rate / matmul_rate:.0%} of it)")
gpt3_years = by_hand_flops / engine_rate / (365.25 * 86400)
print(f"GPT-3's training on this engine at that rate: {gpt3_years:.2g} years")

# %% [markdown]
# ## 6. Chinchilla: what a budget should buy
# For a budget C = 6 N D, a bigger model sees fewer tokens. Chinchilla fitted
# L(N, D) = E + A/N^α + B/D^β to hundreds of runs; setting the derivative of L(N, C/(6N)) to
# zero gives, by hand,
#
#     N_opt = G (C/6)^(β/(α+β)),   G = (α A / (β B))^(1/(α+β)),   D_opt = C / (6 N_opt)
#
# The paper's other two methods (the lowest loss of each iso-FLOP curve of its own runs) give
# D ≈ 20 N, the rule of thumb. Its published, rounded constants for the fit put the optimum at
# several times more tokens per parameter than that (a replication, Besiroglu et al. 2024,
# found the fit itself inconsistent with the paper's other two estimates); both say the same
# about GPT-3, which trained 175B parameters on 300B tokens: under 2 tokens per parameter.

# %%
law = LossLaw()
a_, b_ = law.alpha, law.beta
G = (a_ * law.A / (b_ * law.B)) ** (1 / (a_ + b_))
n_opt_hand = G * (by_hand_flops / 6) ** (b_ / (a_ + b_))
n_opt, d_opt = law.compute_optimal(by_hand_flops)
assert np.isclose(n_opt, n_opt_hand, rtol=1e-12)
n_rule, d_rule = rule_of_thumb_optimal(by_hand_flops)
N_chin, D_chin = 70e9, 1.4e12
loss_gpt3, loss_opt = float(law.loss(N_gpt3, D_gpt3)), float(law.loss(n_opt, d_opt))
print(f"GPT-3's budget {by_hand_flops:.3g} FLOPs: fitted optimum {n_opt / 1e9:.0f}B parameters on "
      f"{d_opt / 1e12:.2f}T tokens ({d_opt / n_opt:.0f} per parameter); rule of thumb "
      f"{n_rule / 1e9:.0f}B on {d_rule / 1e12:.2f}T ({TOKENS_PER_PARAMETER} per parameter)")
print(f"GPT-3 itself: {D_gpt3 / N_gpt3:.1f} tokens per parameter; predicted loss {loss_gpt3:.3f} against "
      f"{loss_opt:.3f} for the optimum at the same compute")
budget_chin = training_flops(N_chin, D_chin)
loss_chin, loss_chin_opt = float(law.loss(N_chin, D_chin)), float(law.loss(*law.compute_optimal(budget_chin)))
print(f"Chinchilla: {N_chin / 1e9:.0f}B on {D_chin / 1e12:.1f}T tokens = {budget_chin:.3g} FLOPs "
      f"({D_chin / N_chin:.0f} tokens per parameter), predicted loss {loss_chin:.3f}, "
      f"{loss_chin - loss_chin_opt:.3f} above the optimum of its budget; GPT-3: {loss_gpt3 - loss_opt:.3f} above")

fig, ax = plt.subplots(figsize=(7.5, 4.5))
for i, budget in enumerate(BUDGETS):
    ns = np.geomspace(1e7, 1e13, 300)
    ds = budget / (6 * ns)
    keep = ds > 1e8
    ax.plot(ns[keep], law.loss(ns[keep], ds[keep]), label=f"C = {budget:.0e}", **series_style(i), markevery=60)
frontier = np.array([law.compute_optimal(c) for c in np.geomspace(BUDGETS[0], BUDGETS[-1], 50)])
ax.plot(frontier[:, 0], law.loss(frontier[:, 0], frontier[:, 1]), color="grey", linestyle="--", label="compute-optimal")
ax.scatter([N_gpt3], [loss_gpt3], marker="*", s=200, color="red", zorder=5, label="GPT-3 (175B, 300B)")
ax.scatter([N_chin], [loss_chin], marker="P", s=150, color="green", zorder=5,
           label="Chinchilla (70B, 1.4T)")
ax.set_xscale("log")
label_axes(ax, "parameters N", "predicted loss (nats per token)", "Chinchilla's fit along iso-FLOP curves")
legend_outside(ax)
save_figure(fig, "17_iso_flop_curves")

# %% [markdown]
# Along each curve the loss has a minimum: left of it the model is too small to use its
# tokens, right of it too big to be trained by them. GPT-3 sits well right of the minimum of
# its own budget: over-parameterised and under-trained. Chinchilla, at a similar budget,
# sits much closer to the frontier (the gaps are printed above).

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
assert [round(gpt2_counts[n] / 1e6) for n in gpt2_names[:3]] == [124, 355, 774], "GPT-2's names are its counts"
assert round(gpt2_counts["1.5B"] / 1e9, 1) == 1.6 and gpt2_counts["124M"] == 124_439_808
assert one_billion.weights == 4e9 and one_billion.total == 16e9, "1B parameters: 4 GB, 16 GB to train"
assert all(sum(BYTES_PER_PARAMETER[p]) == 16 for p in BYTES_PER_PARAMETER), "fp32 and mixed: 16 bytes"
assert sum(state_bytes.values()) == 16 * N_measured, "a Trainer step holds 16 bytes per parameter, measured"
assert runs["checkpointed"]["saved"] < 0.5 * runs["plain"]["saved"], "checkpointing keeps far less"
assert memory_saving > 0.3, "and lowers the peak memory of a step"
assert QUICK or time_cost > 1.0, "for more time per step (a second forward pass per block)"
assert estimate / 3 < runs["plain"]["saved"] < 3 * estimate, "the estimate is the right size"
for stage, gb in published_zero.items():
    assert round(rank_memory(psi, R, stage).total / 1e9, 1) == gb, f"ZeRO stage {stage} matches the paper"
assert fits_16gb[0] is None and fits_16gb[1] is None, "stages 0 and 1 never fit 7.5B in 16 GB"
assert fits_16gb[3] == 8 and fits_16gb[2] >= 8 * fits_16gb[3], "stage 3 fits on few GPUs, stage 2 needs many"
assert abs(by_hand_flops / 3.14e23 - 1) < 5e-3 and abs(gpt3_pfsd / 3640 - 1) < 5e-3, "GPT-3 matches its paper"
assert attention_flops < 0.05 * by_hand_flops, "at GPT-3's width the attention term is small"
assert 0.5 < counted / six_nd < 2, "6 N D predicts our step's counted FLOPs to within 2x"
assert QUICK or engine_rate < matmul_rate, "a training step runs below the peak of one large matrix product"
assert n_opt < N_gpt3 / 3 and d_opt > 3 * D_gpt3, "GPT-3 is over-parameterised and under-trained"
assert loss_opt < loss_gpt3, "the optimum reaches a lower loss at the same compute"
assert np.isclose(d_rule / n_rule, TOKENS_PER_PARAMETER), "the rule of thumb: 20 tokens per parameter"
assert d_opt / n_opt > TOKENS_PER_PARAMETER, "the published fit asks for even more tokens per parameter"
assert loss_chin - loss_chin_opt < 0.5 * (loss_gpt3 - loss_opt), "Chinchilla is closer to the frontier"
assert 0.8 < training_flops(N_chin, D_chin) / 5.76e23 < 1.2, "Chinchilla used about Gopher's budget"
print(f"lesson 17 checks passed ({time.perf_counter() - lesson_start:.0f} s)")

# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **Memory per rank.** The model-state bytes one rank holds under ZeRO stage 0-3, mixed
#    precision with Adam. Edit `exercises/17_1.py`, then run `tinygrad-llm exercise check 17.1`.
# 2. **Predict: a training budget.** Predict the petaflop/s-days of training a 1B-parameter model
#    on 20B tokens (6 N D). Edit `exercises/17_2.py`, then run `tinygrad-llm exercise check 17.2`.
# 3. **Predict: ranks for a 16 GB GPU.** Predict the fewest ranks with which ZeRO stage 3 holds
#    the model state of a 7.5B model (mixed precision, Adam) in 16 GB each. Edit
#    `exercises/17_3.py`, then run `tinygrad-llm exercise check 17.3`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
