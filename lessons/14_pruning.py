# %% [markdown]
"""
# 14. Pruning

**The question.** The course GPT of lesson 07 has ~1.07M weights. Does it need all of them? If
we remove most of them, how much worse does it predict, can a little more training win the loss
back, and does the model actually get smaller or faster?

**The idea.** *Magnitude pruning* removes the weights of smallest |w|: a weight near zero
changes the output little. To a target sparsity s (the fraction removed), with a mask M of
zeros and ones:

    W' = M * W,     M_ij = 0 for the k = round(s n) entries of smallest |W_ij|

The threshold is taken per matrix (*layer-wise*: every matrix loses the fraction s) or over all
matrices at once (*global*: one threshold; matrices of small weights lose more). Pruned weights
must stay zero while the model trains on (*fine-tuning* after pruning): the optimizer would
revive them. Zeros save memory only when stored sparsely, as values plus indices (CSR) or values
plus a bitmap, and that pays only above a *break-even* sparsity. Removing whole attention heads
or MLP neurons instead (*structured* pruning, scored by weight norms) gives smaller dense
matrices: less memory and less work, with no sparse format at all.

**Builds on:** lesson 07 (the course model, `Trainer`, `TrainConfig`, AdamW, safetensors
checkpoints), lesson 09 (`perplexity`) and lesson 08 (`generate`).
**Adds:** `tinygrad_llm.sparsity.pruning`: `magnitude_masks`, `magnitude_prune`, `PruningMask`,
`prunable_weights`, `check_sparsity`, `MaskedOptimizer`, `hold_mask`, `finetune_pruned`,
`sparsity_schedule`, `iterative_prune`, `head_scores`, `neuron_scores`, `lowest_scores`,
`mask_heads`, `mask_neurons`, `shrink_heads`, `shrink_neurons`, `PrunedAttention`,
`prune_structured`, `CSRMatrix`, `to_csr`, `csr_bytes`, `bitmap_bytes`, `break_even_sparsity`,
`storage_bytes`, `save_sparse`, `load_sparse`.

**Run:** `python lessons/14_pruning.py` (about 3 minutes on 2 cores with lesson 07's checkpoint;
without it the model is pretrained first, about 6 minutes more) or `--quick` (a few seconds).
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import GPT, AdamW, Linear, no_grad, perplexity, course_corpus
from tinygrad_llm.model.state import save_safetensors
from tinygrad_llm.course import output_dir, quick_mode, save_figure
from tinygrad_llm.course.figures import legend_outside
from tinygrad_llm.text.data import random_batch
from tinygrad_llm.model.generation import generate
from tinygrad_llm.scale.memory import format_bytes
from tinygrad_llm.train.optim import weight_decay_groups
from tinygrad_llm.sparsity.pruning import (DEFAULT_TARGETS, MaskedOptimizer, finetune_pruned,
                                           iterative_prune, magnitude_masks, magnitude_prune,
                                           prunable_weights)
from tinygrad_llm.sparsity.sparse import break_even_sparsity, load_sparse, save_sparse, storage_bytes
from tinygrad_llm.sparsity.structured import head_scores, neuron_scores, prune_structured
from tinygrad_llm.course import course_model
from tinygrad_llm.train.trainer import TrainConfig

# %% [markdown]
# ## Settings (quick mode shrinks everything for smoke tests)

# %%
SEED = 0
QUICK = quick_mode()
SPARSITIES = [0.0, 0.3, 0.5, 0.7, 0.9] if QUICK else [round(0.1 * i, 1) for i in range(10)]
FINETUNE_AT = [0.5, 0.9] if QUICK else SPARSITIES[1:]   # every level but 0%: the curve with fine-tuning
# A short fine-tune: lesson 07's batch, a tenth of its steps' worth of warmup, and a peak rate
# near its peak (a low rate barely moves a model that lost 90% of its weights).
FINETUNE = TrainConfig(steps=15 if QUICK else 40, batch_size=8 if QUICK else 16,
                       learning_rate=2e-3, min_learning_rate=2e-4, warmup_steps=5,
                       eval_interval=1000, eval_batches=1, log_interval=1000, seed=SEED)
ITERATIVE_ROUNDS = 3 if QUICK else 4       # the same steps as one fine-tune, pruned in a ramp
VAL_WINDOWS = 16 if QUICK else 64          # perplexity on a fixed validation prefix of this many windows
DEMO_STEPS = 3                             # section 3: AdamW steps before and after pruning
HEAD_FRACTION = 0.5 if QUICK else 0.25     # quick model: 2 heads per block, so half is one head
NEURON_FRACTIONS = [0.25, 0.5]
GENERATE_TOKENS = 16 if QUICK else 96      # generation speed: greedy, with the KV cache
FORWARD_BATCH = 4 if QUICK else 16         # forward speed: one batch of full-context windows

rng = np.random.default_rng(SEED)
lesson_start = time.perf_counter()

# %% [markdown]
# ## 1. Magnitude pruning by hand, on one matrix
# The first MLP matrix of the course model, by hand in NumPy: sort |w|, cut at the k-th
# smallest, and compare with the package's `magnitude_masks`. Trained weights are bell-shaped
# around zero, so half of them lie within a narrow band around it.

# %%
model, tokenizer = course_model(QUICK)
corpus = course_corpus(QUICK)
T = model.config.context_length
val_tokens = corpus.val[:VAL_WINDOWS * T + 1]
pretrained = {name: array.copy() for name, array in model.state_dict().items()}


def fresh_model() -> GPT:
    """A copy of the pretrained weights, in eval mode (every experiment starts from its own)."""
    gpt = GPT(model.config, rng=np.random.default_rng(SEED))
    gpt.load_state_dict(pretrained)
    return gpt.eval()


W = pretrained["blocks.0.mlp.up.weight"]                                   # (4C, C)
k = round(0.5 * W.size)
threshold = np.sort(np.abs(W), axis=None)[k - 1]                           # the k-th smallest |w|
by_hand = np.abs(W) > threshold                                            # True = kept
package = magnitude_masks({"w": W}, 0.5)["w"]
print(f"blocks.0.mlp.up.weight {W.shape}: |w| median {np.median(np.abs(W)):.4f}, max {np.abs(W).max():.3f}; "
      f"50% threshold {threshold:.4f}")
print(f"by hand and magnitude_masks agree: {np.array_equal(by_hand, package)} "
      f"({W.size - package.sum():,} of {W.size:,} removed)")

targets = prunable_weights(model)
n_targets = sum(p.size for p in targets.values())
print(f"targets: the {len(targets)} Linear weights of the blocks ({', '.join(DEFAULT_TARGETS)}), "
      f"{n_targets:,} of {model.num_parameters():,} parameters ({n_targets / model.num_parameters():.0%}); "
      f"not the tied embedding/head, nor biases and LayerNorms")

# %% [markdown]
# ## 2. Layer-wise against global, without fine-tuning
# Validation perplexity (a fixed prefix of the validation tokens) after pruning each fraction
# of the target weights, once per matrix and once with one global threshold. The global
# threshold does not treat the matrices alike: the per-layer sparsities below show which
# matrices it empties first.

# %%
curve = {"layer": [], "global": []}
for sparsity in SPARSITIES:
    for scope in curve:
        pruned_model = fresh_model()
        magnitude_prune(pruned_model, sparsity, scope)
        curve[scope].append(perplexity(pruned_model, val_tokens))
    print(f"sparsity {sparsity:4.0%}: perplexity layer-wise {curve['layer'][-1]:9.1f}, "
          f"global {curve['global'][-1]:9.1f}")
dense_ppl = curve["layer"][0]

GLOBAL_SHOWN = 0.7
global_model = fresh_model()
global_mask = magnitude_prune(global_model, GLOBAL_SHOWN, "global")
print(f"\nper-matrix sparsity of global pruning to {GLOBAL_SHOWN:.0%}, next to each trained matrix's std:")
print(f"{'weight':<28} {'shape':>11} {'std':>7} {'sparsity':>9}")
for row in global_mask.report():
    std = pretrained[row["name"]].std()
    print(f"{row['name']:<28} {str(row['shape']):>11} {std:7.4f} {row['sparsity']:9.1%}")
emptiest = max(global_mask.report(), key=lambda r: r["sparsity"])

# %% [markdown]
# The tied embedding is left out on purpose: it is the input table *and* the output head, so
# every entry removed is felt twice, in what the first block reads and in every logit. Its rows
# are tokens: which ones lose most? One might guess the rare tokens, whose rows training moved
# least; the split by token frequency in the training data says otherwise.

# %%
EMBEDDING_AT = 0.5
with_embedding = fresh_model()
embedding_mask = magnitude_prune(with_embedding, EMBEDDING_AT, "layer",
                                 DEFAULT_TARGETS + ("token_embedding",))
embedding_ppl = perplexity(with_embedding, val_tokens)
layer_ppl_at = curve["layer"][SPARSITIES.index(EMBEDDING_AT)]
print(f"{EMBEDDING_AT:.0%} layer-wise: blocks only {layer_ppl_at:.1f}, blocks + tied embedding "
      f"{embedding_ppl:.1f} (dense {dense_ppl:.1f})")
by_frequency = np.argsort(np.bincount(corpus.train, minlength=model.config.vocab_size), kind="stable")
fifth = len(by_frequency) // 5
rows_kept = embedding_mask.keep["token_embedding.weight"]                  # (V, C)
row_norms = np.linalg.norm(pretrained["token_embedding.weight"], axis=1)   # (V,)
for label, ids in (("rarest fifth", by_frequency[:fifth]), ("commonest fifth", by_frequency[-fifth:])):
    print(f"{label:>15} of the tokens: mean row norm {row_norms[ids].mean():.2f}, "
          f"entries pruned {1 - rows_kept[ids].mean():.0%}")

# %% [markdown]
# ## 3. Holding the mask while training: AdamW's memory
# A pruned weight still has a gradient, so a plain optimizer step would move it away from zero.
# Zeroing the gradients of pruned entries is not enough either: AdamW's moments m and v still
# remember the steps before pruning, and the update lr m_hat / (sqrt(v_hat) + eps) is not zero.
# Below: a few AdamW steps on the dense model, then pruning, then a few steps with the gradients
# masked, counting the pruned weights that came back. `MaskedOptimizer` also re-applies the mask
# after each step, which is what keeps them at exactly zero.

# %%
def revived_after_pruning(hold: bool) -> int:
    """Pruned weights that are no longer zero after DEMO_STEPS masked-gradient steps."""
    demo = fresh_model().train()
    optimizer = AdamW(weight_decay_groups(demo, FINETUNE.weight_decay), lr=FINETUNE.min_learning_rate,
                      betas=FINETUNE.betas)
    batches = np.random.default_rng(SEED)
    inputs, targets = random_batch(corpus.train, 4, T, batches)

    def step(opt) -> None:
        opt.zero_grad()
        demo(inputs, targets)[1].backward()
        opt.step()

    for _ in range(DEMO_STEPS):          # momentum builds up in m and v
        step(optimizer)
    mask = magnitude_prune(demo, 0.5)
    held = MaskedOptimizer(optimizer, mask)
    for _ in range(DEMO_STEPS):
        if hold:
            step(held)                   # mask the gradients, step, re-apply the mask
        else:
            demo.zero_grad()
            demo(inputs, targets)[1].backward()
            mask.mask_gradients()        # gradients masked, weights not
            optimizer.step()
    return sum(int(np.count_nonzero(p.data[~mask.keep[name]])) for name, p in mask.params.items())


revived_gradients_only = revived_after_pruning(hold=False)
revived_held = revived_after_pruning(hold=True)
print(f"pruned weights non-zero after {DEMO_STEPS} steps: gradients masked only {revived_gradients_only:,}; "
      f"with MaskedOptimizer {revived_held}")

# %% [markdown]
# ## 4. Fine-tuning after pruning
# `finetune_pruned` trains with lesson 07's `Trainer`, its AdamW wrapped by `MaskedOptimizer`:
# a short run (FINETUNE) at every layer-wise sparsity. Then the *iterative* alternative with
# the same number of steps: prune gradually along the cubic ramp of `sparsity_schedule`,
# training between rounds, instead of all at once.

# %%
finetuned, finetuned_masks = {}, {}
for sparsity in FINETUNE_AT:
    start = time.perf_counter()
    tuned = fresh_model()
    mask = magnitude_prune(tuned, sparsity, "layer")
    finetune_pruned(tuned, mask, corpus.train, FINETUNE)
    finetuned[sparsity] = perplexity(tuned, val_tokens)
    finetuned_masks[sparsity] = mask
    print(f"sparsity {sparsity:.0%}: perplexity pruned {curve['layer'][SPARSITIES.index(sparsity)]:.1f} -> "
          f"fine-tuned {finetuned[sparsity]:.1f} ({FINETUNE.steps} steps, "
          f"{time.perf_counter() - start:.0f} s); "
          f"pruned weights all zero: {mask.pruned_are_zero()}, sparsity {mask.sparsity():.4f}")
top = FINETUNE_AT[-1]
top_model, top_mask = tuned, finetuned_masks[top]  # the most pruned fine-tuned model, used below

iterative = fresh_model()
iterative_mask, rounds = iterative_prune(iterative, corpus.train, top, ITERATIVE_ROUNDS, FINETUNE)
iterative_ppl = perplexity(iterative, val_tokens)
print(f"iterative to {top:.0%}: " + ", ".join(f"round {r['round']} {r['sparsity']:.1%}" for r in rounds) +
      f" -> perplexity {iterative_ppl:.1f} (one-shot + fine-tune {finetuned[top]:.1f}, "
      f"the same {FINETUNE.steps} steps)")

# %% [markdown]
# ## 5. Bytes: dense against sparse
# Stored densely, a pruned matrix takes as many bytes as before. CSR keeps each kept value (4
# bytes) with its column number (2 bytes: uint16, as no matrix here has more than 65,536
# columns) and one int32 row start per row; a bitmap keeps one bit per position and the kept
# values. Each pays off only above a break-even sparsity, computed here for every target shape.
# Embeddings, biases and LayerNorms stay dense in every column of the table.

# %%
break_even = {fmt: {tuple(p.shape): break_even_sparsity(p.shape, fmt) for p in targets.values()}
              for fmt in ("csr", "bitmap")}
for fmt, by_shape in break_even.items():
    print(f"{fmt:>6} break-even sparsity: " + ", ".join(f"{shape} {s:.1%}" for shape, s in by_shape.items()))


def csr_beats_bitmap(shape: tuple[int, int]) -> float:
    """The sparsity above which CSR is smaller than a bitmap: 6 nnz + 4 (rows + 1) < n / 8 + 4 nnz,
    that is fewer than about one kept weight in 16 (1 if never)."""
    n = shape[0] * shape[1]
    most_kept = (-(-n // 8) - 4 * (shape[0] + 1) - 1) // 2  # the largest nnz with CSR smaller
    return 1.0 - most_kept / n if most_kept >= 0 else 1.0


crossover = {tuple(p.shape): csr_beats_bitmap(p.shape) for p in targets.values()}
print("CSR smaller than a bitmap above: " + ", ".join(f"{shape} {s:.1%}" for shape, s in crossover.items()))

rows = []
for i, sparsity in enumerate(SPARSITIES):
    sized = fresh_model()
    mask = magnitude_prune(sized, sparsity, "layer")
    rows.append({"sparsity": sparsity, "ppl": curve["layer"][i], "ppl_global": curve["global"][i],
                 "ppl_tuned": finetuned.get(sparsity), "dense": storage_bytes(sized),
                 "csr": storage_bytes(sized, mask, "csr"), "bitmap": storage_bytes(sized, mask, "bitmap")})

print(f"\n{'sparsity':>8} {'ppl pruned':>10} {'(global)':>9} {'ppl tuned':>9} {'dense':>10} "
      f"{'CSR':>10} {'bitmap':>10} {'CSR/dense':>9}")
for r in rows:
    tuned_text = f"{r['ppl_tuned']:9.1f}" if r["ppl_tuned"] is not None else f"{'-':>9}"
    print(f"{r['sparsity']:8.0%} {r['ppl']:10.1f} {r['ppl_global']:9.1f} {tuned_text} "
          f"{format_bytes(r['dense']):>10} {format_bytes(r['csr']):>10} {format_bytes(r['bitmap']):>10} "
          f"{r['csr'] / r['dense']:9.2f}")

# The fine-tuned top model to a file in CSR form, against the dense file, and back.
folder = output_dir("pruning")
sparse_path, dense_path = folder / "pruned_sparse.safetensors", folder / "pruned_dense.safetensors"
save_sparse(top_model, top_mask, sparse_path)
save_safetensors(dense_path, top_model.state_dict())
reloaded = GPT(model.config)
reloaded_mask = load_sparse(reloaded, sparse_path)
probe = corpus.val[None, :T].astype(np.int64)
reload_equal = np.array_equal(reloaded.eval()(probe).data, top_model(probe).data)
reload_mask_equal = all(np.array_equal(reloaded_mask.keep[n], top_mask.keep[n]) for n in top_mask.keep)
file_sizes = {"dense": dense_path.stat().st_size, "CSR": sparse_path.stat().st_size}
print(f"\nfiles of the {top:.0%} fine-tuned model: dense {format_bytes(file_sizes['dense'])}, CSR "
      f"{format_bytes(file_sizes['CSR'])}; reloaded logits equal: {reload_equal}, "
      f"mask equal: {reload_mask_equal}")

# %% [markdown]
# ## 6. Structured pruning: heads and neurons
# Score each head by ||W_v,h|| ||W_proj[:, h]|| (how much it can write into the residual stream)
# and each MLP neuron by ||W_up[j]|| ||W_down[:, j]||, remove the lowest of every block, and
# *shrink* the matrices: a `PrunedAttention` with fewer heads, Linears with fewer neurons. The
# shrunk model computes exactly what the masked one (same shapes, zeros) computes. Unstructured
# zeros do not make our dense NumPy matrix products any faster; smaller matrices do. The work is
# counted as multiply-adds per token (which do not depend on the machine), and speed measured two
# ways: generating tokens one at a time (with the KV cache), and reading a batch of full windows
# in one forward pass, where the matrix products of the blocks do most of the work.

# %%
scores = head_scores(model)
print("head scores per block: " + "; ".join(" ".join(f"{s:.2f}" for s in layer) for layer in scores))
neurons = neuron_scores(model)
print(f"neuron scores, block 0: min {neurons[0].min():.4f}, median {np.median(neurons[0]):.4f}, "
      f"max {neurons[0].max():.4f}")

prompt = corpus.val[None, :8].astype(np.int64)


forward_batch = corpus.val[:FORWARD_BATCH * T].reshape(FORWARD_BATCH, T).astype(np.int64)


def median_seconds(run, repeats: int = 3) -> float:
    """The median of a few runs (one timing on a shared machine is noise)."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def speeds(lm) -> dict:
    """Work and speed: multiply-adds per token in the matrix products of the Linear layers and
    the tied head (dense code multiplies zeros too), and tokens per second generated one at a
    time and read in one batched forward pass."""
    macs = sum(m.in_features * m.out_features for m in lm.modules() if isinstance(m, Linear))
    macs += lm.config.vocab_size * lm.config.d_model                      # the tied output head
    with no_grad():
        forward = median_seconds(lambda: lm(forward_batch))
    generation = median_seconds(lambda: generate(lm, prompt, GENERATE_TOKENS, temperature=0), repeats=3)
    return {"macs": macs, "generate": GENERATE_TOKENS / generation, "forward": forward_batch.size / forward}


