# %% [markdown]
"""
# 04. Embeddings, from token ids to vectors that mean something

The question: the tokenizer of lesson 02 turns text into integers, but an integer is a bad input
for a network: id 1000 is not "close" to id 1001, and multiplying an id by a weight means
nothing. How do we give every token a representation a network can compute with, and learn it?
And since a GPT looks at all positions at once, how does it know which token came first?

The idea: give each of the V tokens its own row in a trainable table W of shape (V, d). Looking
up token i returns row W[i], which is the same as multiplying a one-hot vector by the table,

    embed(i) = onehot(i) @ W = W[i]      and so      d loss / d W[i] = sum of d loss / d embed(i)
                                                    over the places where token i was used,

so the backward pass only touches the rows that were used, adding up repeated uses. Position
gets a vector too, from a second learned table or from fixed sines and cosines,

    PE[p, 2i] = sin(p / 10000^(2i/d)),    PE[p, 2i+1] = cos(p / 10000^(2i/d)),

and the GPT's input is token vector + position vector. What the rows come to mean is learned:
we train word vectors on the corpus by predicting each word from its neighbours, and words used
in similar places (true and false, left and right) end up pointing in similar directions.

Builds on: lesson 01 (Tensor, backward, `functional.cross_entropy`), lesson 02 (`WordTokenizer`,
the course tokenizer), lesson 03 (`load_documents`, `course_tokenizer`).
Adds: `Module`, `Embedding`, `Linear`, `SGD` and `Adam` (from `tinygrad_llm.train.optim`; lesson 07 adds
AdamW and its schedule), `sinusoidal_positions`.

Run: python lessons/04_embeddings.py           (about 6 seconds on 2 cores)
     python lessons/04_embeddings.py --quick   (about 2 seconds)
"""

# %% [markdown]
# ## Settings

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import (SGD, Adam, Embedding, Linear, Module, Tensor, WordTokenizer, course_tokenizer,
                          load_documents, no_grad, sinusoidal_positions)
from tinygrad_llm import functional as F
from tinygrad_llm.course import quick_mode, save_figure
from tinygrad_llm.course.figures import label_axes, legend_outside, line_style, series_style

SEED = 4
QUICK = quick_mode()
D_MODEL = 128                    # the course model's width (lesson 06)
CONTEXT_LENGTH = 128             # ... and the longest sequence it sees
MIN_COUNT = 20                   # section 4: words seen at least 20 times get a vector (~530 words)
EMBED_DIM = 32                   # width of the word vectors
WINDOW = 2                       # context: 2 words on each side of the word to predict
BATCH_SIZE = 256 if QUICK else 512
STEPS = 500 if QUICK else 2000
LEARNING_RATE = 0.01
VAL_FRACTION = 0.1               # the last 10% of the corpus is held out
EVAL_WINDOWS = 4096
# Section 5: a word and the neighbour one would expect of it (related by how they are used).
PROBES = {"true": "false", "left": "right", "two": "three", "x": "y", "if": "when",
          "global": "local", "return": "raise", "int": "float", "list": "tuple", "keys": "values",
          "first": "last", "__getitem__": "__getattr__"}
# Section 6: the words in the 2-D picture, in groups that share a colour.
PLOT_GROUPS = {
    "constants": ["true", "false", "none"],
    "numbers": ["zero", "one", "two", "three"],
    "statements": ["if", "else", "while", "for", "return", "raise", "yield", "import", "try", "except",
                   "with", "def"],
    "types": ["int", "float", "str", "list", "tuple", "dict", "set", "bytes"],
    "special methods": ["__init__", "__new__", "__getitem__", "__getattr__", "__eq__", "__hash__"],
    "variables": ["x", "y", "i", "j", "k", "n"],
}

rng = np.random.default_rng(SEED)


# %% [markdown]
# ## 1. An embedding is a lookup table with trainable rows
# A tiny table: 6 tokens, 3 numbers each. `Embedding(ids)` returns the rows of `ids`. The same
# rows come out of a one-hot matrix product, which is what the lookup means mathematically,
# but the product costs V times more work and memory, so nobody computes it that way.

