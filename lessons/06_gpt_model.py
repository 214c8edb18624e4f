# %% [markdown]
"""
# 06. The GPT, assembled from its parts

The question: lesson 04 turned tokens into vectors and lesson 05 let those vectors look at each
other. What else does a GPT need around attention, why is each piece there, and how large is the
result, from our one-million-parameter course model up to GPT-2's 1.5 billion?

The idea: a GPT is a stack of identical blocks along a *residual stream*. The stream starts as
token embedding + position embedding, one vector of d_model numbers per position. Each block
reads the stream, normalises it, and adds two corrections back into it:

    x = x + MultiHeadAttention(LayerNorm(x))      positions exchange information
    x = x + MLP(LayerNorm(x))                     each position is transformed on its own

    LayerNorm(x) = (x - mean(x)) / sqrt(var(x) + eps) * gamma + beta    over the d_model channels
    MLP(h)       = GELU(h W1 + b1) W2 + b2        W1: d_model -> 4 d_model, W2: back

After the last block a final LayerNorm and the token-embedding matrix, reused as the output layer,
turn each position into V logits: the scores of every possible next token. An untrained model
spreads its probability almost evenly, so its loss on real text starts at ln V.

Builds on: lesson 01 (Tensor, `functional.layer_norm`, `gelu`), lessons 02-03 (the course
tokenizer, the corpus as tokens, `random_batch`), lesson 04 (`Embedding`, positions), lesson 05
(`MultiHeadAttention`).
Adds: `LayerNorm`, `MLP`, `TransformerBlock`, `GPT`, `GPTConfig` (all fields, `gpt2()`), and
`tinygrad_llm.scale.memory` (`parameter_counts`, `memory_table`, `format_bytes`).

Run: python lessons/06_gpt_model.py           (a few seconds on 2 cores)
     python lessons/06_gpt_model.py --quick   (a few seconds)
"""

# %% [markdown]
# ## Settings

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import (GPT, MLP, GPTConfig, LayerNorm, Module, ModuleList, Tensor,
                          TransformerBlock, no_grad, course_corpus, random_batch)
from tinygrad_llm import functional as F
from tinygrad_llm.course import quick_mode, save_figure
from tinygrad_llm.course.figures import legend_outside
from tinygrad_llm.scale.memory import format_bytes, memory_table, parameter_counts

SEED = 6
QUICK = quick_mode()
NORM_SHAPE = (2, 3, 8)          # (B, T, C) of the layer-norm example: small enough to print
RESIDUAL_DEPTH = 8              # layers in the residual experiment of section 4
RESIDUAL_WIDTH = 64
RESIDUAL_ROWS = 64 if QUICK else 256
EVAL_BATCH = 4 if QUICK else 16  # windows of real text for the untrained loss of section 9
GENERATE_TOKENS = 8 if QUICK else 30
PROMPT = "The for statement is used to iterate over"

rng = np.random.default_rng(SEED)

# The course model: GPTConfig's defaults (4 layers of width 128, 4 heads, 128 positions) with the
# vocabulary of the course tokenizer. Quick mode uses the quick tokenizer (a smaller vocabulary).
prepared = course_corpus(QUICK)
tokenizer = prepared.tokenizer
config = GPTConfig(vocab_size=tokenizer.vocab_size)
C = config.d_model
print(f"course model: {config}")


# %% [markdown]
# ## 1. LayerNorm: every position's vector to mean 0, variance 1
# Activations drift: a layer that doubles its output doubles every later input. LayerNorm undoes
# such drift per position: it subtracts the mean of the C channels, divides by their standard
# deviation, and then applies a trainable scale gamma and shift beta (initialised to 1 and 0), so
# the network can still choose the scale it wants. The variance is the biased one (divide by C,
# NumPy's default `ddof=0`, as in PyTorch's LayerNorm), and eps = 1e-5 keeps a constant vector
# from dividing by zero.