structured = {"dense": {"params": model.num_parameters(), "ppl": dense_ppl, "bytes": storage_bytes(model),
                        **speeds(model)}}
structured[f"{top:.0%} unstructured, tuned"] = {
    "params": model.num_parameters() - top_mask.num_pruned, "ppl": finetuned[top],
    "bytes": storage_bytes(top_model, top_mask, "csr"), **speeds(top_model)}
for head_fraction, neuron_fraction in [(HEAD_FRACTION, 0.0)] + [(0.0, f) for f in NEURON_FRACTIONS]:
    shrunk, masked = fresh_model(), fresh_model()
    prune_structured(shrunk, head_fraction, neuron_fraction)
    prune_structured(masked, head_fraction, neuron_fraction, shrink=False)
    name = f"{head_fraction:.0%} heads" if head_fraction else f"{neuron_fraction:.0%} neurons"
    structured[name] = {"params": shrunk.num_parameters(), "ppl": perplexity(shrunk, val_tokens),
                        "bytes": storage_bytes(shrunk), **speeds(shrunk),
                        "equal": np.allclose(shrunk(probe).data, masked(probe).data, rtol=1e-4, atol=1e-4)}

print(f"\n{'model':<26} {'parameters':>10} {'bytes':>10} {'ppl':>8} {'MACs/token':>10} "
      f"{'generate tok/s':>14} {'forward tok/s':>13}")
