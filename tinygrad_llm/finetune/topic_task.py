"""A labelled task cut from the documentation corpus, and the baselines a model must beat (lesson 10).

The task: *which documentation topic does this passage come from?* Each topic of the corpus
(``"specialnames"``, ``"compound"``, ...) is a class, so the labels come with the text and nobody
labels anything by hand. A passage is a window of ``passage_length`` tokens of the course
tokenizer, short enough for the model's context.

Two traps, and what the builder does about them:

* **Duplicated text.** Some topics repeat others word for word (``"customization"`` is a section
  of ``"specialnames"``, ``"try"`` a section of ``"compound"``): the same passage would carry two
  labels. ``select_topics`` takes the largest topics in turn and skips one whose lines mostly
  appear in a topic already chosen.
* **Leaking text between splits.** Windows of one split must not overlap windows of another, or
  the test set measures memory. Each topic is cut, from its start, into *segments* of a few
  consecutive windows with ``gap`` tokens dropped after every segment; the segments take turns
  (train, test, train, validation, train, test, ...). So no two splits share a token position,
  passages of different splits are at least ``gap`` tokens apart, and every split samples the
  whole topic (a split made of the last 20% of each topic would test on sub-topics never trained
  on). A topic that repeats itself word for word could still put one passage in two splits, so
  evaluation passages whose tokens already occur in training (or in validation) are dropped.

The baselines are plain NumPy: the majority class; the best *single-keyword rule* ("if the word w
occurs say class a, else class b"), which tells whether one word solves the task; and a
bag-of-words logistic regression (softmax regression on word counts, trained by gradient descent
with an L2 penalty).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..text.corpus import Document

SPLITS = ("train", "val", "test")
# Segments take turns in this order: half of the text trains, a sixth validates, a third tests.
DEFAULT_PATTERN = ("train", "test", "train", "val", "train", "test")


# ----------------------------------------------------------------------------------------------
# The task


@dataclass(frozen=True)
class ClassificationSplit:
    """The passages of one split: token ids, class ids, the decoded texts (for the word-level
    baselines) and where each passage starts inside its topic (in tokens)."""

    inputs: np.ndarray    # (N, T) int64 token ids
    labels: np.ndarray    # (N,) int64 class ids
    texts: list[str]      # N decoded passages
    starts: np.ndarray    # (N,) int64 token offset of the passage in its topic

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class ClassificationTask:
    """Class names (topic keys), the three splits, and how many evaluation passages were dropped
    because the same tokens already occur in an earlier split (train, then validation)."""

    class_names: tuple[str, ...]
    passage_length: int
    train: ClassificationSplit
    val: ClassificationSplit
    test: ClassificationSplit
    duplicates_removed: int = 0   # evaluation passages dropped because their text was in training

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split(self, name: str) -> ClassificationSplit:
        if name not in SPLITS:
            raise KeyError(f"no split {name!r}; the splits are {', '.join(SPLITS)}")
        return getattr(self, name)

    def class_counts(self) -> dict[str, np.ndarray]:
        """Passages per class in each split: {"train": (K,) counts, "val": ..., "test": ...}."""
        return {name: np.bincount(self.split(name).labels, minlength=self.num_classes) for name in SPLITS}

    def counts_table(self) -> str:
        """The class balance as a printable table (one row per class, one column per split)."""
        counts = self.class_counts()
        width = max(len(name) for name in self.class_names + ("total",))
        lines = [f"{'class':<{width}} " + " ".join(f"{s:>6}" for s in SPLITS)]
        for k, name in enumerate(self.class_names):
            lines.append(f"{name:<{width}} " + " ".join(f"{counts[s][k]:6d}" for s in SPLITS))
        lines.append(f"{'total':<{width}} " + " ".join(f"{counts[s].sum():6d}" for s in SPLITS))
        return "\n".join(lines)


def _long_lines(text: str, min_characters: int = 40) -> set[str]:
    """The lines long enough that sharing one means sharing text, not a phrase like "Note:"."""
    return {line.strip() for line in text.splitlines() if len(line.strip()) >= min_characters}


def select_topics(documents: Sequence[Document], num_classes: int,
                  max_shared: float = 0.5) -> list[Document]:
    """The ``num_classes`` largest documents (by characters; ties by name) whose text is their own:
    a document is skipped when more than ``max_shared`` of its long lines already appear in a
    larger chosen one (a section reprinted under its own key)."""
    if num_classes < 2:
        raise ValueError(f"a classification task needs at least 2 classes, got {num_classes}")
    chosen: list[Document] = []
    seen: set[str] = set()
    for document in sorted(documents, key=lambda d: (-len(d.text), d.name)):
        lines = _long_lines(document.text)
        if lines and len(lines & seen) / len(lines) > max_shared:
            continue
        chosen.append(document)
        seen |= lines
        if len(chosen) == num_classes:
            return chosen
    raise ValueError(f"asked for {num_classes} classes, but the corpus has only {len(chosen)} topics "
                     f"with text of their own (of {len(documents)} documents); ask for fewer classes")


def passage_starts(n_tokens: int, passage_length: int, segment_windows: int = 2, gap: int = 0,
                   pattern: Sequence[str] = DEFAULT_PATTERN,
                   train_stride: int | None = None) -> dict[str, list[int]]:
    """Start offsets of the passages of each split in a text of ``n_tokens`` tokens.

    Segments of ``segment_windows`` windows follow each other with ``gap`` tokens between them;
    segment s belongs to split ``pattern[s % len(pattern)]``. A short last segment keeps the
    windows that fit. With ``train_stride`` (< passage_length), training segments also yield the
    overlapping windows in between (more, correlated, training examples); they stay inside their
    segment, so they never reach another split's text.

        >>> passage_starts(20, 4, segment_windows=1, gap=1, pattern=("train", "val", "test"))
        {'train': [0, 15], 'val': [5], 'test': [10]}
    """
    unknown = set(pattern) - set(SPLITS)
    if unknown or not set(SPLITS) <= set(pattern):
        raise ValueError(f"the pattern must name each of {SPLITS} at least once, got {tuple(pattern)}")
    if passage_length <= 0 or segment_windows <= 0 or gap < 0:
        raise ValueError("passage_length and segment_windows must be positive and gap >= 0")
    starts: dict[str, list[int]] = {name: [] for name in SPLITS}
    position, segment = 0, 0
    while position + passage_length <= n_tokens:
        split = pattern[segment % len(pattern)]
        windows = min(segment_windows, (n_tokens - position) // passage_length)
        end = position + windows * passage_length
        stride = train_stride if split == "train" and train_stride else passage_length
        starts[split].extend(range(position, end - passage_length + 1, stride))
        position, segment = end + gap, segment + 1
    return starts


def _subsample(indices: np.ndarray, keep: int, rng: np.random.Generator) -> np.ndarray:
    if len(indices) <= keep:
        return indices
    return np.sort(rng.choice(indices, size=keep, replace=False))


def topic_classification_task(tokenizer, num_classes: int, passage_length: int, *,
                              documents: Sequence[Document] | None = None,
                              context_length: int | None = None, segment_windows: int = 2,
                              gap: int | None = None, pattern: Sequence[str] = DEFAULT_PATTERN,
                              train_stride: int | None = None, balance: bool = False,
                              max_per_class: int | None = None, seed: int = 0) -> ClassificationTask:
    """"Which topic is this passage from?" over the ``num_classes`` largest distinct topics.

    ``tokenizer`` needs ``encode(text) -> ids`` and ``decode(ids) -> text``. ``documents``
    defaults to the embedded documentation corpus. ``context_length``, if given, is the model's,
    and a longer passage is an error. ``gap`` defaults to a quarter of a passage. ``balance``
    subsamples every split down to its smallest class; ``max_per_class`` caps each class in each
    split (both with ``seed``, keeping the passages in corpus order). Class k is the k-th largest
    topic. Deterministic: the same arguments give the same task.
    """
    if passage_length <= 0:
        raise ValueError(f"passage_length must be positive, got {passage_length}")
    if context_length is not None and passage_length > context_length:
        raise ValueError(f"passages of {passage_length} tokens do not fit the model's context of "
                         f"{context_length} tokens; use passage_length <= {context_length}")
    if documents is None:
        from ..text.corpus import embedded_documents
        documents = embedded_documents()
    gap = passage_length // 4 if gap is None else gap
    topics = select_topics(documents, num_classes)
    task_names = [t.name for t in topics]
    parts: dict[str, list[tuple[np.ndarray, int, int]]] = {name: [] for name in SPLITS}
    for label, topic in enumerate(topics):
        tokens = np.asarray(tokenizer.encode(topic.text), dtype=np.int64)
        starts = passage_starts(len(tokens), passage_length, segment_windows, gap, pattern, train_stride)
        empty = [name for name in SPLITS if not starts[name]]
        if empty:
            raise ValueError(f"topic {topic.name!r} has {len(tokens)} tokens, too few to give a passage "
                             f"of {passage_length} tokens to the {', '.join(empty)} split(s); use "
                             f"shorter passages or fewer classes")
        for name in SPLITS:
            parts[name].extend((tokens[s:s + passage_length], label, s) for s in starts[name])

    # careful: a topic can repeat itself (a grammar rule quoted twice), so disjoint positions do
    # not guarantee disjoint text: evaluation passages that also occur in an earlier split go.
    seen: set[bytes] = set()
    removed = 0
    for name in SPLITS:
        kept = [part for part in parts[name] if name == "train" or part[0].tobytes() not in seen]
        removed += len(parts[name]) - len(kept)
        parts[name] = kept
        seen.update(part[0].tobytes() for part in kept)

    rng = np.random.default_rng(seed)
    splits = {}
    for name in SPLITS:
        labels = np.array([label for _, label, _ in parts[name]], dtype=np.int64)
        keep = np.arange(len(labels))
        counts = np.bincount(labels, minlength=num_classes)
        if counts.min() == 0:
            raise ValueError(f"class {task_names[int(np.argmin(counts))]!r} has no {name} passage left "
                             f"after dropping text repeated from earlier splits; use shorter passages")
        cap = counts.min() if balance else counts.max()
        cap = cap if max_per_class is None else min(cap, max_per_class)
        if cap < counts.max():
            keep = np.concatenate([_subsample(np.flatnonzero(labels == k), cap, rng)
                                   for k in range(num_classes)])
        inputs = np.stack([parts[name][i][0] for i in keep])                   # (N, T)
        splits[name] = ClassificationSplit(
            inputs=inputs, labels=labels[keep],
            texts=[tokenizer.decode(row.tolist()) for row in inputs],
            starts=np.array([parts[name][i][2] for i in keep], dtype=np.int64))
    return ClassificationTask(tuple(task_names), passage_length, **splits,
                              duplicates_removed=removed)


# ----------------------------------------------------------------------------------------------
# Words


WORD_PATTERN = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lower-cased runs of letters, digits and underscores.

        >>> words('Call x.__init__(self)!')
        ['call', 'x', '__init__', 'self']
    """
    return WORD_PATTERN.findall(text.lower())


