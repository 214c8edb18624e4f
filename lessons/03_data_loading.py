# %% [markdown]
"""
# 03. From text to (inputs, targets) batches

The question: a GPT learns by predicting the next token. What exactly do we feed it, and how do we
turn a corpus of half a million characters into the examples of one training step?

The idea: encode the whole corpus once into one long array of token ids x_0, x_1, ..., x_{N-1}.
A language model factorises the probability of a text into next-token predictions,

    p(x_0, ..., x_{N-1}) = p(x_0) * p(x_1 | x_0) * p(x_2 | x_0, x_1) * ...,

so it is trained to make each token likely given the ones before it. A training example is a
window of T + 1 tokens starting at position s, cut into

    inputs  = x[s     : s + T]
    targets = x[s + 1 : s + T + 1]        (the same window shifted by one)

and the loss is the average of -log p(targets[t] | inputs[0..t]) over all t < T: one window
holds T predictions at once, not one. Windows start every `stride` tokens (they overlap when
stride < T) or at random positions, and B of them stack into a batch of shape (B, T).

Builds on: lesson 02 (the course tokenizer: byte-level BPE with `<|endoftext|>`).
Adds: `Document`, `load_documents`, `corpus_text`, `course_tokenizer`, `prepare_corpus`, `course_corpus`,
`train_val_split`, `SlidingWindowDataset`, `DataLoader`, `random_batch`.

Run: python lessons/03_data_loading.py           (2-4 seconds; if lesson 02 has not saved the
     course tokenizer yet, it is trained first, in about a second)
     python lessons/03_data_loading.py --quick   (2-4 seconds, smaller tokenizer and windows)
"""

# %% [markdown]
# ## Settings

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import (DataLoader, SlidingWindowDataset, corpus_text, load_documents,
                          course_corpus, random_batch)
from tinygrad_llm.course import quick_mode, save_figure
from tinygrad_llm.course.figures import legend_outside

SEED = 3
QUICK = quick_mode()
VAL_FRACTION = 0.1                         # the last 10% of tokens is validation
CONTEXT_LENGTH = 32 if QUICK else 128      # T: the course model of lessons 04-07 sees 128 tokens
BATCH_SIZE = 8 if QUICK else 16            # B
DEMO_LENGTH = 8                            # a short window that fits on one printed line
FIGURE_TOKENS = 33                         # tokens shown in the stride figure
COVERAGE_PASSES = 3.0                      # section 6 draws random windows until m T = 3 N
TIMING_BATCHES = 20                        # batches timed in section 5

rng = np.random.default_rng(SEED)


# %% [markdown]
# ## 1. The corpus is a list of documents
# The default corpus is Python's own documentation: the help pages of `help("for")` and friends,
# shipped with every Python in `pydoc_data.topics`. Each topic is one document and keeps its name
# and title, so that later lessons can label passages with the topic they come from.

# %%
documents = load_documents()
text = corpus_text(documents)   # the documents joined by <|endoftext|>
lengths = np.array([len(d.text) for d in documents])
print(f"documents:  {len(documents)}   (reference: 79 in Python 3.11; other versions differ a little)")
print(f"characters: {len(text):,}   (reference: about 465,000)")
print(f"document length: median {int(np.median(lengths)):,} characters, "
      f"shortest {lengths.min():,} ({documents[lengths.argmin()].name!r}), "
      f"longest {lengths.max():,} ({documents[lengths.argmax()].name!r})")
for document in documents[:3]:
    print(f"  {document.name:<18} {document.title!r}, {len(document.sections())} sections")
print(f"non-ASCII characters: {sorted({c for c in text if ord(c) > 127})}")


# %% [markdown]
# ## 2. One array of token ids
# `prepare_corpus` encodes every document with a tokenizer (`course_corpus` passes it the course
# tokenizer of lesson 02 and the course's output folder) and puts the
# `<|endoftext|>` id between documents, so the model can learn that what follows it is unrelated
# to what came before. It saves the array to disk once (later calls load it), as uint16: the
# ids are below 65,536, and two bytes per token instead of eight keep it a quarter of the size.
#
# The last `VAL_FRACTION` of the tokens is held out for validation: a contiguous tail, so no
# training window can overlap it, and the same on every run without a seed.

