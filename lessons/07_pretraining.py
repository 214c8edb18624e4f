# %% [markdown]
"""
# Lesson 07: pretraining a GPT on real text

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
from tinygrad_llm.course.figures import legend_outside
from tinygrad_llm.course import course_checkpoint_path, course_model_config, course_train_config
from tinygrad_llm.train.trainer import load_model

# %% Settings: the course recipe (quick mode shrinks everything for smoke tests)
SEED = 0
QUICK = quick_mode()
TRAIN = course_train_config(QUICK)       # steps, batch, learning-rate schedule, evaluation cadence
PROMPT = "The for statement"             # what the model continues, before and after training
SAMPLE_TOKENS = 40 if QUICK else 80
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
# ## 4. Training
# Each step: a batch of random windows, forward, loss, backward, clip the gradient norm to 1,
# set the learning rate (linear warmup, cosine decay), AdamW update. The trainer evaluates on a
# fixed set of validation windows every `eval_interval` steps and stops with a clear message if
# the loss ever becomes NaN or infinite.

# %%
print(TRAIN)
trainer = Trainer(model, train_tokens, val_tokens, TRAIN, tokenizer_ref=corpus.tokenizer_path.name)
start = time.perf_counter()
history = trainer.train()
seconds = time.perf_counter() - start
print(f"trained {trainer.step} steps in {seconds:.0f} s ({history.tokens_per_second:,.0f} tokens/s)")

# %% [markdown]
# ## 5. Loss curves
# The training loss is noisy (every batch is different), so we also draw its moving average.
# Validation loss tracking training loss means the model generalises; a widening gap would mean
# it memorises.

# %%
window = max(1, len(history.train_loss) // 50)
smooth = np.convolve(history.train_loss, np.ones(window) / window, mode="valid")
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(history.steps, history.train_loss, alpha=0.3, label="train (per step)")
ax.plot(history.steps[window - 1:], smooth, label=f"train ({window}-step average)")
ax.plot(history.eval_steps, history.val_loss, "o-", label="validation")
ax.axhline(math.log(bigram_ppl), color="gray", linestyle="--", label="bigram baseline")
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy (nats per token)")
ax.set_title("Pretraining the course GPT")
legend_outside(ax)
save_figure(fig, "07_loss_curves")

# %% [markdown]
# ## 6. Perplexity against the bigram baseline
# Both models are scored on every validation token. The GPT sees up to a context window of
# previous tokens (windows overlap by half, so each scored token has at least half a window of
# context); the bigram sees one token.

# %%
gpt_ppl = perplexity(model, val_tokens, stride=model_config.context_length // 2)
ratio = gpt_ppl / bigram_ppl
print(f"validation perplexity: GPT {gpt_ppl:.1f}, bigram {bigram_ppl:.1f}, ratio {ratio:.2f} "
      f"(target at most {TARGET_RATIO})")

# %% [markdown]
# ## 7. Text after training
# The same prompt and seed as before training.

# %%
after = generate(model, prompt_ids, SAMPLE_TOKENS, temperature=0.8, top_k=40, rng=np.random.default_rng(SEED))
print("sample after training:", repr(tokenizer.decode(after.tolist())))

# %% [markdown]
# ## 8. The checkpoint
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

# %% Closing checks: the claims of this lesson
assert abs(math.log(initial_ppl) - math.log(V)) < 0.1, "an untrained model should be near-uniform"
assert history.val_loss[-1] < history.val_loss[0], "validation loss should fall during training"
assert difference == 0.0, "a reloaded checkpoint must predict exactly as the saved model"
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
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
