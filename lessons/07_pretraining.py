# %% [markdown]
"""
# 07. Pretraining a GPT on real text

**The question.** Lesson 06 built a GPT whose predictions are noise: its loss is ln(V), the loss of
guessing uniformly among V tokens. How much of the structure of English (and of Python's
documentation) can ~1M parameters learn in a few minutes on a CPU, and how do we know it learned
more than the obvious?

**The idea.** Pretraining is next-token prediction at scale: sample windows of text, ask the model
for the next token at every position, and follow the gradient of the cross-entropy

    L = -(1/N) sum_t log p_model(x_{t+1} | x_1 .. x_t)

with AdamW, a warmup then cosine-decaying learning rate, and clipped gradients. We judge it by
validation perplexity, exp(L) on text the model never trained on, against an honest baseline: a
count-based bigram model, p(next | previous token) from counts, which knows exactly one token of
context. The GPT should beat it clearly (the course asks for at most 0.6x its perplexity).

**Builds on:** lessons 02-03 (the course tokenizer and token arrays), 04-06 (the GPT).
**Adds:** `Trainer`, `TrainConfig` (the training loop: AdamW, schedule, clipping, validation,
checkpoints), `AdamW`, `cosine_schedule`, `clip_grad_norm_`, `perplexity`, `generate`,
`course_model`, `save_safetensors` / `load_safetensors`.

**Run:** `python lessons/07_pretraining.py` (about 6 minutes on 2 cores) or `--quick` (seconds).
"""

# %%
import dataclasses
import math
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import GPT, Trainer, generate, perplexity, course_corpus
from tinygrad_llm.course import quick_mode, save_figure
from tinygrad_llm.course.figures import label_axes, legend_outside, line_style
from tinygrad_llm.course import course_checkpoint_path, course_model_config, course_train_config
from tinygrad_llm.text.data import random_batch
from tinygrad_llm.train.optim import AdamW, clip_grad_norm_, cosine_schedule, weight_decay_groups
from tinygrad_llm.train.trainer import estimate_loss, load_model

# %% [markdown]
# ## Settings
# The course recipe (quick mode shrinks everything for smoke tests).

# %%
SEED = 0
QUICK = quick_mode()
TRAIN = course_train_config(QUICK)       # steps, batch, learning-rate schedule, evaluation cadence
PROMPT = "The for statement"             # what the model continues, before and after training
SAMPLE_TOKENS = 40 if QUICK else 80
HAND_STEPS = 3 if QUICK else 5           # steps written out by hand and compared with the package
TARGET_RATIO = 0.6                       # GPT perplexity / bigram perplexity, at most

rng = np.random.default_rng(SEED)

# %% [markdown]
# ## 1. The data
# The course tokenizer (lesson 02) and the token arrays (lesson 03), loaded from the output
# folder or rebuilt if missing. Validation is the last 10% of the corpus: documents the model
# never sees while training.

# %%
corpus = course_corpus(QUICK)
tokenizer = corpus.tokenizer
train_tokens, val_tokens = corpus.train, corpus.val
print(f"vocabulary {tokenizer.vocab_size:,} tokens; train {len(train_tokens):,} tokens, "
      f"validation {len(val_tokens):,} tokens ({corpus.stats['bytes_per_token']:.2f} bytes per token)")

# %% [markdown]
# ## 2. The baseline: a bigram model from counts
# p(b | a) = (count(a, b) + k) / (count(a) + k V). The pseudo-count k keeps unseen pairs from
# getting probability zero (an infinite loss). We give the baseline every advantage: the best k
# is chosen on the validation set itself.

# %%
V = tokenizer.vocab_size


def bigram_counts(tokens: np.ndarray) -> np.ndarray:
    pairs = tokens[:-1].astype(np.int64) * V + tokens[1:]
    return np.bincount(pairs, minlength=V * V).reshape(V, V).astype(np.float64)  # (V, V)


def bigram_perplexity(counts: np.ndarray, tokens: np.ndarray, k: float) -> float:
    log_probs = np.log(counts + k) - np.log(counts.sum(axis=1, keepdims=True) + k * V)
    return math.exp(-log_probs[tokens[:-1], tokens[1:]].mean())


counts = bigram_counts(train_tokens)
candidates = {k: bigram_perplexity(counts, val_tokens, k) for k in (0.001, 0.01, 0.03, 0.1, 0.3, 1.0)}
best_k = min(candidates, key=candidates.get)
bigram_ppl = candidates[best_k]
for k, ppl in candidates.items():
    print(f"  bigram, k = {k:<5}: validation perplexity {ppl:8.1f}")