# %%
prepared = course_corpus(QUICK, val_fraction=VAL_FRACTION)
tokenizer, stats = prepared.tokenizer, prepared.stats
train, val = prepared.train, prepared.val
separator = tokenizer.special_tokens["<|endoftext|>"]
print(f"{'loaded from cache' if prepared.cached else 'encoded'}: {prepared.folder.name}")
print(f"tokens: {stats['tokens']:,} (train {len(train):,}, validation {len(val):,}), dtype {train.dtype}, "
      f"{train.nbytes + val.nbytes:,} bytes (int64 would take {8 * stats['tokens']:,})")
print(f"compression: {stats['bytes_per_token']:.2f} bytes per token   "
      f"(reference: 1.00 for the raw bytes of lesson 02; more merges, more bytes per token)")
# Which ids can occur at all? Byte values the text never uses (most of 128-255, control codes) never
# do, and a merge whose every occurrence was absorbed into a longer merge is never emitted either.
byte_values = len(set(text.encode("utf-8")))
ceiling = (stats["vocab_size"] - (256 - byte_values)) / stats["vocab_size"]
print(f"vocabulary coverage: {stats['vocab_coverage']:.1%} of {stats['vocab_size']:,} ids occur   "
      f"(the text uses {byte_values} of 256 byte values, so at most {ceiling:.1%} can)")
print(f"separators: {int((train == separator).sum()) + int((val == separator).sum())} "
      f"<|endoftext|> tokens   (reference: {len(documents) - 1}, one between each pair of documents)")
head = [tokenizer.decode([int(i)]) for i in train[:12]]
print(f"the first tokens: {train[:12].tolist()}\n                = {head}")


# %% [markdown]
# ## 3. Next-token targets
# Shift the window by one and every input position gets its own target: the token that follows.
# Position t may only look at inputs 0..t (the causal mask of lesson 05 enforces that), so a
# window of T tokens trains T predictions with contexts of length 1, 2, ..., T.

# %%
start = 1_000
inputs, targets = train[start:start + DEMO_LENGTH], train[start + 1:start + DEMO_LENGTH + 1]
print(f"inputs : {inputs.tolist()}\ntargets: {targets.tolist()}")
for t in range(DEMO_LENGTH):
    context = tokenizer.decode(inputs[:t + 1].tolist())
    print(f"  {context!r:>50} -> {tokenizer.decode([int(targets[t])])!r}")


# %% [markdown]
# ## 4. The sliding window
# Written out, the dataset is a loop over start positions 0, stride, 2 stride, ... as long as a
# whole window of T + 1 tokens fits. The number of windows follows from the last legal start,
# N - T - 1:
#
#     windows = (N - T - 1) // stride + 1
#
# With stride = T the windows tile the corpus and every token is a target once per epoch; with
# stride < T they overlap, each token is a target about T / stride times, and an epoch is that
# much longer while holding no new text. Overlap is a cheap way to get more (correlated)
# examples; stride = T is the usual choice for training in epochs.

