# %% [markdown]
"""
# 13. Quantization, half precision, QAT and QLoRA

**The question.** The course GPT holds about a million float32 weights: 4 bytes each. How few
bits per weight can it keep before it forgets what it learned? Every method is measured by the
same three numbers: the bytes of its weights, its validation perplexity (lesson 09) and how fast
it generates (tokens per second).

**The idea.** Store a b-bit integer code per weight and one float scale per block of weights:

    symmetric:   s = max|w| / (2^(b-1) - 1),   q = round(w / s),     w ~ s q
    asymmetric:  s = (max w - min w) / (2^b - 1),   q = round(w / s) + z,   w ~ s (q - z)

Rounding errs by at most s / 2, so the block decides the error: one scale for the whole matrix
(per tensor), one per output channel (a row of W), or one per group of 32-128 weights of a row.
int8 keeps 255 levels per block and is nearly free; int4 keeps 15 and needs small groups, or
training that knows about the rounding: *quantization-aware training* (QAT) rounds in the forward
pass and lets the gradient pass the rounding straight through. Half-precision floats (bfloat16,
float16) keep 2 bytes by cutting mantissa or exponent bits instead. And *QLoRA* fine-tunes LoRA
adapters (lesson 12) on top of a frozen 4-bit base, so the base costs an eighth of its float32
memory while the adapters train.

**Builds on:** lesson 07 (the course model, `Trainer`), 09 (`perplexity`), 08 (`generate`) and
12 (`apply_lora`).
**Adds:** `tinygrad_llm.compress.quantize`: `QuantScheme`, `QuantizedTensor`, `quantize`, `dequantize`,
`pack_int4`, `unpack_int4`, `QuantizedLinear`, `QuantizedEmbedding`, `quantize_model`,
`weight_arrays`, `weight_bytes`, `model_bytes`; `tinygrad_llm.compress.calibration`: `calibrate`,
`ActivationStats`; `tinygrad_llm.compress.quantized_state`: `save_quantized`, `load_quantized`;
`tinygrad_llm.compress.qat`: `fake_quantize`, `QATLinear`, `QATEmbedding`,
`prepare_qat`, `convert_qat`; `tinygrad_llm.compress.lowprec`: `FORMATS`, `float32_to_bfloat16_bits`,
`round_to_bfloat16`, `round_to_float16`, `range_report`, `round_parameters_`;
`tinygrad_llm.compress.qlora`: `apply_qlora`; `tinygrad_llm.scale.memory`: `finetune_memory`
(lesson 12's `finetune_cost` under the name of the question it answers here).

**Run:** `python lessons/13_quantization.py` (about 2 minutes on 2 cores with lesson 07's
checkpoint) or `--quick` (a few seconds).
"""

# %%
import dataclasses
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import (GPT, AdamW, generate, no_grad, perplexity,
                          course_corpus, random_batch)
from tinygrad_llm import functional as F
from tinygrad_llm.compress.calibration import calibrate
from tinygrad_llm.model.state import CheckpointError, load_safetensors, save_safetensors
from tinygrad_llm.course import output_dir, quick_mode, save_figure
from tinygrad_llm.course.figures import label_axes, legend_outside, series_style
from tinygrad_llm.compress.lowprec import FORMATS, float32_to_bfloat16_bits, range_report, round_parameters_, round_to
from tinygrad_llm.scale.memory import finetune_memory, format_bytes
from tinygrad_llm.finetune.lora import apply_lora
from tinygrad_llm.compress.qat import convert_qat, prepare_qat
from tinygrad_llm.compress.qlora import apply_qlora
from tinygrad_llm.compress.quantize import (QuantizedEmbedding, QuantizedLinear, QuantScheme, pack_int4, quantize,
                                   quantize_model, unpack_int4, weight_arrays, weight_bytes)
from tinygrad_llm.compress.quantized_state import load_quantized, save_quantized
from tinygrad_llm.course import course_model
from tinygrad_llm.train.batches import RandomWindows
from tinygrad_llm.train.trainer import TrainConfig, Trainer

# %% [markdown]
# ## Settings (quick mode shrinks everything for smoke tests)

# %%
SEED = 0
QUICK = quick_mode()
GROUP_SIZES = (8, 16, 32) if QUICK else (32, 64, 128)   # must divide every row (d_model = 32 when quick)
CALIBRATION_BATCHES = 2 if QUICK else 4                  # batches of training windows, batch size 8
GEN_TOKENS = 16 if QUICK else 64                         # greedy tokens generated per speed measurement
GEN_REPEATS = 1 if QUICK else 3                          # the median of these runs counts (the machine is shared)
QAT_SCHEME = QuantScheme(bits=4, granularity="channel")  # the int4 model QAT tries to repair
QAT_STEPS, QAT_LR = (8, 3e-5) if QUICK else (100, 3e-5)
QLORA_STEPS, QLORA_LR, QLORA_RANK = (8, 3e-3, 4) if QUICK else (30, 3e-3, 8)
QLORA_TARGETS = ("attn.qkv", "attn.proj", "mlp.up", "mlp.down")
INT4_BASE = QuantScheme(bits=4, granularity="group", group_size=GROUP_SIZES[1])
BATCH_SIZE = 4 if QUICK else 8
VAL_TOKENS = 4096 if QUICK else None                     # None: the whole validation split