print(f"bigram baseline: perplexity {bigram_ppl:.1f} (k = {best_k}); uniform guessing: {V}")

# %% [markdown]
# ## 3. The untrained model
# At initialisation the logits are almost equal, so the loss is close to ln(V) and the text is
# noise. We keep the same prompt for the "after" picture.

# %%
model_config = course_model_config(V, QUICK)
model = GPT(model_config, rng=rng)
print(model_config)
print(f"{model.num_parameters():,} parameters")
prompt_ids = np.array(tokenizer.encode(PROMPT))
initial_ppl = perplexity(model, val_tokens[: 20 * model_config.context_length])
print(f"untrained: validation perplexity {initial_ppl:.1f} (ln V = {math.log(V):.2f}, "
      f"so about {V} expected)")
before = generate(model, prompt_ids, SAMPLE_TOKENS, temperature=1.0, rng=np.random.default_rng(SEED))
print("sample before training:", repr(tokenizer.decode(before.tolist())))

# %% [markdown]
# ## 4. One training step, written out
# Before handing the loop to `Trainer`, here is everything one of its steps does, in NumPy.
#
# * **Clip.** The global norm ||g|| = sqrt(sum over every parameter of sum g^2). If it exceeds
#   `grad_clip`, every gradient is multiplied by grad_clip / ||g||: the direction is kept, a rare
#   huge step (an unlucky batch) is not.
# * **Schedule.** The rate rises linearly for `warmup_steps` (Adam's first estimates of v are
#   noisy, so its first steps would be too large), then follows half a cosine down to
#   `min_learning_rate`.
# * **AdamW.** Running means of the gradient and of its square, m = b1 m + (1 - b1) g and
#   v = b2 v + (1 - b2) g^2, start at zero, so at step t they are too small by a factor 1 - b^t;
#   dividing by it is the *bias correction*. The update is p -= lr m_hat / (sqrt(v_hat) + eps):
#   every coordinate moves by about lr, whatever the scale of its gradient. *Decoupled* weight
#   decay, p -= lr wd p, is applied outside that ratio, so a parameter's decay is not rescaled by
#   its own 1/sqrt(v) (Adam's L2 penalty would be); biases, layer norms and embeddings do not decay.
#
# We run a few steps on two copies of the untrained model, one by hand, one with the package's
# `clip_grad_norm_`, `cosine_schedule` and `AdamW`, on the same batches, and compare the weights.

# %%
def learning_rate_by_hand(step: int, c) -> float:
    if step < c.warmup_steps:
        return c.learning_rate * (step + 1) / c.warmup_steps
    progress = min(1.0, (step - c.warmup_steps) / max(1, c.steps - c.warmup_steps))
    return c.min_learning_rate + 0.5 * (c.learning_rate - c.min_learning_rate) * (1 + math.cos(math.pi * progress))


def training_step_by_hand(model, inputs, targets, slots, t, c, eps=1e-8) -> float:
    """One step: loss, backward, clip, AdamW with bias correction and decoupled decay; returns ||g||."""
    model.zero_grad()
    model(inputs, targets)[1].backward()
    params = [(p, group["weight_decay"]) for group in weight_decay_groups(model, c.weight_decay)
              for p in group["params"]]
    norm = math.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum()) for p, _ in params))
    scale = c.grad_clip / (norm + 1e-6) if norm > c.grad_clip else 1.0   # the package's 1e-6 guards norm = 0
    lr, (beta1, beta2) = learning_rate_by_hand(t - 1, c), c.betas
    for p, decay in params:
        g = p.grad * scale
        m, v = slots.setdefault(id(p), (np.zeros_like(p.data), np.zeros_like(p.data)))
        m, v = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g * g
        slots[id(p)] = (m, v)
        m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)       # bias correction
        p.data *= 1 - lr * decay                                         # decoupled weight decay
        p.data -= (lr * m_hat / (np.sqrt(v_hat) + eps)).astype(p.dtype)
    return norm


