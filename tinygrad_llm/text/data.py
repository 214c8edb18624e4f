"""From text to training batches (lesson 03).

A language model is trained to predict each token from the tokens before it. This module turns a
corpus (``tinygrad_llm.text.corpus``) into exactly that, in four steps:

1. a tokenizer: the lesson-02 byte-level BPE tokenizer (the course's comes from
   ``tinygrad_llm.course.course_tokenizer``), or one trained on the corpus here;
2. ``prepare_corpus()``: the corpus encoded once into a token array on disk (``.npy``), cut into
   a training part and a validation part, with statistics; cached by a hash of text and settings;
3. ``SlidingWindowDataset`` and ``DataLoader``: windows of ``max_length + 1`` tokens, every
   ``stride`` tokens, served in ``(inputs, targets)`` batches of shape (B, T) for epochs;
4. ``random_batch()``: windows at uniformly random positions, the way nanoGPT samples for
   pretraining (no epochs, one fresh batch per step).

One window of T + 1 tokens ``x[0..T]`` holds T training examples at once::

    inputs  = x[0 : T]      the model sees x[0..t] ...
    targets = x[1 : T+1]    ... and must predict x[t+1], for every t < T in parallel
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from ..core.checks import check_positive_int
from ..core.files import atomic_write, write_text_atomically
from .bpe import BPETokenizer
from .corpus import ENDOFTEXT, Document, corpus_text, load_documents

DEFAULT_VOCAB_SIZE = 2048
CACHE_FORMAT = 1   # bump when the files written by prepare_corpus change meaning


def save_tokenizer_atomically(tokenizer: BPETokenizer, path: Path) -> None:
    """``tokenizer.save(path)``, which already writes atomically (kept for its callers)."""
    tokenizer.save(path)


def _tokenizer_fingerprint(tokenizer: BPETokenizer) -> str:
    """A hash of the tokenizer's saved form: two tokenizers that encode alike hash alike."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tokenizer.json"
        tokenizer.save(path)
        return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the train / validation split -----------------------------------------------------------------