# %%
x = rng.normal(loc=3.0, scale=5.0, size=NORM_SHAPE).astype(np.float32)   # (B, T, C), off-centre
norm = LayerNorm(NORM_SHAPE[-1])
norm.weight.data[:] = rng.normal(1.0, 0.1, NORM_SHAPE[-1])     # a "trained" gamma and beta, so
norm.bias.data[:] = rng.normal(0.0, 0.1, NORM_SHAPE[-1])       # that the check covers them too

mean = x.mean(axis=-1, keepdims=True)                           # (B, T, 1)
var = x.var(axis=-1, keepdims=True)                             # (B, T, 1), ddof=0
xhat = (x - mean) / np.sqrt(var + norm.eps)                     # (B, T, C)
by_hand = xhat * norm.weight.data + norm.bias.data              # gamma, beta broadcast over (B, T)
ours = norm(Tensor(x)).data
layer_norm_error = float(np.abs(by_hand - ours).max())
print(f"before: row means {np.round(mean.ravel()[:4], 2)}..., row stds {np.round(np.sqrt(var).ravel()[:4], 2)}...")
print(f"after (before gamma, beta): row means within {np.abs(xhat.mean(-1)).max():.1e} of 0, "
      f"row stds {xhat.std(-1).min():.5f}..{xhat.std(-1).max():.5f}   (reference: 0 and 1)")
print(f"LayerNorm module vs by hand: max |difference| {layer_norm_error:.1e}   (reference: float32 rounding, ~1e-6)")

# The property that makes it stabilising: scaling a position's vector changes nothing downstream.
scaled = norm(Tensor(100.0 * x)).data
scale_change = float(np.abs(scaled - ours).max())
print(f"LayerNorm(100 x) vs LayerNorm(x): max |difference| {scale_change:.1e}   "
      f"(reference: ~0; only eps sees the scale)")

composed = F.layer_norm_composed(Tensor(x), norm.weight, norm.bias, norm.eps).data
print(f"fused layer_norm vs the composed reference: {np.abs(composed - ours).max():.1e}")


# %% [markdown]
# ## 2. GELU: a smooth ReLU
# The feed-forward network needs a non-linearity between its two matrices, otherwise the two
# would multiply into one matrix. GPT-2 uses GELU, x times the probability that a standard normal
# variable is below x, x Phi(x), in the tanh approximation GPT-2 was trained with:
#
#     GELU(x) = x Phi(x) ~ x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
#
# Unlike ReLU it is smooth at 0 and lets a little signal (and gradient) through for negative x,
# so a unit that lands on the negative side during training is not cut off for good. The
# derivatives below come from our engine's backward pass, not from a formula.

# %%
xs = np.linspace(-4.0, 4.0, 801)