# %%
def windows_by_hand(tokens: np.ndarray, max_length: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Every window of the dataset, one Python iteration per start position: the definition."""
    all_inputs, all_targets = [], []
    for s in range(0, len(tokens) - max_length, stride):   # last start: len - max_length - 1
        all_inputs.append(tokens[s:s + max_length])
        all_targets.append(tokens[s + 1:s + max_length + 1])
    return np.array(all_inputs, dtype=np.int64), np.array(all_targets, dtype=np.int64)


N = len(train)
print(f"{'stride':>8} {'windows':>9} {'formula':>9} {'tokens/epoch':>13} {'seen per token':>15}")
for stride in (CONTEXT_LENGTH, CONTEXT_LENGTH // 2, CONTEXT_LENGTH // 4, 1):
    dataset = SlidingWindowDataset(train, max_length=CONTEXT_LENGTH, stride=stride)
    formula = (N - CONTEXT_LENGTH - 1) // stride + 1
    print(f"{stride:>8} {len(dataset):>9,} {formula:>9,} {len(dataset) * CONTEXT_LENGTH:>13,} "
          f"{len(dataset) * CONTEXT_LENGTH / N:>15.2f}")

by_hand = windows_by_hand(train[:2_000], CONTEXT_LENGTH, CONTEXT_LENGTH // 2)
small = SlidingWindowDataset(train[:2_000], max_length=CONTEXT_LENGTH, stride=CONTEXT_LENGTH // 2)
library = small.batch(np.arange(len(small)))
print(f"the loop and SlidingWindowDataset agree on all {len(small)} windows of the first 2,000 tokens: "
      f"{np.array_equal(by_hand[0], library[0]) and np.array_equal(by_hand[1], library[1])}")

dataset = SlidingWindowDataset(train, max_length=CONTEXT_LENGTH, stride=CONTEXT_LENGTH)
every_input, _ = dataset.batch(np.arange(len(dataset)))            # (windows, T)
crossing = (every_input == separator).any(axis=1).mean()
print(f"windows that cross a document boundary: {crossing:.1%}   (reference: T / mean document length "
      f"in tokens = {CONTEXT_LENGTH * len(documents) / stats['tokens']:.1%})")

# %% [markdown]
# ### The figure
# The same 33 tokens cut with three strides. Each row is one window, one cell per
# token: T input positions (blue) and the one extra token that only appears as a target (orange).

# %%
strides = (DEMO_LENGTH, DEMO_LENGTH // 2, 1)
fig, axes = plt.subplots(len(strides), 1, figsize=(9, 7.5), sharex=True,
                         gridspec_kw={"height_ratios": [2, 3, 8]})
for ax, stride in zip(axes, strides):
    demo = SlidingWindowDataset(np.arange(FIGURE_TOKENS), max_length=DEMO_LENGTH, stride=stride)
    for i in range(len(demo)):
        s = i * stride
        cells = np.arange(s, s + DEMO_LENGTH + 1) - 0.5
        colours = ["tab:blue"] * DEMO_LENGTH + ["tab:orange"]
        ax.barh(i, 1, left=cells, height=0.75, color=colours, edgecolor="white", linewidth=0.8)
    ax.set_ylim(len(demo) - 0.5, -0.5)
    ax.set_ylabel("window")
    overlap = max(0, DEMO_LENGTH - stride)
    ax.set_title(f"stride {stride}: {len(demo)} windows, neighbours share {overlap} of {DEMO_LENGTH} "
                 f"input tokens", fontsize=10)
axes[-1].set_xlabel("token position in the corpus")
fig.legend(handles=[plt.Rectangle((0, 0), 1, 1, color="tab:blue"), plt.Rectangle((0, 0), 1, 1, color="tab:orange")],
           labels=["inputs (the targets are the same span shifted right by one)", "the last target"],
           loc="lower center", ncol=2, fontsize=9, bbox_to_anchor=(0.5, -0.01))
fig.suptitle(f"Sliding windows of T = {DEMO_LENGTH} over {FIGURE_TOKENS} tokens")
save_figure(fig, "03_sliding_windows")


# %% [markdown]
# ## 5. Batches for epochs
# The `DataLoader` shuffles the window order once per epoch with the lesson's seeded generator
# and stacks B windows into (B, T) arrays. It gathers a whole batch with one fancy-indexing step:
# an array of positions `starts[:, None] + arange(T + 1)` of shape (B, T + 1) indexes the token
# array directly, instead of a Python loop over every token.

# %%
loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, rng=rng)
batch_inputs, batch_targets = next(iter(loader))
print(f"{len(dataset):,} windows -> {len(loader):,} batches of {BATCH_SIZE} per epoch "
      f"(drop_last leaves out the {len(dataset) % BATCH_SIZE} that do not fill a batch)")
print(f"inputs {batch_inputs.shape} {batch_inputs.dtype}, targets {batch_targets.shape} {batch_targets.dtype}")
print(f"row 0 inputs : {tokenizer.decode(batch_inputs[0, :24].tolist())!r}...")
print(f"row 0 targets: {tokenizer.decode(batch_targets[0, :24].tolist())!r}...")
replay = next(iter(DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, rng=np.random.default_rng(SEED))))
print(f"a fresh loader with the same seed gives the same first batch: "
      f"{np.array_equal(replay[0], batch_inputs)}")


def batch_by_hand(tokens: np.ndarray, starts: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The same batch, one Python step per token."""
    x = np.empty((len(starts), length), dtype=np.int64)
    y = np.empty((len(starts), length), dtype=np.int64)
    for b, s in enumerate(starts):
        for t in range(length):
            x[b, t], y[b, t] = tokens[s + t], tokens[s + t + 1]
    return x, y


timing_windows = [rng.integers(0, len(dataset), size=BATCH_SIZE) for _ in range(TIMING_BATCHES)]
clock = time.perf_counter()
slow = [batch_by_hand(train, w * dataset.stride, CONTEXT_LENGTH) for w in timing_windows]
loop_seconds = (time.perf_counter() - clock) / TIMING_BATCHES
clock = time.perf_counter()
fast = [dataset.batch(w) for w in timing_windows]
fast_seconds = (time.perf_counter() - clock) / TIMING_BATCHES
same = all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(slow, fast))
print(f"one batch of {BATCH_SIZE} x {CONTEXT_LENGTH}: loop over tokens {1e3 * loop_seconds:.2f} ms, "
      f"fancy indexing {1e3 * fast_seconds:.3f} ms ({loop_seconds / fast_seconds:.0f}x faster, "
      f"identical: {same})")


