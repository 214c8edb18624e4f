# %% [markdown]
"""
# 05. Attention, built up one step at a time

The question: after lesson 04 every token is a vector, but each vector only knows its own token
and position. How does the vector of "value" in "... with the return value" come to know that
the sentence is about a return statement? It has to look at the other tokens, and decide which of
them matter. That mechanism is attention.

The idea: each position computes a weighted average of the vectors of the positions it may see,
with weights from a softmax over similarity scores:

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + M) V

Q = X W_q, K = X W_k, V = X W_v are three trainable projections of the token vectors X (what a
position looks for, what it offers to be found by, what it passes on), d_k is their width, and the
mask M is -inf above the diagonal so that no position sees the future. Multi-head attention runs
n_head of these side by side on slices of width d_model / n_head and mixes the results with one
more matrix. We get there in five steps, each checked against the one before:

    1. no weights:         softmax(X X^T) X, first for one query with loops, then as matrices
    2. trainable Q, K, V:  and why the scores are divided by sqrt(d_k)
    3. causal mask:        -inf above the diagonal, rows still sum to one
    4. dropout:            on the attention weights, only while training
    5. multi-head:         a loop over heads, then one batched computation, then the library's

Builds on: lesson 01 (Tensor, `functional.softmax`, `gradcheck`), lessons 02-03 (the course
tokenizer, `random_batch`), lesson 04 (`Embedding`, `sinusoidal_positions`, `Linear`).
Adds: `attention.causal_mask`, `attention.scaled_dot_product_attention` (fused),
`attention.packed_attention` (the same for q, k and v stacked on one axis) and
`scaled_dot_product_attention_composed` (reference), `functional.dropout`, `MultiHeadAttention`
(configured by the attention fields of `GPTConfig`: d_model, n_head, dropout, bias; lesson 06 has
the rest).

Run: python lessons/05_attention.py           (about 5 seconds on 2 cores)
     python lessons/05_attention.py --quick   (about 4 seconds)
"""

# %% [markdown]
# ## Settings

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import (Adam, Embedding, GPTConfig, Linear, MultiHeadAttention, Tensor,
                          concatenate, course_tokenizer, gradcheck,
                          sinusoidal_positions)
from tinygrad_llm import functional as F
from tinygrad_llm.core import attention as attn_ops
from tinygrad_llm.course import quick_mode, save_figure

SEED = 5
QUICK = quick_mode()
SENTENCE = "The return statement leaves the current function call with the return value."
D_MODEL = 32                     # width of the token vectors
D_HEAD = 16                      # width of one head's queries, keys and values
N_HEAD = 4                       # heads of section 5 (each D_MODEL // N_HEAD = 8 wide)
DROPOUT_P = 0.2
DROPOUT_DRAWS = 500 if QUICK else 4000   # dropout masks averaged in section 4
SCALE_DIMS = (4, 16, 64, 256)            # d_k values in the scaling experiment of section 2
SCALE_SAMPLES = 2_000 if QUICK else 20_000
HEAD_CONTEXT = 16                # section 6: length of the training sequences
HEAD_BATCH = 16
HEAD_STEPS = 300 if QUICK else 1000
HEAD_LR = 0.01
HEAD_TABLE_STD = 0.3             # the trained token table starts small next to the positions (~0.7)
TIMING_SHAPE = (2 if QUICK else 8, 4, 128, 32)   # (B, nh, T, hs) for timing fused vs composed
TIMING_REPEATS = 5

rng = np.random.default_rng(SEED)

# Every tensor in this lesson is float64: the sizes are tiny, so speed does not matter, and each
# check below can then demand agreement to 1e-12 instead of float32's 1e-6.
DTYPE = np.float64

tokenizer = course_tokenizer(quick=QUICK)
ids = np.array(tokenizer.encode(SENTENCE))
tokens = [tokenizer.decode([int(i)]).replace(" ", "\u2423") for i in ids]   # a visible space
T = len(ids)
print(f"{SENTENCE!r}\n-> {T} tokens: {tokens}")

# Token vectors as lesson 04 made them: rows of an embedding table. Their entries have unit
# variance, the scale the vectors have when they reach attention in a GPT (right after a
# LayerNorm). The table is random: this lesson is about the mechanism, not about meaning.
embedding = Embedding(tokenizer.vocab_size, D_MODEL, rng=rng, dtype=DTYPE, std=1.0)
x = embedding(ids).data                     # (T, D_MODEL)


