"""A labelled task cut from the documentation corpus (lesson 10).

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

The baselines a model must beat on it are in ``baselines``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

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
