# %% [markdown]
"""
# 20. A recurrent baseline: what attention replaced

**The question.** Before the transformer, language models were recurrent networks: they read
the text one token at a time and carried what they remembered in a state vector of fixed size.
Attention replaced them. Trained on the same tokens, for the same steps, at about the same
number of parameters, how does a gated recurrent network (GRU) compare with our GPT: in
validation loss, in how much each gains from a longer context, and in time per step?

**The idea.** A recurrent layer updates its state h from the token embedding x_t:

    r = σ(W_r x_t + U_r h + b_r),   z = σ(W_z x_t + U_z h + b_z)          reset and update gates
    n = tanh(W_n x_t + b_n + r ⊙ (U_n h + b_hn)),   h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

The update gate z decides how much of the old state survives a step; where z is near 1 the
state (and its gradient) passes through almost unchanged, which is what lets a GRU remember
further back than the plain Elman cell h_t = tanh(W x_t + U h_{t-1} + b). Everything the model
knows about the past must fit into h, and step t cannot start before step t - 1 is done. Attention
instead lets every position read every earlier one directly, all positions at once.

Gradients flow back through every step (backpropagation through time). Training cuts the text
into windows of T tokens; *truncated* BPTT reads the windows of each row of the batch in order
and starts each window from the state the previous one ended in, without its graph: the model
is trained with a memory that reaches beyond T tokens, while each backward pass is T steps long.

**Builds on:** lesson 05-06 (the GPT), lesson 07 (`Trainer`, batch sources, objectives, hooks),
lesson 09 (`perplexity` with a sliding window), lesson 01 (`gradcheck`).
**Adds:** `tinygrad_llm.model.rnn`: `RNNConfig`, `RecurrentLayer` (Elman, GRU, LSTM cells),
`RNNLanguageModel`, `detach_state`; `tinygrad_llm.train.bptt`: `ConsecutiveWindows`, `StreamBatch`,
`lane_starts`, `TruncatedBPTT`, `carried_state_loss`.

**Run:** `python lessons/20_recurrent_baseline.py` (2 to 3 minutes on 2 cores) or `--quick`
(a few seconds).
"""

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import GPT, GPTConfig, Tensor, TrainConfig, Trainer, course_corpus, gradcheck, perplexity
from tinygrad_llm.core import functional as F
from tinygrad_llm.course import quick_mode, save_figure
from tinygrad_llm.course.figures import label_axes, legend_outside, line_style
from tinygrad_llm.model.rnn import RecurrentLayer, RNNConfig, RNNLanguageModel
from tinygrad_llm.train.bptt import ConsecutiveWindows, TruncatedBPTT, carried_state_loss, lane_starts
from tinygrad_llm.train.trainer import estimate_loss

# %% [markdown]
# ## Settings (quick mode shrinks everything for smoke tests)

