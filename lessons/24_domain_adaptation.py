# %% [markdown]
"""
# 24. Domain-adaptive pretraining

**The question.** The lesson-07 model read documentation: prose about Python. Suppose we need a
model of Python *code*. Train one from scratch on code, or continue pretraining the prose model
on code? And what happens to what it knew about prose while it learns code?

**The idea.** *Domain-adaptive pretraining* (BloombergGPT's finance, Codex's code, the "don't stop
pretraining" papers) continues the next-token objective of pretraining on text of the new domain.
It starts from weights that already know the tokens, the syntax and much of the vocabulary, so
at the same compute it should reach a lower domain perplexity than a model that starts from
nothing. The price is *forgetting*: every step on the domain moves weights away from what the
general text needed. The common cure is *replay*: a small fraction r of every batch is general
text again, so the loss is

    L = (1 - r) L_domain + r L_general

and the model keeps being reminded. Our domain ships with every Python: the standard library's
own source code, which looks nothing like prose (indentation, operators, identifiers). We run
three trainings of the same length with the same schedule and measure both perplexities as
they go: continued pretraining on code alone, continued pretraining with replay, and a model of
the same size trained from scratch on code alone.

**Builds on:** lesson 07 (the course model, `Trainer`, `TrainConfig`, `estimate_loss`), lesson 11
(`Mix` and `MixedObjective`: replay in a batch), lesson 09 (`perplexity`).
**Adds:** nothing to the package: the one `Trainer`, fed by other batch sources, does it all.

**Run:** `python lessons/24_domain_adaptation.py` (about 3 minutes on 2 cores with lesson 07's
checkpoint; without it the model is pretrained first, about 6 minutes more) or `--quick` (a few
seconds).
"""

# %%
import importlib
import inspect
import math
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import GPT, TrainConfig, Trainer, perplexity
from tinygrad_llm.course import course_corpus, course_model, quick_mode, save_figure
from tinygrad_llm.train.batches import Mix, RandomWindows
from tinygrad_llm.train.trainer import MixedObjective, estimate_loss, next_token_loss

# %% [markdown]
# ## Settings (quick mode shrinks everything for smoke tests)

# %%
SEED = 0
QUICK = quick_mode()
# The domain: standard-library modules written in Python. The last four are held out: their
# text is the domain's validation set (whole files the training never sees).
MODULES = ("textwrap", "string", "shlex", "fnmatch", "glob", "bisect", "heapq", "base64", "calendar",
           "difflib", "functools", "statistics", "fractions", "dataclasses", "csv", "configparser", "copy",
           "pprint", "queue", "sched", "contextlib", "abc", "operator", "numbers", "gettext", "tempfile",
           "shutil", "zipfile", "json.decoder", "json.encoder", "tarfile", "ast")
HELD_OUT = 4
if QUICK:
    MODULES = MODULES[:6] + MODULES[-HELD_OUT:]