rng = np.random.default_rng(SEED)
lesson_start = time.perf_counter()

# %% [markdown]
# ## 1. One weight matrix, by hand
# The first attention's query/key/value projection. Symmetric absmax per tensor in four lines of
# NumPy, then the package's `quantize`, which must give the same codes; then the other schemes on
# the same matrix. The error of each weight is at most half a step (s / 2); what differs between
# schemes is the step.

# %%
model, tokenizer = course_model(QUICK)
corpus = course_corpus(QUICK)
pretrained = {name: array.copy() for name, array in model.state_dict().items()}
config = model.config
val_tokens = corpus.val if VAL_TOKENS is None else corpus.val[:VAL_TOKENS]   # the same for every row


def fresh_model(dropout: float | None = None) -> GPT:
    """A new copy of the pretrained weights (every method starts from its own), in eval mode."""
    gpt = GPT(config if dropout is None else dataclasses.replace(config, dropout=dropout),
              rng=np.random.default_rng(SEED))
    gpt.load_state_dict(pretrained)
    return gpt.eval()


W = pretrained["blocks.0.attn.qkv.weight"]                       # (3C, C) float32
s = np.float32(np.float64(np.abs(W).max()) / 127)               # one float32 scale for the whole matrix
# careful: divide in float64, as `quantize` does; a float32 quotient can land on a .5 and round
# the other way
q = np.clip(np.rint(W.astype(np.float64) / s), -127, 127).astype(np.int8)   # codes in -127..127
W_hat = s * q.astype(np.float32)
by_hand_error = float(np.abs(W - W_hat).max())
package = quantize(W, QuantScheme(8, "tensor"))
same_codes = np.array_equal(package.int_codes(), q)
print(f"W {W.shape}: max|W| = {np.abs(W).max():.4f}, s = max|W| / 127 = {s:.2e}; "
      f"max error {by_hand_error:.2e} <= s/2 = {s / 2:.2e}; package codes identical: {same_codes}")

demo_schemes = [QuantScheme(8, "tensor"), QuantScheme(8, "channel"), QuantScheme(8, "channel", symmetric=False),
                QuantScheme(4, "tensor"), QuantScheme(4, "channel")] + \
               [QuantScheme(4, "group", group_size=g) for g in GROUP_SIZES]
print(f"\n{'scheme':<22} {'bytes':>9} {'bits/weight':>11} {'max error':>10} {'RMS error / RMS W':>18}")
demo_errors = {}
for scheme in demo_schemes:
    qt = quantize(W, scheme)
    error = W - qt.dequantize()
    demo_errors[scheme.name] = float(np.sqrt(np.mean(error ** 2)) / np.sqrt(np.mean(W ** 2)))
    print(f"{scheme.name:<22} {qt.nbytes:>9,} {8 * qt.nbytes / W.size:>11.2f} {np.abs(error).max():>10.2e} "
          f"{demo_errors[scheme.name]:>18.4f}")
print(f"{'float32':<22} {W.nbytes:>9,} {32:>11.2f}")

codes = np.array([-7, 3, 0, 7, -1], dtype=np.int8)
packed = pack_int4(codes)
print(f"\nint4 codes {codes.tolist()} + 8 = nibbles {(codes + 8).tolist()}; two per byte: "
      f"{[f'0x{b:02X}' for b in packed]} (first of a pair in the low bits); unpacked: "
      f"{unpack_int4(packed, codes.size).tolist()}")

# %% [markdown]
# Per channel wins over per tensor because the rows of W have different ranges: with one scale,
# the row with the largest weight sets the step for all of them. The asymmetric variant spends
# all 256 codes on [min, max] of each row instead of a range symmetric about 0, at the price of a
# zero point per row. Each scale is a float32 (4 bytes): per channel adds 4 bytes per row of 128
# weights, a group of 32 adds 1 bit per weight.
#
# ## 2. Where the ranges are: weights, activations, outliers
# `calibrate` runs the model on a few batches of training text and records, at the input of
# every Linear, the largest |x| overall and per input channel. A channel whose range is far above
# the others (an *outlier* channel) hurts activation quantization with one scale per tensor:
# every other channel then gets only a few of the 255 levels. Large language models grow such
# channels (LLM.int8(), SmoothQuant); our small model has mild ones, a few times the median.

# %%
T = config.context_length
calibration_batches = [random_batch(corpus.train, 8, T, rng)[0] for _ in range(CALIBRATION_BATCHES)]
stats = calibrate(fresh_model(), calibration_batches)
layer_names = list(stats)
weight_absmax = {name: float(np.abs(pretrained[f"{name}.weight"]).max()) for name in layer_names}
weight_ratio = {name: weight_absmax[name] / float(np.sqrt(np.mean(pretrained[f"{name}.weight"] ** 2)))
                for name in layer_names}
print(f"{'layer':<20} {'max|w|':>7} {'max|w| / RMS':>12} {'max|x|':>7} {'channel max / median':>21}")
for name in layer_names:
    print(f"{name:<20} {weight_absmax[name]:>7.3f} {weight_ratio[name]:>12.1f} {stats[name].absmax:>7.2f} "
          f"{stats[name].outlier_ratio:>21.2f}")
