# %% [markdown]
"""
# 08. Decoding, from next-token probabilities to text

**The question.** Lesson 07's model gives, after any text, a probability for each of the V tokens
that could come next. Which one do we write? The most likely one every time? A random one, and
how random? Is there a better whole sentence than the one built a greedy token at a time? And
why does writing the 200th token not cost 200 times as much as the first?

**The idea.** Decoding is a rule for picking x_{t+1} from p = softmax(z), z the logits:

    greedy        x = argmax_i z_i                         deterministic; tends to loop
    temperature   p_i(tau) = exp(z_i / tau) / sum_j exp(z_j / tau)
                  tau < 1 sharpens p, tau > 1 flattens it, tau -> 0 is greedy
    top-k         sample among the k most likely tokens only (renormalised)
    top-p         sample among the smallest set S of most likely tokens with sum_{i in S} p_i >= p
    beam search   keep the B best partial sequences by log p(x_1..x_n) = sum_t log p(x_t | x_<t),
                  ranking finished ones by  score = log p / n ** length_penalty

Every step re-reads the whole sequence, but with causal attention and absolute positions the keys
and values of the tokens already there never change when one is appended. A **KV cache** keeps
them, so each new token costs one position's work (plus attention over the cache) instead of
re-encoding all T positions: generating n tokens goes from O(n^2) position-passes through the
layers to O(n) (attention still reads every cached key, but that is the small part).

**Builds on:** lesson 05 (queries, keys, values, the causal mask), lesson 07 (the trained course
model, `course_model`, `generate`).
**Adds:** `next_token_distribution`, `apply_repetition_penalty`, `sample_from`, `beam_search`,
`Beam`, `KVCache` (with `reorder`, which beam search uses).

**Run:** `python lessons/08_decoding.py` (under a minute on 2 cores once lesson 07's checkpoint
exists; without it, lesson 07's ~6 minutes of pretraining come first) or `--quick` (seconds).
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import generate, no_grad, course_corpus
from tinygrad_llm.course import quick_mode, save_figure
from tinygrad_llm.course.figures import legend_outside
from tinygrad_llm.model.generation import apply_repetition_penalty, beam_search, next_token_distribution
from tinygrad_llm.model.gpt import KVCache
from tinygrad_llm.course import course_model

# %% [markdown]
# ## Settings (quick mode shrinks the lengths for smoke tests)

# %%
SEED = 8
QUICK = quick_mode()
PROMPT = "The for statement"
NEW_TOKENS = 24 if QUICK else 60          # per sample in sections 2-3
NUM_SAMPLES = 3
TEMPERATURES = (0.5, 1.0, 1.5)
TOP_K = 10
TOP_P = 0.9
NUCLEUS_POSITIONS = 32 if QUICK else 256  # positions of validation text for the top-p statistics
BEAMS = 4
BEAM_TOKENS = 12 if QUICK else 24
REPETITION_PENALTY = 1.3
CACHE_LENGTHS = (4, 8, 16) if QUICK else (25, 50, 100, 120)  # new tokens timed, within the context
LONG_RUN = 40 if QUICK else 200           # new tokens timed past the context (the window slides)

rng = np.random.default_rng(SEED)

# %% [markdown]
# ## 1. One next-token distribution
# The lesson-07 model (loaded from its checkpoint, or pretrained now if it is missing), a prompt,
# and the probabilities it gives the next token. Entropy H = -sum p ln p measures how unsure the
# model is; exp(H) is the number of equally likely tokens that would be just as unsure.

# %%
model, tokenizer = course_model(QUICK)
model.eval()
config = model.config
prompt_ids = np.array(tokenizer.encode(PROMPT))
print(f"model: {model.num_parameters():,} parameters, context {config.context_length}, "
      f"vocabulary {config.vocab_size}; prompt {PROMPT!r} = {len(prompt_ids)} tokens")


def last_logits(ids: np.ndarray) -> np.ndarray:
    """Logits (V,) of the token after ``ids`` (1-D), in float64 for the analysis below."""
    with no_grad():
        return model(ids[None, -config.context_length:]).data[0, -1].astype(np.float64)


def entropy(p: np.ndarray) -> float:
    nonzero = p[p > 0]
    return float(-(nonzero * np.log(nonzero)).sum())


logits = last_logits(prompt_ids)
probs = next_token_distribution(logits)
ranked = np.argsort(-probs)
for i in ranked[:8]:
    print(f"  {tokenizer.decode([int(i)])!r:>14}  p = {probs[i]:.3f}")
print(f"entropy {entropy(probs):.2f} nats: as unsure as a uniform choice among {np.exp(entropy(probs)):.0f} "
      f"tokens (uniform over all: {config.vocab_size})")

# %% [markdown]
# ## 2. Greedy decoding against sampling
# Greedy always takes the argmax. It is deterministic, and a small model soon falls into a loop:
# once a phrase has been written, the likeliest continuation is often the same phrase again.
# Sampling draws from p (temperature 1), so each draw gives another text, with fewer loops and
# more mistakes. We count the loops as the share of repeated 4-token windows (distinct 4-grams / all
# 4-grams; 1 means no repetition). A repetition penalty (CTRL's rule: a seen token's positive logit
# is divided by the penalty, a negative one multiplied) is a common fix for greedy loops.

# %%
def distinct_ngrams(ids: np.ndarray, n: int = 4) -> float:
    grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    return len(set(grams)) / len(grams)


def show(label: str, ids: np.ndarray) -> None:
    print(f"{label}: {tokenizer.decode(ids[len(prompt_ids):].tolist())!r}")


greedy = generate(model, prompt_ids, NEW_TOKENS, temperature=0)
show("greedy", greedy)
samples = [generate(model, prompt_ids, NEW_TOKENS, temperature=1.0, rng=rng) for _ in range(NUM_SAMPLES)]
for k, sample in enumerate(samples):
    show(f"sample {k + 1}", sample)
penalised = generate(model, prompt_ids, NEW_TOKENS, temperature=0, repetition_penalty=REPETITION_PENALTY)
show(f"greedy, repetition penalty {REPETITION_PENALTY}", penalised)

greedy_distinct = distinct_ngrams(greedy[len(prompt_ids):])
sample_distinct = np.mean([distinct_ngrams(s[len(prompt_ids):]) for s in samples])
print(f"distinct 4-grams: greedy {greedy_distinct:.2f}, sampling {sample_distinct:.2f} (mean of "
      f"{NUM_SAMPLES}), greedy with penalty {distinct_ngrams(penalised[len(prompt_ids):]):.2f}")
# rng moves on with every draw, so the samples differ; a new generator with the same seed
# starts over and writes the first sample again
again = generate(model, prompt_ids, NEW_TOKENS, temperature=1.0, rng=np.random.default_rng(SEED))
print(f"the same seed gives the same text: {np.array_equal(again, samples[0])}")

# the penalty on one step, by hand: the tokens of the prompt lose some of their pull
penalty_logits = apply_repetition_penalty(logits[None], prompt_ids[None], REPETITION_PENALTY)[0]
seen = np.unique(prompt_ids)
print(f"penalty on the prompt's own tokens: their total probability {probs[seen].sum():.3f} -> "
      f"{next_token_distribution(penalty_logits)[seen].sum():.3f}")

# %% [markdown]
# ## 3. Temperature reshapes the distribution
# Dividing the logits by tau before the softmax keeps the ranking of the tokens and changes only
# how peaked p is. The entropy rises with tau (a known property of the softmax); tau -> 0 gives
# greedy, tau -> infinity the uniform distribution.

# %%
shown = ranked[:15]
fig, ax = plt.subplots(figsize=(9, 4))
width = 0.8 / len(TEMPERATURES)
entropies = {}
for j, tau in enumerate(TEMPERATURES):
    p_tau = next_token_distribution(logits, tau)
    entropies[tau] = entropy(p_tau)
    ax.bar(np.arange(len(shown)) + (j - (len(TEMPERATURES) - 1) / 2) * width, p_tau[shown], width,
           label=f"tau = {tau} (entropy {entropies[tau]:.2f})")
    print(f"tau = {tau}: top token p = {p_tau[ranked[0]]:.3f}, entropy {entropies[tau]:.2f} nats, "
          f"top-15 hold {p_tau[shown].sum():.2f} of the mass")
ax.set_xticks(np.arange(len(shown)), [repr(tokenizer.decode([int(i)])) for i in shown], rotation=60)
ax.set_ylabel("probability")
ax.set_title(f"Next token after {PROMPT!r} at three temperatures")
legend_outside(ax)
save_figure(fig, "08_temperature")

# %% [markdown]
# ## 4. Top-k and top-p cut off the tail
# A sample at temperature 1 now and then draws one of the thousands of unlikely tokens, and one
# bad token can derail the rest of the text. Top-k keeps a fixed number of candidates; top-p
# keeps as many as it takes to cover probability p, so its set adapts: few tokens where the
# model is sure, many where it is not. We measure that on validation text, where the model's
# certainty varies from position to position.

# %%
p_top_k = next_token_distribution(logits, top_k=TOP_K)
p_top_p = next_token_distribution(logits, top_p=TOP_P)
nucleus_size = int(np.count_nonzero(p_top_p))
cumulative = np.cumsum(probs[ranked])
print(f"top-k = {TOP_K}: keeps {np.count_nonzero(p_top_k)} tokens holding {probs[ranked[:TOP_K]].sum():.2f} "
      f"of the mass, renormalised to {p_top_k.sum():.3f}")
print(f"top-p = {TOP_P}: keeps {nucleus_size} tokens holding {cumulative[nucleus_size - 1]:.3f} >= {TOP_P}")

corpus = course_corpus(QUICK)
val = corpus.val.astype(np.int64)
T = config.context_length
starts = np.linspace(0, len(val) - T - 1, NUCLEUS_POSITIONS).astype(int)
windows = np.stack([val[s:s + T] for s in starts])                    # (N, T)
with no_grad():  # 32 windows at a time: all T positions' logits of all N at once would be large
    val_logits = np.concatenate([model(windows[i:i + 32]).data[:, -1] for i in range(0, len(windows), 32)])
val_logits = val_logits.astype(np.float64)                            # (N, V): after T tokens each
sizes = np.count_nonzero(next_token_distribution(val_logits, top_p=TOP_P), axis=-1)
print(f"top-p = {TOP_P} over {NUCLEUS_POSITIONS} validation positions keeps between {sizes.min()} and "
      f"{sizes.max()} tokens (median {np.median(sizes):.0f}); top-k keeps {TOP_K} every time")

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
rank = np.arange(1, config.vocab_size + 1)
left.loglog(rank, probs[ranked], color="gray", label="p of the token at each rank")
left.axvline(TOP_K, color="C0", linestyle="--", label=f"top-k cut, k = {TOP_K}")
left.axvline(nucleus_size, color="C3", linestyle=":", label=f"top-p cut, p = {TOP_P}")
twin = left.twinx()
twin.semilogx(rank, cumulative, color="C3")
twin.axhline(TOP_P, color="C3", linewidth=0.5)
twin.set_ylabel("cumulative probability", color="C3")
left.set_xlabel("token rank (most likely first)")
left.set_ylabel("probability")
left.set_title(f"After {PROMPT!r}")
legend_outside(left)
right.hist(sizes, bins=np.geomspace(1, config.vocab_size, 40), color="C3")
right.set_xscale("log")
right.axvline(TOP_K, color="C0", linestyle="--", label=f"top-k: always {TOP_K}")
right.set_xlabel(f"tokens kept by top-p = {TOP_P}")
right.set_ylabel("validation positions")
right.set_title("The nucleus adapts to the model's certainty")
legend_outside(right)
save_figure(fig, "08_top_k_top_p")

# Both filters by hand, on every validation position at once, against the package's
# next_token_distribution (which section 1 used): the same probabilities.
def top_k_by_hand(z: np.ndarray, k: int) -> np.ndarray:
    kth = np.sort(z, axis=-1)[:, -k][:, None]                          # (N, 1): the k-th largest logit
    kept = np.where(z >= kth, z - z.max(axis=-1, keepdims=True), -np.inf)  # ties with the k-th stay
    p = np.exp(kept)
    return p / p.sum(axis=-1, keepdims=True)


def top_p_by_hand(z: np.ndarray, top_p: float) -> np.ndarray:
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    order = np.argsort(-p, axis=-1, kind="stable")                    # most likely first
    sorted_p = np.take_along_axis(p, order, axis=-1)
    mass_above = np.cumsum(sorted_p, axis=-1) - sorted_p              # mass ranked above each token
    keep = np.zeros_like(p, dtype=bool)
    np.put_along_axis(keep, order, mass_above < top_p, axis=-1)       # the top token always stays
    p = np.where(keep, p, 0.0)
    return p / p.sum(axis=-1, keepdims=True)


filter_difference = max(
    np.abs(top_k_by_hand(val_logits, TOP_K) - next_token_distribution(val_logits, top_k=TOP_K)).max(),
    np.abs(top_p_by_hand(val_logits, TOP_P) - next_token_distribution(val_logits, top_p=TOP_P)).max())
print(f"top-k and top-p by hand against next_token_distribution on {len(val_logits)} positions: "
      f"largest difference {filter_difference:.1e}")

text_top_p = generate(model, prompt_ids, NEW_TOKENS, temperature=1.0, top_p=TOP_P, rng=rng)
show(f"sample, top-p = {TOP_P}", text_top_p)

# %% [markdown]
# ## 5. Beam search
# Greedy commits to the best token now, even when a slightly worse token would lead to a likelier
# continuation. Beam search keeps the `BEAMS` likeliest partial sequences, extends each by every
# token, and keeps the best `BEAMS` of all extensions; the KV cache follows the beams (its rows
# are reordered to each survivor's origin). It is still a heuristic: greedy's own path can drop
# out of the beam early, so the best beam is usually, not always, likelier than greedy; the run
# below says which it was this time. Beam search optimises likelihood, and likely text is often
# bland or repetitive: it suits tasks with one right answer (translation) better than open-ended
# writing.
#
# First by hand, without a cache: all running beams go through the model as one batch, every
# (beam, token) extension is scored by its summed log-probability, the best `BEAMS` survive.

# %%
def beam_search_by_hand(prompt: np.ndarray, steps: int, num_beams: int) -> tuple[np.ndarray, np.ndarray]:
    running, running_log_prob = prompt[None, :], np.zeros(1)         # (beams, T), (beams,)
    for _ in range(steps):
        with no_grad():
            z = model(running[:, -config.context_length:]).data[:, -1].astype(np.float64)  # (beams, V)
        z = z - z.max(axis=-1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        candidates = (running_log_prob[:, None] + log_p).reshape(-1)  # (beams * V,)
        best = np.argsort(-candidates, kind="stable")[:num_beams]     # ties by (beam, token)
        origins, tokens = np.divmod(best, config.vocab_size)
        running = np.concatenate([running[origins], tokens[:, None]], axis=1)
        running_log_prob = candidates[best]
    return running, running_log_prob

# %%
def log_prob(ids: np.ndarray) -> float:
    """log p(continuation | prompt) in one forward pass (continuation = ids after the prompt)."""
    with no_grad():
        z = model(ids[None, :-1]).data[0].astype(np.float64)          # (T - 1, V)
    z = z - z.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    targets = ids[1:]
    return float(log_p[np.arange(len(prompt_ids) - 1, len(ids) - 1), targets[len(prompt_ids) - 1:]].sum())


greedy_short = generate(model, prompt_ids, BEAM_TOKENS, temperature=0)
greedy_log_prob = log_prob(greedy_short)
print(f"greedy ({BEAM_TOKENS} tokens): log p = {greedy_log_prob:.2f}: "
      f"{tokenizer.decode(greedy_short[len(prompt_ids):].tolist())!r}")
start = time.perf_counter()
beams = beam_search(model, prompt_ids, BEAM_TOKENS, num_beams=BEAMS)
beam_seconds = time.perf_counter() - start
for k, beam in enumerate(beams):
    print(f"beam {k + 1}: log p = {beam.log_prob:.2f} (score {beam.score:.3f} per token): "
          f"{tokenizer.decode(beam.tokens[len(prompt_ids):].tolist())!r}")
gain = beams[0].log_prob - greedy_log_prob
if np.array_equal(beams[0].tokens, greedy_short) or abs(gain) < 1e-9:
    verdict = "the best beam is greedy's own continuation"
else:
    verdict = (f"the best beam is {'likelier' if gain > 0 else 'less likely'} than greedy's by {abs(gain):.2f} "
               f"nats, a likelihood ratio of {np.exp(gain):.3g}")
print(f"best beam vs greedy: log p {beams[0].log_prob:.2f} vs {greedy_log_prob:.2f}: {verdict} "
      f"({beam_seconds:.2f} s for {BEAMS} beams)")
one_beam = beam_search(model, prompt_ids, BEAM_TOKENS, num_beams=1)[0]
print(f"one beam is greedy: {np.array_equal(one_beam.tokens, greedy_short)}")

# Stop at the end of a line: every token whose text holds a newline ends its beam. The length
# penalty decides between short and long finished lines: with 0, the summed log-probability alone
# ranks them and the shortest tends to win (every token costs probability); with 1, the score is
# the mean log-probability per token.
line_ends = [i for i in range(config.vocab_size) if "\n" in tokenizer.decode([i])]
for length_penalty in (0.0, 1.0):
    best = beam_search(model, prompt_ids, BEAM_TOKENS, num_beams=BEAMS, length_penalty=length_penalty,
                       stop_tokens=line_ends)[0]
    print(f"until a line ends, length_penalty {length_penalty}: {best.num_new} new tokens, log p "
          f"{best.log_prob:.2f}, score {best.score:.3f}, finished {best.finished}: "
          f"{tokenizer.decode(best.tokens[len(prompt_ids):].tolist())!r}")
cached_beams = [b.tokens for b in beams]
plain = beam_search(model, prompt_ids, BEAM_TOKENS, num_beams=BEAMS, use_cache=False)
plain_beams = [b.tokens for b in plain]
hand_tokens, hand_log_probs = beam_search_by_hand(prompt_ids, BEAM_TOKENS, BEAMS)
beams_match = all(np.array_equal(a, b.tokens) for a, b in zip(hand_tokens, plain)) and \
    np.allclose(hand_log_probs, [b.log_prob for b in plain], rtol=0, atol=1e-9)
print(f"beam search by hand finds the package's {BEAMS} beams with the same log p: {beams_match}")

# %% [markdown]
# ## 6. The KV cache
# Why it is allowed: with causal attention, position t only looks at positions <= t, so appending
# a token changes nothing at the earlier positions: their keys and values (in every layer) stay
# the same. The check below compares the logits of the first T - 1 positions computed with and
# without the last token.
#
# What it saves: without a cache, step n runs all T = prompt + n positions through every layer;
# with it, only the new one (its query meets the cached keys). Over n steps that is ~n^2 / 2
# position-passes against n. The cost is memory: 2 (keys and values) x n_layer x T x d_model
# numbers per sequence.
#
# careful: our positions are absolute (learned, one vector per position added to the input).
# Once the text is longer than the context, the window slides and every token moves to a new
# position, so every cached key and value is stale; `generate` then re-encodes the window at each
# step, which is what recomputation does anyway. A rotary embedding (RoPE) rotates each query and
# key by its position, so their dot product depends only on the distance between the two tokens.
# That alone does not make a sliding cache valid, because the cached keys of later layers were
# computed from hidden states that attended to tokens since dropped; systems that decode past
# the context with a cache (a rolling buffer of the last W keys, as in sliding-window attention)
# train the model to see only that window, so that dropping the oldest entry is what it expects.
#
# By hand, the cache is a loop: run the prompt once with an empty `KVCache` (it stores every
# layer's keys and values), then feed one token at a time; each call appends one position. The
# tokens must be greedy decoding's, and the cached keys of layer 0 must be the keys the first
# attention layer computes from the whole sequence at once.

# %%
probe = greedy[: config.context_length]  # the prompt and its greedy continuation
with no_grad():
    shorter, longer = model(probe[None, :-1]).data, model(probe[None]).data
print(f"appending a token moves the earlier positions' logits by at most "
      f"{np.abs(longer[:, :-1] - shorter).max():.1e} (zero, up to float32 rounding)")

cache = KVCache(config, 1)
hand_steps = min(BEAM_TOKENS, config.context_length - len(prompt_ids))
with no_grad():
    z = model(prompt_ids[None], cache=cache).data[0, -1]             # prefill: every prompt position
    by_hand_ids = list(prompt_ids)
    for _ in range(hand_steps):
        by_hand_ids.append(int(np.argmax(z)))
        z = model(np.array([[by_hand_ids[-1]]]), cache=cache).data[0, -1]  # one new position
    ids = np.array(by_hand_ids)[None]
    x = model.token_embedding(ids) + model.position_embedding(np.arange(ids.shape[1]))  # (1, T, C)
    qkv = model.blocks[0].attn.qkv(model.blocks[0].norm1(x)).data                     # (1, T, 3C)
n_head, head_size = config.n_head, config.d_model // config.n_head
keys_at_once = qkv.reshape(1, ids.shape[1], 3, n_head, head_size)[:, :, 1].transpose(0, 2, 1, 3)  # (1, nh, T, hs)
cache_difference = float(np.abs(cache.keys[0, :, :, :cache.length - 1] - keys_at_once[:, :, :-1]).max())
greedy_by_hand = np.array_equal(np.array(by_hand_ids), generate(model, prompt_ids, hand_steps, temperature=0))
print(f"greedy with a cache by hand: the same {hand_steps} tokens as generate: {greedy_by_hand}; cached keys "
      f"of layer 0 differ from the keys of the whole sequence by {cache_difference:.1e}")
cache = KVCache(config, 1)
bytes_per_token = 2 * config.n_layer * config.d_model * 4
print(f"cache memory: {cache.keys.nbytes + cache.values.nbytes:,} bytes for {config.context_length} "
      f"positions ({bytes_per_token:,} per token); GPT-2 124M at 1,024 tokens: "
      f"{2 * 12 * 1024 * 768 * 4 / 2**20:.0f} MiB per sequence")


def timed_generation(n: int, use_cache: bool, repeats: int = 3) -> tuple[float, np.ndarray]:
    """Median time of ``repeats`` greedy runs (one timing on a shared machine is noise)."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = generate(model, prompt_ids, n, temperature=0, use_cache=use_cache)
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds)), out