for name, r in structured.items():
    print(f"{name:<26} {r['params']:>10,} {format_bytes(r['bytes']):>10} {r['ppl']:8.1f} {r['macs']:>10,} "
          f"{r['generate']:14.0f} {r['forward']:13,.0f}")
print(f"(bytes: CSR for the unstructured model, dense for the others; speeds: medians of a few runs on "
      f"one machine, indicative; forward: a batch of {FORWARD_BATCH} x {T} tokens)")
print("shrunk logits equal the masked model's: " +
      ", ".join(f"{name} {r['equal']}" for name, r in structured.items() if "equal" in r))

# %% [markdown]
# ## 7. The figure: perplexity and bytes against sparsity

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
percent = [100 * s for s in SPARSITIES]
left.plot(percent, curve["layer"], "o-", label="layer-wise, pruned")
left.plot(percent, curve["global"], "s--", label="global, pruned")
left.plot([100 * s for s in FINETUNE_AT], [finetuned[s] for s in FINETUNE_AT], "D-",
          label=f"layer-wise + {FINETUNE.steps} fine-tuning steps")
left.plot([100 * top], [iterative_ppl], "*", markersize=14, label=f"iterative, {ITERATIVE_ROUNDS} rounds")
left.axhline(dense_ppl, color="gray", linestyle=":", label="dense")
left.set_yscale("log")
left.set_xlabel("sparsity of the block weights (%)")
left.set_ylabel("validation perplexity (log scale)")
left.set_title("What pruning costs, and what fine-tuning wins back")
legend_outside(left, fontsize=8)
left.grid(alpha=0.3)
for key, label in (("dense", "dense"), ("csr", "CSR (values + uint16 columns + row starts)"),
                   ("bitmap", "bitmap (values + 1 bit per position)")):
    right.plot(percent, [r[key] / 2**20 for r in rows], "o-", label=label)