widest_weights = max(layer_names, key=lambda n: weight_ratio[n])
widest_inputs = max(layer_names, key=lambda n: stats[n].absmax)
most_outlying = max(layer_names, key=lambda n: stats[n].outlier_ratio)
print(f"largest weight range (relative to RMS): {widest_weights}; largest input range: {widest_inputs}; "
      f"strongest outlier channel: {most_outlying} ({stats[most_outlying].outlier_ratio:.1f}x the median channel)")

fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
short = [n.replace("blocks.", "b").replace("attn.", "").replace("mlp.", "") for n in layer_names]
positions = np.arange(len(layer_names))
axes[0].bar(positions, [weight_ratio[n] for n in layer_names], color="C0")
label_axes(axes[0], "Linear layer", "max |w| / RMS(w)")
axes[0].set_title("Weight range of each Linear")
axes[1].bar(positions, [stats[n].absmax for n in layer_names], color="C1", label="max |x|")
axes[1].scatter(positions, [np.median(stats[n].channel_absmax) for n in layer_names], color="k",
                zorder=3, label="median channel's max |x|")
label_axes(axes[1], "Linear layer", "|input|")
axes[1].set_title(f"Input range of each Linear ({CALIBRATION_BATCHES} calibration batches)")
axes[1].legend(fontsize=8)
for ax in axes[:2]:
    ax.set_xticks(positions)
    ax.set_xticklabels(short, rotation=90, fontsize=8)
channel_range = stats[most_outlying].channel_absmax
axes[2].bar(np.arange(channel_range.size), channel_range, width=1.0, color="C2")
axes[2].axhline(np.median(channel_range), color="k", linestyle=":", label="median")
axes[2].set_xlabel("input channel")
axes[2].set_ylabel("max |x| over the calibration tokens")
axes[2].set_title(f"Per-channel input range of {most_outlying}")
axes[2].legend(fontsize=8)
save_figure(fig, "13_outliers")

# %% [markdown]
# ## 3. The whole model: bytes, perplexity, speed
# `quantize_model` swaps every Linear and Embedding for its quantized version, in place. The
# output head is tied to the token embedding (lesson 06): it has no module of its own and reads
# `token_embedding.weight`, which a `QuantizedEmbedding` answers with its dequantized table. So
# the shared matrix is quantized once, with one scale per row, and a row is both a token's vector
# and that token's output channel.
#
# **What "weight bytes" counts:** the weight matrices of the Linear and Embedding layers (token
# and position embeddings, and the four Linear layers of every block): float32 values, or integer
# codes plus their float32 scales and int8 zero points. Biases and LayerNorm parameters (float32
# in every row) are left out of it; the file sizes of section 4 include them.
#
# Perplexity is measured on the whole validation split (its first 4,096 tokens in quick mode),
# the same tokens for every row. Speed is greedy generation with the KV cache. careful: NumPy has
# no int8 matrix product, so a quantized layer dequantizes its weight on every call, which costs
# time here; hardware with int8 or int4 kernels reads 4-8x fewer bytes per token and generates
# faster instead. The bfloat16 and float16 rows store 2 bytes per weight and compute in float32
# (emulation).

# %%
PROMPT = val_tokens[:16].astype(np.int64)


def tokens_per_second(lm) -> float:
    seconds = []
    for _ in range(GEN_REPEATS):
        start = time.perf_counter()
        generate(lm, PROMPT, GEN_TOKENS, temperature=0)
        seconds.append(time.perf_counter() - start)
    return GEN_TOKENS / float(np.median(seconds))   # the median: one timing on a shared machine is noise


def measure(name: str, lm, nbytes: int | None = None) -> dict:
    row = dict(bytes=weight_bytes(lm) if nbytes is None else nbytes, ppl=perplexity(lm, val_tokens),
               speed=tokens_per_second(lm))
    results[name] = row
    print(f"{name:<40} {format_bytes(row['bytes']):>10} {row['ppl']:>8.2f} {row['speed']:>7.0f} tok/s")
    return row