def word_vocabulary(texts: Iterable[str], min_count: int = 1) -> dict[str, int]:
    """Word -> column, for the words seen at least ``min_count`` times, in sorted order."""
    counts = Counter(word for text in texts for word in words(text))
    return {word: i for i, word in enumerate(sorted(w for w, c in counts.items() if c >= min_count))}


def bag_of_words(texts: Sequence[str], vocabulary: dict[str, int]) -> np.ndarray:
    """(N, W) word counts; words outside the vocabulary are ignored (float64)."""
    counts = np.zeros((len(texts), len(vocabulary)))
    for row, text in enumerate(texts):
        for word in words(text):
            column = vocabulary.get(word)
            if column is not None:
                counts[row, column] += 1
    return counts


# ----------------------------------------------------------------------------------------------
# Baselines


def majority_class(labels: np.ndarray) -> int:
    """The most frequent class id (the smallest one among ties)."""
    return int(np.argmax(np.bincount(np.asarray(labels))))


@dataclass(frozen=True)
class KeywordRule:
    """If ``word`` occurs in the passage, say ``present_class``, else ``absent_class``."""

    word: str
    present_class: int
    absent_class: int

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.present_class if self.word in set(words(t)) else self.absent_class
                         for t in texts], dtype=np.int64)


def best_keyword_rule(texts: Sequence[str], labels: np.ndarray, num_classes: int,
                      min_count: int = 2) -> tuple[KeywordRule, float]:
    """The single-keyword rule with the highest accuracy on (texts, labels), and that accuracy.

    For word w, let n_k = passages of class k that contain it and m_k those that do not. The best
    rule for w says argmax n when w occurs and argmax m otherwise, with accuracy
    (max n + max m) / N; we try every word seen at least ``min_count`` times. It can name only
    two classes, so on K balanced classes it scores at most 2/K; that is the point of the check.
    """
    labels = np.asarray(labels, dtype=np.int64)
    vocabulary = word_vocabulary(texts, min_count)
    if not vocabulary:
        raise ValueError("no word occurs often enough to make a keyword rule")
    present = bag_of_words(texts, vocabulary) > 0                        # (N, W)
    onehot = np.eye(num_classes)[labels]                                 # (N, K)
    with_word = present.T.astype(np.float64) @ onehot                    # (W, K): n_k per word
    without_word = onehot.sum(axis=0) - with_word                        # (W, K): m_k per word
    correct = with_word.max(axis=1) + without_word.max(axis=1)           # (W,)
    best = int(np.argmax(correct))                                       # first best: sorted words
    word = sorted(vocabulary, key=vocabulary.get)[best]
    rule = KeywordRule(word, int(np.argmax(with_word[best])), int(np.argmax(without_word[best])))
    return rule, float(correct[best] / len(labels))