def train_val_split(tokens: np.ndarray, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """The last ``val_fraction`` of the tokens is validation, the rest training (views, no copy).

    Why a contiguous tail rather than random windows or random documents: a window drawn from
    the training part can never overlap the validation part, the split needs no seed and is the
    same on every run, and it works for a corpus that is a single long document. The price: the
    document at the cut lends its beginning to training and its end to validation, and for the
    embedded corpus (sorted topic order) validation holds the last topics (``typesmapping`` to
    ``yield``), so the validation loss measures text on topics the model has not trained on,
    which is the honest measure, and is a little higher than on a shuffled split.

        >>> train, val = train_val_split(np.arange(10), 0.2)
        >>> train.tolist(), val.tolist()
        ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    """
    tokens = _as_token_array(tokens)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    n_val = int(round(val_fraction * len(tokens)))
    if n_val == 0 or n_val == len(tokens):
        raise ValueError(f"{len(tokens)} tokens are too few to hold out a fraction {val_fraction} "
                         f"for validation and keep the rest for training")
    cut = len(tokens) - n_val
    return tokens[:cut], tokens[cut:]


# --- preparing a corpus: tokenizer, token arrays, statistics, cache -------------------------------

@dataclass(frozen=True)
class PreparedCorpus:
    """What ``prepare_corpus`` returns: the token arrays, the tokenizer that made them, where they
    are stored, their statistics, and whether they came from the cache."""

    train: np.ndarray          # (N_train,) uint16 or uint32 token ids
    val: np.ndarray            # (N_val,)
    tokenizer: BPETokenizer
    folder: Path               # holds train.npy, val.npy, tokenizer.json and meta.json
    stats: dict = field(repr=False)
    cached: bool = False

    @property
    def train_path(self) -> Path:
        return self.folder / "train.npy"

    @property
    def val_path(self) -> Path:
        return self.folder / "val.npy"

    @property
    def tokenizer_path(self) -> Path:
        return self.folder / "tokenizer.json"


def prepare_corpus(source: str | Path | None = None, *, out_dir: str | Path,
                   tokenizer: BPETokenizer | None = None, vocab_size: int | None = None,
                   pattern: str | None = "gpt4", val_fraction: float = 0.1,
                   force: bool = False) -> PreparedCorpus:
    """Encode a corpus into train/validation token arrays on disk and return them.

    ``source`` is passed to ``load_documents`` (``None``: the embedded corpus). The tokenizer is
    the one given, or else a new BPE tokenizer trained on this corpus with ``vocab_size``
    (default 2,048) and the split ``pattern``, with ``<|endoftext|>`` as its special token.
    (The course's own tokenizer and folders come from ``tinygrad_llm.course``.)

    Documents are encoded one by one with the ``<|endoftext|>`` id between them, which gives the
    same ids as encoding ``corpus_text(documents)`` with special tokens allowed. The ids are stored
    as uint16 when the vocabulary fits in 65,536 (a quarter of int64's memory), else uint32.

    Files go to ``out_dir``, in a sub-folder named after the
    corpus and a hash of its text and every setting, so a second call with the same inputs loads
    the arrays instead of recomputing them; ``force=True`` recomputes. ``meta.json`` records the
    settings and statistics: documents, characters, bytes (UTF-8), tokens (train, val),
    ``bytes_per_token`` (the compression ratio) and ``vocab_coverage`` (the fraction of the
    vocabulary that occurs in the corpus).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    documents = load_documents(source)
    text = corpus_text(documents)
    if tokenizer is not None:
        if vocab_size is not None and vocab_size != tokenizer.vocab_size:
            raise ValueError(f"vocab_size={vocab_size} disagrees with the given tokenizer's "
                             f"vocab_size {tokenizer.vocab_size}; pass one or the other")
        recipe = {"sha256": _tokenizer_fingerprint(tokenizer)}
    else:
        vocab_size = DEFAULT_VOCAB_SIZE if vocab_size is None else vocab_size
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) or vocab_size <= 256:
            raise ValueError(f"vocab_size must be an integer above 256 (the byte tokens), got {vocab_size}")
        recipe = {"train": {"vocab_size": vocab_size, "pattern": pattern,
                            "special_tokens": [ENDOFTEXT]}}

    settings = {"format": CACHE_FORMAT, "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                "val_fraction": val_fraction, "tokenizer": recipe}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    name = "pydoc" if source is None else re.sub(r"[^\w.-]+", "_", Path(source).stem) or "corpus"
    folder = Path(out_dir) / f"{name}-{key}"

    if not force:
        cached = _load_prepared(folder, settings, tokenizer)
        if cached is not None:
            return cached

    start = time.perf_counter()
    if tokenizer is None:
        tokenizer = BPETokenizer.train(text, vocab_size, pattern=pattern, special_tokens=(ENDOFTEXT,))
    tokens = encode_documents(tokenizer, documents)
    train, val = train_val_split(tokens, val_fraction)
    counts = np.bincount(tokens, minlength=tokenizer.vocab_size)
    stats = {
        "documents": len(documents),
        "characters": len(text),
        "bytes": len(text.encode("utf-8")),
        "tokens": len(tokens),
        "train_tokens": len(train),
        "val_tokens": len(val),
        "vocab_size": tokenizer.vocab_size,
        "bytes_per_token": len(text.encode("utf-8")) / len(tokens),
        "vocab_coverage": float(np.count_nonzero(counts) / tokenizer.vocab_size),
        "dtype": str(tokens.dtype),
        "seconds": round(time.perf_counter() - start, 3),
    }
    folder.mkdir(parents=True, exist_ok=True)
    _save_array(train, folder / "train.npy")
    _save_array(val, folder / "val.npy")
    save_tokenizer_atomically(tokenizer, folder / "tokenizer.json")
    # The sidecar is written last: its presence (with matching settings) marks a complete cache.
    meta = {"settings": settings, "source": "embedded" if source is None else str(source), "stats": stats}
    write_text_atomically(folder / "meta.json", json.dumps(meta, indent=2) + "\n")
    return PreparedCorpus(train=train, val=val, tokenizer=tokenizer, folder=folder, stats=stats, cached=False)


def encode_documents(tokenizer: BPETokenizer, documents: list[Document]) -> np.ndarray:
    """All documents as one token array, ``<|endoftext|>`` between them; uint16 when it fits."""
    if ENDOFTEXT not in tokenizer.special_tokens:
        raise ValueError(f"the tokenizer has no {ENDOFTEXT} special token to separate documents")
    separator = tokenizer.special_tokens[ENDOFTEXT]
    ids: list[int] = []
    for i, document in enumerate(documents):
        if i:
            ids.append(separator)
        ids.extend(tokenizer.encode(document.text))
    id_bound = max([tokenizer.vocab_size] + [i + 1 for i in tokenizer.special_tokens.values()])
    return np.array(ids, dtype=token_dtype(id_bound))


def token_dtype(vocab_size: int) -> type[np.unsignedinteger]:
    """The smallest unsigned type that holds ids ``0 .. vocab_size - 1``: uint16 up to 65,536.

        >>> token_dtype(2048), token_dtype(65_536), token_dtype(100_277)
        (<class 'numpy.uint16'>, <class 'numpy.uint16'>, <class 'numpy.uint32'>)
    """
    if vocab_size > 2**32:
        raise ValueError(f"vocab_size {vocab_size} does not fit in 32-bit token ids")
    return np.uint16 if vocab_size <= 2**16 else np.uint32


def _load_prepared(folder: Path, settings: dict, tokenizer: BPETokenizer | None) -> PreparedCorpus | None:
    """The cached arrays if ``folder`` holds a complete preparation with these settings, else None."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("settings") != settings:
            return None
        train = np.load(folder / "train.npy", allow_pickle=False)
        val = np.load(folder / "val.npy", allow_pickle=False)
        stats = meta["stats"]
        if len(train) != stats["train_tokens"] or len(val) != stats["val_tokens"]:
            return None
        if tokenizer is None:
            tokenizer = BPETokenizer.load(folder / "tokenizer.json")
    except (OSError, ValueError, KeyError, TypeError):
        return None   # a missing or damaged cache is rebuilt, never trusted
    return PreparedCorpus(train=train, val=val, tokenizer=tokenizer, folder=folder, stats=stats, cached=True)


def _save_array(array: np.ndarray, path: Path) -> None:
    # careful: np.save(filename) appends ".npy" to a name without it; a file object avoids that.
    with atomic_write(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


# --- windows and batches --------------------------------------------------------------------------

def _as_token_array(tokens) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"tokens must be a 1-D array of integer ids, got shape {tokens.shape} "
                         f"and dtype {tokens.dtype}")
    return tokens


def _gather_windows(tokens: np.ndarray, starts: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets for windows beginning at ``starts``; both (B, length) int64.

    One fancy-indexing gather, no Python loop: position [b, t] reads tokens[starts[b] + t]."""
    positions = starts[:, None] + np.arange(length + 1)     # (B, T+1)
    windows = tokens[positions].astype(np.int64)            # (B, T+1); int64 is what indexing wants
    # careful: two slices of one array share memory; copies keep an in-place edit of the inputs
    # from changing the targets.
    return np.ascontiguousarray(windows[:, :-1]), np.ascontiguousarray(windows[:, 1:])


class SlidingWindowDataset:
    """Windows of ``max_length`` input tokens taken every ``stride`` tokens, with targets shifted
    by one. Window i covers tokens ``[i*stride, i*stride + max_length]`` (inclusive: T + 1 tokens)::

        len = (N - max_length - 1) // stride + 1        for N tokens

    ``stride == max_length`` tiles the corpus without overlap (each token is a target once per
    epoch); a smaller stride makes windows overlap, which gives more windows from the same text
    but repeats tokens. Tokens after the last full window (fewer than ``stride``) are not used.
    ``stride`` defaults to ``max_length``.

        >>> dataset = SlidingWindowDataset(np.arange(10), max_length=4, stride=2)
        >>> len(dataset), dataset[1][0].tolist(), dataset[1][1].tolist()
        (3, [2, 3, 4, 5], [3, 4, 5, 6])
    """

    def __init__(self, tokens: np.ndarray, max_length: int, stride: int | None = None):
        self.tokens = _as_token_array(tokens)   # kept as given (uint16 stays small)
        self.max_length = check_positive_int("max_length", max_length)
        self.stride = self.max_length if stride is None else check_positive_int("stride", stride)
        if len(self.tokens) < self.max_length + 1:
            raise ValueError(f"the corpus has {len(self.tokens)} tokens, fewer than one window needs: "
                             f"max_length + 1 = {self.max_length + 1} (the inputs and one more target)")

    def __len__(self) -> int:
        return (len(self.tokens) - self.max_length - 1) // self.stride + 1

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Window ``index`` as ``(inputs, targets)``, each (max_length,) int64."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"a window index must be an integer, got {type(index).__name__}")
        inputs, targets = self.batch(np.array([index]))
        return inputs[0], targets[0]

    def batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows ``indices`` stacked: ``(inputs, targets)``, each (B, max_length) int64."""
        indices = np.asarray(indices, dtype=np.int64)
        n = len(self)
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"window index out of range for a dataset of {n} windows")
        starts = (indices % n) * self.stride    # % maps negative indices from the end, like a list
        return _gather_windows(self.tokens, starts, self.max_length)

    def __repr__(self) -> str:
        return (f"SlidingWindowDataset({len(self.tokens):,} tokens, max_length={self.max_length}, "
                f"stride={self.stride}, windows={len(self):,})")


class DataLoader:
    """Batches of a dataset for training in epochs: iterating once is one epoch.

    Yields ``(inputs, targets)`` int64 arrays of shape (B, T). With ``shuffle`` the window order is
    a fresh permutation drawn from ``rng`` at the start of every epoch: epochs differ from each
    other, and the same seed gives the same sequence of epochs. ``rng`` is read only when shuffling.
    ``drop_last`` skips a final batch smaller than ``batch_size`` (so every step sees B windows).

    A dataset with a ``batch(indices)`` method (``SlidingWindowDataset``) is gathered in one
    vectorised step; any other dataset whose items are ``(inputs, targets)`` is stacked item by item.
    """

    def __init__(self, dataset, batch_size: int, shuffle: bool = False,
                 rng: np.random.Generator | None = None, drop_last: bool = True):
        self.dataset = dataset
        self.batch_size = check_positive_int("batch_size", batch_size)
        if shuffle and rng is None:
            raise ValueError("shuffle=True needs rng=np.random.default_rng(seed), so that the order "
                             "is reproducible")
        self.shuffle, self.rng, self.drop_last = shuffle, rng, drop_last
        if drop_last and len(dataset) < self.batch_size:
            raise ValueError(f"the dataset has {len(dataset)} windows, fewer than batch_size "
                             f"{self.batch_size}: with drop_last=True an epoch would be empty")

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(len(self.dataset), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n = len(self.dataset)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for b in range(len(self)):
            indices = order[b * self.batch_size:(b + 1) * self.batch_size]
            if hasattr(self.dataset, "batch"):
                yield self.dataset.batch(indices)
            else:
                items = [self.dataset[int(i)] for i in indices]
                yield (np.stack([np.asarray(x, dtype=np.int64) for x, _ in items]),
                       np.stack([np.asarray(y, dtype=np.int64) for _, y in items]))


def random_batch(tokens: np.ndarray, batch_size: int, context_length: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` windows at uniformly random starts: ``(inputs, targets)``, each (B, T) int64.

    Pretraining samples this way (as nanoGPT does): no epochs to track, every position equally
    likely, and a fresh batch per step. A start s needs tokens s .. s + T, so s < N - T.
    """
    tokens = _as_token_array(tokens)
    batch_size = check_positive_int("batch_size", batch_size)
    context_length = check_positive_int("context_length", context_length)
    if len(tokens) < context_length + 1:
        raise ValueError(f"the corpus has {len(tokens)} tokens, fewer than one window needs: "
                         f"context_length + 1 = {context_length + 1}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a np.random.Generator, e.g. np.random.default_rng(seed)")
    starts = rng.integers(0, len(tokens) - context_length, size=batch_size)
    return _gather_windows(tokens, starts, context_length)