# %%
SEED = 0
QUICK = quick_mode()
CONTEXT = 16 if QUICK else 64             # T: the window of both models (and of one backward pass)
GPT_SHAPE = dict(d_model=16, n_layer=1, n_head=2) if QUICK else dict(d_model=96, n_layer=2, n_head=3)
GRU_SHAPE = dict(d_model=16, hidden_size=8) if QUICK else dict(d_model=64, hidden_size=128)
STEPS = 20 if QUICK else 400
TRAIN = TrainConfig(steps=STEPS, batch_size=8 if QUICK else 16, learning_rate=5e-3, min_learning_rate=5e-4,
                    warmup_steps=STEPS // 10, eval_interval=STEPS // 4, eval_batches=2 if QUICK else 8,
                    log_interval=STEPS // 4, seed=SEED)
POSITION_WINDOWS = 256 if QUICK else 4096  # windows starting at every token of the validation text's
                                          # beginning: each position averages over the same targets
CHUNK = 16 if QUICK else 64               # windows per forward pass when measuring it
LANES = 16                                # lanes of the validation text for the carried state
CARRIED_OFFSETS = 2 if QUICK else CONTEXT  # passes over it, with the lanes shifted by T / this each time
TIMING_LENGTHS = (4, 8, 16) if QUICK else (16, 32, 64)   # forward-pass time against T
TIMING_REPEATS = 1 if QUICK else 3        # the median counts (the machine is shared)

rng = np.random.default_rng(SEED)
lesson_start = time.perf_counter()

# %% [markdown]
# ## 1. One GRU step, by hand
# The layer keeps the three input projections (W_r, W_z, W_n stacked: `input`) and the three
# recurrent ones (U_r, U_z, U_n: `recurrent`) as two `Linear`s, in PyTorch's gate order, so its
# weights would load into `torch.nn.GRU`. The input projections of all T positions are one
# matrix product before the loop; only U h runs step by step. Below: one step in NumPy from the
# equations above, against the package's `step`, then a gradient check through five steps.

# %%
layer = RecurrentLayer("gru", 3, 4, rng=np.random.default_rng(SEED), dtype=np.float64)
x_t, h = rng.normal(size=(2, 3)), rng.normal(size=(2, 4)) * 0.5       # a batch of 2, input 3, hidden 4
W, b_i = layer.input.weight.data, layer.input.bias.data                # (12, 3), (12,)
U, b_h = layer.recurrent.weight.data, layer.recurrent.bias.data        # (12, 4), (12,)
H = 4


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


gi, gh = x_t @ W.T + b_i, h @ U.T + b_h                                # (2, 12) each: r, z, n side by side
r = sigmoid(gi[:, :H] + gh[:, :H])
z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
by_hand = (1 - z) * n + z * h
package = layer.step(layer.input(Tensor(x_t)), (Tensor(h),))[0].data
step_error = float(np.abs(by_hand - package).max())
print(f"one GRU step: by hand vs RecurrentLayer.step, largest difference {step_error:.1e}")
print(f"update gate z of the first row: {np.round(z[0], 2).tolist()} (1 keeps the old state)")

x_seq = Tensor(rng.normal(size=(2, 5, 3)), requires_grad=True)
h0 = Tensor(rng.normal(size=(2, 4)) * 0.5, requires_grad=True)
mix = rng.normal(size=(2, 5, 4))      # fixed random weights: a plain sum would check less


def through_time(x, h_start):
    out, _ = layer(x, (h_start,))
    return (out * Tensor(mix)).sum()


through_time_ok = gradcheck(through_time, x_seq, h0)
print(f"gradcheck through 5 steps (float64, every entry of x and h0): {through_time_ok}")

# %% [markdown]
# ## 2. Consecutive windows for truncated BPTT
# `ConsecutiveWindows` cuts the training tokens into one lane per row of the batch. Batch k
# holds window k of every lane, so row b of the next batch continues row b of this one, and the
# state a window ends in is the right start for the next. Each pass over the data shifts the
# lanes by a random offset in [0, T), so window edges move from pass to pass. By hand first: the
# lane starts are the offset plus multiples of the lane length.

# %%
corpus = course_corpus(QUICK)
tokenizer, V = corpus.tokenizer, corpus.tokenizer.vocab_size
B = TRAIN.batch_size
lane_length = (len(corpus.train) - 3 - 1) // B                       # offset 3, one target beyond
starts_by_hand = 3 + lane_length * np.arange(B)
starts, windows_per_pass = lane_starts(len(corpus.train), B, CONTEXT, offset=3)
same_starts = np.array_equal(starts, starts_by_hand)
demo = ConsecutiveWindows(corpus.train, CONTEXT, np.random.default_rng(SEED))
first, second = demo.next_batch(B), demo.next_batch(B)
continues = bool(np.array_equal(first.targets[:, -1], second.inputs[:, 0]))
print(f"{len(corpus.train):,} training tokens in {B} lanes of {lane_length:,}: {windows_per_pass} windows of "
      f"{CONTEXT} per lane, so a pass is {windows_per_pass} steps; lane starts by hand = package: {same_starts}")
print(f"row 0, window 0 ends  ...{tokenizer.decode(first.inputs[0, -8:].tolist())!r}")
print(f"row 0, window 1 opens {tokenizer.decode(second.inputs[0, :8].tolist())!r}...  "
      f"(the last target of a window is the first input of the next: {continues})")

# %% [markdown]
# ## 3. Two models of about the same size
# The GPT is lesson 06's architecture, narrower and shallower than the course model so that both
# train within the lesson's time. The GRU gets the same vocabulary and context; its parameters
# sit mostly in the embedding (V x d_model) and the output head (hidden x V, which cannot be
# tied to the embedding, as the GPT's is, because the widths differ). Both start from a seed.

# %%
gpt_config = GPTConfig(vocab_size=V, context_length=CONTEXT, **GPT_SHAPE, dropout=0.0)
gru_config = RNNConfig(vocab_size=V, context_length=CONTEXT, **GRU_SHAPE, cell="gru")
gpt = GPT(gpt_config, rng=np.random.default_rng(SEED))
gru = RNNLanguageModel(gru_config, rng=np.random.default_rng(SEED))
sizes = {"GPT": gpt.num_parameters(), "GRU": gru.num_parameters()}
recurrent_share = sum(p.size for p in gru.layers.parameters()) / sizes["GRU"]
for name, model in (("GPT", gpt), ("GRU", gru)):
    print(f"{name}: {model.config}\n     {sizes[name]:,} parameters")
print(f"the GRU has {sizes['GRU'] / sizes['GPT']:.2f}x the GPT's parameters; its recurrent layer is "
      f"{recurrent_share:.0%} of them, embedding and head the rest")

# %% [markdown]
# ## 4. The same Trainer, the same tokens, the same steps
# Both models read the same `ConsecutiveWindows` source from the same seed, so they see the
# same batches in the same order. Only the objective differs: the GPT's is the next-token loss
# of each window on its own; the GRU's, `TruncatedBPTT`, starts each window from the state the
# previous window of its lane ended in (zero at the start of a pass). Passed as a hook too, it
# keeps that state in checkpoints. Both report the same validation loss: fixed random windows
# of the validation text, each read from scratch (zero state, no earlier context).

# %%
print(TRAIN)


def validation_loss(model):
    return {"val_loss": estimate_loss(model, corpus.val, TRAIN.batch_size, TRAIN.eval_batches,
                                      seed=TRAIN.seed + 1)}


def window_loss(model, batch):
    return model(batch.inputs, batch.targets)[1]      # the default objective, on a StreamBatch


histories, seconds_per_step = {}, {}
for name, model in (("GPT", gpt), ("GRU", gru)):
    print(f"\n{name}:")
    objective = TruncatedBPTT() if name == "GRU" else window_loss
    trainer = Trainer(model, config=TRAIN, batches=ConsecutiveWindows(corpus.train, CONTEXT,
                                                                      np.random.default_rng(SEED)),
                      objective=objective, evaluator=validation_loss,
                      hooks=[objective] if name == "GRU" else ())
    histories[name] = trainer.train()
    seconds_per_step[name] = histories[name].seconds / STEPS
print(f"\nseconds per training step (evaluations excluded): GPT {seconds_per_step['GPT']:.3f}, "
      f"GRU {seconds_per_step['GRU']:.3f} ({seconds_per_step['GRU'] / seconds_per_step['GPT']:.1f}x)")

# %% [markdown]
# ## 5. The loss by position: what the context buys
# The loss at position t of a window is the loss of predicting a token from the t tokens before
# it in the window. Averaged over many validation windows, the curve says how much each model
# gains from more context. A window starts at every token of the validation text's beginning,
# so every position averages over (nearly) the same targets and the curve shows the context
# alone, not which tokens happen to sit at that position. Each window is read from scratch (the
# GPT has nothing before position 0, the GRU starts from a zero state), and, for the GRU, also
# the way it was trained: the validation text cut into lanes of consecutive windows with the
# state carried from one to the next, once for every offset of the lanes (`carried_state_loss`
# gives the mean of the pass at offset 0; we recompute it by position). By hand
# first: the cross-entropy of every position of one chunk, from the logits, against the package's
# `cross_entropy(..., reduction="none")`.

# %%
val_starts = np.arange(min(POSITION_WINDOWS, len(corpus.val) - CONTEXT - 1))   # a window at every token
val_inputs = np.stack([corpus.val[s:s + CONTEXT] for s in val_starts]).astype(np.int64)       # (N, T)
val_targets = np.stack([corpus.val[s + 1:s + CONTEXT + 1] for s in val_starts]).astype(np.int64)


def position_losses(model, inputs, targets) -> np.ndarray:
    """Cross-entropy at every position of every window, (N, T), in chunks (no graph, eval mode)."""
    rows = []
    with model.inference():
        for k in range(0, len(inputs), CHUNK):
            logits = model(inputs[k:k + CHUNK])
            logits = logits[0] if isinstance(logits, tuple) else logits                  # the GRU's (logits, state)
            rows.append(F.cross_entropy(logits, targets[k:k + CHUNK], reduction="none").data)
    return np.concatenate(rows)


with gpt.inference():
    chunk_logits = gpt(val_inputs[:CHUNK]).data.astype(np.float64)                     # (CHUNK, T, V)
shifted = chunk_logits - chunk_logits.max(axis=-1, keepdims=True)
log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
nll_by_hand = -np.take_along_axis(log_probs, val_targets[:CHUNK, :, None], axis=-1)[..., 0]  # (CHUNK, T)
losses = {"GPT": position_losses(gpt, val_inputs, val_targets),
          "GRU": position_losses(gru, val_inputs, val_targets)}
by_hand_error = float(np.abs(nll_by_hand - losses["GPT"][:CHUNK]).max())

carried_rows = []                    # one pass over the text per lane offset, so every position
with gru.inference():                # averages over (nearly) every token
    for offset in range(0, CONTEXT, CONTEXT // CARRIED_OFFSETS):
        lane_first, lane_windows = lane_starts(len(corpus.val), LANES, CONTEXT, offset)
        state, rows_of_pass = None, []
        for k in range(lane_windows):
            rows = corpus.val[lane_first[:, None] + k * CONTEXT + np.arange(CONTEXT + 1)].astype(np.int64)
            logits, state = gru(rows[:, :-1], state=state)
            rows_of_pass.append(F.cross_entropy(logits, rows[:, 1:], reduction="none").data)
        carried_rows.append(np.concatenate(rows_of_pass))                          # (lanes x windows, T)
losses["GRU, state carried"] = np.concatenate(carried_rows)
carried_mean = carried_state_loss(gru, corpus.val, LANES, CONTEXT)
carried_error = abs(carried_rows[0].mean() - carried_mean)                         # the pass at offset 0
print(f"cross-entropy by position: by hand vs the package, largest difference {by_hand_error:.1e}; the GRU's "
      f"carried-state curve averages to carried_state_loss within {carried_error:.1e}")

curves = {name: nll.mean(axis=0) for name, nll in losses.items()}                       # (T,) each
quarter = CONTEXT // 4
first_q = {name: float(c[:quarter].mean()) for name, c in curves.items()}
last_q = {name: float(c[-quarter:].mean()) for name, c in curves.items()}
print(f"{'':<19} {'windows':>8} {'position 0':>11} {'first quarter':>14} {'last quarter':>13} {'gain':>7}")
for name, c in curves.items():
    print(f"{name:<19} {len(losses[name]):>8} {c[0]:>11.3f} {first_q[name]:>14.3f} {last_q[name]:>13.3f} "
          f"{first_q[name] - last_q[name]:>7.3f}")
gap_first, gap_last = first_q["GRU"] - first_q["GPT"], last_q["GRU"] - last_q["GPT"]
print(f"GRU minus GPT, from scratch: {gap_first:.3f} nats per token in the first quarter of the window, "
      f"{gap_last:.3f} in the last")

# %% [markdown]
# ## 6. Recall: a token seen before, at a distance
# Text repeats itself: a name, a keyword, a table border. Where the pair (input, target) at
# position t already occurred k tokens earlier in the window, a model that can look back finds
# the answer there. Attention can read position t - k directly, whatever k is; the GRU must have
# kept it in its state through k steps. The same windows and losses as above, grouped by the
# distance k to the previous occurrence of the pair (or none).

# %%
distance = np.full(val_inputs.shape, -1)                               # -1: the pair is new here
for r in range(len(val_inputs)):
    last_seen = {}
    for t in range(CONTEXT):
        pair = (int(val_inputs[r, t]), int(val_targets[r, t]))
        if pair in last_seen:
            distance[r, t] = t - last_seen[pair]
        last_seen[pair] = t
edges = [1, 4, 8, 16, 32, CONTEXT] if not QUICK else [1, 4, CONTEXT]
recall = {"new": {name: float(losses[name][distance < 0].mean()) for name in ("GPT", "GRU")}}
counts_by_bin = {"new": int((distance < 0).sum())}
for lo, hi in zip(edges, edges[1:]):
    where = (distance >= lo) & (distance < hi)
    if where.any():
        recall[f"{lo}-{hi - 1}"] = {name: float(losses[name][where].mean()) for name in ("GPT", "GRU")}
        counts_by_bin[f"{lo}-{hi - 1}"] = int(where.sum())
repeated = distance > 0
recall_gap = {"new": recall["new"]["GRU"] - recall["new"]["GPT"],
              "repeated": float(losses["GRU"][repeated].mean() - losses["GPT"][repeated].mean())}
print(f"{'previous occurrence':<20} {'positions':>10} {'GPT loss':>9} {'GRU loss':>9} {'GRU - GPT':>10}")
for key, r in recall.items():
    label = "none (a new pair)" if key == "new" else f"{key} tokens back"
    print(f"{label:<20} {counts_by_bin[key]:>10,} {r['GPT']:>9.3f} {r['GRU']:>9.3f} {r['GRU'] - r['GPT']:>10.3f}")
print(f"the GPT's lead on repeated pairs: {recall_gap['repeated']:.3f} nats per token; on new pairs: "
      f"{recall_gap['new']:.3f}")

# %% [markdown]
# ## 7. Validation loss and time, side by side
# The validation loss from scratch is the mean of the curves above (windows over the beginning of
# the validation text). A model reading a long text does better than from scratch: the GPT with
# lesson 09's sliding window (each token scored with at least T / 2 tokens of context), the GRU
# with its state carried through the whole validation text.

# %%
counts = np.bincount(corpus.train, minlength=V) + 0.5                 # add-half smoothed frequencies
unigram_loss = float(-np.log(counts / counts.sum())[corpus.val[1:]].mean())
results = {"GPT": dict(windows=float(losses["GPT"].mean()),
                       long=math.log(perplexity(gpt, corpus.val, stride=CONTEXT // 2))),
           "GRU": dict(windows=float(losses["GRU"].mean()), long=carried_mean)}
print(f"{'model':<6} {'parameters':>10} {'val loss (windows)':>19} {'ppl':>7} {'val loss (long text)':>21} "
      f"{'ppl':>7} {'s / step':>9}")
for name, r in results.items():
    print(f"{name:<6} {sizes[name]:>10,} {r['windows']:>19.4f} {math.exp(r['windows']):>7.1f} "
          f"{r['long']:>21.4f} {math.exp(r['long']):>7.1f} {seconds_per_step[name]:>9.3f}")
print(f"unigram baseline (token frequencies, no context): loss {unigram_loss:.4f}, ppl {math.exp(unigram_loss):.1f}")
for measure, what in (("long", "on the whole validation text, each model reading it as well as it can"),
                      ("windows", "on the same windows read from scratch")):
    winner = min(results, key=lambda name: results[name][measure])
    loser = "GRU" if winner == "GPT" else "GPT"
    print(f"{what}, the {winner} is ahead by {results[loser][measure] - results[winner][measure]:.3f} nats per "
          f"token (perplexity {math.exp(results[winner][measure]):.1f} against "
          f"{math.exp(results[loser][measure]):.1f})")

fig, (left, middle, right) = plt.subplots(1, 3, figsize=(19, 4.6))
for k, (name, c) in enumerate(curves.items()):
    left.plot(np.arange(CONTEXT), c, **line_style(k), markevery=max(1, CONTEXT // 16),
              label=name if "carried" in name else f"{name}, from scratch")
left.axhline(unigram_loss, color="gray", linestyle="--", label="unigram baseline")
label_axes(left, "position in the window (tokens of context in it)",
           "validation cross-entropy (nats per token)", "Loss by position")
left.grid(alpha=0.3)
legend_outside(left)
bin_names = list(recall)
middle.bar(["new pair" if key == "new" else f"{key} back" for key in bin_names],
           [recall[key]["GRU"] - recall[key]["GPT"] for key in bin_names], color=line_style(0)["color"])
middle.axhline(0, color="gray", linewidth=0.8)
label_axes(middle, "previous occurrence of the (input, target) pair",
           "GRU loss minus GPT loss (nats per token)", "Where the GPT's lead comes from")
middle.tick_params(axis="x", rotation=30)
for k, (name, history) in enumerate(histories.items()):
    right.plot(history.eval_steps, history.val_loss, **line_style(k), label=name)
label_axes(right, "step", "validation cross-entropy (nats per token)", f"Same tokens, same {STEPS} steps")
right.grid(alpha=0.3)
legend_outside(right)
fig.tight_layout()
save_figure(fig, "20_recurrent_baseline")

# %% [markdown]
# ## 8. Sequential against parallel
# Time of one forward pass (no graph, batch 16) as the window grows. The GRU runs one small
# product per position per layer, one after the other; the GPT runs a few large products per
# layer that cover all positions at once. The number of operations that must wait for the one
# before them (the depth of the computation) is T x layers for the GRU and a handful per block
# for the GPT, whatever T is. A training step adds the backward pass, which walks the GRU's T
# steps back one at a time as well.

# %%
def forward_seconds(model, T):
    ids = np.random.default_rng(SEED).integers(0, V, (16, T))
    timings = []
    with model.inference():
        for _ in range(TIMING_REPEATS):
            start = time.perf_counter()
            model(ids)
            timings.append(time.perf_counter() - start)
    return float(np.median(timings))


timing = {name: [forward_seconds(model, T) for T in TIMING_LENGTHS] for name, model in (("GPT", gpt), ("GRU", gru))}
print(f"{'T':>5} {'GPT ms':>8} {'GRU ms':>8} {'GRU / GPT':>10}")
for k, T in enumerate(TIMING_LENGTHS):
    print(f"{T:>5} {1e3 * timing['GPT'][k]:>8.1f} {1e3 * timing['GRU'][k]:>8.1f} "
          f"{timing['GRU'][k] / timing['GPT'][k]:>10.1f}")
sequential_steps = {"GPT": gpt_config.n_layer, "GRU": CONTEXT * gru_config.n_layer}
print(f"sequential steps per forward pass at T = {CONTEXT}: GPT {sequential_steps['GPT']} (one per block), "
      f"GRU {sequential_steps['GRU']} (one per position); a training step: GRU "
      f"{seconds_per_step['GRU'] / seconds_per_step['GPT']:.1f}x the GPT's time")

# %% [markdown]
# ## 9. What we found
# This run's numbers are printed below from its results; the closing checks assert the claims
# marked (checked).
#
# * both models learn far beyond the unigram baseline (checked), with the same Trainer, batch
#   source and steps: a new model family changed the objective, not the loop;
# * on the whole validation text, each model reading it as well as it can (the GPT with a
#   sliding window, the GRU with its state carried), the GPT is ahead (checked), by the margin
#   printed below. On windows read from scratch the GRU starts far behind: it was trained on
#   carried states, so from a zero state it first has to fill its memory. By the end of the
#   window that gap has shrunk by a clear margin (checked), and the two are close;
# * with its state carried, the GRU's curve is flat (checked): position in the window means
#   nothing to it, its memory reaches back across windows, which is what truncated BPTT trains,
#   and it beats its own from-scratch loss (checked);
# * recall: on tokens whose (input, target) pair is new in the window, the two models are about
#   equal; where the pair occurred earlier in the window, the GPT is ahead at every distance
#   (checked), and its lead there is well above its lead on new pairs (checked). That is what
#   attention buys at this size: looking a token up, rather than keeping it in a state;
# * what the context buys: the GPT's loss falls from position 0 to the end of the window
#   (checked), but most of the fall happens in the first quarter of the window (checked). At this
#   size and training budget neither model has learned to use distant tokens much: what is
#   predictable in this text is mostly predictable from the last few tokens. Attention's
#   advantage, reading any earlier token directly where the GRU keeps only what fits in its
#   state vector, grows with model size, data and the distance of the dependencies that matter;
# * time: the GRU's forward pass is T x layers sequential steps, the GPT's a few per block
#   (checked); the measured times are printed (they vary on a shared machine, so no check asserts
#   them). At this small width one step of the GRU is cheap and the Python loop dominates; as
#   models and batches grow, the GPT's large parallel products use the hardware far better.

# %%
print(f"validation loss from scratch: GPT {results['GPT']['windows']:.3f}, GRU {results['GRU']['windows']:.3f}; "
      f"on the long text: GPT {results['GPT']['long']:.3f}, GRU {results['GRU']['long']:.3f}")
print(f"the GPT's loss: {curves['GPT'][0]:.3f} at position 0, {first_q['GPT']:.3f} over the first quarter, "
      f"{last_q['GPT']:.3f} over the last")
faster = "GRU" if seconds_per_step["GRU"] < seconds_per_step["GPT"] else "GPT"
slower = "GPT" if faster == "GRU" else "GRU"
print(f"per training step the {faster} was {seconds_per_step[slower] / seconds_per_step[faster]:.1f}x faster "
      f"in this run ({seconds_per_step[faster]:.3f} s against {seconds_per_step[slower]:.3f} s)")
print(f"first to last quarter of the window: GPT gains {first_q['GPT'] - last_q['GPT']:.3f}, GRU from scratch "
      f"{first_q['GRU'] - last_q['GRU']:.3f}, GRU with its state carried "
      f"{first_q['GRU, state carried'] - last_q['GRU, state carried']:.3f} nats per token")

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
assert step_error < 1e-12, "the GRU step by hand and the package's must agree"
assert through_time_ok, "gradients through time must pass the finite-difference check"
assert same_starts and continues, "consecutive windows continue each other, lane by lane"
assert 0.75 < sizes["GRU"] / sizes["GPT"] < 1.33, "the two models have about the same size"
assert by_hand_error < 1e-4 and carried_error < 1e-5, "the losses by position match the package's"
assert sequential_steps["GRU"] > 10 * sequential_steps["GPT"], "the GRU's computation is far deeper"
if not QUICK:   # the quick models are barely trained
    assert all(r["windows"] < unigram_loss - 0.5 for r in results.values()), "both beat the unigram baseline"
    assert results["GPT"]["long"] < results["GRU"]["long"], "the GPT is ahead on the whole validation text"
    assert gap_first > gap_last + 0.05, "most of the GPT's lead is at the start of the window"
    carried_gain = first_q["GRU, state carried"] - last_q["GRU, state carried"]
    assert abs(carried_gain) < 0.1, "with its state carried the GRU's curve is flat"
    assert results["GRU"]["long"] < results["GRU"]["windows"], "the carried state helps the GRU"
    assert all(r["GRU"] > r["GPT"] for key, r in recall.items() if key != "new"), \
        "on a repeated pair the GPT is ahead at every distance"
    assert recall_gap["repeated"] > recall_gap["new"] + 0.05, "its lead is in recall"
    assert curves["GPT"][0] - last_q["GPT"] > 0.1, "the GPT gains from context within the window"
    assert first_q["GPT"] - last_q["GPT"] < curves["GPT"][0] - first_q["GPT"], \
        "most of that gain comes in the first quarter of the window"
print(f"lesson 20 checks passed ({time.perf_counter() - lesson_start:.0f} s)")

# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **A GRU step.** Write one step of a GRU cell in NumPy. Edit `exercises/20_1.py`, then run
#    `tinygrad-llm exercise check 20.1`.
# 2. **Predict: the parameters of a GRU layer.** Predict the number of parameters of a GRU layer
#    with input width 64 and hidden size 96. Edit `exercises/20_2.py`, then run
#    `tinygrad-llm exercise check 20.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