# %%
table = Embedding(6, 3, rng=rng, std=1.0)
ids = np.array([2, 0, 2, 5])                          # token 2 twice; tokens 1, 3, 4 unused
looked_up = table(ids)                                # (4, 3): rows 2, 0, 2, 5
one_hot = np.eye(6, dtype=np.float32)[ids]            # (4, 6): a single 1 per row
via_matmul = Tensor(one_hot) @ table.weight           # (4, 6) @ (6, 3) -> (4, 3)
print(f"weight:\n{np.round(table.weight.data, 3)}")
print(f"Embedding({ids.tolist()}):\n{np.round(looked_up.data, 3)}")
print(f"lookup vs one-hot @ W: max |difference| {np.abs(looked_up.data - via_matmul.data).max():.1e}")

# The backward pass: weigh the four output rows with a fixed random upstream gradient g.
g = rng.normal(size=(4, 3)).astype(np.float32)
(looked_up * g).sum().backward()
grad = table.weight.grad
print(f"d loss / d weight:\n{np.round(grad, 3)}")
print(f"rows 1, 3, 4 (unused) are zero: {not grad[[1, 3, 4]].any()}; "
      f"row 2 = g[0] + g[2] (used twice): {np.allclose(grad[2], g[0] + g[2])}; "
      f"equal to one_hot^T @ g: {np.allclose(grad, one_hot.T @ g)}")

# One gradient step changes only the rows that were used.
before = table.weight.data.copy()
SGD(table.parameters(), lr=0.1).step()
changed_rows = np.flatnonzero(np.abs(table.weight.data - before).max(axis=1) > 0)
print(f"after one SGD step the rows that changed are {changed_rows.tolist()}   (reference: [0, 2, 5])")


# %% [markdown]
# ## 2. Real tokens, and why a lookup beats a product
# The course model embeds the course tokenizer's 2,048 tokens (512 in quick mode) in
# d_model = 128 dimensions. A batch of B x T token ids becomes a (B, T, d_model) tensor. The
# lookup is a gather of B T rows; the one-hot product multiplies a (B T, V) matrix of zeros.

# %%
tokenizer = course_tokenizer(quick=QUICK)
sentence = "The value of the expression is the value of the last item."
sentence_ids = np.array(tokenizer.encode(sentence))
token_table = Embedding(tokenizer.vocab_size, D_MODEL, rng=rng)
vectors = token_table(sentence_ids)                   # (T, d_model)
pieces = [tokenizer.decode([int(i)]) for i in sentence_ids]
print(f"{len(sentence_ids)} tokens {pieces} -> vectors of shape {vectors.shape}")
value_positions = [i for i, p in enumerate(pieces) if p == " value"]
print(f"' value' at positions {value_positions}: identical vectors: "
      f"{np.array_equal(vectors.data[value_positions[0]], vectors.data[value_positions[-1]])}")

batch = rng.integers(0, tokenizer.vocab_size, size=(16, CONTEXT_LENGTH))           # (B, T)
clock = time.perf_counter()
gathered = token_table(batch)                                                       # (B, T, C)
lookup_seconds = time.perf_counter() - clock
clock = time.perf_counter()
batch_one_hot = np.eye(tokenizer.vocab_size, dtype=np.float32)[batch]               # (B, T, V)
multiplied = batch_one_hot @ token_table.weight.data                                # (B, T, C)
product_seconds = time.perf_counter() - clock
print(f"batch {batch.shape}: lookup {1e3 * lookup_seconds:.2f} ms, one-hot product "
      f"{1e3 * product_seconds:.1f} ms (and a one-hot array of {batch_one_hot.nbytes / 2**20:.0f} MiB); "
      f"same result: {np.allclose(gathered.data, multiplied, atol=1e-6)}")


# %% [markdown]
# ## 3. Positions: learned or sinusoidal
# The two " value" tokens above got the same vector, and attention (lesson 05) treats its inputs
# as a set: without extra information the model cannot tell "a b" from "b a". So each position p
# gets a vector too, added to the token's:
#
# * learned (GPT-2): a second `Embedding` with `context_length` rows, indexed by 0, 1, ..., T - 1
#   and trained with everything else. Flexible, but there is no row for a position it never saw;
# * sinusoidal (the original transformer): fixed. Channel pair i is a (sin, cos) clock turning at
#   its own rate, from one radian per position (pair 0) to 1/10000 of a radian (the last pair).
#   Every position gets a distinct pattern, defined for any p, and shifting by k positions is a
#   fixed rotation of each pair: PE[p + k] = R_k PE[p], the same R_k for every p. So "k tokens back"
#   is a linear map, exactly the kind of thing attention's W_q and W_k can learn.
#
# Lesson 06's `GPTConfig(position="learned" | "sinusoidal")` selects one for the GPT; either way
# the position vectors are added to the token vectors.