results: dict[str, dict] = {}
print(f"{'':<40} {'weights':>10} {'val ppl':>8} {'speed':>13}")
float_model = fresh_model()
generate(float_model, PROMPT, 4, temperature=0)   # warm-up: the first call pays one-time costs
float_bytes = weight_bytes(float_model)
measure("float32", float_model)
for name in ("bfloat16", "float16"):
    lm = fresh_model()
    round_parameters_(lm, name)
    measure(f"{name} weights", lm, nbytes=float_bytes // 2)
SCHEMES = {"int8 per-tensor": QuantScheme(8, "tensor"), "int8 per-channel": QuantScheme(8, "channel"),
           "int8 per-channel asym": QuantScheme(8, "channel", symmetric=False),
           "int4 per-tensor": QuantScheme(4, "tensor"), "int4 per-channel": QAT_SCHEME}
SCHEMES.update({f"int4 group-{g}": QuantScheme(4, "group", group_size=g) for g in reversed(GROUP_SIZES)})
SCHEMES[f"int4 group-{GROUP_SIZES[0]} asym"] = QuantScheme(4, "group", symmetric=False, group_size=GROUP_SIZES[0])
quantized_models = {}
for name, scheme in SCHEMES.items():
    lm = fresh_model()
    replaced = quantize_model(lm, scheme)
    quantized_models[name] = lm
    measure(name, lm)
for mode in ("dynamic", "static"):
    lm = fresh_model()
    quantize_model(lm, QuantScheme(8, "channel"), activations=mode, calibration=stats)
    measure(f"W8A8 per-channel, {mode}", lm)
print(f"quantized {len(replaced)} layers: {', '.join(replaced[:3])}, ...; the head reads the "
      f"{type(quantized_models['int8 per-channel'].token_embedding).__name__}")

# The accounting behind the int8 size ratio, array by array: one byte per weight, a float32 scale per row.
int8_model = quantized_models["int8 per-channel"]
n_weights = sum(a.size for a in weight_arrays(float_model))
n_rows = sum(m.weight_shape[0] for m in int8_model.modules() if isinstance(m, (QuantizedLinear, QuantizedEmbedding)))
int8_ratio = float_bytes / results["int8 per-channel"]["bytes"]
print(f"\nweights: {n_weights:,} float32 = {float_bytes:,} bytes; int8 per channel: {n_weights:,} codes + "
      f"{n_rows:,} float32 scales = {results['int8 per-channel']['bytes']:,} bytes, {int8_ratio:.4f}x smaller "
      f"(4 n / (n + 4 rows) with {n_weights / n_rows:.0f} weights per row)")
with no_grad():
    every_row = int8_model.token_embedding(np.arange(config.vocab_size)).data       # (V, C) lookups
tied_once = int8_model.head is None and isinstance(int8_model.token_embedding, QuantizedEmbedding) and \
    np.array_equal(int8_model.output_weight().data, every_row)
print(f"tied head: the head's {int8_model.output_weight().shape} matrix equals the quantized table's "
      f"lookups: {tied_once}")

# %% [markdown]
# With W8A8 the input of every Linear is quantized to int8 too, and for symmetric per-channel
# weights the product runs on the integer codes: y = s_x s_w (qx . qw) + b. "dynamic" measures
# one scale per token as it goes; "static" uses one scale per layer from the calibration batches
# of section 2, and clips whatever exceeds the calibrated range. The integer sums are exact: each
# term is at most 127 x 127 and a row has at most 512 of them, about 8.3 million, below float32's
# 2^24 = 16.8 million up to which every integer is representable.
#
# ## 4. Quantized checkpoints
# `save_quantized` writes the int8 codes (int4: two per byte, as uint8) and the scales into the
# safetensors file of lesson 07, with the scheme of every layer in the metadata, so
# `load_quantized` rebuilds the same layers. Only the biases and LayerNorm parameters stay
# float32. A file whose tensors do not fit the recorded scheme is refused with every problem
# named.

# %%
checkpoint_dir = output_dir("quantized")
float_path = checkpoint_dir / "13_float32.safetensors"
save_safetensors(float_path, pretrained)
file_sizes = {"float32": float_path.stat().st_size}
round_trip_exact = {}
probe = np.stack([val_tokens[:T], val_tokens[T:2 * T]])   # two windows of validation text
for name in ("int8 per-channel", f"int4 group-{GROUP_SIZES[1]}"):
    path = checkpoint_dir / f"13_{name.replace(' ', '_')}.safetensors"
    save_quantized(quantized_models[name], path)
    loaded, metadata = load_quantized(path)
    file_sizes[name] = path.stat().st_size
    with no_grad():
        round_trip_exact[name] = np.array_equal(loaded(probe).data, quantized_models[name](probe).data)
    print(f"{name:<18} file {format_bytes(file_sizes[name]):>10} ({file_sizes['float32'] / file_sizes[name]:.2f}x "
          f"smaller than float32's {format_bytes(file_sizes['float32'])}); qkv codes stored as "
          f"{loaded.blocks[0].attn.qkv.qweight.dtype}; reloaded logits bit-identical: {round_trip_exact[name]}")

tensors, metadata = load_safetensors(path)
tampered = {key: np.array(value) for key, value in tensors.items()}
tampered["blocks.0.mlp.up.scale"][0] = -1.0                   # a negative scale: not something quantize writes
bad_path = checkpoint_dir / "13_tampered.safetensors"
save_safetensors(bad_path, tampered, metadata)
try:
    load_quantized(bad_path)
    refused = False
except CheckpointError as error:
    refused = True
    print(f"tampered file refused: {str(error).replace(str(bad_path), bad_path.name)}")
try:
    load_quantized(float_path)
    refused_float = False
except CheckpointError as error:
    refused_float = True
    print(f"float checkpoint refused: {str(error).replace(str(float_path), float_path.name)[:110]}...")

# %% [markdown]
# ## 5. Half precision: bfloat16 and float16
# Both keep 16 bits, spent differently. bfloat16 is the top half of a float32: its 8 exponent
# bits give float32's whole range, its 7 mantissa bits about 2-3 significant digits. float16
# keeps 10 mantissa bits (3-4 digits) but 5 exponent bits: nothing above 65504, nothing below
# 6e-8. NumPy has float16; bfloat16 we make by rounding the float32 bits to the nearest even
# upper half (`float32_to_bfloat16_bits`).

# %%
print(f"{'format':<9} {'exp':>3} {'mant':>4} {'largest':>9} {'min normal':>10} {'min subnormal':>13} "
      f"{'epsilon':>8} {'digits':>6}")
for fmt in FORMATS.values():
    print(f"{fmt.name:<9} {fmt.exponent_bits:>3} {fmt.mantissa_bits:>4} {fmt.max_finite:>9.3g} "
          f"{fmt.min_normal:>10.3g} "
          f"{fmt.min_subnormal:>13.3g} {fmt.epsilon:>8.2g} {fmt.decimal_digits:>6.1f}")
examples = np.array([0.1, 1 / 3, 300.7, 65504, 70000, 1e-6, 1e-8], dtype=np.float32)
print(f"\n{'value':>12} {'float32 bits':>12} {'bf16 bits':>9} {'bfloat16':>12} {'float16':>12}")
for value, bits in zip(examples, float32_to_bfloat16_bits(examples)):
    print(f"{value:>12.6g} {int(value.view(np.uint32)):#010x} {int(bits):#06x} "
          f"{round_to(value[None], 'bfloat16')[0]:>12.6g} {round_to(value[None], 'float16')[0]:>12.6g}")
weights = np.concatenate([a.reshape(-1) for a in weight_arrays(float_model)])
weight_rounding = {name: range_report(weights, name) for name in ("bfloat16", "float16")}
print("\nrounding every weight: " + "; ".join(
    f"{name} max relative error {r['max_relative_error']:.1e} (half of epsilon: {FORMATS[name].epsilon / 2:.1e})"
    for name, r in weight_rounding.items()))

# %% [markdown]
# Real activations of the course model fit float16 easily: LayerNorm keeps them of order 1, and
# the logits stay in the tens. What overflows is an *intermediate*: softmax computed naively,
# exp(z) / sum exp(z), needs e^z, and e^z > 65504 as soon as z > ln 65504 = 11.1. Subtracting the
# row's maximum first (as `functional.softmax` does) keeps every e^z <= 1. bfloat16 has room for
# e^88. The other end is the gradient: many entries are below float16's smallest subnormal and
# flush to zero, which is why float16 training multiplies the loss (and so every gradient) by a
# large factor before backward, and bfloat16 training does not need to.

# %%
batch, targets = random_batch(corpus.train, 4, T, rng)
with no_grad():
    logits = float_model(batch).data                          # (B, T, V) real activations
with np.errstate(over="ignore", invalid="ignore"):
    naive16 = np.exp(logits.astype(np.float16))               # float16 arithmetic
    softmax16 = naive16 / naive16.sum(axis=-1, keepdims=True)
    stable16 = np.exp((logits - logits.max(axis=-1, keepdims=True)).astype(np.float16))
overflowed = int(np.isinf(naive16).sum())
nan_rows = int(np.isnan(softmax16).any(axis=-1).sum())
bf16_exp_finite = bool(np.all(np.isfinite(round_to(np.exp(logits), "bfloat16"))))
print(f"logits of {batch.shape[0]} x {batch.shape[1]} positions: max {logits.max():.1f}; float16 e^z overflows "
      f"in {overflowed} entries, {nan_rows} of {batch.shape[0] * batch.shape[1]} softmax rows become NaN; "
      f"max-subtracted: all finite {bool(np.all(np.isfinite(stable16)))}; "
      f"e^z in bfloat16 all finite: {bf16_exp_finite}")

grad_model = fresh_model()
_, loss = grad_model(batch, targets)
loss.backward()
grads = np.concatenate([p.grad.reshape(-1) for p in grad_model.parameters() if p.grad is not None])
LOSS_SCALE = 1024.0
gradient_underflow = {"float16": range_report(grads, "float16")["underflow"],
                      "bfloat16": range_report(grads, "bfloat16")["underflow"],
                      f"float16, loss x {LOSS_SCALE:g}": range_report(grads * LOSS_SCALE, "float16")["underflow"]}
print(f"gradients: {grads.size:,} entries, smallest nonzero |g| {np.abs(grads[grads != 0]).min():.1e}; "
      "flushed to zero: " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in gradient_underflow.items()))