# %% [markdown]
# ## 1. Attention without weights
# The simplest version uses the token vectors themselves. For one query position q:
#
#     score_j  = x_q . x_j                       how similar is token j to token q?
#     weight_j = exp(score_j) / sum_i exp(score_i)   softmax: positive, sums to one
#     z_q      = sum_j weight_j x_j              the context vector of position q
#
# First with explicit loops, for the second "return" of the sentence.

# %%
query = int(np.flatnonzero(ids == ids[1])[-1])   # the second " return" (" r" for the quick tokenizer)
scores_q = np.zeros(T)
for j in range(T):
    scores_q[j] = np.dot(x[query], x[j])
weights_q = np.exp(scores_q - scores_q.max())    # subtracting the max changes nothing but overflow
weights_q /= weights_q.sum()
context_q = np.zeros(D_MODEL)
for j in range(T):
    context_q += weights_q[j] * x[j]
print(f"query {query} ({tokens[query]!r}): weights " + " ".join(f"{w:.3f}" for w in weights_q))
print(f"  it attends most to position {weights_q.argmax()} ({tokens[weights_q.argmax()]!r}); "
      f"weight on itself and its copies: {weights_q[ids == ids[query]].sum():.3f}")

# %% [markdown]
# ### Every query at once
# The loops become two matrix products and a row-wise softmax.

# %%
X = Tensor(x)                              # (T, D)
simple_scores = X @ X.T                    # (T, T): entry [q, j] = x_q . x_j
simple_weights = F.softmax(simple_scores, axis=-1)   # each row sums to one
simple_context = simple_weights @ X        # (T, D): row q = sum_j weight[q, j] x_j
loop_vs_matrix = float(np.abs(simple_context.data[query] - context_q).max())
print(f"matrix form vs loop for query {query}: max |difference| {loop_vs_matrix:.1e}")

# Without weights a vector is always most similar to itself (x.x = |x|^2 is large for vectors
# with unit-variance entries), so each token attends to itself and to copies of itself.
self_or_copy = ids[simple_weights.data.argmax(axis=1)] == ids
print(f"rows whose largest weight is on the same token: {self_or_copy.mean():.0%}; "
      f"mean weight there {simple_weights.data[np.arange(T), np.arange(T)].mean():.3f}")


# %% [markdown]
# ## 2. Trainable queries, keys and values, and the 1/sqrt(d_k) scale
# Three matrices give each position three roles. The query q = x W_q says what it is looking
# for, the key k = x W_k what it can be found by, the value v = x W_v what it passes on when
# found. Since W_q and W_k differ, a token no longer has to attend to itself: training can make
# "value" look for verbs, or for the previous token (section 6 trains exactly that).
#
# Why divide by sqrt(d_k): a dot product of two vectors with d_k independent unit-variance
# entries has variance d_k. Wide heads would give scores of size sqrt(d_k), the softmax would put
# nearly all weight on one key, and its gradient (p (1 - p)) would vanish. Dividing by sqrt(d_k)
# brings the scores back to unit variance, whatever the width. Measured:

# %%
print(f"{'d_k':>5} {'std(q.k)':>9} {'sqrt(d_k)':>10} {'top weight, raw':>16} {'top weight, scaled':>19}")
scale_ratios = []
for d in SCALE_DIMS:
    q_sample = rng.normal(size=(SCALE_SAMPLES, d))
    k_sample = rng.normal(size=(SCALE_SAMPLES, d))
    dots = (q_sample * k_sample).sum(axis=1)
    scale_ratios.append(dots.std() / np.sqrt(d))
    rows = dots[: SCALE_SAMPLES // T * T].reshape(-1, T)     # groups of T scores, one softmax each
    top_raw = F.softmax(Tensor(rows)).data.max(axis=1).mean()
    top_scaled = F.softmax(Tensor(rows / np.sqrt(d))).data.max(axis=1).mean()
    print(f"{d:>5} {dots.std():>9.2f} {np.sqrt(d):>10.2f} {top_raw:>16.3f} {top_scaled:>19.3f}")
print(f"(reference: with unit-variance scores over {T} keys the largest softmax weight averages about "
      f"{F.softmax(Tensor(rng.normal(size=(4000, T)))).data.max(axis=1).mean():.2f})")

W_q = Linear(D_MODEL, D_HEAD, bias=False, rng=rng, dtype=DTYPE, std=D_MODEL ** -0.5)
W_k = Linear(D_MODEL, D_HEAD, bias=False, rng=rng, dtype=DTYPE, std=D_MODEL ** -0.5)
W_v = Linear(D_MODEL, D_HEAD, bias=False, rng=rng, dtype=DTYPE, std=D_MODEL ** -0.5)
queries, keys, values = W_q(X), W_k(X), W_v(X)          # (T, D_HEAD) each
scores = queries @ keys.T * (1.0 / np.sqrt(D_HEAD))     # (T, T)
weights = F.softmax(scores, axis=-1)
context = weights @ values                              # (T, D_HEAD)
fused = attn_ops.scaled_dot_product_attention(queries, keys, values, causal=False)
print(f"step by step vs attention.scaled_dot_product_attention: {np.abs(context.data - fused.data).max():.1e}")
print(f"rows whose largest weight is on the same token: {(ids[weights.data.argmax(1)] == ids).mean():.0%}"
      f"   (was {self_or_copy.mean():.0%} without weights)")


# %% [markdown]
# ## 3. The causal mask: no looking ahead
# A language model predicts token t + 1 from tokens 0..t. If position t could attend to t + 1,
# training would teach it to copy the answer. So scores above the diagonal are set to -inf before
# the softmax: exp(-inf) = 0, those weights are exactly zero, and each row still sums to one over
# the positions that remain. (Zeroing the weights *after* the softmax and dividing each row by its
# new sum gives the same result, in two passes instead of one.)

# %%
future = np.triu(np.ones((T, T), dtype=bool), k=1)     # True above the diagonal: j > q
causal_scores = scores.masked_fill(future, -np.inf)
causal_weights = F.softmax(causal_scores, axis=-1)     # (T, T), lower triangular
causal_context = causal_weights @ values
print("causal weights, first 5 rows and 6 columns:")
print(np.array2string(causal_weights.data[:5, :6], precision=3, suppress_small=True))

renormalised = np.where(future, 0.0, weights.data)
renormalised /= renormalised.sum(axis=1, keepdims=True)
mask_vs_renormalise = float(np.abs(renormalised - causal_weights.data).max())
row_sums = causal_weights.data.sum(axis=1)
print(f"above the diagonal: max weight {causal_weights.data[future].max():.1f}; row sums "
      f"{row_sums.min():.12f}..{row_sums.max():.12f}; -inf mask vs renormalising: {mask_vs_renormalise:.1e}")
fused_causal = attn_ops.scaled_dot_product_attention(queries, keys, values, causal=True)
causal_vs_fused = float(np.abs(fused_causal.data - causal_context.data).max())
print(f"attention.causal_mask(T, T) is the same mask: {np.array_equal(attn_ops.causal_mask(T, T), future)}; "
      f"fused causal attention vs step by step: {causal_vs_fused:.1e}")

# The point of the mask, tested: change the last token and no earlier output may move.
x_changed = x.copy()
x_changed[-1] = rng.normal(size=D_MODEL)
changed = attn_ops.scaled_dot_product_attention(W_q(Tensor(x_changed)), W_k(Tensor(x_changed)),
                                         W_v(Tensor(x_changed)), causal=True).data
leak = float(np.abs(changed[:-1] - causal_context.data[:-1]).max())
last_moved = float(np.abs(changed[-1] - causal_context.data[-1]).max())
print(f"new last token: earlier outputs move by {leak:.1e}, the last one by {last_moved:.2f}")


# %% [markdown]
# ## 4. Dropout on the attention weights
# While training, GPT-2 zeroes each attention weight with probability p and multiplies the rest
# by 1 / (1 - p), so that the expected weight is unchanged: E[w keep / (1 - p)] = w. A position
# then cannot rely on one particular other position always being visible, which regularises.
# At evaluation time dropout is off and the weights are used as they are.

# %%
dropped = F.dropout(causal_weights, DROPOUT_P, training=True, rng=rng).data
visible = ~future
zeroed = float((dropped[visible] == 0).mean())
kept = dropped[visible] != 0
survivor_scale = float(np.median(dropped[visible][kept] / causal_weights.data[visible][kept]))
print(f"p = {DROPOUT_P}: {zeroed:.1%} of the visible weights zeroed, survivors scaled by "
      f"{survivor_scale:.4f}   (reference: 1 / (1 - p) = {1 / (1 - DROPOUT_P):.4f})")
average = np.mean([F.dropout(causal_weights, DROPOUT_P, training=True, rng=rng).data
                   for _ in range(DROPOUT_DRAWS)], axis=0)
dropout_bias = float(np.abs(average - causal_weights.data).max())
print(f"average of {DROPOUT_DRAWS} dropout masks vs the weights: max |difference| {dropout_bias:.3f}   "
      f"(reference: shrinks like 1/sqrt(draws), ~{np.sqrt(DROPOUT_P / (1 - DROPOUT_P) / DROPOUT_DRAWS):.3f} "
      f"for a weight of 1)")
eval_identity = F.dropout(causal_weights, DROPOUT_P, training=False) is causal_weights
print(f"training=False returns the weights untouched: {eval_identity}")

# The fused attention draws its dropout mask the same way, so with the same random stream the two
# computations agree.
fused_dropout = attn_ops.scaled_dot_product_attention(queries, keys, values, causal=True, dropout_p=DROPOUT_P,
                                               training=True, rng=np.random.default_rng(SEED))
step_dropout = F.dropout(causal_weights, DROPOUT_P, training=True, rng=np.random.default_rng(SEED)) @ values
dropout_vs_fused = float(np.abs(fused_dropout.data - step_dropout.data).max())
print(f"fused attention with dropout vs softmax -> dropout -> @ V, same seed: {dropout_vs_fused:.1e}")


# %% [markdown]
# ## 5. Multi-head attention
# One head produces one weighting of the positions. A token may need several at once (the verb
# of its clause, the previous token, the opening bracket), so n_head heads run side by side,
# each with its own W_q, W_k, W_v of width hs = d_model / n_head; their outputs are put side by
# side again (n_head * hs = d_model) and mixed by an output matrix W_o. The cost is the same as
# one head of full width.
#
# Written three ways: (a) a loop over single heads exactly as in section 3; (b) all heads at once,
# with one (3 d_model, d_model) projection and a batched matrix product over a heads axis;
# (c) the library's `MultiHeadAttention`, loaded with the same weights.

# %%
def causal_head_weights(x: Tensor, w_q: Tensor, w_k: Tensor) -> Tensor:
    """The (T, T) causal attention weights of one head (section 3); x (T, C), weights (hs, C)."""
    q, k = x @ w_q.T, x @ w_k.T                                     # (T, hs)
    s = (q @ k.T) * (1.0 / np.sqrt(q.shape[-1]))                    # (T, T)
    s = s.masked_fill(np.triu(np.ones(s.shape, dtype=bool), k=1), -np.inf)
    return F.softmax(s, axis=-1)


def causal_head(x: Tensor, w_q: Tensor, w_k: Tensor, w_v: Tensor) -> Tensor:
    """One causal attention head: its weights times its values, (T, hs)."""
    return causal_head_weights(x, w_q, w_k) @ (x @ w_v.T)


def multi_head_loop(x: Tensor, heads: list[tuple[Tensor, Tensor, Tensor]], w_o: Tensor) -> Tensor:
    """(a) Each head on its own, outputs concatenated, then the output projection."""
    return concatenate([causal_head(x, *head) for head in heads], axis=-1) @ w_o.T   # (T, C)


def multi_head_batched(x: Tensor, w_qkv: Tensor, w_o: Tensor, n_head: int) -> Tensor:
    """(b) All heads in one go. x (B, T, C); w_qkv (3 nh hs, C) = [W_q of every head; W_k ...; W_v ...].

    Shapes: B batch, T positions, C channels in, nh heads, hs channels per head."""
    B, T, C = x.shape
    hs = w_qkv.shape[0] // (3 * n_head)
    qkv = (x @ w_qkv.T).reshape(B, T, 3, n_head, hs)                # (B, T, 3, nh, hs)
    qkv = qkv.transpose(2, 0, 3, 1, 4)                              # (3, B, nh, T, hs)
    q, k, v = qkv[0], qkv[1], qkv[2]                                # (B, nh, T, hs) each
    s = (q @ k.swapaxes(-1, -2)) * (1.0 / np.sqrt(hs))              # (B, nh, T, T)
    s = s.masked_fill(np.broadcast_to(attn_ops.causal_mask(T, T), s.shape), -np.inf)
    y = F.softmax(s, axis=-1) @ v                                   # (B, nh, T, hs)
    y = y.transpose(0, 2, 1, 3).reshape(B, T, n_head * hs)          # heads side by side again
    return y @ w_o.T                                                # (B, T, C)


hs = D_MODEL // N_HEAD
heads = [tuple(Tensor(rng.normal(0, D_MODEL ** -0.5, (hs, D_MODEL))) for _ in range(3)) for _ in range(N_HEAD)]
w_o = Tensor(rng.normal(0, D_MODEL ** -0.5, (D_MODEL, D_MODEL)))
# The stacked projection: rows [0, C) are the queries of head 0, 1, ...; then the keys; then the values.
w_qkv = Tensor(np.concatenate([np.concatenate([head[role].data for head in heads]) for role in range(3)]))

looped = multi_head_loop(X, heads, w_o)                             # (T, C)
batched = multi_head_batched(X.reshape(1, T, D_MODEL), w_qkv, w_o, N_HEAD)   # (1, T, C)
loop_vs_batched = float(np.abs(looped.data - batched.data[0]).max())
print(f"(a) loop over {N_HEAD} heads vs (b) batched: max |difference| {loop_vs_batched:.1e}")

# One head of width D_HEAD with an identity output matrix is exactly the single head of section 3.
one_head = multi_head_batched(X.reshape(1, T, D_MODEL), concatenate([W_q.weight, W_k.weight, W_v.weight]),
                              Tensor(np.eye(D_HEAD)), n_head=1)
one_vs_single = float(np.abs(one_head.data[0] - causal_context.data).max())
print(f"(b) with one head and W_o = I vs the single head of section 3: {one_vs_single:.1e}")

library_config = GPTConfig(vocab_size=tokenizer.vocab_size, d_model=D_MODEL, n_head=N_HEAD,
                           n_layer=1, bias=False, dropout=0.0)
attention = MultiHeadAttention(library_config, rng=rng, dtype=DTYPE)
attention.qkv.weight.data[...] = w_qkv.data      # the library's fused projection has the same layout
attention.proj.weight.data[...] = w_o.data
attention.eval()
library = attention(X.reshape(1, T, D_MODEL))
batched_vs_library = float(np.abs(library.data - batched.data).max())
print(f"(b) vs (c) tinygrad_llm.MultiHeadAttention with the same weights: {batched_vs_library:.1e}")

# The library calls the fused op, one graph node with a hand-written backward. It must agree with
# the composed reference (built from matmul, masked_fill, softmax) in value and in gradient.
q5, k5, v5 = (Tensor(rng.normal(size=(2, N_HEAD, T, hs)), requires_grad=True) for _ in range(3))
upstream = rng.normal(size=(2, N_HEAD, T, hs))      # fixed random weights: a plain sum checks nothing
fused_out = attn_ops.scaled_dot_product_attention(q5, k5, v5, causal=True)
(fused_out * upstream).sum().backward()
fused_grads = [t.grad.copy() for t in (q5, k5, v5)]
for t in (q5, k5, v5):
    t.grad = None
composed_out = attn_ops.scaled_dot_product_attention_composed(q5, k5, v5, causal=True)
(composed_out * upstream).sum().backward()
fused_vs_composed = max(float(np.abs(fused_out.data - composed_out.data).max()),
                        *(float(np.abs(g - t.grad).max()) for g, t in zip(fused_grads, (q5, k5, v5))))
print(f"fused vs composed attention, values and gradients of q, k, v: max |difference| {fused_vs_composed:.1e}")

# Why fuse: the composed version records about ten graph nodes (swapaxes, matmul, scale, mask, the
# softmax's shift, exp, sum and division, matmul), and each keeps a (B, nh, T, T) array alive for
# the backward pass. The fused op is one node: its forward works in place on one scores array, it
# keeps only the probabilities P, and its backward is the five lines of the formula in its
# docstring. Both claims are measured below at the course model's context (T = 128), float32:
# memory as the bytes of the arrays the graph keeps alive for the backward pass (every node's
# output and the arrays its backward closure holds, each array counted once), and time as the
# median of several forward + backward passes (one timing on a shared machine is noise; the
# ratio is what to look at, absolute times depend on the machine):
timing_inputs = [Tensor(rng.normal(size=TIMING_SHAPE).astype(np.float32), requires_grad=True) for _ in range(3)]
timing_upstream = rng.normal(size=TIMING_SHAPE).astype(np.float32)


def seconds_per_pass(attention_fn) -> float:
    """Median seconds of TIMING_REPEATS forward + backward passes."""
    seconds = []
    for _ in range(TIMING_REPEATS):
        clock = time.perf_counter()
        (attention_fn(*timing_inputs, causal=True) * timing_upstream).sum().backward()
        seconds.append(time.perf_counter() - clock)
    return float(np.median(seconds))


def graph_bytes(out: Tensor) -> int:
    """Bytes of the distinct arrays a graph keeps for backward: node outputs and closure arrays."""
    arrays, seen, stack = {}, set(), [out]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        held = [node.data]
        for cell in (getattr(node._backward, "__closure__", None) or ()):
            value = cell.cell_contents
            held += [value] if isinstance(value, np.ndarray) else ([value.data] if isinstance(value, Tensor) else [])
        for a in held:
            base = a if a.base is None else a.base   # a view keeps its whole base array alive
            arrays[id(base)] = base.nbytes
        stack.extend(node._parents)
    return sum(arrays.values())


fused_bytes = graph_bytes(attn_ops.scaled_dot_product_attention(*timing_inputs, causal=True))
composed_bytes = graph_bytes(attn_ops.scaled_dot_product_attention_composed(*timing_inputs, causal=True))
fused_seconds = seconds_per_pass(attn_ops.scaled_dot_product_attention)
composed_seconds = seconds_per_pass(attn_ops.scaled_dot_product_attention_composed)
scores_bytes = int(np.prod(TIMING_SHAPE[:3])) * TIMING_SHAPE[2] * 4    # one (B, nh, T, T) float32 array
print(f"attention on {TIMING_SHAPE} (B, nh, T, hs): the graph keeps {fused_bytes / 2**20:.1f} MiB fused, "
      f"{composed_bytes / 2**20:.1f} MiB composed ({composed_bytes / fused_bytes:.1f}x; one (B, nh, T, T) "
      f"array is {scores_bytes / 2**20:.1f} MiB)")
print(f"forward + backward, median of {TIMING_REPEATS}: fused {1e3 * fused_seconds:.1f} ms, "
      f"composed {1e3 * composed_seconds:.1f} ms (composed / fused = {composed_seconds / fused_seconds:.1f}x)")

# Two more savings in the library. Under a causal mask, the queries of the first quarter of the
# sequence see only the first quarter of the keys: the fused op goes through the queries in four
# blocks, each against only the keys it may see, and skips 6 of the 16 (T/4, T/4) tiles of the
# scores. And `MultiHeadAttention` hands the fused projection's output, q, k and v stacked on one
# axis, to `attention.packed_attention`: the same numbers, with one gradient array for all
# three, instead of three slices that each scatter their gradient into an array of the full size.
packed_input = Tensor(np.stack([q5.data, k5.data, v5.data]))
packed_vs_fused = float(np.abs(attn_ops.packed_attention(packed_input, causal=True).data - fused_out.data).max())
print(f"packed_attention vs scaled_dot_product_attention on the same q, k, v: {packed_vs_fused:.1e}")
assert packed_vs_fused == 0.0


# %% [markdown]
# ## 6. What training does: a previous-token head
# With random weights the heads above attend to arbitrary places. Training changes that. Here
# one head learns a pattern real GPTs are known to contain: attend to the previous token. The
# objective is the attention weights themselves, -log weight[t, t - 1] averaged over positions,
# trained with Adam; the token table is trained too. The training sequences are random token
# ids, so that the token itself says nothing about where it stands: only its position can.
#
# The experiment is run twice: with sinusoidal positions added to the token vectors (lesson 04),
# and without. Attention itself is blind to order (permute the keys and the weights permute with
# them), so without positions "the previous token" cannot be found, and the head stays at chance:
# an even spread over the visible positions. (On real text a head without positions can do a
# little better by content, learning which tokens tend to precede which; it still cannot tell
# two copies of a token apart.) Both heads are then applied to the sentence.

# %%
previous = np.arange(HEAD_CONTEXT) - 1
previous[0] = -100               # position 0 has no previous token: ignore_index leaves it out


def train_previous_token_head(use_positions: bool, rng: np.random.Generator) -> tuple:
    """Train (token table, W_q, W_k) so that position t attends to t - 1; returns them and the
    position table used (zeros without positions)."""
    table = Embedding(tokenizer.vocab_size, D_MODEL, rng=rng, dtype=DTYPE, std=HEAD_TABLE_STD)
    w_q = Linear(D_MODEL, D_HEAD, bias=False, rng=rng, dtype=DTYPE, std=D_MODEL ** -0.5)
    w_k = Linear(D_MODEL, D_HEAD, bias=False, rng=rng, dtype=DTYPE, std=D_MODEL ** -0.5)
    positions = sinusoidal_positions(HEAD_CONTEXT, D_MODEL) if use_positions else np.zeros((HEAD_CONTEXT, D_MODEL))
    optimizer = Adam(table.parameters() + w_q.parameters() + w_k.parameters(), lr=HEAD_LR)
    for _ in range(HEAD_STEPS):
        window = rng.integers(0, tokenizer.vocab_size, size=(HEAD_BATCH, HEAD_CONTEXT))   # (B, T)
        h = table(window) + positions                                             # (B, T, C)
        s = w_q(h) @ w_k(h).swapaxes(-1, -2) * (1.0 / np.sqrt(D_HEAD))             # (B, T, T)
        s = s.masked_fill(np.broadcast_to(attn_ops.causal_mask(HEAD_CONTEXT, HEAD_CONTEXT), s.shape), -np.inf)
        # cross_entropy over the keys of each row = -log softmax(s)[t, t - 1]
        loss = F.cross_entropy(s, np.broadcast_to(previous, window.shape))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return table, w_q, w_k, positions


def head_weights(table, w_q, w_k, positions, token_ids: np.ndarray) -> np.ndarray:
    """Causal attention weights (T, T) of the trained head on one sequence."""
    h = table(token_ids) + positions[: len(token_ids)]
    s = w_q(h) @ w_k(h).T * (1.0 / np.sqrt(D_HEAD))
    return F.softmax(s.masked_fill(attn_ops.causal_mask(len(token_ids), len(token_ids)), -np.inf)).data


with_positions = head_weights(*train_previous_token_head(True, rng), ids[:HEAD_CONTEXT])
without_positions = head_weights(*train_previous_token_head(False, rng), ids[:HEAD_CONTEXT])
n = min(T, HEAD_CONTEXT)
on_previous = {name: float(w[np.arange(1, n), np.arange(n - 1)].mean())
               for name, w in (("with", with_positions), ("without", without_positions))}
chance = float(np.mean(1.0 / np.arange(2, n + 1)))    # position t spreads evenly over t + 1 keys
print(f"mean weight on the previous token of the sentence, after {HEAD_STEPS} steps:")
print(f"  with positions    {on_previous['with']:.3f}   (reference: 1 for a perfect previous-token head)")
print(f"  without positions {on_previous['without']:.3f}   (reference: chance, {chance:.3f})")


# %% [markdown]
# ## 7. The attention weights, seen
# Rows are queries (the position doing the looking), columns are keys (the positions looked at).

# %%
def heatmap(ax, matrix: np.ndarray, title: str, labels: list[str], first_column: bool):
    image = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels if first_column else [], fontsize=7)
    if first_column:
        ax.set_ylabel("query (looking)")
    ax.set_xlabel("key (looked at)", fontsize=8)
    ax.set_title(title, fontsize=9)
    return image