def value_and_derivative(function, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f(x) and f'(x) of an elementwise Tensor function, the derivative from backward()."""
    t = Tensor(points, dtype=np.float64, requires_grad=True)
    out = function(t)
    out.sum().backward()   # each output depends on one input, so d sum / dx_i = f'(x_i)
    return out.data, t.grad


gelu_y, gelu_dy = value_and_derivative(lambda t: t.gelu(), xs)
relu_y, relu_dy = value_and_derivative(lambda t: t.relu(), xs)
exact_gelu = xs * 0.5 * (1.0 + np.array([math.erf(v / math.sqrt(2.0)) for v in xs]))
approximation_error = float(np.abs(gelu_y - exact_gelu).max())
lowest = int(np.argmin(gelu_y))
print(f"tanh approximation vs exact x Phi(x): max |difference| {approximation_error:.1e} on [-4, 4]   "
      f"(reference: below 1e-3)")
print(f"GELU's minimum: {gelu_y[lowest]:.4f} at x = {xs[lowest]:.2f}   (reference: -0.170 near x = -0.75)")
minus_one = int(np.argmin(np.abs(xs + 1)))
print(f"slope at x = -1: GELU {gelu_dy[minus_one]:+.4f}, ReLU {relu_dy[minus_one]:+.4f}"
      f"   (ReLU passes no gradient for x < 0)")

fig, (ax_value, ax_slope) = plt.subplots(1, 2, figsize=(10, 3.8))
ax_value.plot(xs, relu_y, label="ReLU  max(x, 0)", color="tab:grey")
ax_value.plot(xs, gelu_y, label="GELU  x Phi(x)", color="tab:blue")
ax_value.set_title("the functions")
ax_slope.plot(xs, relu_dy, label="ReLU'", color="tab:grey")
ax_slope.plot(xs, gelu_dy, label="GELU'", color="tab:blue")
ax_slope.set_title("their derivatives (from backward())")
for ax in (ax_value, ax_slope):
    ax.axhline(0, color="black", linewidth=0.6)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlabel("x")
    legend_outside(ax)
fig.suptitle("GELU is a smooth ReLU: it dips below zero and keeps a gradient for x < 0", fontsize=11)
save_figure(fig, "06_gelu_vs_relu")


# %% [markdown]
# ## 3. The feed-forward network
# Attention mixes positions; the MLP then works on each position separately: widen to 4 C,
# GELU, narrow back to C. Two thirds of a block's parameters live here, 8 C^2 + 5 C (two C x 4C
# matrices and their biases). `tinygrad_llm.MLP` is exactly this; below it is recomputed from its
# own weights with plain NumPy.

# %%
mlp = MLP(config, rng)
h = rng.normal(size=(2, 5, C)).astype(np.float32)               # (B, T, C)
up = h @ mlp.up.weight.data.T + mlp.up.bias.data                # (B, T, 4C)
activated = 0.5 * up * (1 + np.tanh(np.sqrt(2 / np.pi) * (up + 0.044715 * up ** 3)))
mlp_by_hand = activated @ mlp.down.weight.data.T + mlp.down.bias.data   # (B, T, C)
mlp_ours = mlp(Tensor(h)).data
mlp_error = float(np.abs(mlp_by_hand - mlp_ours).max())
print(f"MLP {C} -> {4 * C} -> {C}: module vs by hand max |difference| {mlp_error:.1e}")
print(f"MLP parameters: {mlp.num_parameters():,}   (reference: 8 C^2 + 5 C = {8 * C * C + 5 * C:,})")

# Position by position: shuffling the positions of the input shuffles the output the same way.
order = rng.permutation(h.shape[1])
shuffled = mlp(Tensor(h[:, order])).data
print(f"MLP(shuffled positions) == shuffled MLP output: {np.allclose(shuffled, mlp_ours[:, order], atol=1e-6)}")


# %% [markdown]
# ## 4. Residual connections: a straight path for the gradient
# Stack layers as x = f(x) and the gradient reaching the first layer is a product of one
# Jacobian per layer; with GPT-2's small initial weights (std 0.02) each factor is far below 1
# and the product vanishes. Write the layer as x = x + f(x) instead and its Jacobian is
# I + f'(x): the identity term hands the gradient of the top straight to the bottom, whatever
# f does. The experiment below stacks RESIDUAL_DEPTH of the MLPs from section 3 both ways, takes
# a squared error against a fixed random target at the top, and measures the gradient that
# reaches the input of each layer.
#
# (LayerNorm is the other half of this story: it keeps each layer's *input* at unit scale. A
# GPT block uses both, normalising the input of each sublayer and adding its output back.)

# %%
class MLPStack(Module):
    """RESIDUAL_DEPTH feed-forward layers, stacked plainly or with residual connections."""

    def __init__(self, depth: int, width: int, residual: bool, rng: np.random.Generator):
        layer_config = GPTConfig(d_model=width, n_layer=depth, n_head=1)
        self.layers = ModuleList(MLP(layer_config, rng) for _ in range(depth))
        self.residual = residual

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        inputs = []
        for layer in self.layers:
            if not x.is_leaf:
                x.retain_grad()   # keep d loss / d (this layer's input) after backward
            inputs.append(x)
            x = x + layer(x) if self.residual else layer(x)
        return x, inputs


stack_input = rng.normal(size=(RESIDUAL_ROWS, RESIDUAL_WIDTH))
stack_target = rng.normal(size=(RESIDUAL_ROWS, RESIDUAL_WIDTH)).astype(np.float32)
stack = MLPStack(RESIDUAL_DEPTH, RESIDUAL_WIDTH, residual=False, rng=rng)
gradients = {}
first_layer_weight_grad = {}
for residual in (False, True):
    stack.residual = residual   # the same weights, wired both ways
    stack.zero_grad()
    top, layer_inputs = stack(Tensor(stack_input, dtype=np.float32, requires_grad=True))
    ((top - stack_target) ** 2).mean().backward()
    gradients[residual] = [float(np.linalg.norm(t.grad)) for t in layer_inputs]
    first_layer_weight_grad[residual] = float(np.linalg.norm(stack.layers[0].up.weight.grad))

print(f"{'layer':>5} {'|dL/dx| plain':>15} {'|dL/dx| residual':>17}")
for i in range(RESIDUAL_DEPTH):
    print(f"{i + 1:>5} {gradients[False][i]:>15.2e} {gradients[True][i]:>17.2e}")
print(f"gradient of the first layer's weight: plain {first_layer_weight_grad[False]:.2e}, "
      f"residual {first_layer_weight_grad[True]:.2e}")
shrink_per_layer = (gradients[False][-1] / gradients[False][0]) ** (1 / (RESIDUAL_DEPTH - 1))
print(f"plain stack: the gradient shrinks {shrink_per_layer:.0f}x per layer on its way down; "
      f"residual stack: top/bottom ratio {gradients[True][-1] / gradients[True][0]:.2f}   (reference: ~1)")

fig, ax = plt.subplots(figsize=(6.5, 4))
layers = np.arange(1, RESIDUAL_DEPTH + 1)
ax.semilogy(layers, gradients[False], "o-", label="plain: x = f(x)")
ax.semilogy(layers, gradients[True], "s-", label="residual: x = x + f(x)")
ax.set_xlabel("layer (1 = bottom, nearest the input)")
ax.set_ylabel("|d loss / d layer input|")
ax.set_title(f"{RESIDUAL_DEPTH} feed-forward layers at GPT-2 initialisation", fontsize=10)
legend_outside(ax)
save_figure(fig, "06_residual_gradients")


# %% [markdown]
# ## 5. The transformer block
# Now the block of the GPT: pre-LayerNorm (GPT-2 normalises the input of each sublayer rather
# than its output), causal multi-head attention from lesson 05, the MLP, two residual additions.
# The shape in equals the shape out, (B, T, C), which is what lets blocks stack. Below, the
# block's output is recomputed from its own sub-modules, and the causal property is tested at
# block level: changing the last position's input must leave every earlier output untouched.

# %%
block = TransformerBlock(config, rng)
block.eval()   # no dropout, so that two calls can be compared
stream = Tensor(rng.normal(size=(2, 6, C)), dtype=np.float32)       # (B, T, C)
after_attention = stream + block.attn(block.norm1(stream))
block_by_hand = after_attention + block.mlp(block.norm2(after_attention))
block_out = block(stream)
block_error = float(np.abs(block_out.data - block_by_hand.data).max())
print(f"block: input {stream.shape} -> output {block_out.shape}; module vs its parts by hand: {block_error:.1e}")

changed = stream.data.copy()
changed[:, -1] = rng.normal(size=(2, C))
block_changed = block(Tensor(changed)).data
leak = float(np.abs(block_changed[:, :-1] - block_out.data[:, :-1]).max())
print(f"change the last position's input: earlier outputs move by {leak:.1e}, the last by "
      f"{np.abs(block_changed[:, -1] - block_out.data[:, -1]).max():.2f}")
per_block = 12 * C * C + 13 * C
print(f"block parameters: {block.num_parameters():,}   (reference: 12 C^2 + 13 C = {per_block:,}: "
      f"attention 4 C^2 + 4 C, MLP 8 C^2 + 5 C, two LayerNorms 4 C)")


# %% [markdown]
# ## 6. The GPT
# Token ids (B, T) -> token embedding + position embedding (B, T, C) -> n_layer blocks -> final
# LayerNorm -> logits (B, T, V). The output layer is the token embedding matrix itself (weight
# tying, as in GPT-2): the same V x C table reads a token in and scores it as the next token, one
# table less to learn. `GPT.forward(idx, targets)` also returns the mean cross-entropy.

# %%
model = GPT(config, rng)
model.eval()
print("one of the blocks:")
print(model.blocks[0])
print("the whole model, top level:")
for name, child in model.named_children():
    print(f"  {name:<20} {type(child).__name__:<12} {child.num_parameters():>10,} parameters")
inputs, targets = random_batch(prepared.val, EVAL_BATCH, config.context_length, rng)   # (B, T) each
with no_grad():
    logits, loss = model(inputs, targets)
    # The same forward pass written out from the model's parts:
    residual_stream = model.token_embedding(inputs) + model.positions(inputs.shape[1])   # (B, T, C)
    for layer in model.blocks:
        residual_stream = layer(residual_stream)                                       # (B, T, C)
    logits_by_hand = model.final_norm(residual_stream) @ model.token_embedding.weight.T  # (B, T, V), tied
forward_error = float(np.abs(logits_by_hand.data - logits.data).max())
print(f"inputs {inputs.shape} -> logits {logits.shape}   (reference: (B, T, V) = "
      f"({EVAL_BATCH}, {config.context_length}, {config.vocab_size}))")
print(f"model(inputs) vs embeddings -> blocks -> final norm -> @ embedding^T by hand: {forward_error:.1e}")
tied = model.output_weight() is model.token_embedding.weight
print(f"output layer is the token embedding (tied, not a copy): {tied}")
counts = parameter_counts(config)
print(f"parameters: model {model.num_parameters():,}, formula {counts['total']:,}")


# %% [markdown]
# ## 7. How big is a GPT? Parameters and memory
# `model_stats` counts parameters from the config alone (GPT-2 1.5B is as cheap to count as our
# model) and turns them into bytes. Storing weights costs 4 bytes each in float32, 2 in bfloat16,
# 1 in int8. Training with AdamW in float32 keeps four numbers per parameter: the weight, its
# gradient and Adam's two moving averages, so 16 bytes per parameter before a single activation.
# The embedding table (V C) is a large share of a small model, a third of GPT-2 124M; the blocks
# (12 C^2 per layer, growing with the square of the width) dominate a large one.

# %%
models = {"course": config, "GPT-2 124M": GPTConfig.gpt2("124M"), "GPT-2 1.5B": GPTConfig.gpt2("1.5B")}
tables = {name: parameter_counts(c) for name, c in models.items()}
components = list(tables["course"])
print(f"{'parameters':<26}" + "".join(f"{name:>16}" for name in models))
for component in components:
    print(f"{component:<26}" + "".join(f"{tables[name][component]:>16,}" for name in models))
for name in models:
    blocks_total = tables[name]["attention (all layers)"] + tables[name]["feed-forward (all layers)"]
    share = blocks_total / tables[name]["total"]
    print(f"  {name}: blocks hold {share:.0%} of the parameters")
print("(reference: GPT-2 124M has 124,439,808 parameters and GPT-2 1.5B 1,557,611,200, "
      "counting the tied head once)")

print(f"\n{'memory':<46}" + "".join(f"{name:>14}" for name in models))
memory = {name: memory_table(c) for name, c in models.items()}
for i, row in enumerate(memory["course"]):
    print(f"{row['what']:<46}" + "".join(f"{format_bytes(memory[name][i]['bytes']):>14}" for name in models))
adamw_bytes = {name: next(r["bytes"] for r in memory[name] if "AdamW" in r["what"]) for name in models}


# %% [markdown]
# ## 8. What an untrained GPT writes
# Generation is a loop: run the model on the tokens so far, take the logits of the last position,
# pick a token, append it, repeat (cropping to the last `context_length` tokens, the most the
# model can see). Greedy decoding takes the most likely token; sampling draws from the softmax.
# The library's `generate` arrives with training in lesson 07 (temperature, top-k and top-p in
# lesson 08); this is the bare loop. Untrained, the text is noise, and greedy decoding gets stuck
# repeating one token (section 9 explains why).

# %%
def generate_by_hand(model: GPT, ids: np.ndarray, new_tokens: int, rng: np.random.Generator,
                     greedy: bool) -> np.ndarray:
    """Append ``new_tokens`` tokens to ``ids`` (shape (1, T)), one forward pass per token."""
    for _ in range(new_tokens):
        context = ids[:, -model.config.context_length:]             # (1, <= context_length)
        with no_grad():
            last = model(context).data[0, -1].astype(np.float64)     # (V,) logits of the next token
        if greedy:
            next_id = int(np.argmax(last))
        else:
            probabilities = np.exp(last - last.max())
            probabilities /= probabilities.sum()
            next_id = int(rng.choice(len(probabilities), p=probabilities))
        ids = np.concatenate([ids, [[next_id]]], axis=1)
    return ids


prompt_ids = np.array([tokenizer.encode(PROMPT)])
greedy_ids = generate_by_hand(model, prompt_ids, GENERATE_TOKENS, rng, greedy=True)
sampled_ids = generate_by_hand(model, prompt_ids, GENERATE_TOKENS, rng, greedy=False)
print(f"prompt ({prompt_ids.shape[1]} tokens): {PROMPT!r}")
print(f"greedy : {tokenizer.decode(greedy_ids[0, prompt_ids.shape[1]:].tolist())!r}")
print(f"sampled: {tokenizer.decode(sampled_ids[0, prompt_ids.shape[1]:].tolist())!r}")


# %% [markdown]
# ## 9. The loss of an untrained GPT is ln V
# With weights of std 0.02 the logits are all close to 0, so the softmax is close to uniform:
# every token gets probability about 1/V and the cross-entropy is about -ln(1/V) = ln V. That is
# the starting point lesson 07's training curve falls from. A loss far above ln V at step 0 would
# mean an initialisation that is confidently wrong, a bug worth catching before training.
# (To second order, V independent logits of standard deviation sigma around 0 give
# ln sum exp(z) ~ ln V + sigma^2 / 2, so the loss starts a little above ln V.)
#
# Close to uniform, not exactly. With tied weights the logit of token j is h . e_j, where h is the
# final LayerNorm's output and e_j the embedding of j. The stream that h normalises still contains
# e_tok, the embedding of the token just read (the residual path carries it through every block),
# plus position and block outputs that are unrelated to any e_j. So for j = tok the product does
# not average out: h . e_tok ~ |e_tok|^2 / s, with s the stream's standard deviation, while
# the other logits scatter around 0. The token just read is the favourite: that is why
# greedy decoding above repeats itself, and why the loss dips below ln V on text where a token
# often follows itself (table borders made of "-" tokens, for the quick tokenizer).

# %%
per_position = F.cross_entropy(logits, targets, reduction="none").data    # (B, T)
rows, columns = np.indices(inputs.shape)
echo_logits = logits.data[rows, columns, inputs]                           # logit of the input token
echo_rate = float((logits.data.argmax(axis=-1) == inputs).mean())
embedded = model.token_embedding.weight.data[inputs]                       # (B, T, C): e_tok
echo_reference = float(((embedded ** 2).sum(-1) / residual_stream.data.std(-1)).mean())   # |e_tok|^2 / s
repeats = targets == inputs
loss_elsewhere = float(per_position[~repeats].mean())
second_order = np.log(config.vocab_size) + logits.data.var() / 2
print(f"loss on {EVAL_BATCH} x {config.context_length} validation tokens: {loss.item():.4f}   "
      f"(reference: ln V = ln {config.vocab_size} = {np.log(config.vocab_size):.4f})")
print(f"logits: std {logits.data.std():.3f}; the logit of the token just read: mean {echo_logits.mean():.2f}   "
      f"(reference: |e_tok|^2 / s = {echo_reference:.2f}, e^{echo_logits.mean():.1f} = "
      f"{np.exp(echo_logits.mean()):.1f} times as likely as a typical other token)")
print(f"the most likely next token is the token just read at {echo_rate:.0%} of positions")
print(f"targets that repeat their input: {repeats.mean():.1%} of positions, loss there "
      f"{per_position[repeats].mean() if repeats.any() else float('nan'):.2f}; "
      f"loss on all other positions {loss_elsewhere:.4f}   (reference: ln V = {np.log(config.vocab_size):.4f}, "
      f"ln V + sigma^2 / 2 = {second_order:.4f})")


# %% [markdown]
# ## Closing checks
# The claims of the text above.

# %%
assert layer_norm_error < 1e-5 and scale_change < 1e-3
assert np.abs(xhat.mean(-1)).max() < 1e-5 and np.allclose(xhat.std(-1), 1.0, atol=1e-3)
assert approximation_error < 1e-3 and abs(gelu_y[lowest] + 0.170) < 1e-3 and abs(xs[lowest] + 0.75) < 0.02
assert gelu_dy[minus_one] < 0 and relu_dy[minus_one] == 0
assert mlp_error < 1e-5 and mlp.num_parameters() == 8 * C * C + 5 * C
assert np.allclose(shuffled, mlp_ours[:, order], atol=1e-6)
assert gradients[False][0] < 1e-6 * gradients[False][-1], "the plain stack's gradient vanishes"
assert 0.5 < gradients[True][0] / gradients[True][-1] < 2, "the residual stack's does not"
assert first_layer_weight_grad[True] > 1e6 * first_layer_weight_grad[False]
assert block_error < 1e-5 and block_out.shape == stream.shape and leak == 0.0
assert block.num_parameters() == per_block
assert logits.shape == (EVAL_BATCH, config.context_length, config.vocab_size) and tied
assert model.num_parameters() == counts["total"]
assert tables["GPT-2 124M"]["total"] == 124_439_808 and tables["GPT-2 1.5B"]["total"] == 1_557_611_200
assert all(adamw_bytes[name] == 16 * tables[name]["total"] for name in models)
assert greedy_ids.shape == (1, prompt_ids.shape[1] + GENERATE_TOKENS) == sampled_ids.shape
assert abs(loss_elsewhere - np.log(config.vocab_size)) < 0.1, "an untrained GPT's loss is about ln V"
assert abs(loss_elsewhere - second_order) < 0.05
assert abs(loss.item() - np.log(config.vocab_size)) < 0.1 + repeats.mean() * echo_logits.mean(), \
    "below ln V by at most the echo's advantage on the repeated tokens"
assert abs(echo_logits.mean() / echo_reference - 1) < 0.25 and echo_rate > 0.5
assert forward_error < 1e-5
print("all checks passed")


# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **Predict: the parameter count of a small GPT.** Predict the parameter count of
#    GPTConfig(vocab_size=100, context_length=16, d_model=32, n_layer=2, n_head=2) (biases on, the
#    output head tied to the token embedding). Edit `exercises/06_1.py`, then run `tinygrad-llm
#    exercise check 06.1`.
# 2. **Layer norm in NumPy.** Layer norm over the last axis, forward only, in plain NumPy. Edit
#    `exercises/06_2.py`, then run `tinygrad-llm exercise check 06.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