# %% [markdown]
# ## 6. Random windows for pretraining, and how much of the corpus they cover
# Pretraining in lesson 07 does not count epochs: each step draws B windows at uniformly random
# starts (`random_batch`, as nanoGPT does). A position p in the middle of the corpus is a target
# of a random window when the start falls among the T starts p - T .. p - 1, out of N - T legal
# starts. After m windows, the chance that p was never a target is (1 - T / (N - T))^m, so the
# fraction of the corpus seen at least once is close to
#
#     coverage(m) = 1 - exp(-m T / N)
#
# The experiment below feeds `random_batch` the positions 0..N-1 instead of the tokens, so the
# "tokens" it returns are the positions it chose, and marks every position used as a target.

# %%
coverage_batches = int(np.ceil(COVERAGE_PASSES * N / (BATCH_SIZE * CONTEXT_LENGTH)))
positions = np.arange(N)
seen = np.zeros(N, dtype=bool)
measured = []
for _ in range(coverage_batches):
    _, target_positions = random_batch(positions, BATCH_SIZE, CONTEXT_LENGTH, rng)
    seen[target_positions.ravel()] = True
    measured.append(seen.mean())
windows_drawn = BATCH_SIZE * np.arange(1, coverage_batches + 1)
theory = 1 - np.exp(-windows_drawn * CONTEXT_LENGTH / N)
print(f"after {coverage_batches:,} batches ({windows_drawn[-1] * CONTEXT_LENGTH:,} target tokens, "
      f"{windows_drawn[-1] * CONTEXT_LENGTH / N:.2f} x the training set): "
      f"{measured[-1]:.1%} of positions were a target   (reference: 1 - exp(-m T / N) = {theory[-1]:.1%})")

one_pass = measured[int(np.searchsorted(windows_drawn * CONTEXT_LENGTH / N, 1.0))]
print(f"after one pass's worth (m T = N): {one_pass:.1%} seen   (reference: 1 - 1/e = {1 - np.exp(-1):.1%}, "
      f"give or take a few percent: only about N / T = {N // CONTEXT_LENGTH:,} windows were drawn)")