# %%
positions = sinusoidal_positions(CONTEXT_LENGTH, D_MODEL)                     # (T, C)
T, C = positions.shape
pair_norms = positions[:, 0::2] ** 2 + positions[:, 1::2] ** 2                  # (T, C/2): sin^2 + cos^2
gram = positions @ positions.T                                                 # (T, T): PE[p] . PE[q]
# PE[p] . PE[q] = sum_i cos((q - p) w_i) depends only on the offset q - p: every diagonal is constant.
diagonal_spread = max(float(np.ptp(np.diagonal(gram, offset=k))) for k in range(-T + 1, T))
print(f"sinusoidal table {positions.shape}: sin^2 + cos^2 of every pair = 1 (max error "
      f"{np.abs(pair_norms - 1).max():.1e}); PE[p] . PE[q] depends only on q - p (spread along a "
      f"diagonal {diagonal_spread:.1e})")

shift = 3
frequencies = 1.0 / 10000 ** (np.arange(0, C, 2) / C)                          # (C/2,) radians per position
rotation = np.zeros((C, C))
for i, w in enumerate(frequencies):
    cos_kw, sin_kw = np.cos(shift * w), np.sin(shift * w)
    # sin(a + b) = sin a cos b + cos a sin b;  cos(a + b) = cos a cos b - sin a sin b
    rotation[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[cos_kw, sin_kw], [-sin_kw, cos_kw]]
rotation_error = float(np.abs(positions[:-shift] @ rotation.T - positions[shift:]).max())
print(f"PE[p + {shift}] = R PE[p] with one block-diagonal rotation R for every p: max error {rotation_error:.1e}")

learned = Embedding(CONTEXT_LENGTH, D_MODEL, rng=rng)                          # GPT-2's choice
with_positions = vectors + learned(np.arange(len(sentence_ids)))               # (T, C) + (T, C)
print(f"with learned positions added, the two ' value' vectors differ by "
      f"{np.abs(with_positions.data[value_positions[0]] - with_positions.data[value_positions[-1]]).max():.3f}")

