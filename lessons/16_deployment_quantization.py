# %% [markdown]
"""
# 16. GPTQ, AWQ and GGUF: the quantization that deployment uses

**The question.** Lesson 13 rounded every weight to its nearest code, and at int4 the course
model paid for it in perplexity. What people run on laptops is not that: it is GPTQ- or
AWQ-quantized weights in a GGUF file that llama.cpp loads. What do those two methods do that
rounding does not, how much of rounding's damage do they undo at 4 and 3 bits, and how does a
model trained in this course leave it as a file that the real runtime reads?

**The idea.** Both methods look at what a layer is *fed*. On calibration inputs x, what matters
is the output error, not the weight error:

    E(Q) = sum_x || (W - Q) x ||^2 = trace((W - Q) H (W - Q)^T),   H = 2/n sum x x^T

*GPTQ* rounds the columns of W one at a time and after each moves the columns not yet rounded
to cancel the error it just made, w_j -= (w_i - q_i) [H^-1]_ij / [H^-1]_ii, reading the ratios
off one Cholesky factor of H^-1. *AWQ* changes what gets rounded instead: a few input channels
carry much larger activations than the rest (they are *salient*), so it multiplies their weight
columns by s_j = mean|x_j|^alpha before rounding and divides the inputs by s_j, folded into the
LayerNorm before the layer, so the model computes exactly the same function until it is rounded.
*GGUF* is the one file llama.cpp needs: hyperparameters, the tokenizer and every tensor in its
storage type (F32, F16, Q8_0, Q4_0, Q4_1), under llama.cpp's own names.

**Builds on:** lesson 07 (the course model), 09 (`perplexity`), 13 (group-wise asymmetric grids,
`calibrate`'s recording of layer inputs, `run_observed`).
**Adds:** `tinygrad_llm.compress.gptq`: `GridWeights`, `minmax_grid`, `round_to_grid`, `rtn`,
`HessianAccumulator`, `gptq`, `output_error`, `gptq_model`, `rtn_model`;
`tinygrad_llm.compress.awq`: `grid_quantize`, `search_scales`, `search_clipping`, `apply_scales`,
`awq_model`; `tinygrad_llm.model.gguf`: `quantize_blocks`, `dequantize_blocks`, `q4_1_from_grid`,
`gpt2_tensor_names`, `tokenizer_tables`, `write_gguf`, `read_gguf`; `tinygrad_llm.compress.export`:
`export_gguf`, `load_gguf`.

**Run:** `python lessons/16_deployment_quantization.py` (about 2 minutes on 2 cores with lesson
07's checkpoint; without it the model is pretrained first, about 6 minutes more) or `--quick`
(a few seconds). The GGUF section needs the `gguf` package (`pip install -e ".[gguf]"`); running
the file in llama.cpp needs `llama-cpp-python`, and is skipped with a note without it.
"""

# %%
import importlib.util
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import GPT, perplexity, course_corpus, random_batch
from tinygrad_llm.compress.awq import apply_scales, awq_model, grid_quantize, search_scales
from tinygrad_llm.compress.calibration import run_observed
from tinygrad_llm.compress.gptq import (DEFAULT_TARGETS, HessianAccumulator, gptq, gptq_model, minmax_grid,
                                        output_error, rtn, rtn_model)
from tinygrad_llm.compress.quantize import weight_arrays
from tinygrad_llm.course import course_model, output_dir, quick_mode, save_figure
from tinygrad_llm.course.figures import label_axes, legend_outside, series_style
from tinygrad_llm.scale.memory import format_bytes

# %% [markdown]
# ## Settings (quick mode shrinks everything for smoke tests)

# %%
SEED = 0
QUICK = quick_mode()
GROUPS = (32, 16) if QUICK else (128, 64)    # int4 group sizes; they must divide every row (32 when quick)
SETTINGS = {f"int4 g{GROUPS[0]}": (4, GROUPS[0]), f"int4 g{GROUPS[1]}": (4, GROUPS[1]),
            f"int3 g{GROUPS[0]}": (3, GROUPS[0])}          # name: (bits, group size)
MAIN = f"int4 g{GROUPS[0]}"                  # the setting the GGUF section exports
CALIBRATION_BATCHES = 2 if QUICK else 8     # batches of 8 training windows
DAMP = 0.01                                  # GPTQ's damping: this fraction of mean(diag H)
BY_HAND_LAYER = "blocks.0.mlp.down"          # (C, 4C): several groups and several GPTQ blocks
AWQ_LAYER = "blocks.0.attn.qkv"              # reads LayerNorm 1's output: its scales fold into it
SALIENT_CHANNELS = 2 if QUICK else 3         # channels made salient in section 3 (2% of 128)
OUTLIER_GAIN = 20.0                          # how much louder; large models grow outliers of 20-100x
VAL_TOKENS = 4096 if QUICK else None         # None: the whole validation split
PROMPT = "The for statement"
NEW_TOKENS = 16

rng = np.random.default_rng(SEED)
lesson_start = time.perf_counter()

# %% [markdown]
# ## 1. Calibration inputs and the output error
# Both methods need a few batches of text the model will see: training windows, never the
# validation split the table measures on. `run_observed` (lesson 13's recording) hands us the
# input of any layer as the model runs. For the layer of this section we keep every row.