fig, ax = plt.subplots(figsize=(6.5, 4))
ax.plot(windows_drawn * CONTEXT_LENGTH / N, measured, label="measured with random_batch")
ax.plot(windows_drawn * CONTEXT_LENGTH / N, theory, "--", label="1 - exp(-m T / N)")
ax.set_xlabel("target tokens drawn / training tokens  (m T / N)")
ax.set_ylabel("fraction of positions seen as a target")
ax.axvline(1.0, color="grey", linewidth=0.8)
ax.set_title(f"One pass's worth of random windows shows {one_pass:.0%} of the corpus as targets", fontsize=10)
legend_outside(ax)
save_figure(fig, "03_random_window_coverage")

val_inputs, val_targets = random_batch(val, BATCH_SIZE, CONTEXT_LENGTH, rng)
print(f"a validation batch: inputs {val_inputs.shape}, drawn from the {len(val):,} held-out tokens")


# %% [markdown]
# ## 7. The numbers a model has to beat
# Before any training, two losses set the scale for lesson 07. A model that spreads its
# probability evenly over V tokens has loss ln V. A model that ignores the context but knows
# how often each token occurs (a unigram model: counts from the training part, plus one so no
# token gets probability zero) does better. A GPT has to use the inputs to beat both.

# %%
V = tokenizer.vocab_size
counts = np.bincount(train, minlength=V) + 1.0          # (V,) add-one smoothing
unigram_loss = -np.mean(np.log(counts / counts.sum())[val[1:]])   # every validation token after the first is a target
print(f"uniform over {V:,} tokens: loss ln V = {np.log(V):.3f}   (perplexity {V:,})")
print(f"unigram counts from train, on validation: loss {unigram_loss:.3f}   (perplexity {np.exp(unigram_loss):.0f})")


# %% [markdown]
# ## Closing checks
# The claims of the text above.

# %%
assert len(documents) >= 50 and 300_000 < len(text) < 800_000
assert train.dtype == np.uint16 and len(train) + len(val) == stats["tokens"]
assert abs(len(val) / stats["tokens"] - VAL_FRACTION) < 1e-3
assert tokenizer.decode(np.concatenate([train, val]).tolist()) == text, "the array is the corpus, losslessly"
assert int((train == separator).sum() + (val == separator).sum()) == len(documents) - 1
assert np.array_equal(batch_targets[:, :-1], batch_inputs[:, 1:]), "targets are the inputs shifted by one"
assert batch_inputs.shape == (BATCH_SIZE, CONTEXT_LENGTH) and batch_inputs.dtype == np.int64
assert len(dataset) == (N - CONTEXT_LENGTH - 1) // CONTEXT_LENGTH + 1
assert np.array_equal(by_hand[0], library[0]) and np.array_equal(by_hand[1], library[1])
assert np.array_equal(replay[0], batch_inputs) and same
# the sampling noise of the coverage is about sqrt(p (1 - p) T / N): 1.6% for the full run, so 5% is 3 sigma
assert abs(measured[-1] - theory[-1]) < 0.05, "random windows cover the corpus as 1 - exp(-mT/N) predicts"
assert abs(one_pass - (1 - np.exp(-1))) < 0.05
assert stats["vocab_coverage"] <= ceiling
assert unigram_loss < np.log(V)
print("all checks passed")


# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **Cut a token array into training windows.** Cut a token array into (inputs, targets) windows of
#    context_length tokens, every stride tokens. Edit `exercises/03_1.py`, then run `tinygrad-llm
#    exercise check 03.1`.
# 2. **Predict: how many windows does an epoch have?** Predict how many windows of 64 tokens, one
#    every 48 tokens, fit in 1,000 tokens (each window needs its 64 inputs and the one token after
#    them as a target). Edit `exercises/03_2.py`, then run `tinygrad-llm exercise check 03.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
