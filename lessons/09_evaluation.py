# %% [markdown]
"""
# 09. Evaluation, what the numbers measure and what they miss

**The question.** Lesson 07 judged the course GPT by one number, its validation perplexity. What
exactly does that number measure, and why does it change with the way we slide a window over a
long text? When a model *writes* text, how do we score it against what a person wrote, and when it
*chooses* among classes, how do we score its answers? And what does each of these numbers miss?

**The idea.** Perplexity is exp of the mean negative log-likelihood per token,

    PPL = exp( -(1/N) sum_t log p(x_t | x_<t) ),

so it depends on how much context x_<t each token gets: a text longer than the context window is
scored in windows that start every `stride` tokens, and a smaller stride gives every scored token
more context for more forward passes. Generated text is scored by counting n-grams it shares with
a reference, each at most as often as it occurs in both ("clipped"):

    ROUGE-N:  P = matches / hypothesis n-grams,  R = matches / reference n-grams,  F1 = 2PR / (P + R)
    ROUGE-L:  the same with the longest common subsequence (LCS) in place of the matches
    BLEU   =  100 * BP * exp( (1/4) sum_{n=1..4} log p_n ),   BP = min(1, exp(1 - r / c))

where p_n is the clipped n-gram precision summed over the whole corpus, c the hypotheses' length and
r the references'. A classifier is scored by accuracy and, class by class, by a confusion matrix.
All of them reward surface agreement; none of them knows what the text means.

**Builds on:** lessons 07-08 (the pretrained course model, `perplexity`, `generate`).
**Adds:** `tinygrad_llm.evaluate.metrics`: `rouge_tokenize`, `rouge_n`, `rouge_l`, `rouge`, `mean_rouge`,
`RougeScore`, `bleu_tokenize`, `corpus_bleu`, `sentence_bleu`, `BleuScore`, `ngram_counts`,
`lcs_length`, `accuracy`, `confusion_matrix`, `precision_recall_f1`, `macro_f1`.

**Run:** `python lessons/09_evaluation.py` (about a minute with lesson 07's checkpoint; without it
the model is pretrained first, about 6 minutes on 2 cores) or `--quick` (a few seconds).
"""

# %%
import math
import re

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import generate, no_grad, perplexity, course_corpus
from tinygrad_llm.course import quick_mode, save_figure
from tinygrad_llm.course.figures import legend_outside
from tinygrad_llm.evaluate.perplexity import sliding_windows, token_nll
from tinygrad_llm.evaluate.metrics import (accuracy, bleu_tokenize, confusion_matrix, corpus_bleu, lcs_length,
                                  macro_f1, mean_rouge, precision_recall_f1, rouge, rouge_tokenize,
                                  sentence_bleu)
from tinygrad_llm.course import course_model

# %% [markdown]
# ## Settings (quick mode shrinks everything for smoke tests)

# %%
SEED = 0
QUICK = quick_mode()
EVAL_TOKENS = 4_000 if QUICK else 20_000   # validation tokens scored (at most; the course has ~13k)
STRIDE_FRACTIONS = (1, 2, 4, 8)            # stride = context_length / fraction
BATCH_SIZE = 16                            # windows per forward pass
SAMPLE_TOKENS = 40 if QUICK else 80
N_SENTENCES = 40 if QUICK else 200         # validation sentences for the corruption curve
CORRUPTION_LEVELS = np.linspace(0.0, 1.0, 6 if QUICK else 11)

rng = np.random.default_rng(SEED)

# %% [markdown]
# ## 1. The model and its validation text
# The lesson-07 model, loaded from its checkpoint (or pretrained now with lesson 07's recipe when
# the checkpoint is missing), and the validation tokens it never trained on.

# %%
model, tokenizer = course_model(QUICK)
val_tokens = course_corpus(QUICK).val.astype(np.int64)
T = model.config.context_length
V = tokenizer.vocab_size
print(f"{model.num_parameters():,} parameters, context {T} tokens, vocabulary {V}; "
      f"{len(val_tokens):,} validation tokens")

