"""The course recipe: the tokenizer, corpus, model and training settings every lesson shares
(lesson 02 onwards).

Lesson 02 trains the course tokenizer, lesson 03 prepares the corpus with it, lesson 07 pretrains
the course model; later lessons load what an earlier one left in the output folder, or rebuild it
with the same recipe when it is missing, so every lesson also runs on its own. Quick mode (tiny
sizes for the test suite) is decided here and nowhere in the library: the library's functions
take their tokenizer, folders and sizes as arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..text.bpe import BPETokenizer
from ..text.corpus import ENDOFTEXT, Document, corpus_text, load_documents
from ..text.data import PreparedCorpus, prepare_corpus, save_tokenizer_atomically
from ..model.gpt import GPT, GPTConfig
from ..train.trainer import TrainConfig, Trainer, load_model
from .settings import output_dir

# The course tokenizer (lesson 02). 2,048 tokens give about 3.7 bytes per token on the corpus
# while the embedding table stays small (2,048 rows); the quick one is for the test suite.
COURSE_VOCAB_SIZE = 2048
QUICK_VOCAB_SIZE = 512
QUICK_TRAINING_CHARACTERS = 100_000   # the quick tokenizer learns from the first ~100 KB
COURSE_PATTERN = "gpt4"
# The course tokenizer can also split with GPT-2's pattern: the one Hugging Face's GPT-2 files
# imply (they cannot name another), so a model trained with it leaves with its tokenizer.
COURSE_PATTERNS = ("gpt4", "gpt2")


# --- the course tokenizer -------------------------------------------------------------------------

def _check_pattern(pattern: str) -> str:
    if pattern not in COURSE_PATTERNS:
        raise ValueError(f"the course tokenizer splits with one of {', '.join(COURSE_PATTERNS)}, got {pattern!r}")
    return pattern


def course_tokenizer_path(quick: bool = False, pattern: str = COURSE_PATTERN) -> Path:
    """Where the course tokenizer lives: ``<output_dir>/tokenizer/course_tokenizer[_quick].json``
    (``..._gpt2.json`` for the GPT-2-pattern variant)."""
    stem = "course_tokenizer_quick" if quick else "course_tokenizer"
    suffix = "" if _check_pattern(pattern) == COURSE_PATTERN else f"_{pattern}"
    return output_dir("tokenizer") / f"{stem}{suffix}.json"


def train_course_tokenizer(quick: bool = False, pattern: str = COURSE_PATTERN) -> BPETokenizer:
    """Train the course tokenizer from scratch on the embedded corpus (no files touched).

    Full: vocabulary 2,048 on the whole corpus. Quick: vocabulary 512 on the first documents,
    up to ~100,000 characters (whole documents, so no separator is ever cut in half).
    ``pattern``: the GPT-4 split (the course's) or GPT-2's (``"gpt2"``, for a Hugging Face export).
    """
    documents = load_documents()
    if quick:
        documents = _leading_documents(documents, QUICK_TRAINING_CHARACTERS)
    vocab_size = QUICK_VOCAB_SIZE if quick else COURSE_VOCAB_SIZE
    return BPETokenizer.train(corpus_text(documents), vocab_size, pattern=_check_pattern(pattern),
                              special_tokens=(ENDOFTEXT,))


def course_tokenizer(quick: bool = False, pattern: str = COURSE_PATTERN) -> BPETokenizer:
    """The lesson-02 tokenizer: loaded from ``course_tokenizer_path(quick, pattern)``, or trained
    with ``train_course_tokenizer(quick, pattern)`` and saved there when the file is missing."""
    path = course_tokenizer_path(quick, pattern)
    if path.exists():
        return BPETokenizer.load(path)
    tokenizer = train_course_tokenizer(quick, pattern)
    save_tokenizer_atomically(tokenizer, path)
    return tokenizer


def _leading_documents(documents: list[Document], characters: int) -> list[Document]:
    """The first documents whose texts add up to about ``characters`` (at least one)."""
    chosen, total = [], 0
    for document in documents:
        if chosen and total + len(document.text) > characters:
            break
        chosen.append(document)
        total += len(document.text)
    return chosen


# --- the course corpus ----------------------------------------------------------------------------

def course_corpus(quick: bool = False, val_fraction: float = 0.1, force: bool = False) -> PreparedCorpus:
    """The embedded corpus encoded with the course tokenizer, cached under ``output_dir("data")``."""
    return prepare_corpus(tokenizer=course_tokenizer(quick), val_fraction=val_fraction,
                          out_dir=output_dir("data"), force=force)


def prepare_with_defaults(source: str | Path | None = None, *, tokenizer: BPETokenizer | None = None,
                          vocab_size: int | None = None, val_fraction: float = 0.1,
                          out_dir: str | Path | None = None, force: bool = False,
                          quick: bool = False, pattern: str = COURSE_PATTERN) -> PreparedCorpus:
    """``prepare_corpus`` with the course's defaults, as the command line and ``data/prepare.py``
    use it: the course tokenizer for the embedded corpus at the course vocabulary size (2,048, or
    512 when ``quick``), otherwise the given tokenizer or a new one of ``vocab_size`` (the same
    defaults) splitting with ``pattern``; files under ``output_dir("data")`` unless ``out_dir`` is given."""
    default_vocab = QUICK_VOCAB_SIZE if quick else COURSE_VOCAB_SIZE
    if tokenizer is None and source is None and vocab_size in (None, default_vocab):
        tokenizer = course_tokenizer(quick, pattern)
    if tokenizer is None and vocab_size is None:
        vocab_size = default_vocab
    return prepare_corpus(source, tokenizer=tokenizer, vocab_size=vocab_size, pattern=_check_pattern(pattern),
                          val_fraction=val_fraction, force=force,
                          out_dir=output_dir("data") if out_dir is None else out_dir)


# --- the course model: lesson 07's recipe, so later lessons can load it or rebuild it -------------

def course_model_config(vocab_size: int, quick: bool = False) -> GPTConfig:
    """The course GPT: 4 layers of width 128 over 128 tokens (~1M parameters), trainable on a
    laptop CPU in minutes; quick mode shrinks it for smoke tests.

    Dropout 0.1: the corpus has only ~115k training tokens and the recipe makes ~18 passes over
    them, so a little regularisation pays (measured with the 1,000-step recipe: validation
    perplexity 78 with dropout 0.1; with 0.2 and 2,400 steps, 79)."""
    if quick:
        return GPTConfig(vocab_size=vocab_size, context_length=32, d_model=32, n_layer=2, n_head=2)
    return GPTConfig(vocab_size=vocab_size, context_length=128, d_model=128, n_layer=4, n_head=4,
                     dropout=0.1)


def course_train_config(quick: bool = False) -> TrainConfig:
    """Lesson 07's recipe: 1,000 steps of 16 windows of 128 tokens (2M tokens), peak learning
    rate 2e-3 after 100 warmup steps, cosine decay to 2e-4; about 6 minutes on 2 cores."""
    if quick:
        return TrainConfig(steps=60, batch_size=8, learning_rate=3e-3, min_learning_rate=3e-4,
                           warmup_steps=10, eval_interval=30, eval_batches=4, log_interval=20)
    return TrainConfig(steps=1000, batch_size=16, learning_rate=2e-3, min_learning_rate=2e-4,
                       warmup_steps=100, eval_interval=100, eval_batches=10, log_interval=100)


def course_checkpoint_path(quick: bool = False) -> Path:
    return output_dir("checkpoints") / ("course_model_quick.safetensors" if quick else "course_model.safetensors")


def course_model(quick: bool = False, log: Callable[[str], None] | None = print) -> tuple[GPT, BPETokenizer]:
    """(model, tokenizer): the lesson-07 model from its checkpoint, or pretrained now with the
    same recipe when the checkpoint is missing (so every later lesson runs on its own); in eval
    mode either way (call ``model.train()`` before fine-tuning it with dropout)."""
    corpus = course_corpus(quick)
    path = course_checkpoint_path(quick)
    if path.exists():
        model, _ = load_model(path)
        if model.config.vocab_size == corpus.tokenizer.vocab_size:
            return model, corpus.tokenizer
    if log is not None:
        log(f"no course model at {path.name}: pretraining one with lesson 07's recipe")
    model = GPT(course_model_config(corpus.tokenizer.vocab_size, quick), rng=np.random.default_rng(0))
    trainer = Trainer(model, corpus.train, corpus.val, course_train_config(quick), log=log,
                      tokenizer_ref=corpus.tokenizer_path.name)
    trainer.train()
    trainer.save(path)
    model.eval()
    return model, corpus.tokenizer