csr_even = max(break_even["csr"].values())
right.axvline(100 * csr_even, color="gray", linestyle=":", label=f"CSR break-even ({csr_even:.0%})")
right.set_xlabel("sparsity of the block weights (%)")
right.set_ylabel("model size (MiB)")
right.set_title("Bytes to store the model")
legend_outside(right, fontsize=8)
right.grid(alpha=0.3)
save_figure(fig, "14_pruning")

# %% [markdown]
# ## 8. What we found
# This run's numbers are printed below from its results; the closing checks assert, in a full
# run, the claims marked (checked). The shape of the results holds from checkpoint to
# checkpoint; the exact numbers move.
#
# * the model hardly notices losing its smallest block weights at low sparsity, pays more and
#   more as sparsity grows (checked), up to the highest sparsity below;
# * layer-wise pruning beats one global threshold at 90% (checked). A global threshold empties
#   the matrices of small weights first (checked: one matrix loses far more than the average;
#   which one is printed below);
# * pruning the tied embedding too costs more (checked). It is not the rare tokens that lose
#   most: their rows are longer than the common tokens' (a likely reason: the output head pushes
#   a token's row away each time that token is not the answer, and a rare token is almost never
#   the answer), so magnitude pruning takes more of the common tokens' entries;
# * a short fine-tuning run with the mask held wins back most of the loss where pruning hurt
#   (checked at the highest sparsity fine-tuned); where pruning cost little it can make things
#   worse, because a short run at a high learning rate lands near the same perplexity from any
#   start. Compare the iterative ramp given the same steps: a budget this short is better spent
#   on the final mask;
# * zeros save nothing stored densely. CSR and a bitmap each pay only above a break-even
#   sparsity (checked), computed in section 5;
# * structured pruning is coarser, but it buys less work for the same dense code: fewer
#   multiply-adds (checked), while unstructured zeros are still multiplied (checked). One token
#   at a time, generation is dominated by the fixed cost of each NumPy call and by the output
#   head, which no method here touches: compare the speed columns (medians) of section 6.

