# %% [markdown]
"""
# 22. An encoder-decoder trained by span corruption

**The question.** The encoder of lesson 21 reads a text both ways but cannot write; the GPT writes
but reads only to the left. Translation, summarisation and question answering map one text to
another: read the whole input, then write an output of its own length. How are the two halves
joined, and how is such a model pretrained on plain text?

**The idea.** An *encoder-decoder* (the original transformer, T5) keeps an encoder for the source
and a causal decoder for the target, and adds to every decoder block a *cross-attention*: queries
from the target's positions, keys and values from the encoder's output,

    cross(x, m) = softmax((x W_q)(m W_k)^T / sqrt(d)) (m W_v)

so each target position reads the whole source. T5 pretrains it by *span corruption*: hide 15 %
of the text in spans of mean length 3, replace each span by one sentinel token in the source, and
make the target list the sentinels with their spans:

    source:  The  <s0>  fox jumps  <s1>  dog          target:  <s0> quick brown <s1> over the lazy <s2>

The target is short (the noise plus a sentinel per span), so a step is cheap, and the decoder
learns to write, not only to fill one position.

**Builds on:** lesson 21 (`Encoder`, the padding mask, special tokens added after the last id),
lesson 06 (`TransformerBlock`), lesson 07 (`Trainer`, batch sources, objectives), lesson 08
(greedy decoding and the KV cache: here the source's keys and values are cached).
**Adds:** `tinygrad_llm.text.spans`: `sentinel_ids`, `span_counts`, `span_noise_mask`,
`random_segmentation`, `span_corrupt`, `restore_spans`, `show_corruption`;
`tinygrad_llm.model.seq2seq`: `CrossAttention`, `DecoderBlock`, `EncoderDecoder`;
`tinygrad_llm.train.spans`: `SpanCorruptedWindows`, `seq2seq_loss`, `seq2seq_accuracy`.

**Run:** `python lessons/22_encoder_decoder.py` (about 2 minutes on 2 cores) or `--quick` (a few
seconds).
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import GPTConfig, Tensor, TrainConfig, Trainer, course_corpus, gradcheck, no_grad
from tinygrad_llm.course import quick_mode, save_figure
from tinygrad_llm.course.figures import label_axes, legend_outside, line_style
from tinygrad_llm.model.seq2seq import CrossAttention, EncoderDecoder
from tinygrad_llm.text.masking import add_special_tokens
from tinygrad_llm.text.spans import restore_spans, sentinel_ids, show_corruption, span_corrupt, span_counts
from tinygrad_llm.train.spans import SpanCorruptedWindows, seq2seq_accuracy, seq2seq_loss

# %% [markdown]
# ## Settings (quick mode shrinks everything for smoke tests)

# %%
SEED = 0
QUICK = quick_mode()
WINDOW = 24 if QUICK else 64              # tokens of text per example, before corruption
NOISE_DENSITY, MEAN_SPAN = 0.15, 3.0      # T5's settings
N_SENTINELS = 8                           # more than any window needs (spans + 1)
SHAPE = dict(d_model=16, n_layer=1, n_head=2) if QUICK else dict(d_model=96, n_layer=2, n_head=3)
STEPS = 20 if QUICK else 400
TRAIN = TrainConfig(steps=STEPS, batch_size=8 if QUICK else 32, learning_rate=2e-3, min_learning_rate=2e-4,
                    warmup_steps=STEPS // 10, eval_interval=STEPS // 4, log_interval=STEPS // 4, seed=SEED)
HELD_OUT_BATCHES = 2 if QUICK else 8      # batches of 32 validation windows, fixed
DECODE_EXAMPLES = 3 if QUICK else 5

rng = np.random.default_rng(SEED)
lesson_start = time.perf_counter()

# %% [markdown]
# ## 1. Span corruption, by hand and by the package
# A window of L tokens hides round(0.15 L) of them in round(noise / 3) spans. `span_corrupt`
# draws where: the noise tokens and the kept tokens are each cut into that many pieces of at
# least one token at random, and the pieces alternate, kept first. Sentinels are the last ids of
# the vocabulary (`<s0>` the very last), added to the course tokenizer after its own ids, and a
# start token for the decoder. By hand first: the counts, and the lengths of source and target.

# %%
corpus = course_corpus(QUICK)
base = corpus.tokenizer
names = ["[START]"] + [f"<extra_id_{k}>" for k in reversed(range(N_SENTINELS))]   # <extra_id_0> last
tokenizer = add_special_tokens(base, names)
V = tokenizer.vocab_size
START = tokenizer.special_token_id("[START]")
sentinels = sentinel_ids(V, N_SENTINELS)
same_sentinels = sentinels == [tokenizer.special_token_id(f"<extra_id_{k}>") for k in range(N_SENTINELS)]
noise_by_hand = round(NOISE_DENSITY * WINDOW)
spans_by_hand = round(noise_by_hand / MEAN_SPAN)
noise, n_spans = span_counts(WINDOW, NOISE_DENSITY, MEAN_SPAN)
source_length, target_length = WINDOW - noise + n_spans, noise + n_spans + 1
print(f"a window of {WINDOW}: {noise} hidden tokens in {n_spans} spans (by hand {noise_by_hand} in "
      f"{spans_by_hand}); source {source_length} tokens, target {target_length}")
print(f"vocabulary {base.vocab_size} + [START] + {N_SENTINELS} sentinels = {V}; <s0> is id {sentinels[0]}: "
      f"{same_sentinels}; {len(corpus.train):,} training tokens")

window = corpus.val[:WINDOW].astype(np.int64)
source, target = span_corrupt(window, np.random.default_rng(SEED), sentinels, NOISE_DENSITY, MEAN_SPAN)
round_trip = restore_spans(source, target, sentinels) == window.tolist()
print("\n" + show_corruption(tokenizer.decode, source, target, sentinels))
print(f"(source, target) -> the window again: {round_trip}; lengths {len(source)} and {len(target)}")

# %% [markdown]
# ## 2. Cross-attention, by hand
# Queries from the decoder's positions, keys and values from the encoder's output: the same
# attention as lesson 05 with no causal mask (a target position may read every source position)
# and, unlike self-attention, with a different number of queries and keys. By hand in NumPy for
# one head, against `CrossAttention`, then a gradient check in float64 of every entry of both
# inputs and of the projections.

# %%
small = GPTConfig(vocab_size=8, d_model=4, n_head=1, n_layer=1)
cross = CrossAttention(small, rng=np.random.default_rng(SEED), dtype=np.float64)
x, memory = rng.normal(size=(1, 5, 4)), rng.normal(size=(1, 3, 4))          # 5 target positions, 3 source
Wq, bq = cross.query.weight.data, cross.query.bias.data
Wkv, bkv = cross.key_value.weight.data, cross.key_value.bias.data
Wo, bo = cross.proj.weight.data, cross.proj.bias.data
q, kv = x[0] @ Wq.T + bq, memory[0] @ Wkv.T + bkv
k, v = kv[:, :4], kv[:, 4:]
scores = q @ k.T / np.sqrt(4)                                                # (5, 3)
weights = np.exp(scores - scores.max(axis=1, keepdims=True))
weights /= weights.sum(axis=1, keepdims=True)
by_hand = (weights @ v) @ Wo.T + bo
package = cross(Tensor(x), Tensor(memory)).data[0]
cross_error = float(np.abs(by_hand - package).max())
mix = Tensor(rng.normal(size=(1, 5, 4)))                                     # fixed weights, not a plain sum
xt, mt = Tensor(x, requires_grad=True), Tensor(memory, requires_grad=True)
cross_ok = gradcheck(lambda a, m: cross(a, m) * mix, xt, mt) and \
    gradcheck(lambda wq, wkv: cross(xt, mt) * mix, cross.query.weight, cross.key_value.weight)
cached = cross(Tensor(x), cross.keys_values(Tensor(memory))).data[0]
print(f"cross-attention, 5 queries on 3 keys: by hand vs CrossAttention {cross_error:.1e}; with cached keys and "
      f"values {np.abs(cached - package).max():.1e}; gradcheck: {cross_ok}")

# %% [markdown]
# ## 3. The model
# `EncoderDecoder` is lesson 21's `Encoder` over the source and a stack of `DecoderBlock`s over
# the target: each is lesson 06's `TransformerBlock` (causal self-attention, MLP) with a
# cross-attention between the two. One token embedding is shared by the encoder, the decoder
# and the output head, as in T5: source and target speak the same vocabulary (the sentinels
# appear in both), and a small model would otherwise spend most of its parameters on copies of
# the same table.

# %%
config = GPTConfig(vocab_size=V, context_length=WINDOW, **SHAPE, dropout=0.0)
model = EncoderDecoder(config, rng=np.random.default_rng(SEED))
parts = {"shared embedding": model.encoder.token_embedding.weight.size,
         "encoder blocks": sum(p.size for p in model.encoder.blocks.parameters()),
         "decoder blocks": sum(p.size for p in model.blocks.parameters())}
print(f"{model.num_parameters():,} parameters: " + ", ".join(f"{name} {n:,}" for name, n in parts.items()))
cross_share = sum(p.size for block in model.blocks for p in block.cross.parameters()) / parts["decoder blocks"]
print(f"cross-attention is {cross_share:.0%} of the decoder blocks")

# %% [markdown]
# ## 4. Pretraining with the Trainer
# The batch source is `SpanCorruptedWindows`: random windows of the training tokens, corrupted
# afresh each step; the decoder's input is the target shifted right behind `[START]` (teacher
# forcing). The objective `seq2seq_loss` is the decoder's cross-entropy on the target. The
# evaluator scores fixed corrupted windows of the validation text: loss, and the fraction of
# target tokens the decoder predicts right given the true ones before them.

# %%
options = dict(sentinels=sentinels, start_id=START, noise_density=NOISE_DENSITY, mean_span_length=MEAN_SPAN)
held_out_source = SpanCorruptedWindows(corpus.val, WINDOW, np.random.default_rng(SEED + 1), **options)
held_out = [held_out_source.next_batch(32) for _ in range(HELD_OUT_BATCHES)]
print(TRAIN)
trainer = Trainer(model, config=TRAIN, batches=SpanCorruptedWindows(corpus.train, WINDOW,
                                                                     np.random.default_rng(SEED), **options),
                  objective=seq2seq_loss, evaluator=lambda m: seq2seq_accuracy(m, held_out), evaluate_first=True)
start = time.perf_counter()
history = trainer.train()
seconds = time.perf_counter() - start
first, last = history.metrics["span_accuracy"][0], history.metrics["span_accuracy"][-1]
print(f"{seconds:.0f} s, {history.seconds / STEPS:.3f} s per step; held-out target accuracy (teacher forced) "
      f"{first:.1%} before training, {last:.1%} after")

# how much of that is the sentinels? they come in a fixed order, so they are easy
sentinel_right, sentinel_total, text_right, text_total = 0, 0, 0, 0
with model.inference():
    for batch_source, batch_inputs, batch_targets in held_out:
        predicted = model(batch_source, batch_inputs).data.argmax(axis=-1)
        is_sentinel = np.isin(batch_targets, sentinels)
        sentinel_right += int((predicted == batch_targets)[is_sentinel].sum())
        text_right += int((predicted == batch_targets)[~is_sentinel].sum())
        sentinel_total, text_total = sentinel_total + int(is_sentinel.sum()), text_total + int((~is_sentinel).sum())
sentinel_accuracy, text_accuracy = sentinel_right / sentinel_total, text_right / text_total
most_frequent = int(np.bincount(corpus.train, minlength=base.vocab_size).argmax())
baseline = float(np.mean([np.mean(t[~np.isin(t, sentinels)] == most_frequent) for _, _, t in held_out]))
print(f"of the target tokens: sentinels {sentinel_accuracy:.1%} right, hidden text {text_accuracy:.1%} "
      f"(always the most frequent token: {baseline:.1%})")

# %% [markdown]
# ## 5. Writing the spans: greedy decoding with the source cached
# To use the model, the decoder writes the target itself: start with `[START]`, append the most
# likely token, repeat until the target is as long as it should be. The encoder runs once, and
# so do the cross-attention keys and values of every layer (`memory`): each new target token only
# adds decoder work. By hand below, once with the cached memory and once re-encoding the source
# every step; both must write the same tokens.

# %%
def greedy_spans(source_row: np.ndarray, length: int, cache: bool) -> list[int]:
    written = [START]
    with no_grad():
        encoded, mask = model.encode(source_row[None])
        memory = model.memory(encoded) if cache else None
        for _ in range(length):
            if not cache:
                encoded, mask = model.encode(source_row[None])     # the same work again, every token
            logits = model.decode(np.array([written]), memory if cache else encoded, mask)
            written.append(int(logits.data[0, -1].argmax()))
    return written[1:]


examples, exact_spans = [], 0
model.eval()
for i in range(DECODE_EXAMPLES):
    batch_source, _, batch_targets = held_out[0]
    start_cached = time.perf_counter()
    cached_tokens = greedy_spans(batch_source[i], target_length, cache=True)
    cached_seconds = time.perf_counter() - start_cached
    start_plain = time.perf_counter()
    plain_tokens = greedy_spans(batch_source[i], target_length, cache=False)
    plain_seconds = time.perf_counter() - start_plain
    examples.append(dict(same=cached_tokens == plain_tokens, cached=cached_seconds, plain=plain_seconds))
    exact_spans += int(cached_tokens == batch_targets[i].tolist())
    print(show_corruption(tokenizer.decode, batch_source[i], batch_targets[i], sentinels))
    written = show_corruption(tokenizer.decode, [], cached_tokens, sentinels).split("\ntargets: ", 1)[1]
    print(f"written: {written}\n")
same_with_cache = all(e["same"] for e in examples)
speedup = sum(e["plain"] for e in examples) / sum(e["cached"] for e in examples)
print(f"cached and re-encoded decoding write the same tokens: {same_with_cache}; the cache is {speedup:.1f}x "
      f"faster here; {exact_spans} of {DECODE_EXAMPLES} targets written exactly")

fig, ax = plt.subplots(figsize=(7, 4.4))
ax.plot(history.eval_steps, history.metrics["span_accuracy"], **line_style(0), label="target tokens, held out")
ax.axhline(baseline, color="gray", linestyle="--", label="most frequent token (hidden text)")
label_axes(ax, "step", "teacher-forced accuracy", "Span-corruption pretraining")
ax.grid(alpha=0.3)
legend_outside(ax)
save_figure(fig, "22_encoder_decoder")

# %% [markdown]
# ## 6. What we found, and the three families side by side
# This run's numbers are printed below from its results; the closing checks assert the claims
# marked (checked).
#
# * span corruption keeps the whole text: source and target put together give the window back
#   (checked), with round(0.15 L) tokens hidden in round(noise / 3) spans (checked);
# * cross-attention is attention from target queries to source keys and values, with more
#   queries than keys if need be (checked by hand and by finite differences); the source's keys
#   and values are computed once and reused for every token written (checked: the same tokens);
# * pretraining runs through the same `Trainer` and the held-out accuracy rises (checked), but
#   what the model has learned at this budget is the format, not the content: it predicts the
#   sentinels almost always (checked), since they come in a fixed order after every span, while
#   its guesses of the hidden text are no better than always answering the most frequent token
#   (both printed above), and the greedy decoder writes mostly sentinels and filler. Like masked
#   language modelling in lesson 21, span corruption learns the text from the 15 % it hides, and
#   a model must first learn, through cross-attention, where in the source a span sits before it
#   can fill it. T5 was pretrained on tens of billions of tokens; our corpus has the number of
#   training tokens printed in section 1.
#
# The three families: the decoder (lessons 05-08) is trained on the next token with a causal
# mask and generates; the encoder (lesson 21) on masked tokens with no mask and represents a
# given text; the encoder-decoder on span corruption with both, and maps a text to a new one.

# %%
print(f"{'family':<16} {'objective':<26} {'attention':<30} {'good for':<28}")
print(f"{'decoder':<16} {'next token':<26} {'causal':<30} {'generating text':<28}")
print(f"{'encoder':<16} {'masked tokens (15 %)':<26} {'bidirectional':<30} {'classifying, tagging':<28}")
print(f"{'encoder-decoder':<16} {'span corruption (15 %)':<26} {'bidirectional + causal + cross':<30} "
      f"{'text to text':<28}")
print(f"this run: held-out target accuracy {last:.1%} (sentinels {sentinel_accuracy:.1%}, hidden text "
      f"{text_accuracy:.1%}), {model.num_parameters():,} parameters, {history.seconds / STEPS:.3f} s per step")

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
assert (noise, n_spans) == (noise_by_hand, spans_by_hand) and len(target) == target_length, "T5's counts"
assert round_trip and same_sentinels and sentinels[0] == V - 1, "the text survives; sentinels end the vocabulary"
assert cross_error < 1e-12 and cross_ok, "cross-attention by hand, by the package and by finite differences"
assert same_with_cache, "decoding with the cached source writes what re-encoding writes"
assert last > first, "pretraining raises the held-out accuracy"
if not QUICK:   # the quick model is barely trained
    assert sentinel_accuracy > 0.9 > text_accuracy, "the sentinels, in their fixed order, are the easy part"
print(f"lesson 22 checks passed ({time.perf_counter() - lesson_start:.0f} s)")

# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **Undo span corruption.** Put a text back together from its corrupted source and its
#    target. Edit `exercises/22_1.py`, then run `tinygrad-llm exercise check 22.1`.
# 2. **Predict: the target length.** Predict the length of the target (sentinels included) of a
#    window of 128 tokens at T5's settings. Edit `exercises/22_2.py`, then run
#    `tinygrad-llm exercise check 22.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