STEPS = 10 if QUICK else 48
REPLAY = 0.125                            # 2 rows of general text in a batch of 16
TRAIN = TrainConfig(steps=STEPS, batch_size=8 if QUICK else 16, learning_rate=1e-3, min_learning_rate=1e-4,
                    warmup_steps=max(1, STEPS // 10), eval_interval=max(1, STEPS // 6),
                    eval_batches=1, log_interval=max(1, STEPS // 3), seed=SEED)
EVAL_BATCHES = 2 if QUICK else 4          # fixed validation windows per domain, during training
FINAL_TOKENS = 4_000 if QUICK else 16_000  # the final perplexities: this many validation tokens

rng = np.random.default_rng(SEED)
lesson_start = time.perf_counter()

# %% [markdown]
# ## 1. Two domains
# General text is the lesson-07 corpus, CPython's documentation, with its validation tail. The
# domain is the source of the modules above, read with `inspect.getsource` and encoded with the
# same course tokenizer. That tokenizer learned its merges on prose, so code costs more tokens
# per byte: one sign that it is another domain. The lesson-07 model has never seen code like
# this except in the documentation's examples; its perplexity on it is the starting point.

# %%
model, tokenizer = course_model(QUICK)
corpus = course_corpus(QUICK)
sources = {name: inspect.getsource(importlib.import_module(name)) for name in MODULES}
train_names, val_names = MODULES[:-HELD_OUT], MODULES[-HELD_OUT:]
separator = [tokenizer.eot_id]


def encode_files(names) -> np.ndarray:
    ids = []
    for name in names:
        ids += tokenizer.encode(sources[name]) + separator
    return np.array(ids, dtype=np.int64)


domain_train, domain_val = encode_files(train_names), encode_files(val_names)
code_bytes = sum(len(sources[n].encode()) for n in MODULES)
prose_bytes = len(tokenizer.decode(corpus.val.tolist()).encode())
print(f"domain: {len(train_names)} modules, {len(domain_train):,} training tokens; held out "
      f"{', '.join(val_names)}: {len(domain_val):,} tokens")
print(f"general: {len(corpus.train):,} training and {len(corpus.val):,} validation tokens")
print(f"bytes per token: code {code_bytes / (len(domain_train) + len(domain_val)):.2f}, "
      f"prose {prose_bytes / len(corpus.val):.2f}")
print(sources["bisect"][:300])

# %% [markdown]
# ## 2. Perplexity by hand, then the package
# Each run is measured on both validation sets. By hand on the first window of held-out code:
# one forward pass, the log-softmax, the negative log-likelihood of every next token, the mean,
# its exponential. The package's `perplexity` does the same over any number of windows.

# %%
T = model.config.context_length
window = domain_val[:T + 1]
with model.inference():
    logits = model(window[None, :-1]).data[0].astype(np.float64)           # (T, V)
shifted = logits - logits.max(axis=-1, keepdims=True)
log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
by_hand = math.exp(-log_probs[np.arange(T), window[1:]].mean())
package = perplexity(model, window)
print(f"one window of code: perplexity by hand {by_hand:.3f}, perplexity() {package:.3f}")


def final_perplexities(m: GPT) -> dict[str, float]:
    """Perplexity on the first FINAL_TOKENS tokens of each validation set."""
    with m.inference():
        return {"domain": perplexity(m, domain_val[:FINAL_TOKENS]), "general": perplexity(m, corpus.val[:FINAL_TOKENS])}


start = final_perplexities(model)
print(f"the lesson-07 model: domain perplexity {start['domain']:.1f}, general perplexity {start['general']:.1f}")

# %% [markdown]
# ## 3. Three runs, the same compute
# All three take the same number of steps of the same batch size and schedule, and are measured
# every few steps on the same fixed validation windows of both domains (`estimate_loss`).
# Continued pretraining starts from the lesson-07 weights; from scratch starts from a fresh
# initialisation of the same model. Replay is lesson 11's: a `Mix` of two sources of random
# windows and a `MixedObjective` weighting the two losses by their rows. The loop is lesson 07's
# `Trainer`, unchanged.

# %%
print(TRAIN)
pretrained = model.state_dict()


def evaluator(m: GPT) -> dict[str, float]:
    return {name: estimate_loss(m, tokens, TRAIN.batch_size, EVAL_BATCHES, seed=SEED + 1)
            for name, tokens in (("domain", domain_val), ("general", corpus.val))}


def run(name: str, from_pretrained: bool, replay: float) -> tuple[GPT, Trainer]:
    print(f"\n{name}:")
    m = GPT(model.config, rng=np.random.default_rng(SEED))
    if from_pretrained:
        m.load_state_dict(pretrained)
    m.train()
    domain = RandomWindows(domain_train, T, np.random.default_rng(SEED))
    if replay:
        batches = Mix(domain, RandomWindows(corpus.train, T, np.random.default_rng(SEED + 2)), replay)
        objective = MixedObjective(next_token_loss, next_token_loss, ("domain", "general"))
    else:
        batches, objective = domain, next_token_loss
    trainer = Trainer(m, config=TRAIN, batches=batches, objective=objective, evaluator=evaluator,
                      evaluate_first=True)
    trainer.train()
    m.eval()
    return m, trainer


RUNS = {"continued, code only": (True, 0.0),
        f"continued, {REPLAY:.1%} replay": (True, REPLAY),
        "from scratch, code only": (False, 0.0)}
CONTINUED, REPLAYED, SCRATCH = RUNS
models, histories, seconds = {}, {}, {}
for name, (from_pretrained, replay) in RUNS.items():
    begin = time.perf_counter()
    models[name], trainer = run(name, from_pretrained, replay)
    histories[name], seconds[name] = trainer.history, time.perf_counter() - begin

# %% [markdown]
# ## 4. Domain against general perplexity
# The final perplexities on longer stretches of both validation sets than the training curves
# used, next to the lesson-07 model's.

# %%
final = {"lesson-07 model (start)": start}
final.update({name: final_perplexities(m) for name, m in models.items()})
print(f"{'model':<27} {'domain ppl':>10} {'general ppl':>11} {'seconds':>8}")
for name, p in final.items():
    print(f"{name:<27} {p['domain']:10.1f} {p['general']:11.1f} {seconds.get(name, 0):8.0f}")
continued, replayed, scratch = final[CONTINUED], final[REPLAYED], final[SCRATCH]
forgetting = {name: final[name]["general"] / start["general"] - 1 for name in (CONTINUED, REPLAYED)}
print(f"\ncontinued pretraining brings code perplexity from {start['domain']:.1f} to {continued['domain']:.1f}; "
      f"from scratch, the same steps reach {scratch['domain']:.1f}")
print(f"general perplexity rises by {forgetting[CONTINUED]:.0%} on code alone and by {forgetting[REPLAYED]:.0%} "
      f"with {REPLAY:.1%} replay; the replayed run's code perplexity is {replayed['domain']:.1f}")

# %% [markdown]
# ## 5. The figure: both perplexities through training
# The curves are measured on the few fixed windows of section 3, the dashed lines on the longer
# stretches of section 4, so the two differ a little at step 0.

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
for name, history in histories.items():
    for axis, key in ((left, "domain"), (right, "general")):
        axis.plot(history.eval_steps, np.exp(history.metrics[key]), "o-", label=name)
for axis, key, title in ((left, "domain", "held-out standard-library code"),
                         (right, "general", "held-out documentation")):
    axis.axhline(start[key], color="gray", linestyle="--", label="lesson-07 model")
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("perplexity (log scale)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
left.legend(fontsize=8)
save_figure(fig, "24_domain_adaptation")

# %% [markdown]
# ## 6. What we found
# This run's numbers are printed below from its results; the closing checks assert the claims.
#
# * code is another domain for this model: the course tokenizer spends more tokens per byte on it
#   than on prose (checked), and the lesson-07 model finds it much harder to predict (checked);
# * at the same compute, continued pretraining beats starting from scratch on the domain by a
#   wide margin (checked): the prose model already knows the tokens and much of the language;
# * it forgets: after training on code alone, the perplexity on documentation is higher than
#   before (checked);
# * replay of a small fraction of general text forgets less (checked) and pays little for it on
#   the domain (the two code perplexities are printed).

# %%
print(f"code perplexity: start {start['domain']:.1f}, continued {continued['domain']:.1f}, with replay "
      f"{replayed['domain']:.1f}, from scratch {scratch['domain']:.1f}")
print(f"general perplexity: start {start['general']:.1f}, continued {continued['general']:.1f}, with replay "
      f"{replayed['general']:.1f}, from scratch {scratch['general']:.1f}")

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
assert abs(by_hand - package) < 1e-3 * package, "perplexity by hand and by the package agree"
assert code_bytes / (len(domain_train) + len(domain_val)) < prose_bytes / len(corpus.val), \
    "code takes more tokens per byte"
assert all(len(h.eval_steps) == len(histories[CONTINUED].eval_steps) for h in histories.values()), \
    "every run is measured at the same steps"
if not QUICK:   # the quick model has barely learned anything to adapt or forget
    assert start["domain"] > start["general"], "code is harder for the prose model"
    assert continued["domain"] < 0.5 * scratch["domain"], "continued pretraining beats from scratch"
    assert continued["domain"] < start["domain"], "continued pretraining lowers the domain perplexity"
    assert continued["general"] > start["general"], "and forgets some of the general text"
    assert replayed["general"] < continued["general"], "replay forgets less"
print(f"lesson 24 checks passed ({time.perf_counter() - lesson_start:.0f} s)")


# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **The replay loss.** The loss of a mixed batch, weighted by its rows. Edit `exercises/24_1.py`,
#    then run `tinygrad-llm exercise check 24.1`.
# 2. **Predict: rows of replay.** How many rows of a batch of 20 are general text at 15 % replay?
#    Edit `exercises/24_2.py`, then run `tinygrad-llm exercise check 24.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