# %%
print(f"dense perplexity {dense_ppl:.1f}")
for sparsity, layer_ppl, global_ppl in zip(SPARSITIES, curve["layer"], curve["global"]):
    tuned = f", after fine-tuning {finetuned[sparsity]:.1f}" if sparsity in finetuned else ""
    print(f"  {sparsity:4.0%} sparse: layer-wise {layer_ppl:7.1f}, global {global_ppl:7.1f}{tuned}")
print(f"iterative ramp to {top:.0%}: {iterative_ppl:.1f}; the tied embedding pruned too: {embedding_ppl:.1f} "
      f"against {layer_ppl_at:.1f}; emptiest matrix under one global threshold: {emptiest['name']}, "
      f"{emptiest['sparsity']:.0%} pruned")
for name, r in structured.items():
    print(f"  {name:<30} perplexity {r['ppl']:7.1f}, {r['params']:>9,} parameters, {r['macs']:>12,} multiply-adds")

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
assert np.array_equal(by_hand, package), "magnitude_masks must remove exactly the smallest |w|"
assert curve["layer"][0] == curve["global"][0] == perplexity(fresh_model(), val_tokens), \
    "sparsity 0 must leave the model unchanged"
assert revived_gradients_only > 0 and revived_held == 0, \
    "AdamW's moments revive pruned weights unless the mask is re-applied after each step"
