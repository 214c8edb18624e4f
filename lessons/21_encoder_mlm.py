# %% [markdown]
"""
# 21. An encoder trained by masked language modelling

**The question.** The GPT reads left to right: the vector it computes at a position knows only
the tokens before it, which is what generation needs and all it can use. Many tasks give the
whole text at once (classify it, tag its words, find the answer in it), and there a position
could use the words after it as well. What changes when attention may look both ways, how is
such a model trained when "predict the next token" would be trivial for it, and how does it
compare with the decoder at filling a gap in the text?

**The idea.** An *encoder* is the GPT with the causal mask removed: every position attends to
every other. It cannot be trained to predict the next token (it would see it), so it is trained
by *masked language modelling* (BERT): hide some tokens and ask for them back,

    L = -(1 / |M|) sum_{i in M} log p(x_i | x with the positions M hidden)

over a random set M of 15 % of the positions; of those, 80 % are replaced by `[MASK]`, 10 % by a
random token and 10 % kept, so that the model cannot tell which positions will be asked about
and must represent every token well. Special tokens (`[CLS]` at the start, `[SEP]` at the end,
`[PAD]`) are never chosen. The loss only counts M: about 15 % of the positions teach the model
per pass, where the decoder learns from every position.

**Builds on:** lessons 05-06 (attention, the GPT and its blocks, reused here with
`causal=False`), lesson 02 (the BPE tokenizer), lesson 07 (`Trainer`, batch sources,
objectives), lesson 20 (a second model family trained by the same loop).
**Adds:** `tinygrad_llm.model.encoder`: `Encoder`; `tinygrad_llm.text.masking`: `add_special_tokens`,
`mask_tokens`, `ENCODER_SPECIALS`, `IGNORE`; `tinygrad_llm.train.mlm`: `MaskedWindows`,
`masked_lm_loss`, `masked_accuracy`; the `causal` flag of `MultiHeadAttention` and
`TransformerBlock`.

**Run:** `python lessons/21_encoder_mlm.py` (about 2 minutes on 2 cores) or `--quick` (a few
seconds).
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import GPT, GPTConfig, Tensor, TrainConfig, Trainer, course_corpus, no_grad
from tinygrad_llm.core.attention import scaled_dot_product_attention
from tinygrad_llm.course import quick_mode, save_figure
from tinygrad_llm.course.figures import label_axes, legend_outside, line_style
from tinygrad_llm.model.encoder import Encoder
from tinygrad_llm.text.masking import ENCODER_SPECIALS, IGNORE, add_special_tokens, mask_tokens
from tinygrad_llm.train.batches import RandomWindows
from tinygrad_llm.train.mlm import MaskedWindows, masked_accuracy, masked_lm_loss
from tinygrad_llm.train.trainer import estimate_loss

# %% [markdown]
# ## Settings (quick mode shrinks everything for smoke tests)

# %%
SEED = 0
QUICK = quick_mode()
CONTEXT = 16 if QUICK else 32             # tokens per window: [CLS], CONTEXT - 2 tokens, [SEP]
SHAPE = dict(d_model=16, n_layer=1, n_head=2) if QUICK else dict(d_model=96, n_layer=2, n_head=3)
STEPS = 20 if QUICK else 400
# masked language modelling wants a gentler rate than next-token prediction at this size: 5e-3
# left the encoder at its unigram loss for hundreds of steps, 2e-3 learns (1e-3 more slowly)
TRAIN = TrainConfig(steps=STEPS, batch_size=8 if QUICK else 32, learning_rate=2e-3, min_learning_rate=2e-4,
                    warmup_steps=STEPS // 10, eval_interval=STEPS // 4, eval_batches=2 if QUICK else 8,
                    log_interval=STEPS // 4, seed=SEED)
MASK_RATE = 0.15
COUNT_ROWS = 200 if QUICK else 2000       # windows masked to count the rule's proportions
EVAL_WINDOWS = 64 if QUICK else 512       # held-out windows for masked-token accuracy
FILL_EXAMPLES = 3 if QUICK else 6

rng = np.random.default_rng(SEED)
lesson_start = time.perf_counter()

# %% [markdown]
# ## 1. Four special tokens, added without moving an id
# The course tokenizer has 256 byte tokens, its merges and `<|endoftext|>`. The encoder needs
# four more: `[CLS]` opens every window (BERT reads a whole-text summary off its vector), `[SEP]`
# closes it, `[MASK]` hides a token, `[PAD]` fills rows to one length. `add_special_tokens` puts
# them after the last id, so every text encodes exactly as before and the embedding table only
# grows by four rows.

# %%
corpus = course_corpus(QUICK)
base = corpus.tokenizer
tokenizer = add_special_tokens(base, ENCODER_SPECIALS)
V = tokenizer.vocab_size
CLS, SEP, MASK, PAD = (tokenizer.special_token_id(name) for name in ENCODER_SPECIALS)
specials = tuple(tokenizer.special_tokens.values())                 # <|endoftext|> and the four new ones
sample = base.decode(corpus.val[:40].tolist())
same_ids = tokenizer.encode(sample, allowed_special="all") == base.encode(sample, allowed_special="all")
print(f"course tokenizer: {base.vocab_size} ids; with {', '.join(ENCODER_SPECIALS)}: {V} "
      f"(ids {CLS}..{PAD}); a validation passage encodes to the same ids: {same_ids}")

# %% [markdown]
# ## 2. Bidirectional attention, by hand
# The same scaled dot-product attention as lesson 05, without the causal mask: row i of the
# weights spreads over all positions, before and after i. With a padding mask the `[PAD]` keys
# get weight 0. By hand in NumPy, then the package's attention with `causal=False`.

# %%
q, k, v = (rng.normal(size=(1, 4, 8)) for _ in range(3))            # one head, 4 positions, width 8
pad_key = np.array([False, False, False, True])                     # the last position holds [PAD]
scores = q[0] @ k[0].T / np.sqrt(8)
scores[:, pad_key] = -np.inf
weights = np.exp(scores - scores.max(axis=1, keepdims=True))
weights /= weights.sum(axis=1, keepdims=True)
out_by_hand = weights @ v[0]
out_package = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), causal=False,
                                           mask=pad_key[None, None, :]).data[0]
attention_error = float(np.abs(out_by_hand - out_package).max())
print("bidirectional weights (rows: queries; the last key is [PAD]):")
print(np.round(weights, 3))
print(f"by hand vs scaled_dot_product_attention(causal=False), largest difference {attention_error:.1e}")

# %% [markdown]
# `Encoder` is the GPT class with one change: its blocks are built with `causal=False`. Same
# config, same parameter names, so a GPT's weights load into it. With the same weights, changing
# the last token changes the GPT's vector at the last position only, and the encoder's at
# every position.

# %%
config = GPTConfig(vocab_size=V, context_length=CONTEXT, **SHAPE, dropout=0.0)
gpt_probe = GPT(config, rng=np.random.default_rng(SEED))
encoder_probe = Encoder(config, pad_id=PAD, rng=np.random.default_rng(SEED))
encoder_probe.load_state_dict(gpt_probe.state_dict())
a = corpus.val[None, :8].astype(np.int64)
b = a.copy()
b[0, -1] = (b[0, -1] + 1) % base.vocab_size
changed = {}
with no_grad():
    for name, model in (("GPT", gpt_probe), ("encoder", encoder_probe)):
        diff = np.abs(model.hidden_states(a).data - model.hidden_states(b).data).max(axis=-1)[0]   # (T,)
        changed[name] = int((diff > 1e-5).sum())
print(f"positions whose vector changes when the last of 8 tokens changes: GPT {changed['GPT']}, "
      f"encoder {changed['encoder']}")

# %% [markdown]
# ## 3. The masking rule
# `MaskedWindows` cuts random windows from the training tokens, wraps them as
# `[CLS] ... [SEP]` and masks them with `mask_tokens`. We count, over many windows, the share of
# ordinary positions chosen, and the fate of the chosen ones. A random replacement can draw the
# original token by chance (1 in V), so "kept" is a little above 10 %.

# %%
source = MaskedWindows(corpus.train, CONTEXT, np.random.default_rng(SEED), cls_id=CLS, sep_id=SEP,
                       mask_id=MASK, vocab_size=V, special_ids=specials, rate=MASK_RATE)
starts = np.random.default_rng(SEED + 1).integers(0, len(corpus.train) - CONTEXT, COUNT_ROWS)
windows = source.windows(starts)                                    # (N, T) before masking
inputs, labels = mask_tokens(windows, np.random.default_rng(SEED + 2), mask_id=MASK, vocab_size=V,
                             special_ids=specials, rate=MASK_RATE)
ordinary = ~np.isin(windows, specials)
chosen = labels != IGNORE
shares = {"chosen": chosen.sum() / ordinary.sum(),
          "[MASK]": (inputs[chosen] == MASK).mean(),
          "random": ((inputs[chosen] != MASK) & (inputs[chosen] != windows[chosen])).mean(),
          "kept": (inputs[chosen] == windows[chosen]).mean()}
specials_chosen = int((chosen & ~ordinary).sum())
print(f"{COUNT_ROWS} windows, {ordinary.sum():,} ordinary positions: chosen {shares['chosen']:.2%}; of the "
      f"chosen, [MASK] {shares['[MASK]']:.1%}, random {shares['random']:.1%}, kept {shares['kept']:.1%}; "
      f"special positions chosen: {specials_chosen}")


def readable(row_inputs, row_labels, row_windows):
    """The text of one masked window: [MASK] shown, a replaced token as {new->old}, a kept one as {=old}."""
    pieces = []
    for token, label, original in zip(row_inputs, row_labels, row_windows):
        if label == IGNORE:
            pieces.append(tokenizer.decode([int(token)]))
        elif token == MASK:
            pieces.append(f"[MASK]{{{tokenizer.decode([int(original)])}}}")
        elif token != original:
            pieces.append(f"{{{tokenizer.decode([int(token)])}->{tokenizer.decode([int(original)])}}}")
        else:
            pieces.append(f"{{={tokenizer.decode([int(original)])}}}")
    return "".join(pieces)


print("\na masked window (the answer in braces):")
print(readable(inputs[0], labels[0], windows[0]))

# %% [markdown]
# ## 4. Training the encoder, and a decoder beside it
# The same `Trainer` as every lesson; the batch source is `MaskedWindows` and the objective
# `masked_lm_loss`, the cross-entropy over the chosen positions only. A fresh masking every step.
# The evaluator measures masked-token accuracy on fixed held-out windows of the validation text.
# Beside it, a GPT of the same shape trained for the same steps on the same training tokens,
# by next-token prediction (lesson 07's objective).

# %%
held_out_source = MaskedWindows(corpus.val, CONTEXT, np.random.default_rng(SEED + 3), cls_id=CLS, sep_id=SEP,
                                mask_id=MASK, vocab_size=V, special_ids=specials, rate=MASK_RATE)
held_out_starts = np.random.default_rng(SEED + 4).integers(0, len(corpus.val) - CONTEXT, EVAL_WINDOWS)
held_out_windows = held_out_source.windows(held_out_starts)
held_out = [mask_tokens(held_out_windows[i:i + 64], np.random.default_rng(SEED + 5 + i), mask_id=MASK,
                        vocab_size=V, special_ids=specials, rate=MASK_RATE)
            for i in range(0, EVAL_WINDOWS, 64)]
print(TRAIN)

encoder = Encoder(config, pad_id=PAD, rng=np.random.default_rng(SEED))
print(f"\nencoder: {encoder.num_parameters():,} parameters")
encoder_trainer = Trainer(encoder, config=TRAIN, batches=source, objective=masked_lm_loss,
                          evaluator=lambda model: masked_accuracy(model, held_out))
start = time.perf_counter()
encoder_history = encoder_trainer.train()
encoder_seconds = time.perf_counter() - start

decoder = GPT(GPTConfig(vocab_size=base.vocab_size, context_length=CONTEXT - 2, **SHAPE, dropout=0.0),
              rng=np.random.default_rng(SEED))
print(f"\ndecoder: {decoder.num_parameters():,} parameters")
decoder_trainer = Trainer(decoder, config=TRAIN, batches=RandomWindows(corpus.train, CONTEXT - 2,
                                                                       np.random.default_rng(SEED)),
                          evaluator=lambda model: {"val_loss": estimate_loss(model, corpus.val, 16, 8)})
start = time.perf_counter()
decoder_history = decoder_trainer.train()
decoder_seconds = time.perf_counter() - start

# %% [markdown]
# ## 5. Filling the gaps: the encoder against the decoder
# The held-out questions: the positions chosen by the masking of the held-out windows. The
# encoder answers from the masked window (both sides, with about 15 % of the other tokens hidden
# too). The decoder reads the unmasked window and predicts each chosen token from the tokens
# before it: all the left context, none of the right. Both are scored on the same positions
# (those with at least one token before them inside the window), by accuracy of the most likely
# token and by the cross-entropy of the right one. The baseline always answers the most frequent
# training token. Does the encoder use the right side? The same encoder, asked about the gaps in
# the left half of each window, once with the whole window and once with the right half turned
# into `[PAD]`, which the padding mask hides from every query.

# %%
most_frequent = int(np.bincount(corpus.train, minlength=base.vocab_size).argmax())


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


scores = {"encoder": dict(correct=0, nll=0.0), "decoder": dict(correct=0, nll=0.0), "most frequent": dict(correct=0)}
asked = 0
half = CONTEXT // 2
sides = {"both sides": 0, "right half padded": 0}    # the encoder on gaps in the left half of a window
left_asked = 0
with encoder.inference(), decoder.inference():
    for (batch_inputs, batch_labels), i in zip(held_out, range(0, EVAL_WINDOWS, 64)):
        originals = held_out_windows[i:i + 64]                        # (n, T) with [CLS] and [SEP]
        questions = batch_labels != IGNORE
        questions[:, :2] = False                                      # the decoder needs a token before
        rows, cols = np.nonzero(questions)
        answers = originals[rows, cols]
        # answers are ordinary tokens: both models choose among those (ids below the first special)
        enc_logits = encoder(batch_inputs).data[..., :base.vocab_size].astype(np.float64)
        enc_logp = log_softmax(enc_logits)[rows, cols]                                        # (n_q, V)
        # the decoder sees the body (no [CLS]/[SEP]); the token at window column c is body[c - 1],
        # predicted by the logits at body position c - 2
        dec_logp = log_softmax(decoder(originals[:, 1:-1]).data.astype(np.float64))[rows, cols - 2]
        for name, logp in (("encoder", enc_logp), ("decoder", dec_logp)):
            scores[name]["correct"] += int((logp.argmax(axis=-1) == answers).sum())
            scores[name]["nll"] += float(-logp[np.arange(len(answers)), answers].sum())
        scores["most frequent"]["correct"] += int((answers == most_frequent).sum())
        asked += len(answers)
        # the same encoder with the right half of every window turned into [PAD] (invisible keys)
        cut = batch_inputs.copy()
        cut[:, half:] = PAD
        cut_logits = encoder(cut).data[..., :base.vocab_size].astype(np.float64)
        in_left = cols < half
        sides["both sides"] += int((enc_logp.argmax(axis=-1) == answers)[in_left].sum())
        sides["right half padded"] += int((cut_logits[rows, cols].argmax(axis=-1) == answers)[in_left].sum())
        left_asked += int(in_left.sum())
accuracy = {name: s["correct"] / asked for name, s in scores.items()}
nll = {name: scores[name]["nll"] / asked for name in ("encoder", "decoder")}
print(f"{asked:,} held-out questions")
print(f"{'model':<14} {'accuracy':>9} {'cross-entropy':>14} {'parameters':>11} {'training s':>11}")
for name, seconds, model in (("encoder", encoder_seconds, encoder), ("decoder", decoder_seconds, decoder)):
    print(f"{name:<14} {accuracy[name]:>9.1%} {nll[name]:>14.3f} {model.num_parameters():>11,} {seconds:>11.1f}")
print(f"{'most frequent':<14} {accuracy['most frequent']:>9.1%}   (always {tokenizer.decode([most_frequent])!r})")
side_accuracy = {name: count / left_asked for name, count in sides.items()}
print(f"the encoder on the {left_asked:,} gaps in the left half of a window: {side_accuracy['both sides']:.1%} "
      f"with the whole window, {side_accuracy['right half padded']:.1%} with its right half padded away")
answers_seen = {"encoder": STEPS * TRAIN.batch_size * (CONTEXT - 2) * MASK_RATE,      # expected chosen positions
                "decoder": STEPS * TRAIN.batch_size * (CONTEXT - 2)}                  # every position has a target
print(f"labelled positions learned from in training: encoder about {answers_seen['encoder']:,.0f}, decoder "
      f"{answers_seen['decoder']:,.0f} ({answers_seen['decoder'] / answers_seen['encoder']:.1f}x)")
ratio = accuracy["encoder"] / max(accuracy["most frequent"], 1e-9)
print(f"the encoder fills {ratio:.1f}x as many gaps as the most-frequent-token baseline, and "
      f"{accuracy['encoder'] / max(accuracy['decoder'], 1e-9):.2f}x as many as the decoder")

# %% [markdown]
# ## 6. Fill-mask examples
# One word hidden in a validation sentence: the encoder's three most likely tokens with the
# sentence on both sides, and the decoder's with only the text before the gap.

# %%
fill_rng = np.random.default_rng(SEED + 6)
examples = []
with encoder.inference(), decoder.inference():
    for start in fill_rng.integers(0, len(corpus.val) - CONTEXT, FILL_EXAMPLES):
        body = corpus.val[start:start + CONTEXT - 2].astype(np.int64)
        gap = int(fill_rng.integers(CONTEXT // 4, CONTEXT // 2))       # a position with text on both sides
        masked = np.concatenate([[CLS], body, [SEP]])
        answer = int(masked[gap])
        masked[gap] = MASK
        enc_top = np.argsort(-encoder(masked[None]).data[0, gap, :base.vocab_size])[:3]
        dec_top = np.argsort(-decoder(body[None, :gap - 1]).data[0, -1])[:3]
        examples.append(dict(answer=answer, encoder=enc_top.tolist(), decoder=dec_top.tolist()))
        text = tokenizer.decode(masked[1:gap].tolist()) + "[MASK]" + tokenizer.decode(masked[gap + 1:-1].tolist())
        print(f"{text!r}\n   answer {tokenizer.decode([answer])!r}; encoder "
              f"{[tokenizer.decode([int(t)]) for t in enc_top]}; decoder {[tokenizer.decode([int(t)]) for t in dec_top]}")

fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.6))
left.plot(encoder_history.eval_steps, encoder_history.metrics["mlm_accuracy"], **line_style(0), label="encoder")
left.axhline(accuracy["most frequent"], color="gray", linestyle="--", label="most frequent token")
label_axes(left, "step", "masked-token accuracy (held out)", "The encoder learns to fill gaps")
left.grid(alpha=0.3)
legend_outside(left)
names = ["encoder", "decoder", "most frequent"]
right.bar(["encoder (both sides)", "decoder (left side)", "most frequent token"], [accuracy[n] for n in names],
          color=[line_style(i)["color"] for i in range(3)])
label_axes(right, "model", "accuracy on the same held-out gaps", "Both sides against the left side only")
fig.tight_layout()
save_figure(fig, "21_encoder_mlm")

# %% [markdown]
# ## 7. What we found, and the two families side by side
# This run's numbers are printed below from its results; the closing checks assert the claims
# marked (checked).
#
# * the encoder is the GPT with the causal mask removed (checked: a later token changes every
#   position), trained by the same `Trainer` with a new batch source and objective;
# * the masking rule holds over many windows: 15 % chosen, 80 / 10 / 10, no special token ever
#   chosen (checked);
# * it learns, slowly: the encoder fills at least three times as many held-out gaps as the
#   most-frequent-token baseline (checked), and its held-out accuracy rises with training
#   (checked). But at this budget little of what it knows depends on where its context is: with
#   the right half of the window padded away it fills about as many of the gaps in the left half
#   (printed above). Its answers are mostly the tokens that are frequent in that kind of text
#   (the fill-mask examples: newlines, " the", table borders), not tokens read off the neighbours;
# * the decoder of the same shape, trained for the same steps, fills more gaps from the left
#   side alone than the encoder does from both (checked). Two reasons: masked language modelling
#   learns from the 15 % of positions it masks, the decoder from all of them, several times as
#   many answers per step (checked); and the `[MASK]` embedding says nothing about the token
#   behind it, so the encoder must first learn, through attention, to look at its neighbours,
#   while the decoder's own token already predicts much of the next one. BERT pays for its
#   bidirectional view with far longer training; what it buys, a vector per token shaped by both
#   sides, is what classification and tagging use. The decoder, in turn, is the one that can
#   generate text: an encoder has no left-to-right order to generate in.

# %%
print(f"{'':<10} {'objective':<34} {'attention mask':<26} {'good for':<30} {'gap accuracy':>12}")
print(f"{'encoder':<10} {'masked tokens, both sides':<34} {'none (padding only)':<26} "
      f"{'classify, tag, find, embed':<30} {accuracy['encoder']:>12.1%}")
print(f"{'decoder':<10} {'next token, left side':<34} {'causal':<26} "
      f"{'generate':<30} {accuracy['decoder']:>12.1%}")

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
assert same_ids and (CLS, SEP, MASK, PAD) == tuple(range(base.vocab_size, base.vocab_size + 4)), \
    "the special tokens come after every existing id, which stay as they were"
assert attention_error < 1e-12, "bidirectional attention by hand and by the package agree"
assert changed["GPT"] == 1 and changed["encoder"] == a.shape[1], "the encoder sees ahead, the GPT does not"
assert specials_chosen == 0, "special tokens are never chosen"
assert answers_seen["decoder"] > 5 * answers_seen["encoder"], "the decoder learns from far more positions"
n_chosen = chosen.sum()
assert abs(shares["chosen"] - MASK_RATE) < 4 * np.sqrt(MASK_RATE * (1 - MASK_RATE) / ordinary.sum()), "15 % chosen"
assert abs(shares["[MASK]"] - 0.8) < 4 * np.sqrt(0.8 * 0.2 / n_chosen), "80 % of the chosen become [MASK]"
assert abs(shares["random"] - 0.1) < 4 * np.sqrt(0.1 * 0.9 / n_chosen) + 1 / V, "10 % a random token"
if not QUICK:   # the quick models are barely trained
    assert accuracy["encoder"] >= 3 * accuracy["most frequent"], "at least 3x the most-frequent baseline"
    assert accuracy["decoder"] > accuracy["encoder"], "at this budget the decoder fills more gaps"
    assert encoder_history.metrics["mlm_accuracy"][-1] > encoder_history.metrics["mlm_accuracy"][0], \
        "the held-out accuracy improves with training"
print(f"lesson 21 checks passed ({time.perf_counter() - lesson_start:.0f} s)")

# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **Bidirectional attention with padding.** Attention without the causal mask, where no query
#    may attend to a padding key. Edit `exercises/21_1.py`, then run `tinygrad-llm exercise check 21.1`.
# 2. **Predict: how many [MASK] tokens.** Predict the expected number of positions replaced by
#    `[MASK]` in a batch of 32 windows of 64 tokens, each opening with `[CLS]` and closing with
#    `[SEP]`. Edit `exercises/21_2.py`, then run `tinygrad-llm exercise check 21.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