# %%
model, tokenizer = course_model(QUICK)
corpus = course_corpus(QUICK)
config = model.config
pretrained = {name: array.copy() for name, array in model.state_dict().items()}
val_tokens = corpus.val if VAL_TOKENS is None else corpus.val[:VAL_TOKENS]


def fresh_model(dtype=np.float32) -> GPT:
    """A new copy of the pretrained weights, in eval mode (every method starts from its own)."""
    gpt = GPT(config, rng=np.random.default_rng(SEED), dtype=dtype)
    gpt.load_state_dict({k: v.astype(dtype) for k, v in pretrained.items()})
    return gpt.eval()


def recorded_inputs(lm: GPT, names: list[str]) -> dict[str, np.ndarray]:
    """Every calibration row (N, in) each named Linear receives, in float64."""
    rows = {name: [] for name in names}
    run_observed(lm, {name: (lambda x, kept=rows[name]: kept.append(x.reshape(-1, x.shape[-1])))
                      for name in names}, calibration)
    return {name: np.concatenate(parts).astype(np.float64) for name, parts in rows.items()}


calibration = [random_batch(corpus.train, 8, config.context_length, rng)[0] for _ in range(CALIBRATION_BATCHES)]
x = recorded_inputs(model, [BY_HAND_LAYER])[BY_HAND_LAYER]             # (N, 4C)
W = pretrained[f"{BY_HAND_LAYER}.weight"].astype(np.float64)            # (C, 4C): out, in
n_rows, n_cols = W.shape
print(f"the course model: {model.num_parameters():,} parameters; calibration: {len(calibration)} batches "
      f"of 8 x {config.context_length} training tokens = {x.shape[0]:,} rows at {BY_HAND_LAYER}")
print(f"{BY_HAND_LAYER}: W {W.shape} (out, in), inputs {x.shape}")

# %% [markdown]
# ## 2. GPTQ by hand, on one layer
# Step by step, as the package does it:
#
# 1. H = 2/n sum x x^T over the calibration rows, (in, in);
# 2. damping: H + 0.01 mean(diag H) I, so that inputs which barely vary do not make it singular;
# 3. the inverse through Cholesky: H = L L^T, H^-1 = L^-T L^-1, and U the upper Cholesky factor
#    of H^-1 (H^-1 = U^T U). Row i of U, divided by U_ii, holds the ratios [H^-1]_ij / [H^-1]_ii
#    of the columns not yet rounded when column i is, so one factorisation serves every step;
# 4. column by column: round column i on its group's grid (the grid measured from the weights as
#    they are when the group's first column is reached, already corrected), and push the error
#    e = (w_i - q_i) / U_ii onto every later column, w_j -= e U_ij.
#
# The package does step 4 in blocks of columns (128 by default; here as wide as a group): inside
# a block one column at a time, beyond it once per block, as one matrix product (the "lazy
# batch" update). Same numbers, fewer passes over the matrix; it must give the same codes as our
# plain loop.

# %%
BITS, GROUP = SETTINGS[MAIN]
QMIN, QMAX = -(2 ** (BITS - 1)), 2 ** (BITS - 1) - 1

H = 2 / len(x) * x.T @ x                                                 # (in, in)
accumulator = HessianAccumulator(n_cols)
for part in np.array_split(x, 5):                                        # the package keeps a running mean
    accumulator.add(part)
hessian_error = float(np.abs(accumulator.H - H).max() / np.abs(H).max())
assert (np.diag(H) > 0).all(), "every input of this layer varies"
H_damped = H + DAMP * np.mean(np.diag(H)) * np.eye(n_cols)
L_inverse = np.linalg.inv(np.linalg.cholesky(H_damped))                  # L^-1, with H = L L^T
H_inverse = L_inverse.T @ L_inverse
U = np.linalg.cholesky(H_inverse).T                                      # upper: H^-1 = U^T U
ratio_error = float(np.abs(U[0] / U[0, 0] - H_inverse[0] / H_inverse[0, 0]).max())