for sparsity, mask in finetuned_masks.items():
    assert mask.pruned_are_zero(), f"pruned weights must be exactly zero after fine-tuning at {sparsity:.0%}"
    assert mask.num_pruned == sum(round(sparsity * p.size) for p in mask.params.values()), \
        "fine-tuning must not change the sparsity"
assert iterative_mask.pruned_are_zero() and rounds[-1]["sparsity"] == top_mask.sparsity(), \
    "iterative pruning must reach the same exact sparsity with the mask held"
for r in rows:
    if r["sparsity"] >= max(break_even["csr"].values()):
        assert r["csr"] < r["dense"], f"CSR must be smaller than dense above break-even ({r['sparsity']:.0%})"
    if r["sparsity"] < min(break_even["csr"].values()):
        assert r["csr"] >= r["dense"], f"CSR must not pay below break-even ({r['sparsity']:.0%})"
    if r["sparsity"] >= max(break_even["bitmap"].values()):
        assert r["bitmap"] < r["dense"], "a bitmap must be smaller than dense above its break-even"
    if r["sparsity"] < min(crossover.values()):
        assert r["bitmap"] < r["csr"], "below the crossover a bitmap must beat CSR"
assert file_sizes["CSR"] < file_sizes["dense"] and reload_equal and reload_mask_equal, \
    "the sparse file must be smaller and reload the same model"