panels = [(simple_weights.data, "1. no weights: softmax(X X^T)"),
          (weights.data, "2. softmax(Q K^T / sqrt(d_k))"),
          (causal_weights.data, "3. + causal mask"),
          (dropped, f"4. + dropout, p = {DROPOUT_P}")]
fig, axes = plt.subplots(1, 4, figsize=(15, 4.6), layout="constrained")
for i, (ax, (matrix, title)) in enumerate(zip(axes, panels)):
    image = heatmap(ax, matrix, title, tokens, first_column=i == 0)
fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
fig.suptitle("From similarity to causal self-attention, on one sentence (random weights)", fontsize=11)
save_figure(fig, "05_attention_steps")

head_maps = [causal_head_weights(X, w_q, w_k).data for w_q, w_k, _ in heads]
head_panels = [(m, f"random head {h} of {N_HEAD}", tokens) for h, m in enumerate(head_maps)]
head_panels += [(with_positions, f"trained, with positions: {on_previous['with']:.2f}\non the previous token",
                 tokens[:HEAD_CONTEXT]),
                (without_positions,
                 f"trained, without positions: {on_previous['without']:.2f}\non the previous token",
                 tokens[:HEAD_CONTEXT])]
fig, axes = plt.subplots(2, 3, figsize=(12, 9), layout="constrained")
for i, (ax, (matrix, title, labels)) in enumerate(zip(axes.flat, head_panels)):
    image = heatmap(ax, matrix, title, labels, first_column=i % 3 == 0 or len(labels) != T)
fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
fig.suptitle("Each head has its own pattern; training gives it a purpose", fontsize=11)
save_figure(fig, "05_attention_heads")


# %% [markdown]
# ## 8. A gradient check of multi-head attention
# The batched multi-head function of section 5 is built from engine primitives, so its backward
# pass comes from the engine. Central differences (lesson 01) on a tiny instance confirm the
# gradients for the input and both weight matrices, every entry, in float64. Scores are
# continuous in the inputs, and the mask's -inf entries carry no gradient, so there are no kinks.

# %%
tiny_x = Tensor(rng.normal(size=(1, 4, 6)), requires_grad=True)              # (B, T, C)
tiny_qkv = Tensor(rng.normal(0, 0.5, (18, 6)), requires_grad=True)           # 2 heads of width 3
tiny_o = Tensor(rng.normal(0, 0.5, (6, 6)), requires_grad=True)
gradients_ok = gradcheck(lambda a, b, c: multi_head_batched(a, b, c, n_head=2), tiny_x, tiny_qkv, tiny_o)
fused_ok = gradcheck(lambda q, k, v: attn_ops.scaled_dot_product_attention(q, k, v, causal=True),
                     *(Tensor(rng.normal(size=(2, 3, 4)), requires_grad=True) for _ in range(3)))