class SoftmaxRegression:
    """Multinomial logistic regression, trained by full-batch gradient descent:

        P = softmax(X W + b),   loss = -(1/N) sum_i log P[i, y_i] + (l2 / 2) |W|^2
        dW = X^T (P - Y) / N + l2 W,   db = mean over rows of (P - Y)      (Y one-hot)

    The loss is convex, so gradient descent with step 1/L reaches its minimum, where
    L = lambda_max(X^T X) / (2N) + l2 bounds its curvature (softmax's own curvature is at most
    1/2); ``fit`` uses that step unless given one. The bias is not penalised.
    """

    def __init__(self, num_features: int, num_classes: int, l2: float = 1e-3):
        if l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {l2}")
        self.weight = np.zeros((num_features, num_classes))   # (W, K)
        self.bias = np.zeros(num_classes)                      # (K,)
        self.l2 = l2

    @property
    def num_parameters(self) -> int:
        return self.weight.size + self.bias.size

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        logits = features @ self.weight + self.bias                      # (N, K)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.argmax(features @ self.weight + self.bias, axis=1)

    def loss_and_gradients(self, features: np.ndarray, labels: np.ndarray):
        """(loss, dW, db) at the current weights (the equations of the class docstring)."""
        n = len(labels)
        p = self.predict_proba(features)
        loss = -np.mean(np.log(p[np.arange(n), labels])) + 0.5 * self.l2 * np.sum(self.weight ** 2)
        p[np.arange(n), labels] -= 1.0                                   # P - Y
        return loss, features.T @ p / n + self.l2 * self.weight, p.mean(axis=0)

    def fit(self, features: np.ndarray, labels: np.ndarray, steps: int = 500,
            learning_rate: float | None = None) -> list[float]:
        """Gradient descent from the current weights; returns the loss before every step."""
        features = np.asarray(features, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.int64)
        if features.shape != (len(labels), self.weight.shape[0]):
            raise ValueError(f"features of shape {features.shape} for {len(labels)} labels and "
                             f"{self.weight.shape[0]} features")
        if learning_rate is None:
            # the bias is a weight on a constant feature 1, so the bound includes that column
            with_bias = np.hstack([features, np.ones((len(labels), 1))])
            learning_rate = 1.0 / (np.linalg.norm(with_bias, 2) ** 2 / (2 * len(labels)) + self.l2)
        losses = []
        for _ in range(steps):
            loss, d_weight, d_bias = self.loss_and_gradients(features, labels)
            losses.append(float(loss))
            self.weight -= learning_rate * d_weight
            self.bias -= learning_rate * d_bias
        return losses