# %% [markdown]
# ## 6. Quantization-aware training
# int4 per channel costs the most perplexity among the per-channel rows. QAT fine-tunes the float
# weights W while the forward pass computes with fq(W) = dequantize(quantize(W)): the loss sees
# the rounding, and the weights move to where rounding hurts less. round() has a zero derivative
# almost everywhere, so the backward pass treats it as the identity (the straight-through
# estimator): dL/dW = dL/dfq(W). The tied embedding trains through both of its uses: a
# `QATEmbedding` answers `.weight` with fq(W), and the lookup and the head both read it.
#
# What to train on? The course model already sits near its best validation perplexity, and a
# few more steps on the labels of the training text move it away from there (in our runs the
# float model itself got worse). The quantized model should not learn anything new, only behave
# like the float one: so its target at every position is the float model's whole next-token
# distribution p instead of the one observed token,
#
#     L = -sum_v p_v log q_v = KL(p || q) + H(p),     q: the fake-quantized model's distribution,
#
# whose gradient with respect to the logits is q - p: zero once the two agree. (Lesson 15 makes
# this, *distillation*, its subject.) The reference is section 3's post-training quantization
# (PTQ) of the same float weights: QAT has nothing but the float model to learn from.

# %%
QAT_RNG = np.random.default_rng(SEED + 1)