# %% [markdown]
# ## 2. The loss of each token, by its position in the window
# Cut the validation text into windows of T + 1 tokens, starting every few tokens; the prediction at
# position t of a window sees the t + 1 tokens up to it and nothing else. Averaging the loss over
# windows, position by position, shows what context is worth: position 0 sees one token, as
# lesson 07's bigram did. We compute the losses by hand: log-softmax of the logits, then the
# log-probability of the target. (The quick model has learned little beyond token frequencies,
# so its curve is nearly flat.)

# %%
def token_losses(model, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(negative log-likelihood, top-1 prediction) of every target of (B, T + 1) windows: (B, T) each."""
    inputs, targets = windows[:, :-1], windows[:, 1:]
    model.eval()
    with no_grad():
        logits = model(inputs).data.astype(np.float64)                        # (B, T, V)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))  # log-softmax
    nll = -np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]  # (B, T)
    return nll, logits.argmax(axis=-1)


STEP = T // max(STRIDE_FRACTIONS)   # windows start every STEP tokens, the smallest stride below
K = (min(EVAL_TOKENS, len(val_tokens)) - 1) // T - 1
eval_tokens = val_tokens[: (K + 1) * T + 1]   # a whole number of windows, so that none is cut short
windows = np.stack([eval_tokens[b: b + T + 1] for b in range(0, K * T + 1, STEP)])   # (n, T + 1)
losses, predictions = [], []
for begin in range(0, len(windows), BATCH_SIZE):
    nll, top1 = token_losses(model, windows[begin:begin + BATCH_SIZE])
    losses.append(nll)
    predictions.append(top1)
losses, predictions = np.concatenate(losses), np.concatenate(predictions)   # (n, T) each
by_position = losses.mean(axis=0)                                            # (T,)
BIN = max(1, T // 16)
binned = by_position.reshape(-1, BIN).mean(axis=1)   # averages over BIN positions: less noise
quarter = T // 4
print(f"{len(windows)} windows of {T} predictions, one every {STEP} tokens of {len(eval_tokens):,}")
print(f"mean loss at position 0: {by_position[0]:.3f} nats; positions 1..{quarter - 1}: "
      f"{by_position[1:quarter].mean():.3f}; positions {T - quarter}..{T - 1}: "
      f"{by_position[-quarter:].mean():.3f}; whole window: {by_position.mean():.3f}")

fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(np.arange(T), by_position, ".", alpha=0.4, label="each position")
ax.plot(np.arange(T).reshape(-1, BIN).mean(axis=1), binned, "o-", label=f"mean of {BIN} positions")
ax.set_xlabel("position t in the window (the prediction sees t + 1 tokens)")
ax.set_ylabel("mean loss (nats per token)")
ax.set_title(f"Validation loss by position, over {len(windows)} windows")
legend_outside(ax)
save_figure(fig, "09_loss_by_position")

# %% [markdown]
# ## 3. Stride: the same model, different perplexities
# With stride s, windows of T tokens start every s tokens and each scores only the tokens no
# earlier window scored: the first window all T, every later one its last s positions,
# T - s .. T - 1, where each prediction sees more than T - s tokens. Stride T (no overlap) thus
# averages the whole curve above; stride 1 gives every token a full window, for one forward pass
# per token. Our windows start every STEP tokens, so every window perplexity() uses for a stride s
# (a multiple of STEP) is one of ours: we can rebuild its number from our losses, exactly.
#
# The stride moves perplexity the way the tail of the curve differs from its mean: down while the
# loss keeps falling with more context, not at all for a model that ignores context, up for one
# that is worse at its last positions. The model is the same, only the test changed; so a
# perplexity means little without its context length and stride.

# %%
stride_rows = []
for fraction in STRIDE_FRACTIONS:
    stride = T // fraction
    spans = sliding_windows(len(eval_tokens), T, stride)
    # the first window scores T targets, every later one s new ones: 1 + (N - 1 - T) / s windows
    assert len(spans) == 1 + (len(eval_tokens) - 1 - T) // stride
    computed = sum(end - begin for begin, end, _ in spans)
    measured = perplexity(model, eval_tokens, stride=stride)
    rows = losses[:: stride // STEP]                # our windows that start at multiples of s
    total = rows[0].sum() + rows[1:, T - stride:].sum()
    count = T + (len(rows) - 1) * stride            # every target scored exactly once
    by_hand = math.exp(total / count)
    tail = math.exp(by_position[T - stride:].mean())
    stride_rows.append((stride, measured, by_hand))
    print(f"stride {stride:4d}: {len(spans):4d} windows ({computed / count:4.1f} positions computed per "
          f"scored token), perplexity {measured:7.2f}, by hand {by_hand:7.2f}; "
          f"curve over {T - stride}..{T - 1}: {tail:7.2f}")
ppl_by_stride = {stride: measured for stride, measured, _ in stride_rows}
change = ppl_by_stride[STEP] / ppl_by_stride[T] - 1
print(f"stride {STEP} instead of {T}: perplexity {'lower' if change < 0 else 'higher'} by "
      f"{abs(100 * change):.1f}%, for {T // STEP}x the work")

# %% [markdown]
# ## 4. Which text? Documentation against prose
# Perplexity is a property of a model *and* a text. The course model read Python's documentation;
# here is a paragraph that is not documentation, which should cost the course model more. Per-token
# perplexity also depends on the tokenizer (a text cut into more, shorter tokens has more, easier
# predictions), so to compare two texts we also report bits per byte: the total loss in bits
# divided by the bytes it covers. (The quick model, close to a unigram model, may not tell the two
# apart.)

# %%
PROSE = ("My grandmother kept bees behind the barn. Every spring she lifted the lids of the hives, "
         "talked to the insects in a low voice, and came back to the kitchen with her sleeves "
         "smelling of smoke and honey. She never wore gloves, and she was never stung, though the "
         "neighbours swore the bees followed her to church on Sundays.")


def text_scores(tokens: np.ndarray) -> tuple[float, float]:
    """(perplexity per token, bits per byte) of tokens[1:], with a half-window stride."""
    total, count = token_nll(model, tokens, stride=max(1, T // 2))
    scored_bytes = len(tokenizer.decode(tokens[1:].tolist()).encode("utf-8"))
    return math.exp(total / count), total / math.log(2) / scored_bytes


prose_tokens = np.array(tokenizer.encode(PROSE), dtype=np.int64)
doc_tokens = eval_tokens
doc_ppl, doc_bpb = text_scores(doc_tokens)
prose_ppl, prose_bpb = text_scores(prose_tokens)
print(f"validation documentation: perplexity {doc_ppl:7.1f}, {doc_bpb:.2f} bits per byte "
      f"({len(tokenizer.decode(doc_tokens.tolist())) / len(doc_tokens):.2f} characters per token)")
print(f"a paragraph of prose:     perplexity {prose_ppl:7.1f}, {prose_bpb:.2f} bits per byte "
      f"({len(PROSE) / len(prose_tokens):.2f} characters per token)")

# %% [markdown]
# Low perplexity means *familiar*, not *good* or *true*. The model's own greedy continuation is the
# most familiar text there is: every token is the one it rated most likely, and it is usually
# repetitive. Two sentences built from the same words, one true and one false, get similar
# numbers, and the false one may well get the lower: nothing in the loss knows which is true, only
# which wording the training text made more likely.

# %%
prompt = np.array(tokenizer.encode("The for statement"), dtype=np.int64)
greedy = generate(model, prompt, SAMPLE_TOKENS, temperature=0.0)
greedy_ppl = perplexity(model, greedy, stride=max(1, T // 2))
print(f"greedy sample, perplexity {greedy_ppl:.1f} (documentation: {doc_ppl:.1f}):")
print("   ", repr(tokenizer.decode(greedy.tolist())))

TRUE = "Lists are mutable sequences, and tuples are immutable sequences."
FALSE = "Lists are immutable sequences, and tuples are mutable sequences."
true_ppl = text_scores(np.array(tokenizer.encode(TRUE), dtype=np.int64))[0]
false_ppl = text_scores(np.array(tokenizer.encode(FALSE), dtype=np.int64))[0]
print(f"true:  {TRUE!r} perplexity {true_ppl:.1f}")
print(f"false: {FALSE!r} perplexity {false_ppl:.1f}")

# %% [markdown]
# ## 5. ROUGE by hand
# ROUGE compares words after a fixed tokenisation (`rouge-score`'s): lowercase, every run of
# characters other than a-z and 0-9 becomes a space, split. We count n-grams with explicit loops,
# clip, and divide; then ROUGE-L fills the LCS table, where cell [i, j] is the LCS of the first i
# hypothesis words and the first j reference words.

# %%
REFERENCE = 'The "for" statement is used to iterate over the elements of a sequence.'
HYPOTHESIS = "The for statement iterates over the items of a sequence."


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def count_ngrams(tokens: list[str], n: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for i in range(len(tokens) - n + 1):
        gram = " ".join(tokens[i:i + n])
        counts[gram] = counts.get(gram, 0) + 1
    return counts


hyp_words, ref_words = words(HYPOTHESIS), words(REFERENCE)
print("hypothesis:", hyp_words)
print("reference: ", ref_words)
by_hand = {}
for n in (1, 2):
    hyp_counts, ref_counts = count_ngrams(hyp_words, n), count_ngrams(ref_words, n)
    print(f"\n{n}-grams: {'n-gram':<22} hyp  ref  clipped")
    matches = 0
    for gram in sorted(set(hyp_counts) | set(ref_counts)):
        clipped = min(hyp_counts.get(gram, 0), ref_counts.get(gram, 0))
        matches += clipped
        print(f"{'':9}{gram:<22} {hyp_counts.get(gram, 0):3d}  {ref_counts.get(gram, 0):3d}  {clipped:7d}")
    p, r = matches / sum(hyp_counts.values()), matches / sum(ref_counts.values())
    by_hand[f"rouge{n}"] = (p, r, 2 * p * r / (p + r))
    print(f"ROUGE-{n}: P = {matches}/{sum(hyp_counts.values())} = {p:.3f}, "
          f"R = {matches}/{sum(ref_counts.values())} = {r:.3f}, F1 = {by_hand[f'rouge{n}'][2]:.3f}")

table = np.zeros((len(hyp_words) + 1, len(ref_words) + 1), dtype=int)
for i in range(1, len(hyp_words) + 1):
    for j in range(1, len(ref_words) + 1):
        if hyp_words[i - 1] == ref_words[j - 1]:
            table[i, j] = table[i - 1, j - 1] + 1            # extend the LCS by this shared word
        else:
            table[i, j] = max(table[i - 1, j], table[i, j - 1])  # drop a word from one side
print("\nLCS table (rows: hypothesis words, columns: reference words)")
print(" " * 11 + "".join(f"{w[:4]:>5}" for w in ref_words))
for i, row in enumerate(table[1:], start=1):
    print(f"{hyp_words[i - 1]:>10} " + "".join(f"{v:5d}" for v in row[1:]))
common, i, j = [], len(hyp_words), len(ref_words)
while i > 0 and j > 0:   # walk back from the corner to read one longest common subsequence
    if hyp_words[i - 1] == ref_words[j - 1]:
        common.append(hyp_words[i - 1])
        i, j = i - 1, j - 1
    elif table[i - 1, j] >= table[i, j - 1]:
        i -= 1
    else:
        j -= 1
lcs = table[-1, -1]
p, r = lcs / len(hyp_words), lcs / len(ref_words)
by_hand["rougeL"] = (p, r, 2 * p * r / (p + r))
print(f"LCS = {lcs}: {common[::-1]}")
print(f"ROUGE-L: P = {lcs}/{len(hyp_words)} = {p:.3f}, R = {lcs}/{len(ref_words)} = {r:.3f}, "
      f"F1 = {by_hand['rougeL'][2]:.3f}")

library_rouge = rouge(HYPOTHESIS, REFERENCE)
for key, (p, r, f1) in by_hand.items():
    score = library_rouge[key]
    assert np.allclose((score.precision, score.recall, score.f1), (p, r, f1), rtol=1e-12, atol=0)
assert lcs_length(hyp_words, ref_words) == lcs
print("\nthe library's rouge() agrees:", {k: round(s.f1, 4) for k, s in library_rouge.items()})

# %% [markdown]
# ## 6. BLEU by hand
# BLEU keeps case and splits punctuation off as tokens of its own (`sacrebleu`'s "13a" rules, in
# `bleu_tokenize`; a period between digits and a hyphen inside a word stay). For each order n
# it sums, over the whole corpus, the clipped matches and the hypothesis n-grams, and only then
# divides. A hypothesis may have several references: an n-gram may match as often as it occurs in
# any one of them, and its reference length is the one closest to its own length. The brevity
# penalty then punishes a corpus of hypotheses that is shorter than its references, because
# precision alone would reward saying very little.

# %%
CORPUS_HYPOTHESES = [HYPOTHESIS, "A break statement ends the loop."]
CORPUS_REFERENCES = [[REFERENCE],
                     ['"break" terminates the nearest enclosing loop.',
                      "A break statement ends the nearest enclosing loop."]]

tokenized = [(bleu_tokenize(hypothesis), [bleu_tokenize(text) for text in references])
             for hypothesis, references in zip(CORPUS_HYPOTHESES, CORPUS_REFERENCES)]
for hyp, refs in tokenized:
    print("hypothesis:", hyp)
    for ref in refs:
        print("reference: ", ref)
matches, totals = [0] * 4, [0] * 4
for n in range(1, 5):
    for hyp, refs in tokenized:
        hyp_counts = count_ngrams(hyp, n)
        for gram, count in hyp_counts.items():
            most_in_a_reference = max(count_ngrams(ref, n).get(gram, 0) for ref in refs)
            matches[n - 1] += min(count, most_in_a_reference)
            totals[n - 1] += count
c = sum(len(hyp) for hyp, _ in tokenized)
r = 0
for hyp, refs in tokenized:   # the closest reference length; a tie goes to the shorter one
    r += min((len(ref) for ref in refs), key=lambda length: (abs(length - len(hyp)), length))
bp = 1.0 if c > r else math.exp(1 - r / c)
precisions = [m / t for m, t in zip(matches, totals)]
bleu_by_hand = 100 * bp * math.exp(sum(math.log(p) for p in precisions) / 4)
for n, (m, t) in enumerate(zip(matches, totals), start=1):
    print(f"{n}-grams: {m:2d} of {t:2d} match, p_{n} = {m / t:.3f}")
print(f"c = {c}, r = {r}: BP = {bp:.4f}; BLEU = 100 * BP * (p_1 p_2 p_3 p_4)^(1/4) = {bleu_by_hand:.2f}")
library_bleu = corpus_bleu(CORPUS_HYPOTHESES, CORPUS_REFERENCES, smooth_method="none")
print("library:", library_bleu)
assert library_bleu.matches == tuple(matches) and library_bleu.totals == tuple(totals)
assert abs(library_bleu.score - bleu_by_hand) < 1e-9

# %% [markdown]
# A single short sentence often has no matching 4-gram, so p_4 = 0 and BLEU = 0 however good the
# rest is. Smoothing replaces the zero (sacrebleu's default "exp" counts the k-th empty order as
# 1/2^k matches). It matters for single sentences; in a corpus every order usually has some match,
# and then "exp" and "floor" change nothing (only "add-k" still nudges the orders n >= 2).

# %%
short_hypothesis, short_reference = "The loop ends at break.", "The loop ends when break runs."
for method in ("none", "floor", "add-k", "exp"):
    print(f"sentence BLEU, smoothing {method:>5}: {sentence_bleu(short_hypothesis, short_reference, method)}")
assert sentence_bleu(short_hypothesis, short_reference, "none").score == 0.0
assert sentence_bleu(short_hypothesis, short_reference, "exp").score > 10
for method in ("exp", "floor"):
    assert corpus_bleu(CORPUS_HYPOTHESES, CORPUS_REFERENCES, method) == library_bleu

# %% [markdown]
# ## 7. What the text metrics miss
# Five hypotheses against one reference. Overlap is not meaning: a paraphrase that shares no word
# scores zero on ROUGE (BLEU finds only the final period); shuffled words keep a perfect ROUGE-1;
# a sentence that says the opposite outscores, on every metric, one that says the same thing in
# another order.

# %%
REFERENCE_7 = "The break statement terminates the nearest enclosing loop."
CASES = {
    "identical": REFERENCE_7,
    "paraphrase": "Execution jumps out of whichever for or while surrounds it.",
    "word salad": "loop enclosing nearest the terminates statement break The.",
    "opposite": "The break statement never terminates the nearest enclosing loop.",
    "reordered": "The nearest enclosing loop is terminated by the break statement.",
}
case_scores = {}
print(f"{'':>11} {'ROUGE-1':>8} {'ROUGE-2':>8} {'ROUGE-L':>8} {'BLEU':>7}   (F1s, sentence BLEU)")
for name, text in CASES.items():
    scores = rouge(text, REFERENCE_7)
    bleu = sentence_bleu(text, REFERENCE_7).score
    case_scores[name] = (scores["rouge1"].f1, scores["rouge2"].f1, scores["rougeL"].f1, bleu)
    print(f"{name:>11} " + " ".join(f"{v:8.3f}" for v in case_scores[name][:3]) + f" {bleu:7.2f}")

# %% [markdown]
# ## 8. Scores against corruption
# Validation sentences, with a growing fraction of their words replaced by random words from the
# same text (the same random positions at every level, so each level corrupts a superset of the
# previous one). The metrics fall at different speeds: ROUGE-2 and BLEU, which need runs of
# correct words, fall faster than ROUGE-1.

# %%
val_text = " ".join(tokenizer.decode(eval_tokens.tolist()).split())
sentences = [s for s in re.split(r"(?<=[.!?])\s+", val_text)   # keep sentences of 8-40 words
             if 8 <= len(s.split()) <= 40 and len(rouge_tokenize(s)) >= 8][:N_SENTENCES]
vocabulary = sorted({w for s in sentences for w in s.split()})
orders = [rng.permutation(len(s.split())) for s in sentences]   # which words go first
curves = {"ROUGE-1": [], "ROUGE-2": [], "ROUGE-L": [], "BLEU": []}
for level in CORRUPTION_LEVELS:
    corrupted = []
    for sentence, order in zip(sentences, orders):
        tokens = sentence.split()
        for position in order[: round(level * len(tokens))]:
            tokens[position] = vocabulary[rng.integers(len(vocabulary))]
        corrupted.append(" ".join(tokens))
    mean = mean_rouge(corrupted, sentences)
    curves["ROUGE-1"].append(100 * mean["rouge1"].f1)
    curves["ROUGE-2"].append(100 * mean["rouge2"].f1)
    curves["ROUGE-L"].append(100 * mean["rougeL"].f1)
    curves["BLEU"].append(corpus_bleu(corrupted, sentences).score)
print(f"{len(sentences)} sentences; corruption " + " ".join(f"{x:5.1f}" for x in CORRUPTION_LEVELS))
for name, values in curves.items():
    print(f"{name:>7}: {' ' * 15}" + " ".join(f"{v:5.1f}" for v in values))

fig, ax = plt.subplots(figsize=(7, 4))
for name, values in curves.items():
    ax.plot(100 * CORRUPTION_LEVELS, values, "o-", label=name)
ax.set_xlabel("words replaced at random (%)")
ax.set_ylabel("score (0-100; ROUGE as mean F1 x 100)")
ax.set_title(f"Text metrics on {len(sentences)} increasingly corrupted validation sentences")
legend_outside(ax)
save_figure(fig, "09_metrics_vs_corruption")

# %% [markdown]
# ## 9. Next-token prediction as a classifier
# Each prediction of section 2 is a choice among V classes, so accuracy applies: how often is the
# model's most likely token the right one? With thousands of classes a confusion matrix is too big
# to read, so we group tokens into four kinds (word, whitespace, punctuation, digits) and ask which
# kinds the model confuses. Rows are the true kind, columns the predicted one. Accuracy favours
# the common classes; macro-F1, the plain mean of the per-class F1, counts a rare class as much as
# a common one, so a model that always guesses the commonest kind scores poorly on it. The course
# model beats that guess on macro-F1; the quick model predicts whitespace almost every time, and
# its confusion matrix shows exactly that: one full column.

# %%
KINDS = ["word", "whitespace", "punctuation", "digits"]


def token_kind(token_id: int) -> int:
    text = tokenizer.decode([token_id])
    if text.strip() == "":
        return 1
    first = text.lstrip()[0]
    return 0 if first.isalpha() else 3 if first.isdigit() else 2


kind_of = np.array([token_kind(i) for i in range(V)])
every_token_once = slice(None, None, T // STEP)   # the windows that start at multiples of T
targets = windows[every_token_once, 1:].ravel()
top1 = predictions[every_token_once].ravel()
token_accuracy = accuracy(top1, targets)
print(f"top-1 next-token accuracy {token_accuracy:.3f} over {len(targets):,} tokens "
      f"(chance: 1/{V} = {1 / V:.4f})")
true_kinds, predicted_kinds = kind_of[targets], kind_of[top1]
matrix = confusion_matrix(true_kinds, predicted_kinds, num_classes=len(KINDS))
print("true \\ predicted".rjust(18) + "".join(f"{k:>12}" for k in KINDS))
for kind, row in zip(KINDS, matrix):
    print(f"{kind:>18}" + "".join(f"{v:12d}" for v in row))
precision, recall, f1 = precision_recall_f1(matrix)
for kind, p, r, f in zip(KINDS, precision, recall, f1):
    print(f"{kind:>12}: precision {p:.3f}, recall {r:.3f}, F1 {f:.3f}")
majority = np.full_like(true_kinds, np.bincount(true_kinds).argmax())   # always the commonest kind
baseline = confusion_matrix(true_kinds, majority, num_classes=len(KINDS))
kind_accuracy = accuracy(predicted_kinds, true_kinds)
print(f"kind accuracy {kind_accuracy:.3f}, macro-F1 {macro_f1(matrix):.3f}; always "
      f"'{KINDS[majority[0]]}': accuracy {accuracy(majority, true_kinds):.3f}, "
      f"macro-F1 {macro_f1(baseline):.3f}")

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
for stride, measured, by_hand in stride_rows:
    assert abs(by_hand / measured - 1) < 1e-5, "perplexity at stride s = our losses at the last s positions"
assert greedy_ppl < doc_ppl, "the model's own greedy text is more familiar to it than real documentation"
assert abs(math.log(true_ppl / false_ppl)) < math.log(2), "same words, true or false: similar perplexity"
assert case_scores["identical"][:3] == (1.0, 1.0, 1.0) and abs(case_scores["identical"][3] - 100) < 1e-9
assert case_scores["paraphrase"][:3] == (0.0, 0.0, 0.0) and case_scores["paraphrase"][3] < 5
assert case_scores["word salad"][0] == 1.0 and case_scores["word salad"][1] < 0.5
assert all(o > r for o, r in zip(case_scores["opposite"], case_scores["reordered"])), "overlap is not meaning"
assert all(abs(values[0] - 100) < 1e-9 for values in curves.values()), "no corruption: perfect scores"
for name, values in curves.items():
    assert values[-1] < 0.2 * values[0], f"{name} should collapse when every word is replaced"
    assert values[len(values) // 2] < values[0], f"{name} should fall with corruption"
assert max(curves["ROUGE-2"][1], curves["BLEU"][1]) < curves["ROUGE-1"][1], "runs break faster than words"
assert token_accuracy > 10 / V, "the model's top-1 guess should beat chance by far"
assert matrix.sum() == len(targets) and np.isclose(np.trace(matrix) / matrix.sum(), kind_accuracy)
if not QUICK:
    assert by_position[0] > by_position[1:quarter].mean() + 0.3, "a little context should help a lot"
    assert prose_bpb > doc_bpb, "text unlike the training data should cost more bits per byte"
    assert macro_f1(matrix) > macro_f1(baseline), "the trained model should beat the majority guess"
print("lesson 09 checks passed")


# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **Perplexity from per-token losses.** Perplexity from the per-token negative log-likelihoods of a
#    text. Edit `exercises/09_1.py`, then run `tinygrad-llm exercise check 09.1`.
# 2. **Predict: how many windows does a strided evaluation need?** Predict how many windows
#    `sliding_windows(200, 64, 32)` makes to score every target of 200 tokens with a 64-token context
#    and stride 32. Edit `exercises/09_2.py`, then run `tinygrad-llm exercise check 09.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