by_hand = GPT(model_config, rng=np.random.default_rng(SEED + 1)).eval()   # eval: no dropout noise
packaged = GPT(model_config, rng=np.random.default_rng(SEED + 1)).eval()
optimizer = AdamW(weight_decay_groups(packaged, TRAIN.weight_decay), lr=TRAIN.learning_rate, betas=TRAIN.betas)
slots, batch_rng, hand_norms = {}, np.random.default_rng(SEED + 2), []
for t in range(1, HAND_STEPS + 1):
    inputs, targets = random_batch(train_tokens, TRAIN.batch_size, model_config.context_length, batch_rng)
    hand_norms.append(training_step_by_hand(by_hand, inputs, targets, slots, t, TRAIN))
    optimizer.zero_grad()
    packaged(inputs, targets)[1].backward()
    package_norm = clip_grad_norm_(optimizer.parameters(), TRAIN.grad_clip)
    optimizer.lr = cosine_schedule(t - 1, TRAIN.learning_rate, TRAIN.warmup_steps, TRAIN.steps,
                                   TRAIN.min_learning_rate)
    optimizer.step()
    assert math.isclose(hand_norms[-1], package_norm, rel_tol=1e-5), "the two gradient norms differ"
step_difference = max(float(np.abs(a.data - b.data).max())
                      for a, b in zip(by_hand.parameters(), packaged.parameters()))
moved = max(float(np.abs(a.data - b.data).max())
            for a, b in zip(by_hand.parameters(), GPT(model_config, rng=np.random.default_rng(SEED + 1)).parameters()))
print(f"{HAND_STEPS} steps by hand and with the package: weights differ by at most {step_difference:.1e} "
      f"(the steps moved them by up to {moved:.1e}); gradient norms before clipping "
      + ", ".join(f"{n:.2f}" for n in hand_norms))

schedule = [learning_rate_by_hand(step, TRAIN) for step in range(TRAIN.steps)]
schedule_difference = max(abs(a - cosine_schedule(step, TRAIN.learning_rate, TRAIN.warmup_steps, TRAIN.steps,
                                                  TRAIN.min_learning_rate)) for step, a in enumerate(schedule))
print(f"the schedule by hand and cosine_schedule differ by at most {schedule_difference:.1e} over "
      f"{TRAIN.steps} steps")

# %% [markdown]
# ## 5. Training
# `Trainer` runs that step `steps` times, on a batch of random windows each time. It also
# evaluates on a fixed set of validation windows every `eval_interval` steps and stops with a
# clear message if the loss or the gradient norm ever becomes NaN or infinite. One step sees
# `batch_size x context_length` tokens, so the run makes steps x batch x context / (training
# tokens) passes (epochs) over the data, counted below.

# %%
print(TRAIN)
trainer = Trainer(model, train_tokens, val_tokens, TRAIN, tokenizer_ref=corpus.tokenizer_path.name)
start = time.perf_counter()
history = trainer.train()
seconds = time.perf_counter() - start
epochs = trainer.step * TRAIN.batch_size * model_config.context_length / len(train_tokens)
print(f"trained {trainer.step} steps in {seconds:.0f} s ({history.tokens_per_second:,.0f} tokens/s): "
      f"{epochs:.1f} passes over the {len(train_tokens):,} training tokens")

# %% [markdown]
# ## 6. Loss curves, the schedule and the gradient norm
# The training loss is noisy (every batch is different), so we also draw its moving average.
# Validation loss tracking training loss means the model generalises; a widening gap would mean
# it memorises. After many passes over a small corpus some gap is expected: we measure it below on
# the same number of fixed windows from each set. The middle panel is the schedule every step
# used; the right one is the gradient norm before clipping, against the clipping threshold.