def grid_of(columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lesson 13's asymmetric min-max grid per row: [min(w, 0), max(w, 0)] in 2^b - 1 steps."""
    lo, hi = np.minimum(columns.min(axis=1), 0.0), np.maximum(columns.max(axis=1), 0.0)
    scale = ((hi - lo) / (2 ** BITS - 1)).astype(np.float32)   # careful: float32 scales, as stored
    zero = np.clip(QMIN - np.rint(lo / scale), QMIN, QMAX)
    return scale, zero


start = time.perf_counter()
work = W.copy()
codes_by_hand = np.zeros_like(W)
for i in range(n_cols):
    if i % GROUP == 0:
        scale, zero = grid_of(work[:, i:i + GROUP])
    q = np.clip(np.rint(work[:, i] / scale) + zero, QMIN, QMAX)         # (out,) codes of column i
    codes_by_hand[:, i] = q
    error = (work[:, i] - scale * (q - zero)) / U[i, i]
    work[:, i + 1:] -= np.outer(error, U[i, i + 1:])                     # onto every later column
by_hand_seconds = time.perf_counter() - start

start = time.perf_counter()
package = gptq(W, H, BITS, GROUP, block_size=GROUP, damp=DAMP)
package_seconds = time.perf_counter() - start
same_gptq_codes = np.array_equal(package.codes, codes_by_hand)
nearest = rtn(W, BITS, GROUP)
errors = {"round to nearest": nearest.dequantize(np.float64), "GPTQ": package.dequantize(np.float64)}
layer_error = {name: output_error(W, Q, H) for name, Q in errors.items()}
weight_error = {name: float(np.sqrt(np.mean((W - Q) ** 2))) for name, Q in errors.items()}
print(f"H: package's running mean equals 2/n X^T X to {hessian_error:.1e}; row 0 of U / U_00 equals "
      f"[H^-1]_0j / [H^-1]_00 to {ratio_error:.1e}")
print(f"{MAIN}: by hand ({by_hand_seconds * 1e3:.0f} ms) and the package's blocked gptq "
      f"({package_seconds * 1e3:.0f} ms) give the same codes: {same_gptq_codes}")
print(f"{'':<18} {'RMS weight error':>17} {'output error trace((W-Q) H (W-Q)^T)':>37}")
for name in errors:
    print(f"{name:<18} {weight_error[name]:>17.5f} {layer_error[name]:>37.3e}")
gptq_gain = layer_error["round to nearest"] / layer_error["GPTQ"]
print(f"GPTQ's weights are further from W, its outputs {gptq_gain:.1f}x closer in squared error: "
      f"it spends weight error where the inputs do not look")

# %% [markdown]
# ## 3. AWQ: salient channels
# AWQ's premise is that a few input channels of a layer carry much larger activations than the
# rest (*salient* channels): every weight that meets them moves the output more, and rounding
# treats a weight the same whatever it is fed. Large models grow such channels, tens of times
# the typical one (LLM.int8(), SmoothQuant). First, does ours? The mean |x| of each input
# channel over the calibration rows, at the input of every Linear whose scale AWQ can fold.

# %%
SCALABLE = ("attn.qkv", "mlp.up", "attn.proj")          # their inputs come from a LayerNorm or from v
scalable = [f"blocks.{i}.{t}" for i in range(config.n_layer) for t in SCALABLE]
scalable_inputs = recorded_inputs(model, scalable)
loudness = {name: float(np.abs(x).mean(axis=0).max() / np.median(np.abs(x).mean(axis=0)))
            for name, x in scalable_inputs.items()}
loudest_layer = max(loudness, key=loudness.get)
print("loudest channel's mean |x| / the median channel's: " +
      ", ".join(f"{name.replace('blocks.', 'b')} {r:.2f}" for name, r in loudness.items()))
awq_inputs = scalable_inputs[AWQ_LAYER]                                  # (N, C)
W_awq = pretrained[f"{AWQ_LAYER}.weight"].astype(np.float64)            # (3C, C)
s_real, alpha_real, errors_real = search_scales(awq_inputs, W_awq, BITS, GROUP)
real_gain = errors_real[0.0] / errors_real[alpha_real]
verdict = "no channel stands out" if max(loudness.values()) < 5 else "some channels stand out"
print(f"at most {max(loudness.values()):.1f}x ({loudest_layer}): {verdict}. AWQ's search on {AWQ_LAYER} "
      f"picks alpha = {alpha_real:.2f}, {real_gain:.2f}x lower error than rounding")

# %% [markdown]
# So we make a model that has them, without changing what it computes: the exact inverse of
# AWQ's fold. Multiply LayerNorm 1's gain and bias by G = 20 on a few channels and divide the
# same columns of `attn.qkv` by G. The function is the same, but now those channels are 20 times
# louder and their weights 20 times smaller: how an LLM looks. The model is in float64 so that
# "the same" can be checked to 1e-9.
#
# Then the AWQ paper's experiment on that layer: keep 1-2% of the input channels in float and
# round the rest. Chosen by activation magnitude, that removes much more of the output error
# than as many channels chosen by weight magnitude. Keeping them in float needs a mixed-precision
# kernel; AWQ gets the effect on a uniform grid by scaling those columns up instead.

# %%
block = AWQ_LAYER.rsplit(".", 2)[0]                                      # "blocks.0"
ids = np.stack([corpus.val[:config.context_length], corpus.val[config.context_length:2 * config.context_length]])
salient = np.argsort(-np.abs(awq_inputs).mean(axis=0))[:SALIENT_CHANNELS]   # grow the loudest ones
gain = np.ones(config.d_model)
gain[salient] = OUTLIER_GAIN


def with_salient_channels(lm: GPT) -> GPT:
    """The same function, with LayerNorm 1's channels ``salient`` G times louder (in place)."""
    norm = lm.get_submodule(f"{block}.norm1")
    norm.weight.data[...] *= gain.astype(norm.weight.dtype)
    norm.bias.data[...] *= gain.astype(norm.bias.dtype)
    lm.get_submodule(AWQ_LAYER).weight.data[...] /= gain[None, :].astype(norm.weight.dtype)
    return lm


logits_before = fresh_model(np.float64)(ids).data
loud_model = with_salient_channels(fresh_model(np.float64))
loud_change = float(np.abs(loud_model(ids).data - logits_before).max())
loud_inputs = recorded_inputs(loud_model, [AWQ_LAYER])[AWQ_LAYER]
W_loud = loud_model.get_submodule(AWQ_LAYER).weight.data.copy()
magnitude = np.abs(loud_inputs).mean(axis=0)                            # (C,) mean |x| per channel
by_activation = np.argsort(-magnitude)[:SALIENT_CHANNELS]
by_weight = np.argsort(-np.abs(W_loud).mean(axis=0))[:SALIENT_CHANNELS]


def loud_error(approximation: np.ndarray) -> float:
    """Mean squared output error of an approximation of W_loud on the recorded inputs."""
    return float(np.mean((loud_inputs @ (W_loud - approximation).T) ** 2))


rounded_loud = grid_quantize(W_loud, BITS, GROUP).dequantize(np.float64)
kept = {}
for name, channels in (("activation", by_activation), ("weight", by_weight)):
    mixed = rounded_loud.copy()
    mixed[:, channels] = W_loud[:, channels]                            # these columns stay float
    kept[name] = loud_error(mixed)
print(f"G = {OUTLIER_GAIN:g} on channels {sorted(salient.tolist())}: largest change of any logit "
      f"{loud_change:.1e}; those channels now have {magnitude[salient].mean() / np.median(magnitude):.0f}x the "
      f"median channel's mean |x|")
print(f"output error, {MAIN} rounding: {loud_error(rounded_loud):.3e}; the {SALIENT_CHANNELS} channels kept in "
      f"float, chosen by activation: {kept['activation']:.3e}, by weight: {kept['weight']:.3e}")

s, alpha, alpha_errors = search_scales(loud_inputs, W_loud, BITS, GROUP)
awq_gain = alpha_errors[0.0] / alpha_errors[alpha]
print(f"AWQ's scales s = mean|x|^alpha, alpha over {len(alpha_errors)} points: best alpha = {alpha:.2f}, output "
      f"error {alpha_errors[alpha]:.3e} against {alpha_errors[0.0]:.3e} at alpha = 0 (plain rounding), "
      f"{awq_gain:.1f}x lower; the salient channels get s = {s[salient].mean():.2f} on average, the median "
      f"channel {np.median(s):.2f}")

# %% [markdown]
# The scale must not change the model either. y = W (x / s) s: the columns of W are multiplied
# by s, the input divided by it, and the division is folded into what made the input, LayerNorm
# 1: LN(x) = g (x - mu) / sigma + b, so LN(x) / s is the same LayerNorm with g / s and b / s. By
# hand on one copy of the loud model, with the package's `apply_scales` on another; they must
# agree, and the logits must not move.

# %%
folded_by_hand = with_salient_channels(fresh_model(np.float64))
folded_package = with_salient_channels(fresh_model(np.float64))
norm = folded_by_hand.get_submodule(f"{block}.norm1")
norm.weight.data[...] /= s
norm.bias.data[...] /= s
folded_by_hand.get_submodule(AWQ_LAYER).weight.data[...] *= s[None, :]   # column j times s_j
apply_scales(folded_package, block, AWQ_LAYER.split(".", 2)[2], s)
fold_change = float(np.abs(folded_by_hand(ids).data - logits_before).max())
same_fold = all(np.array_equal(a, b) for a, b in zip(folded_by_hand.state_dict().values(),
                                                     folded_package.state_dict().values()))
print(f"s folded into LayerNorm 1: largest change of any logit {fold_change:.1e}; by hand and apply_scales "
      f"give the same parameters: {same_fold}")

fig, (left, middle, right) = plt.subplots(1, 3, figsize=(17, 4.2))
real_magnitude = np.abs(awq_inputs).mean(axis=0)
for ax, values, title in ((left, real_magnitude, f"The course model, {AWQ_LAYER}"),
                          (middle, magnitude, f"Same function, {SALIENT_CHANNELS} channels x {OUTLIER_GAIN:g}")):
    ax.bar(np.arange(values.size), values, width=1.0, color=series_style(0)["color"], label="channel")
    ax.bar(salient, values[salient], width=1.0, color=series_style(3)["color"], label="salient (grown)")
    ax.axhline(np.median(values), color="k", linestyle=":", label="median")
    label_axes(ax, "input channel", "mean |x| over the calibration rows", title)
    ax.legend(fontsize=8)
alphas = sorted(alpha_errors)
right.plot(alphas, [alpha_errors[a] / alpha_errors[0.0] for a in alphas], label="with salient channels",
           **series_style(1))
right.plot(alphas, [errors_real[a] / errors_real[0.0] for a in alphas], label="the course model",
           **series_style(2))
label_axes(right, "alpha (s = mean|x|^alpha)", "output error / rounding's (alpha = 0)",
           f"AWQ's search on {AWQ_LAYER}, {MAIN}")
legend_outside(right)
save_figure(fig, "16_salient_channels")

# %% [markdown]
# ## 4. The whole model: perplexity against bits per weight
# Every method quantizes the same layers, the four Linears of every block, on the same grids,
# from its own copy of the pretrained weights; the token and position embeddings stay float32
# in every row. GPTQ and AWQ go block by block: each block is calibrated on the model with the
# blocks before it already quantized, so the later blocks also make up for the earlier ones'
# errors. AWQ here also searches, per group, a clipping of the range (`clip=True`).
#
# **Bits per weight** of the quantized layers counts the codes and, per group, a float32 scale
# and a zero point of the code's width: b + (32 + b) / g. **Weight bytes** is every weight
# matrix of the model at that rate (embeddings at 32 bits). Perplexity is on the whole validation
# split (its first 4,096 tokens in quick mode), the same tokens for every row.

# %%
def weight_bytes_at(bits_per_weight: float) -> int:
    """Bytes of the model's weight matrices with its block Linears at ``bits_per_weight``."""
    quantized = sum(pretrained[f"blocks.{i}.{t}.weight"].size for i in range(config.n_layer) for t in DEFAULT_TARGETS)
    total = sum(a.size for a in weight_arrays(model))
    return int(round((total - quantized) * 4 + quantized * bits_per_weight / 8))


results = {"float32": dict(method="float32", setting="", bits=32.0, bytes=weight_bytes_at(32.0),
                           ppl=perplexity(model, val_tokens), seconds=0.0)}
quantized_models, grids_of = {}, {}
print(f"{'method':<18} {'setting':<10} {'bits/weight':>11} {'weights':>10} {'val ppl':>8} {'seconds':>8}")
print(f"{'float32':<18} {'':<10} {32:>11.2f} {format_bytes(results['float32']['bytes']):>10} "
      f"{results['float32']['ppl']:>8.2f}")
METHODS = {"round to nearest": lambda lm, b, g: rtn_model(lm, b, g),
           "GPTQ": lambda lm, b, g: gptq_model(lm, calibration, b, g, damp=DAMP),
           "AWQ": lambda lm, b, g: {name: layer.grid
                                    for name, layer in awq_model(lm, calibration, b, g, clip=True).items()}}
for setting, (bits, group) in SETTINGS.items():
    for method, quantize_with in METHODS.items():
        lm = fresh_model()
        start = time.perf_counter()
        grids = quantize_with(lm, bits, group)
        seconds = time.perf_counter() - start
        lm.eval()
        bpw = next(iter(grids.values())).bits_per_weight()
        row = dict(method=method, setting=setting, bits=bpw, bytes=weight_bytes_at(bpw),
                   ppl=perplexity(lm, val_tokens), seconds=seconds)
        results[f"{method}, {setting}"] = row
        quantized_models[(method, setting)], grids_of[(method, setting)] = lm, grids
        print(f"{method:<18} {setting:<10} {bpw:>11.2f} {format_bytes(row['bytes']):>10} {row['ppl']:>8.2f} "
              f"{seconds:>8.1f}")

base = results["float32"]["ppl"]
increase = {key: r["ppl"] - base for key, r in results.items()}
print(f"\nperplexity increase over float32 ({base:.2f}):")
for setting in SETTINGS:
    parts = [f"{method} {increase[f'{method}, {setting}']:+.2f}" for method in METHODS]
    print(f"  {setting:<10} " + ", ".join(parts))
gptq_share = increase[f"GPTQ, {MAIN}"] / increase[f"round to nearest, {MAIN}"]
print(f"at {MAIN} GPTQ's increase is {gptq_share:.0%} of rounding's; AWQ's "
      f"{increase[f'AWQ, {MAIN}'] / increase[f'round to nearest, {MAIN}']:.0%}")

# %% [markdown]
# Two questions the table leaves. Our model has no salient channels (section 3), so how much of
# AWQ's gain here is its clipping search rather than its scales? And on the model of section 3,
# the same function with salient channels in `blocks.0.attn.qkv`, how do the three methods fare?

# %%
def perplexity_after(lm: GPT, quantize_with) -> float:
    quantize_with(lm)
    return perplexity(lm.eval(), val_tokens)


extra = {"AWQ, scales only (no clipping)": perplexity_after(
    fresh_model(), lambda lm: awq_model(lm, calibration, BITS, GROUP, clip=False)),
    "salient: float32": perplexity(with_salient_channels(fresh_model()), val_tokens)}
for method, quantize_with in METHODS.items():
    extra[f"salient: {method}"] = perplexity_after(with_salient_channels(fresh_model()),
                                                   lambda lm: quantize_with(lm, BITS, GROUP))
print(f"at {MAIN}:")
for name, ppl in extra.items():
    print(f"  {name:<32} {ppl:8.2f}")
print(f"on the course model: rounding {results[f'round to nearest, {MAIN}']['ppl']:.2f}, AWQ's scales alone "
      f"{extra['AWQ, scales only (no clipping)']:.2f}, with the clipping search {results[f'AWQ, {MAIN}']['ppl']:.2f}")
print(f"with salient channels: rounding loses {extra['salient: round to nearest'] - extra['salient: float32']:+.2f} "
      f"perplexity, AWQ {extra['salient: AWQ'] - extra['salient: float32']:+.2f}, "
      f"GPTQ {extra['salient: GPTQ'] - extra['salient: float32']:+.2f}")

fig, ax = plt.subplots(figsize=(8, 4.6))
for k, method in enumerate(METHODS):
    rows = [results[f"{method}, {setting}"] for setting in SETTINGS]
    rows.sort(key=lambda r: r["bits"])
    ax.plot([r["bits"] for r in rows], [r["ppl"] for r in rows], label=method, **series_style(k))
    for r in rows:
        ax.annotate(r["setting"], (r["bits"], r["ppl"]), textcoords="offset points", xytext=(5, 4), fontsize=7)
ax.axhline(base, color="gray", linestyle="--", label=f"float32 (32 bits), {base:.1f}")
label_axes(ax, "bits per weight of the quantized layers (codes, scales, zero points)",
           "validation perplexity", "Rounding, GPTQ and AWQ on the course model")
ax.grid(alpha=0.3)
legend_outside(ax)
save_figure(fig, "16_perplexity_vs_bits")

# %% [markdown]
# ## 5. Take your model home: GGUF
# llama.cpp runs one file. `export_gguf` writes ours in its GPT-2 architecture: its tensor
# names (`token_embd`, `blk.N.attn_qkv`, ...), the hyperparameters under `gpt2.*`, and the
# tokenizer under `tokenizer.ggml.*`: every token in GPT-2's byte-to-character spelling, the merges
# as "left right" strings, special tokens typed CONTROL (so `<|endoftext|>` is never split), and
# the *pre-tokenizer*, the name of the regular expression that splits text before the merges.
#
# careful: llama.cpp's own converter (from a Hugging Face folder) does not read that pattern; it
# recognises a pre-tokenizer by hashing how a fixed test text tokenizes, and refuses a vocabulary
# it has never seen ("BPE pre-tokenizer was not recognized"), which a freshly trained one always
# is. Our writer knows which pattern the tokenizer splits with and writes its llama.cpp name
# itself: "gpt-2" for GPT-2's pattern, "llama-bpe" for the GPT-4 pattern the course tokenizer uses
# (Llama 3 splits with the same one).
#
# Three files: float32, Q8_0 (blocks of 32 weights with one float16 scale: 8.5 bits per
# weight), and the GPTQ model of section 4 with its own grid kept in Q4_1 (each group's scale
# and offset rounded to float16, the codes unchanged). Then the `gguf` package's reader, which
# knows nothing of our classes, looks inside, and `load_gguf` reads each file back into a GPT.

# %%
HAVE_GGUF = importlib.util.find_spec("gguf") is not None
HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None
home = {}
if not HAVE_GGUF:
    print('the gguf package is not installed (pip install -e ".[gguf]"): the GGUF section is skipped')
else:
    import gguf

    from tinygrad_llm.compress.export import export_gguf, load_gguf
    from tinygrad_llm.model.gguf import dequantize_blocks, quantize_blocks

    folder = output_dir("gguf")
    gptq_lm, gptq_grids = quantized_models[("GPTQ", MAIN)], grids_of[("GPTQ", MAIN)]
    files = {"f32": export_gguf(model, tokenizer, folder / "course_model-f32.gguf", "f32"),
             "q8_0": export_gguf(model, tokenizer, folder / "course_model-q8_0.gguf", "q8_0"),
             f"GPTQ {MAIN} (Q4_1)": export_gguf(gptq_lm, tokenizer, folder / "course_model-gptq.gguf", "f32",
                                                 grids=gptq_grids)}
    reader = gguf.GGUFReader(files["f32"])
    print(f"{files['f32'].name}: GGUF version {reader.fields['GGUF.version'].contents()}, "
          f"{len(reader.fields)} keys, {len(reader.tensors)} tensors")
    for key in ("general.architecture", "gpt2.context_length", "gpt2.embedding_length", "gpt2.block_count",
                "gpt2.attention.head_count", "tokenizer.ggml.model", "tokenizer.ggml.pre",
                "tokenizer.ggml.eos_token_id"):
        print(f"  {key:<30} {reader.fields[key].contents()!r}")
    token_list = reader.fields["tokenizer.ggml.tokens"].contents()
    token_types = reader.fields["tokenizer.ggml.token_type"].contents()
    print(f"  {'tokenizer.ggml.tokens':<30} {len(token_list)} tokens, e.g. {token_list[300:304]} "
          f"(GPT-2 spells a space as 'Ġ'); token {tokenizer.eot_id} is {token_list[tokenizer.eot_id]!r}, "
          f"type {token_types[tokenizer.eot_id]} (CONTROL)")
    gptq_reader = gguf.GGUFReader(files[f"GPTQ {MAIN} (Q4_1)"])
    for tensor in gptq_reader.tensors[:8]:
        print(f"  {tensor.name:<24} {tensor.tensor_type.name:<5} shape (ne) {tensor.shape.tolist()}")

    # the Q8_0 block by hand: d = max|x| / 127 in float16, q = round(x / d), 2 + 32 bytes
    row = pretrained["blocks.0.attn.qkv.weight"][:1, :32]
    d = np.abs(row).max() / np.float32(127)
    q = (np.sign(row / d) * np.floor(np.abs(row / d) + 0.5)).astype(np.int8)
    by_hand_block = np.concatenate([np.float16(d).reshape(1).view(np.uint8), q.reshape(-1).view(np.uint8)])
    same_block = np.array_equal(by_hand_block, quantize_blocks(row, "q8_0").reshape(-1)) and \
        np.array_equal(quantize_blocks(row, "q8_0"), gguf.quants.quantize(row, gguf.GGMLQuantizationType.Q8_0))
    print(f"one Q8_0 block by hand, ours and gguf.quants: the same 34 bytes: {same_block}")

    prompt_ids = tokenizer.encode(PROMPT)
    sample = f"{PROMPT} x in 'abc':<|endoftext|>next"
    print(f"\n{'file':<22} {'bytes':>10} {'val ppl':>8}  loaded back")
    for name, path in files.items():
        loaded, loaded_tokenizer = load_gguf(path)
        source = gptq_lm if name.startswith("GPTQ") else model
        logit_change = float(np.abs(loaded(ids).data - source(ids).data).max())
        same_tokens = loaded_tokenizer.encode(sample, allowed_special="all") == \
            tokenizer.encode(sample, allowed_special="all")
        home[name] = dict(path=path, bytes=path.stat().st_size, ppl=perplexity(loaded, val_tokens),
                          logit_change=logit_change, same_tokens=same_tokens, model=loaded)
        print(f"{name:<22} {format_bytes(home[name]['bytes']):>10} {home[name]['ppl']:>8.2f}  largest logit "
              f"change {logit_change:.1e}, same tokenizer: {same_tokens}")
    # the Q4_1 file holds GPTQ's codes exactly: its weights differ only by the float16 scales
    layer = f"blocks.0.{DEFAULT_TARGETS[0]}"
    grid = gptq_grids[layer]
    half = lambda a: np.repeat(a.astype(np.float16).astype(np.float32), grid.group_size, axis=1)
    from_grid = (grid.codes + 8) * half(grid.scale) + half(-grid.scale * (grid.zero_point + 8.0))
    q4_1_exact = np.allclose(home[f"GPTQ {MAIN} (Q4_1)"]["model"].get_submodule(layer).weight.data, from_grid,
                             rtol=0, atol=1e-6)
    print(f"{layer} in the Q4_1 file: GPTQ's codes with float16 scales: {q4_1_exact}")

# %% [markdown]
# ### Running it in llama.cpp
# `llama-cpp-python` builds llama.cpp from source (minutes), so it is an optional extra
# (`pip install -e ".[llama]"`). Where it is installed, llama.cpp continues the prompt greedily
# from the float32 file, and we compare with our own greedy continuation token for token.

# %%
llama_agrees = None
if HAVE_GGUF and HAVE_LLAMA:
    import llama_cpp

    from tinygrad_llm.model.generation import generate

    llm = llama_cpp.Llama(model_path=str(files["f32"]), n_ctx=config.context_length, verbose=False)
    theirs = []
    for token in llm.generate(prompt_ids, temp=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0):
        theirs.append(token)
        if len(theirs) == NEW_TOKENS:
            break
    ours = generate(model, np.array([prompt_ids]), NEW_TOKENS, temperature=0.0)[0, len(prompt_ids):].tolist()
    llama_agrees = sum(a == b for a, b in zip(theirs, ours))
    print(f"llama.cpp: {PROMPT}{tokenizer.decode(theirs)!r}")
    print(f"ours:      {PROMPT}{tokenizer.decode(ours)!r}")
    print(f"{llama_agrees} of {NEW_TOKENS} greedy tokens agree")
else:
    print("llama-cpp-python is not installed: the file is not run in llama.cpp here "
          '(pip install -e ".[llama]" builds it)')

# %% [markdown]
# ## 6. What we found
# This run's numbers are printed below from its results; the closing checks assert the claims
# marked (checked).
#
# * GPTQ is rounding plus error feedback: the plain column loop and the package's blocked one
#   give the same codes (checked). On one layer its weights are further from W than rounding's,
#   yet its outputs are closer on the calibration inputs (checked): it puts the error where the
#   inputs do not look.
# * The course model has no salient channels: no input channel of a foldable Linear is even 5
#   times louder than the median one (checked), and AWQ's search on its first layer finds little
#   to gain. Given the same function with a few channels 20 times louder, as large models have
#   them, activations and not weights say which channels matter: keeping the loudest in float
#   removes more output error than keeping those with the largest weights (checked), and AWQ's
#   scales cut the layer's rounding error several times over (checked). Both
#   re-parametrisations, ours and AWQ's fold, leave the model's logits unchanged (checked to
#   1e-9 in float64).
# * On the whole model GPTQ and AWQ beat rounding at every setting in a full run (checked), and on
#   the model with salient channels too (checked). How much of rounding's damage each removes,
#   and how int3 fares, is printed below; GPTQ, which corrects any error whatever its cause, does
#   better than AWQ on this model, with or without salient channels (checked).
# * The GGUF files load back with the same logits (float32, checked) and the same tokenizer
#   (checked); the Q4_1 file holds GPTQ's codes with float16 scales (checked), and Q8_0 costs
#   little perplexity (printed).

# %%
for setting in SETTINGS:
    rtn_increase = increase[f"round to nearest, {setting}"]
    print(f"{setting}: rounding {rtn_increase:+.2f} perplexity; GPTQ removes "
          f"{1 - increase[f'GPTQ, {setting}'] / rtn_increase:.0%} of it, AWQ "
          f"{1 - increase[f'AWQ, {setting}'] / rtn_increase:.0%}")
gptq_seconds = results[f"GPTQ, {MAIN}"]["seconds"]
awq_seconds = results[f"AWQ, {MAIN}"]["seconds"]
print(f"quantizing the whole model at {MAIN}: GPTQ {gptq_seconds:.1f} s, AWQ {awq_seconds:.1f} s")
print(f"with salient channels at {MAIN}: rounding {extra['salient: round to nearest']:.2f} (against "
      f"{results[f'round to nearest, {MAIN}']['ppl']:.2f} without them), AWQ {extra['salient: AWQ']:.2f} "
      f"({results[f'AWQ, {MAIN}']['ppl']:.2f}), GPTQ {extra['salient: GPTQ']:.2f} "
      f"({results[f'GPTQ, {MAIN}']['ppl']:.2f})")
if home:
    print(f"file sizes: float32 {format_bytes(home['f32']['bytes'])}, Q8_0 {format_bytes(home['q8_0']['bytes'])} "
          f"(perplexity {home['q8_0']['ppl'] - base:+.3f}), GPTQ in Q4_1 "
          f"{format_bytes(home[f'GPTQ {MAIN} (Q4_1)']['bytes'])}")

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
assert hessian_error < 1e-10 and ratio_error < 1e-8, "H and the Cholesky ratios must be what the text says"
assert same_gptq_codes, "GPTQ by hand and the package's blocked GPTQ must give the same codes"
assert layer_error["GPTQ"] < layer_error["round to nearest"], "GPTQ must lower the layer's output error"
assert weight_error["GPTQ"] > weight_error["round to nearest"], "while moving the weights further from W"
assert loud_change < 1e-9, "growing salient channels the AWQ way round must not change the model"
assert kept["activation"] < kept["weight"], "salient channels are found by activation, not by weight"
assert fold_change < 1e-9 and same_fold, "folding the scale into the LayerNorm must not change the model"
assert alpha > 0 and awq_gain > 2, "with salient channels AWQ's scales must cut the rounding error"
for setting, (bits, group) in SETTINGS.items():
    for method in METHODS:
        assert results[f"{method}, {setting}"]["bits"] == bits + (32 + bits) / group, "b + (32 + b) / g bits"
if not QUICK:   # the quick model is barely trained: its weights are still near their random start
    for setting in SETTINGS:
        rtn_ppl = results[f"round to nearest, {setting}"]["ppl"]
        assert results[f"GPTQ, {setting}"]["ppl"] < rtn_ppl, f"GPTQ must beat rounding at {setting}"
        assert results[f"AWQ, {setting}"]["ppl"] < rtn_ppl, f"AWQ must beat rounding at {setting}"
    assert results[f"round to nearest, int3 g{GROUPS[0]}"]["ppl"] > results[f"round to nearest, {MAIN}"]["ppl"], \
        "3 bits cost more than 4"
    assert gptq_seconds < 30, "GPTQ quantizes the course model in under 30 seconds"
    assert max(loudness.values()) < 5, "the course model has no salient channels"
    for method in ("GPTQ", "AWQ"):
        assert extra[f"salient: {method}"] < extra["salient: round to nearest"], f"{method} beats rounding there too"
    assert all(results[f"GPTQ, {setting}"]["ppl"] < results[f"AWQ, {setting}"]["ppl"] for setting in SETTINGS) and \
        extra["salient: GPTQ"] < extra["salient: AWQ"], "GPTQ beats AWQ on this model"
if HAVE_GGUF:
    assert home["f32"]["logit_change"] == 0.0, "the float32 file must give back the same logits"
    assert all(r["same_tokens"] for r in home.values()), "the tokenizer must come back the same"
    assert same_block and q4_1_exact, "our blocks are gguf's, and Q4_1 holds GPTQ's grid"
    assert home["q8_0"]["bytes"] < home["f32"]["bytes"] / 2.5 and \
        home[f"GPTQ {MAIN} (Q4_1)"]["bytes"] < home["f32"]["bytes"], "the quantized files are smaller"
    assert reader.fields["tokenizer.ggml.pre"].contents() == "llama-bpe", "the GPT-4 pattern is llama-bpe"
if llama_agrees is not None:
    assert llama_agrees == NEW_TOKENS, "llama.cpp must continue the prompt exactly as we do (float32)"
print(f"lesson 16 checks passed ({time.perf_counter() - lesson_start:.0f} s)")

# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **GPTQ's update after rounding one column.** Round column i and move the columns after it
#    to make up for the error. Edit `exercises/16_1.py`, then run `tinygrad-llm exercise check 16.1`.
# 2. **Fold AWQ's scale into a LayerNorm.** Scale a Linear's input columns and fold the inverse
#    into the LayerNorm before it. Edit `exercises/16_2.py`, then run `tinygrad-llm exercise check 16.2`.
# 3. **Predict: the bytes of a Q8_0 tensor.** Predict the bytes of a (256, 512) matrix stored as
#    Q8_0. Edit `exercises/16_3.py`, then run `tinygrad-llm exercise check 16.3`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