assert all(r["equal"] for r in structured.values() if "equal" in r), "shrunk must equal masked"
assert all(r["params"] < model.num_parameters() for name, r in structured.items() if name != "dense"), \
    "pruning must remove parameters"
assert all(r["macs"] < structured["dense"]["macs"] for r in structured.values() if "equal" in r), \
    "structured pruning must remove multiply-adds"
assert structured[f"{top:.0%} unstructured, tuned"]["macs"] == structured["dense"]["macs"], \
    "dense code multiplies the zeros of unstructured pruning too"
if not QUICK:  # the quick model is barely trained (near its unigram perplexity): pruning costs it little
    assert curve["layer"][-1] > curve["layer"][SPARSITIES.index(0.5)] > dense_ppl, \
        "perplexity should grow with sparsity"
    assert finetuned[top] < curve["layer"][SPARSITIES.index(top)] / 2, \
        f"fine-tuning should win back most of the perplexity lost at {top:.0%} sparsity"
    assert emptiest["sparsity"] > GLOBAL_SHOWN + 0.1, "global pruning should empty some matrices far more"
    assert curve["layer"][-1] < curve["global"][-1], "layer-wise should beat global at 90% on this model"
    assert embedding_ppl > layer_ppl_at, "pruning the tied embedding too should cost more perplexity"
print(f"lesson 14 checks passed ({time.perf_counter() - lesson_start:.0f} s)")


# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **A magnitude-pruning mask.** The mask of magnitude pruning: remove the smallest weights by
#    absolute value. Edit `exercises/14_1.py`, then run `tinygrad-llm exercise check 14.1`.
# 2. **Predict: the weights left after pruning.** Predict how many weights a (48, 20) matrix keeps
#    after magnitude pruning at 70 % sparsity. Edit `exercises/14_2.py`, then run `tinygrad-llm
#    exercise check 14.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