def imitation_loss(student, batch):
    """L = -sum p log q on a batch of windows, with the KL(p || q) = L - H(p) it stands for."""
    inputs, _ = batch
    with no_grad():
        p = F.softmax(float_model(inputs), axis=-1).data                 # (B, T, V) float model
    entropy = float(-(p * np.log(np.maximum(p, 1e-30))).sum(axis=-1).mean())
    loss = -(F.log_softmax(student(inputs), axis=-1) * p).sum(axis=-1).mean()
    return loss, {"kl": loss.item() - entropy}


def train_to_imitate(student, steps: int, lr: float) -> list[float]:
    """AdamW steps on the imitation loss over random training windows (lesson 07's `Trainer` with
    this objective, no weight decay); returns KL(p || q) per step."""
    config = TrainConfig(steps=steps, batch_size=BATCH_SIZE, learning_rate=lr, min_learning_rate=lr / 10,
                         warmup_steps=max(1, steps // 8), weight_decay=0.0, grad_clip=1.0,
                         eval_interval=10 ** 6, log_interval=10 ** 6)
    trainer = Trainer(student, config=config, log=None, objective=imitation_loss,
                      batches=RandomWindows(corpus.train, T, QAT_RNG),
                      optimizer=AdamW(student.parameters(), lr=lr, weight_decay=0.0))
    history = trainer.train()
    student.eval()
    return history.terms["kl"]


qat_model = fresh_model(dropout=0.0)      # no dropout: the student should copy the teacher exactly
prepare_qat(qat_model, QAT_SCHEME)
qat_start = time.perf_counter()
qat_kl = train_to_imitate(qat_model, QAT_STEPS, QAT_LR)
qat_seconds = time.perf_counter() - qat_start
with no_grad():
    fake_logits = qat_model(probe).data
convert_qat(qat_model)
quantize_model(qat_model, QAT_SCHEME)
with no_grad():
    qat_matches = np.array_equal(qat_model(probe).data, fake_logits)
print(f"QAT: {QAT_STEPS} steps in {qat_seconds:.0f} s; KL(float || int4 model) per token, averaged over the "
      f"first and the last 10 steps: {np.mean(qat_kl[:10]):.4f} -> {np.mean(qat_kl[-10:]):.4f} nats")
print(f"the converted int4 model computes exactly what QAT trained: {qat_matches}")
print(f"{'':<40} {'weights':>10} {'val ppl':>8} {'speed':>13}")
measure("int4 per-channel, QAT", qat_model)
print(f"reference: int4 per-channel PTQ of the same float weights {results['int4 per-channel']['ppl']:.2f}, "
      f"float32 {results['float32']['ppl']:.2f}")

# %% [markdown]
# ## 7. QLoRA: LoRA on a frozen int8 or int4 base
# A task for the adapters: text the model has never seen. The validation documents are split in
# two halves; the adapters (rank 8 on every Linear of every block, rank 4 in quick mode) train on
# the first and are scored on the second. Three bases with the same adapters and recipe: float32
# (LoRA, as in lesson 12), int8 per channel and int4 groups (QLoRA). The base's codes never
# change; only A and B get gradients and AdamW state. Memory while fine-tuning, activations aside,
# is counted from the arrays each model holds (`finetune_memory`).

# %%
half = len(val_tokens) // 2
adapt_tokens, held_out = val_tokens[:half], val_tokens[half:]
qlora_config = TrainConfig(steps=QLORA_STEPS, batch_size=BATCH_SIZE, learning_rate=QLORA_LR,
                           min_learning_rate=QLORA_LR / 10, warmup_steps=max(1, QLORA_STEPS // 8), weight_decay=0.0,
                           eval_interval=10 ** 6, eval_batches=1, log_interval=10 ** 6, seed=SEED)
qlora = {}
for name, scheme in (("LoRA, float32 base", None), ("QLoRA, int8 per-channel base", QuantScheme(8, "channel")),
                     (f"QLoRA, int4 group-{INT4_BASE.group_size} base", INT4_BASE)):
    lm = fresh_model()
    if scheme is None:
        apply_lora(lm, QLORA_TARGETS, r=QLORA_RANK, rng=np.random.default_rng(SEED))
    else:
        apply_qlora(lm, scheme, QLORA_TARGETS, r=QLORA_RANK, rng=np.random.default_rng(SEED))
    qkv_codes = lm.blocks[0].attn.qkv.qweight if scheme is not None else None   # the first qkv's codes
    codes_before = None if qkv_codes is None else qkv_codes.copy()
    before = perplexity(lm, held_out)
    start = time.perf_counter()
    Trainer(lm, adapt_tokens, None, qlora_config, log=None).train()
    seconds = (time.perf_counter() - start) / QLORA_STEPS
    with_grad = {n for n, p in lm.named_parameters() if p.grad is not None}
    qlora[name] = dict(before=before, after=perplexity(lm.eval(), held_out), memory=finetune_memory(lm),
                       seconds=seconds, only_adapters=bool(with_grad) and all(".lora." in n for n in with_grad),
                       base_unchanged=scheme is None or (qkv_codes.dtype == codes_before.dtype
                                                          and np.array_equal(qkv_codes, codes_before)))
print(f"{'':<32} {'held-out ppl':>19} {'frozen base':>12} {'adapters':>9} {'grads':>9} {'AdamW':>9} "
      f"{'total':>10} {'s/step':>6}")
for name, r in qlora.items():
    m = r["memory"]
    print(f"{name:<32} {r['before']:>8.2f} -> {r['after']:>7.2f} {format_bytes(m.frozen_bytes):>12} "
          f"{format_bytes(m.trainable_bytes):>9} {format_bytes(m.gradient_bytes):>9} "
          f"{format_bytes(m.optimizer_bytes):>9} {format_bytes(m.total_bytes):>10} {r['seconds']:>6.2f}")
print("only the adapters got gradients: " + ", ".join(str(r["only_adapters"]) for r in qlora.values())
      + "; quantized codes unchanged: " + ", ".join(str(r["base_unchanged"]) for r in qlora.values()))

# %% [markdown]
# ## 8. The table, and size against perplexity

# %%
reference = results["float32"]
print(f"{'method':<40} {'weight bytes':>12} {'smaller':>8} {'val ppl':>8} {'vs float':>9} {'gen tok/s':>9}")
for name, r in results.items():
    print(f"{name:<40} {format_bytes(r['bytes']):>12} {reference['bytes'] / r['bytes']:>7.2f}x {r['ppl']:>8.2f} "
          f"{100 * (r['ppl'] / reference['ppl'] - 1):>+8.2f}% {r['speed']:>9.0f}")
print(f"({time.perf_counter() - lesson_start:.0f} s since the start of the lesson)")

fig, ax = plt.subplots(figsize=(11, 5), layout="constrained")
for k, (name, r) in enumerate(results.items()):
    ax.scatter(r["bytes"] / 1024, r["ppl"], s=50, **series_style(k), label=name)  # a colour and marker per method
ax.axhline(1.01 * reference["ppl"], color="gray", linestyle=":", label="float32 perplexity + 1%")
ax.set_xscale("log")
label_axes(ax, "weight bytes (KiB, log scale)", "validation perplexity",
           "Smaller weights against perplexity (course model)")
ax.grid(alpha=0.3)
legend_outside(ax, fontsize=7)
save_figure(fig, "13_size_vs_perplexity")

# %% [markdown]
# ## 9. What we found
# This run's numbers are printed below, from its results; the closing checks assert the claims
# marked (checked), in a full run where the model is trained enough to have structure to lose.
#
# * int8 is nearly free: per-channel int8 stays within 1% of float32 perplexity (checked) at
#   close to 4x fewer weight bytes (at least 3.9x, checked: one byte per weight plus a float32
#   scale per row). This small model has no strong outliers (the ratios of section 1), so even
#   one scale per tensor works, and W8A8, with int8 activations too, costs little (checked).
# * int4 is where the block matters: every int4 scheme costs more than int8 (checked), and
#   groups beat one scale per tensor (checked), at about half of int8's bytes (printed below).
# * bfloat16 and float16 weights cost little here. float16's danger is range: naive softmax
#   overflows on the real logits, and a visible share of the gradient entries flush to zero
#   unless the loss is scaled up first (checked).
# * QAT, training through the rounding to imitate the float model, lowers the KL divergence to
#   it and the perplexity cost of int4 per channel (checked).
# * QLoRA trains the same adapters on a frozen quantized base that is several times smaller
#   (checked); how close it comes to LoRA on the float32 base is printed below. Quantized
#   generation is slower in NumPy, which dequantizes every weight at every step; hardware with
#   int8 or int4 kernels reads fewer bytes per token instead.

# %%
for name, r in results.items():
    print(f"  {name:<40} {reference['bytes'] / r['bytes']:5.2f}x fewer weight bytes, perplexity "
          f"{100 * (r['ppl'] / reference['ppl'] - 1):+6.2f}% against float32")
print(f"QAT: KL to the float model {np.mean(qat_kl[:10]):.4f} over the first 10 steps, "
      f"{np.mean(qat_kl[-10:]):.4f} over the last 10")
print(f"float16 gradients flushed to zero: {gradient_underflow['float16']:.1%}; with the loss scaled by "
      f"{LOSS_SCALE:g}: {gradient_underflow[f'float16, loss x {LOSS_SCALE:g}']:.1%}")
for name, r in qlora.items():
    print(f"  {name:<32} held-out perplexity {r['before']:.1f} -> {r['after']:.1f}, fine-tuning memory "
          f"{r['memory'].total_bytes / 2**20:.1f} MiB (frozen base {r['memory'].frozen_bytes / 2**20:.1f} MiB)")

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
assert same_codes and by_hand_error <= s / 2 * (1 + 1e-5), "quantize must match the by-hand absmax rounding"
assert np.array_equal(unpack_int4(packed, codes.size), codes), "int4 packing must round-trip"
assert demo_errors["int8 per-channel"] <= demo_errors["int8 per-tensor"], "per-channel scales must not be worse"
for g_small, g_large in zip(GROUP_SIZES, GROUP_SIZES[1:]):
    assert demo_errors[f"int4 group-{g_small}"] <= demo_errors[f"int4 group-{g_large}"], \
        "smaller groups, smaller error"
# Per-channel int8 adds at most 1% perplexity and (in a full run) shrinks the weight bytes at least 3.9x.
assert results["int8 per-channel"]["ppl"] <= 1.01 * reference["ppl"], "int8 per-channel must stay within 1%"
assert results["int8 per-channel"]["bytes"] == n_weights + 4 * n_rows, \
    "int8 bytes: one code per weight and a float32 scale per row"
if not QUICK:   # the quick model's rows have 32 weights, so a float32 scale per row costs 1/8 of a byte more
    assert int8_ratio >= 3.9, f"int8 per-channel weights must be >= 3.9x smaller, got {int8_ratio:.3f}"
assert tied_once, "the tied head must read the one quantized token table"
for name in SCHEMES:
    if name.startswith("int4") and "asym" not in name:
        assert results[name]["bytes"] < results["int8 per-channel"]["bytes"], "int4 must be smaller than int8"
assert results["W8A8 per-channel, dynamic"]["ppl"] <= 1.02 * reference["ppl"], "int8 activations must be cheap here"
assert all(round_trip_exact.values()), "a saved and reloaded quantized model must compute the same logits"
assert file_sizes["int8 per-channel"] < file_sizes["float32"] / 3, "the int8 file must be much smaller"
assert file_sizes[f"int4 group-{GROUP_SIZES[1]}"] < file_sizes["int8 per-channel"], "int4 must be smaller than int8"
assert refused and refused_float, "bad and foreign checkpoints must be refused"
assert weight_rounding["bfloat16"]["max_relative_error"] <= FORMATS["bfloat16"].epsilon / 2, "bf16: half an epsilon"
assert weight_rounding["float16"]["overflow"] == 0 and weight_rounding["bfloat16"]["overflow"] == 0
assert bf16_exp_finite and np.all(np.isfinite(stable16)), "bfloat16 and the max-subtracted softmax never overflow"
assert gradient_underflow["bfloat16"] <= gradient_underflow["float16"], "bfloat16 keeps float32's range"
assert gradient_underflow[f"float16, loss x {LOSS_SCALE:g}"] <= gradient_underflow["float16"], "loss scaling helps"
assert qat_matches, "the converted QAT model must compute exactly its fake-quantized forward"
for name, r in qlora.items():
    assert r["only_adapters"] and r["base_unchanged"], f"{name}: only the adapters may train"
    assert r["after"] < r["before"], f"{name}: the adapters must learn the new text"
fp32_memory = qlora["LoRA, float32 base"]["memory"]
for name, r in qlora.items():
    assert r["memory"].trainable_bytes == fp32_memory.trainable_bytes, "the same adapters on every base"
    if name.startswith("QLoRA"):
        assert r["memory"].frozen_bytes < fp32_memory.frozen_bytes / 2.5, f"{name}: the base must shrink"
if not QUICK:   # the quick model is barely trained: its weights are still near their random start
    for name in SCHEMES:
        if name.startswith("int4"):
            assert results[name]["ppl"] > results["int8 per-channel"]["ppl"], "int4 should cost more than int8"
    assert results[f"int4 group-{GROUP_SIZES[0]}"]["ppl"] < results["int4 per-tensor"]["ppl"], \
        "groups must beat one scale"
    assert overflowed > 0 and nan_rows > 0, "naive float16 softmax must overflow on the course model's logits"
    assert gradient_underflow["float16"] > 0.01, "float16 must flush a visible share of the gradients"
    assert results["int4 per-channel, QAT"]["ppl"] < results["int4 per-channel"]["ppl"], "QAT must beat PTQ"
    assert np.mean(qat_kl[-10:]) < np.mean(qat_kl[:10]), "QAT must bring the int4 model closer to the float one"
    int4_qlora = qlora[f"QLoRA, int4 group-{INT4_BASE.group_size} base"]
    assert int4_qlora["after"] <= 1.1 * qlora["LoRA, float32 base"]["after"], "QLoRA int4 should be close to LoRA"
print(f"lesson 13 checks passed ({time.perf_counter() - lesson_start:.0f} s)")



# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **Symmetric int8 quantization, one scale per row.** Quantize a matrix to int8 with one absmax
#    scale per row, then dequantize it. Edit `exercises/13_1.py`, then run `tinygrad-llm exercise
#    check 13.1`.
# 2. **Predict: the bytes of an int8 matrix with per-row scales.** Predict the bytes of a (256, 512)
#    weight stored as int8 codes with one float32 scale per row. Edit `exercises/13_2.py`, then run
#    `tinygrad-llm exercise check 13.2`.
# 3. **Change a setting: the int4 group size.** Pick the int4 group size that stores
#    exactly 5 bits (0.625 bytes) per weight of a (64, 256) matrix, scales included. Then try it in
#    the lesson's GROUP_SIZES and find it in 13_size_vs_perplexity: what does it cost in perplexity?
#    Edit `exercises/13_3.py`, then run `tinygrad-llm exercise check 13.3`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