fig, (ax_table, ax_waves, ax_gram) = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
image = ax_table.imshow(positions, aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
ax_table.set_xlabel("channel")
ax_table.set_ylabel("position p")
ax_table.set_title(f"sinusoidal_positions({T}, {C})")
fig.colorbar(image, ax=ax_table)
for k, channel in enumerate((10, 24, 40, 64)):
    ax_waves.plot(positions[:, channel], color=line_style(k)["color"], label=f"channel {channel}: wavelength "
                                               f"{2 * np.pi / frequencies[channel // 2]:.0f}")
label_axes(ax_waves, "position p", "PE[p, channel]")
ax_waves.set_title("each channel pair is a clock at its own rate")
ax_waves.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
image = ax_gram.imshow(gram, cmap="viridis")
ax_gram.set_xlabel("position q")
ax_gram.set_ylabel("position p")
ax_gram.set_title("PE[p] . PE[q]: a function of q - p only")
fig.colorbar(image, ax=ax_gram)
save_figure(fig, "04_sinusoidal_positions")


# %% [markdown]
# ## 4. Learning word vectors on the corpus
# A random table means nothing; training gives the rows meaning. The classic recipe (word2vec's
# CBOW) predicts each word from its neighbours: average the vectors of the 2 WINDOW words around
# position t, and ask a `Linear` layer for the logits of the word at t,
#
#     logits = Linear(mean(W[x_{t-2}], W[x_{t-1}], W[x_{t+1}], W[x_{t+2}])),   loss = cross_entropy
#
# Two words that appear in similar contexts must produce similar predictions, so they are pushed
# towards similar vectors. We use lesson 02's `WordTokenizer` on the lower-cased corpus, keep the
# words seen at least MIN_COUNT times (the rest become <|unk|>), and train with Adam, a gradient
# step scaled per weight by running averages of the gradient and its square (lesson 07 covers it).
#
# `Module` collects the parameters of the layers assigned to it; `Embedding` and `Linear` are
# modules, and `model.parameters()` is what the optimizer updates.

# %%
class ContextToWord(Module):
    """CBOW: the mean of the context words' vectors, then a linear layer scores every word."""

    def __init__(self, vocab_size: int, dim: int, rng: np.random.Generator):
        self.embedding = Embedding(vocab_size, dim, rng=rng)
        self.head = Linear(dim, vocab_size, rng=rng)

    def forward(self, context: np.ndarray) -> Tensor:
        return self.head(self.embedding(context).mean(axis=1))   # (B, 2 WINDOW, d) -> (B, d) -> (B, V)


documents = [d.text.lower() for d in load_documents()]
words = WordTokenizer.from_text(documents, min_count=MIN_COUNT)
word_ids = np.array(words.encode_documents(documents))
vocab = words.vocab
V = len(vocab)
print(f"{len(word_ids):,} word tokens, vocabulary {V:,} (min count {MIN_COUNT}), "
      f"{(word_ids == words.unk_id).mean():.1%} of tokens are <|unk|>")

# Windows whose centre is a real word; the last VAL_FRACTION of the corpus is held out.
offsets = np.array([o for o in range(-WINDOW, WINDOW + 1) if o != 0])          # (-2, -1, 1, 2)
centres = np.arange(WINDOW, len(word_ids) - WINDOW)
centres = centres[(word_ids[centres] != words.unk_id) & (word_ids[centres] != words.eot_id)]
cut = int(len(word_ids) * (1 - VAL_FRACTION))
train_centres, val_centres = centres[centres < cut - WINDOW], centres[centres >= cut]
eval_centres = rng.choice(val_centres, size=min(EVAL_WINDOWS, len(val_centres)), replace=False)


def windows(centre_positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(context ids (B, 2 WINDOW), centre ids (B,)) for the given centre positions."""
    return word_ids[centre_positions[:, None] + offsets], word_ids[centre_positions]


def validation_loss(model: ContextToWord) -> float:
    with no_grad():
        context, target = windows(eval_centres)
        return F.cross_entropy(model(context), target).item()


# A model that ignores the context can do no better than the word frequencies (a unigram model).
counts = np.bincount(word_ids[train_centres], minlength=V) + 1.0
unigram_loss = float(-np.mean(np.log(counts / counts.sum())[word_ids[eval_centres]]))

model = ContextToWord(V, EMBED_DIM, rng)
print(model)
untrained_vectors = model.embedding.weight.data.copy()
loss_before = validation_loss(model)
optimizer = Adam(model.parameters(), lr=LEARNING_RATE)
clock = time.perf_counter()
for step in range(STEPS):
    context, target = windows(rng.choice(train_centres, size=BATCH_SIZE))
    loss = F.cross_entropy(model(context), target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % max(1, STEPS // 5) == 0 or step == STEPS - 1:
        print(f"  step {step:5d}  training loss {loss.item():.3f}")
loss_after = validation_loss(model)
print(f"{STEPS} steps in {time.perf_counter() - clock:.1f} s; validation loss {loss_before:.3f} -> "
      f"{loss_after:.3f}   (reference: uniform ln V = {np.log(V):.3f}, word frequencies alone {unigram_loss:.3f})")


# %% [markdown]
# ## 5. Nearest neighbours
# Two vectors point the same way when their cosine similarity, a . b / (|a| |b|), is close to 1.
# For each probe word, the words with the most similar vectors, and where the word one would
# expect ranks among all V - 1 others (1 = the nearest).

# %%
def unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def neighbours(embeddings: np.ndarray, word: str, count: int) -> list[tuple[str, float]]:
    similarity = unit_rows(embeddings) @ unit_rows(embeddings)[vocab.index(word)]   # (V,) cosines
    order = [i for i in np.argsort(-similarity) if vocab[i] != word][:count]
    return [(vocab[i], float(similarity[i])) for i in order]


def expected_rank(embeddings: np.ndarray, word: str, expected: str) -> int:
    similarity = unit_rows(embeddings) @ unit_rows(embeddings)[vocab.index(word)]
    similarity[vocab.index(word)] = -np.inf
    return int((similarity > similarity[vocab.index(expected)]).sum()) + 1


trained_vectors = model.embedding.weight.data
ranks, ranks_untrained = [], []
print(f"{'word':<12} {'nearest by cosine similarity':<66} {'expected':<12} rank")
for word, expected in PROBES.items():
    nearest = ", ".join(f"{w} {s:.2f}" for w, s in neighbours(trained_vectors, word, 5))
    ranks.append(expected_rank(trained_vectors, word, expected))
    ranks_untrained.append(expected_rank(untrained_vectors, word, expected))
    print(f"{word:<12} {nearest:<66} {expected:<12} {ranks[-1]}")
print(f"median rank of the expected word: {np.median(ranks):.0f} after training, "
      f"{np.median(ranks_untrained):.0f} before   (reference: ~{V // 2} for random vectors)")
# Not every pair lands near the top: about 100,000 words of text is little for word vectors
# (word2vec was trained on billions), and rarer words get few updates.


# %% [markdown]
# ## 6. A picture: principal component analysis
# The vectors have EMBED_DIM dimensions; to look at them we project onto the two directions along
# which the chosen words vary most. PCA with NumPy: centre the rows (unit length first, as cosine
# similarity ignores length), take the singular value decomposition X = U S V^T, and the first two
# rows of V^T are those directions. The variance along direction k is S_k^2 / (n - 1), the k-th
# eigenvalue of the covariance matrix; the check below computes it both ways.

# %%
plot_words = [w for group in PLOT_GROUPS.values() for w in group]
points = unit_rows(trained_vectors[[vocab.index(w) for w in plot_words]].astype(np.float64))   # (n, d)
centred = points - points.mean(axis=0)
_, singular_values, directions = np.linalg.svd(centred, full_matrices=False)
projected = centred @ directions[:2].T                                         # (n, 2)
variances = singular_values ** 2 / (len(points) - 1)
eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(centred, rowvar=False)))[::-1]
pca_error = float(np.abs(variances - eigenvalues[: len(variances)]).max())
explained = variances[:2].sum() / variances.sum()
print(f"{len(plot_words)} words, {EMBED_DIM} dimensions -> 2: the two directions hold {explained:.0%} of the "
      f"variance; SVD vs covariance eigenvalues: max |difference| {pca_error:.1e}")

fig, ax = plt.subplots(figsize=(9, 7))
start = 0
for k, (group, members) in enumerate(PLOT_GROUPS.items()):
    style = series_style(k)
    colour = style["color"]
    xy = projected[start:start + len(members)]
    ax.scatter(xy[:, 0], xy[:, 1], **style, label=group, s=30)
    for (px, py), word in zip(xy, members):
        ax.annotate(word, (px, py), xytext=(4, 3), textcoords="offset points", fontsize=9, color=colour)
    start += len(members)
label_axes(ax, "first principal component", "second principal component",
           f"Word vectors learned from Python's documentation ({EMBED_DIM}-D, projected by PCA)")
legend_outside(ax, fontsize=8)
save_figure(fig, "04_word_embeddings_pca")


# %% [markdown]
# ## Closing checks
# The claims of the text above.

# %%
assert np.array_equal(looked_up.data, via_matmul.data), "a lookup is a one-hot product"
assert not grad[[1, 3, 4]].any() and np.allclose(grad[2], g[0] + g[2]) and np.allclose(grad, one_hot.T @ g)
assert changed_rows.tolist() == [0, 2, 5], "a step changes only the rows that were used"
assert np.allclose(gathered.data, multiplied, atol=1e-6)
first, second = value_positions[0], value_positions[-1]
assert first != second and np.array_equal(vectors.data[first], vectors.data[second]), "same token, same vector"
assert not np.allclose(with_positions.data[first], with_positions.data[second]), "positions tell them apart"
assert np.abs(pair_norms - 1).max() < 1e-12 and diagonal_spread < 1e-9 and rotation_error < 1e-9
assert loss_after < unigram_loss - 1.0, "the context predicts the word far better than frequencies do"
assert np.median(ranks) <= 10 < np.median(ranks_untrained), "training puts related words next to each other"
assert pca_error < 1e-9
print("all checks passed")


# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **The backward of an embedding lookup.** Write the backward of an embedding lookup: out[i] =
#    weight[ids[i]]. Edit `exercises/04_1.py`, then run `tinygrad-llm exercise check 04.1`.
# 2. **Cosine similarity between embedding rows.** The cosine similarity between every pair of rows of
#    an embedding table. Edit `exercises/04_2.py`, then run `tinygrad-llm exercise check 04.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