generate(model, prompt_ids, 2, temperature=0)  # warm-up
times = {True: [], False: []}
same_text = True
for n in CACHE_LENGTHS:
    (with_cache, a), (without, b) = timed_generation(n, True), timed_generation(n, False)
    same_text &= bool(np.array_equal(a, b))
    times[True].append(with_cache)
    times[False].append(without)
    print(f"{n:4d} new tokens: {with_cache * 1e3:7.1f} ms with the cache, {without * 1e3:7.1f} ms without "
          f"({without / with_cache:.1f}x)")
speedup = sum(times[False]) / sum(times[True])  # over all lengths: steadier than one timing
print(f"same tokens with and without the cache: {same_text}; all lengths together, the cache runs at "
      f"{speedup:.1f}x the speed of recomputation (medians of 3 runs each)")
long_cached, long_a = timed_generation(LONG_RUN, True)
long_plain, long_b = timed_generation(LONG_RUN, False)
print(f"{LONG_RUN} new tokens (the window slides after {config.context_length - len(prompt_ids)}): "
      f"{LONG_RUN / long_cached:.0f} tokens/s with the cache, {LONG_RUN / long_plain:.0f} without "
      f"({long_plain / long_cached:.1f}x); same tokens: {np.array_equal(long_a, long_b)}")

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(CACHE_LENGTHS, np.array(times[False]) * 1e3, "o-", label="recompute every step")
ax.plot(CACHE_LENGTHS, np.array(times[True]) * 1e3, "o-", label="KV cache")
ax.set_xlabel("new tokens (greedy)")
ax.set_ylabel("milliseconds")
ax.set_title("Generation time with and without the KV cache")
legend_outside(ax)
save_figure(fig, "08_kv_cache")

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
assert abs(probs.sum() - 1.0) < 1e-9 and abs(p_top_k.sum() - 1.0) < 1e-9 and abs(p_top_p.sum() - 1.0) < 1e-9
assert all(entropies[a] < entropies[b] for a, b in zip(TEMPERATURES, TEMPERATURES[1:])), \
    "entropy must rise with temperature"