print(f"gradcheck of the lesson's multi-head attention: {gradients_ok}; of the fused op: {fused_ok}")


# %% [markdown]
# ## Closing checks
# The claims of the text above.

# %%
assert loop_vs_matrix < 1e-12, "the matrix form is the loop"
assert self_or_copy.all(), "without weights every token attends most to itself or a copy of itself"
assert all(abs(r - 1) < 0.05 for r in scale_ratios), "std(q.k) = sqrt(d_k)"
assert np.abs(context.data - fused.data).max() < 1e-12
assert causal_weights.data[future].max() == 0.0 and np.allclose(row_sums, 1.0, atol=1e-12)
assert causal_weights.data[0, 0] == 1.0 and mask_vs_renormalise < 1e-12
assert causal_vs_fused < 1e-12 and np.array_equal(attn_ops.causal_mask(T, T), future)
assert leak == 0.0, "no earlier output depends on a later token"
# 1e-4, not exactly: the package draws 16-bit random integers, so p is rounded to k / 65536
assert abs(zeroed - DROPOUT_P) < 0.1 and abs(survivor_scale - 1 / (1 - DROPOUT_P)) < 1e-4
assert dropout_bias < 0.1 and eval_identity and dropout_vs_fused < 1e-12
assert loop_vs_batched < 1e-12 and one_vs_single < 1e-12 and batched_vs_library < 1e-12
assert fused_vs_composed < 1e-12
assert fused_bytes < composed_bytes - 2 * scores_bytes, "fusing should keep at least two (B, nh, T, T) arrays fewer"
assert on_previous["with"] > 0.9, "with positions, attention learns to find the previous token"
assert on_previous["without"] < chance + 0.1, "without positions, it cannot"
assert gradients_ok and fused_ok
print("all checks passed")


# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **Causal self-attention in NumPy.** Causal self-attention, forward only, in plain NumPy. Edit
#    `exercises/05_1.py`, then run `tinygrad-llm exercise check 05.1`.
# 2. **Predict: the size of the attention weights.** Predict how many bytes the float32 attention
#    weights of one layer take for batch 8, 4 heads and 128 tokens (one probability per query and
#    key, in every head of every sequence). Edit `exercises/05_2.py`, then run `tinygrad-llm
#    exercise check 05.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