# %%
window = max(1, len(history.train_loss) // 50)
smooth = np.convolve(history.train_loss, np.ones(window) / window, mode="valid")
fig, (ax, ax_lr, ax_norm) = plt.subplots(1, 3, figsize=(16, 4), layout="constrained")
ax.plot(history.steps, history.train_loss, alpha=0.3, color=line_style(0)["color"], label="train (per step)")
ax.plot(history.steps[window - 1:], smooth, color=line_style(0)["color"], label=f"train ({window}-step average)")
ax.plot(history.eval_steps, history.val_loss, **line_style(1), label="validation")
ax.axhline(math.log(bigram_ppl), color="gray", linestyle="--", label="bigram baseline")
label_axes(ax, "step", "cross-entropy (nats per token)", "Pretraining the course GPT")
legend_outside(ax, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=8)
ax_lr.plot(range(TRAIN.steps), schedule, color=line_style(2)["color"])
ax_lr.axvline(TRAIN.warmup_steps, color="gray", linestyle=":")
label_axes(ax_lr, "step", "learning rate", f"Warmup ({TRAIN.warmup_steps} steps), then cosine decay")
ax_norm.plot(history.steps, history.grad_norm, color=line_style(3)["color"], alpha=0.7, label="||g|| before clipping")
ax_norm.axhline(TRAIN.grad_clip, color="gray", linestyle="--", label=f"clipping threshold {TRAIN.grad_clip}")
ax_norm.set_yscale("log")
label_axes(ax_norm, "step", "global gradient norm (log scale)", "Gradient norm")
legend_outside(ax_norm, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=8)
save_figure(fig, "07_loss_curves")
clipped = float(np.mean(np.array(history.grad_norm) > TRAIN.grad_clip))
final_train_loss = estimate_loss(model, train_tokens, TRAIN.batch_size, TRAIN.eval_batches, seed=TRAIN.seed + 1)
final_val_loss = history.val_loss[-1]
print(f"after training: train loss {final_train_loss:.2f}, validation loss {final_val_loss:.2f} "
      f"(gap {final_val_loss - final_train_loss:+.2f} nats, {TRAIN.eval_batches} batches of fixed windows each); "
      f"{clipped:.0%} of the steps were clipped")

# %% [markdown]
# ## 7. Perplexity against the bigram baseline
# Both models are scored on every validation token. The GPT reads the validation text in windows
# of `context_length` tokens that start every half window, and each window scores only the
# tokens the previous one had not: those get between half a window and a whole window of
# context. The very first window scores its tokens from the first one on, with little context
# (lesson 09 measures what the stride costs). The bigram sees one token.

# %%
gpt_ppl = perplexity(model, val_tokens, stride=model_config.context_length // 2)
ratio = gpt_ppl / bigram_ppl
print(f"validation perplexity: GPT {gpt_ppl:.1f}, bigram {bigram_ppl:.1f}, ratio {ratio:.2f} "
      f"(the course asks for at most {TARGET_RATIO})")

# %% [markdown]
# ## 8. Text after training
# The same prompt and seed as before training.

# %%
after = generate(model, prompt_ids, SAMPLE_TOKENS, temperature=0.8, top_k=40, rng=np.random.default_rng(SEED))
print("sample after training:", repr(tokenizer.decode(after.tolist())))

# %% [markdown]
# ## 9. The checkpoint
# Weights, optimizer state, random states, both configs and the tokenizer's name, in one
# safetensors file (data only: loading it cannot run code). Later lessons load it with
# `course_model()`. Loading it back must give the very same predictions.

# %%
path = course_checkpoint_path(QUICK)
trainer.save(path)
reloaded, metadata = load_model(path)   # in eval mode, ready for inference
model.eval()   # careful: the Trainer left the model in training mode, where dropout is random
probe = val_tokens[: model_config.context_length].astype(np.int64)[None, :]
difference = np.abs(reloaded(probe).data - model(probe).data).max()
print(f"saved {path.name} ({path.stat().st_size / 1e6:.1f} MB, step {metadata['step']}); "
      f"reloaded logits differ by {difference:.1e}")

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
assert abs(math.log(initial_ppl) - math.log(V)) < 0.1, "an untrained model should be near-uniform"
assert history.val_loss[-1] < history.val_loss[0], "validation loss should fall during training"
assert difference == 0.0, "a reloaded checkpoint must predict exactly as the saved model"
assert step_difference < 1e-3 * moved, \
    "steps by hand must equal the package's (AdamW, clip, schedule) up to float32 rounding"
assert schedule_difference < 1e-12, "the schedule by hand must equal cosine_schedule"
assert len(history.grad_norm) == trainer.step, "the trainer records one gradient norm per step"
if QUICK:
    assert gpt_ppl < initial_ppl / 2, "even a few quick steps should halve the perplexity"
else:
    assert ratio <= TARGET_RATIO, f"GPT perplexity {gpt_ppl:.1f} is not below {TARGET_RATIO} x bigram"
print("lesson 07 checks passed")



# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **One AdamW update by hand.** One AdamW update of one parameter, by hand (step t counts from 1).
#    Edit `exercises/07_1.py`, then run `tinygrad-llm exercise check 07.1`.
# 2. **Warmup then cosine decay.** The learning rate at a step: linear warmup, then cosine decay to
#    min_lr. Edit `exercises/07_2.py`, then run `tinygrad-llm exercise check 07.2`.
# 3. **Change a setting: the warmup length.** Choose WARMUP_STEPS so that the
#    learning rate at step 4 (counting from 0) is exactly half the peak. Then set it in TrainConfig,
#    rerun the lesson and look at the schedule panel of 07_loss_curves: what do fewer or more warmup
#    steps change? Edit `exercises/07_3.py`, then run `tinygrad-llm exercise check 07.3`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