assert np.count_nonzero(p_top_k) >= TOP_K and cumulative[nucleus_size - 1] >= TOP_P
assert np.array_equal(again, samples[0]), "the same seed must give the same text"
assert np.array_equal(one_beam.tokens, greedy_short), "one beam is greedy decoding"
assert all(np.array_equal(a, b) for a, b in zip(cached_beams, plain_beams)), "the cache changed the beams"
assert abs(beams[0].log_prob - log_prob(beams[0].tokens)) < 1e-3, "a beam's log p is its sequence's log p"
assert filter_difference < 1e-12, "top-k and top-p by hand must match next_token_distribution"
assert beams_match, "beam search by hand must find the package's beams"
assert greedy_by_hand and cache_difference < 1e-5, "the cache by hand must give greedy's tokens and the same keys"
assert same_text and np.array_equal(long_a, long_b), "the cache must not change the text"
assert np.abs(longer[:, :-1] - shorter).max() < 1e-4, "earlier positions must not see a later token"
if not QUICK:
    assert sizes.max() > 2 * sizes.min(), "the nucleus should vary with the model's certainty"
    assert speedup > 1.5, f"the cache should make generation clearly faster, got {speedup:.1f}x overall"
print("lesson 08 checks passed")



# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **Top-k sampling probabilities.** Next-token probabilities with temperature and top-k filtering.
#    Edit `exercises/08_1.py`, then run `tinygrad-llm exercise check 08.1`.
# 2. **Top-p (nucleus) probabilities.** Next-token probabilities with top-p (nucleus) filtering. Edit
#    `exercises/08_2.py`, then run `tinygrad-llm exercise check 08.2`.
# 3. **Change a setting: the temperature.** Find the temperature at which the top
#    token of the logits [2, 1, 0] gets probability 0.9 (within 0.005). Then change TEMPERATURES in
#    the lesson and look at 08_temperature: how does the bar of the top token move? Edit
#    `exercises/08_3.py`, then run `tinygrad-llm exercise check 08.3`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
