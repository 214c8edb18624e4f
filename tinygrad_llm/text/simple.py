"""The two tokenizers that come before BPE: characters and words (lesson 02).

Both build their vocabulary from a corpus and give every entry an id; lesson 02 uses them to
show what goes wrong before byte-level BPE fixes it:

* ``CharTokenizer``: one id per distinct character. The vocabulary is small, but sequences are
  long (one token per character), and a character the corpus never showed (an emoji, a
  Cyrillic letter) cannot be encoded at all;
* ``WordTokenizer``: one id per distinct word or punctuation mark. Sequences are short, but the
  vocabulary grows with every new word, any unseen word becomes ``<|unk|>`` (its spelling is lost),
  and decoding cannot restore the original spacing.

Byte-level BPE (``bpe.py``) sits between the two: it starts from the 256 byte values, so nothing
is ever unknown, and merges frequent sequences, so common words still become one token.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from .patterns import ENDOFTEXT   # "<|endoftext|>", the document separator every tokenizer shares

UNK = "<|unk|>"

# Special tokens first (so "<|endoftext|>" stays whole), then "--", then runs of word characters
# (letters, digits, underscore), then any single other non-space character. Whitespace is dropped,
# which is exactly why a word tokenizer cannot give the original text back.
WORD_PATTERN = re.compile(r"<\|endoftext\|>|<\|unk\|>|--|\w+|[^\w\s]")


class CharTokenizer:
    """One id per character, in sorted order of the characters of the corpus.

        >>> tok = CharTokenizer.from_text("hello")
        >>> tok.vocab, tok.encode("hole")
        (['e', 'h', 'l', 'o'], [1, 3, 2, 0])
        >>> tok.decode(tok.encode("hole"))
        'hole'
    """

    def __init__(self, vocab: Sequence[str]):
        vocab = list(vocab)
        if any(not isinstance(ch, str) or len(ch) != 1 for ch in vocab):
            raise ValueError("a character vocabulary holds single characters")
        if len(set(vocab)) != len(vocab):
            raise ValueError("the vocabulary has duplicate characters")
        self.vocab = vocab
        self._ids = {ch: i for i, ch in enumerate(vocab)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The vocabulary of every distinct character in ``text``."""
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        """Ids of the characters; a character outside the vocabulary raises ``ValueError``."""
        try:
            return [self._ids[ch] for ch in text]
        except KeyError:
            missing = next(ch for ch in text if ch not in self._ids)
            raise ValueError(f"character {missing!r} (U+{ord(missing):04X}) is not in the vocabulary: "
                             "a character tokenizer cannot encode what its corpus never showed") from None

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.vocab[i] for i in ids)


class WordTokenizer:
    """One id per word or punctuation mark seen in the corpus, plus ``<|unk|>`` and ``<|endoftext|>``.

    Words come from ``WORD_PATTERN``. Unknown words encode to the ``<|unk|>`` id; ``<|endoftext|>``
    in the text (between documents) encodes to its own id.

        >>> tok = WordTokenizer.from_text("the cat sat. the dog sat.")
        >>> tok.encode("the cat flew.")
        [4, 1, 6, 0]
        >>> tok.decode(tok.encode("the cat flew."))
        'the cat <|unk|>.'
    """

    def __init__(self, vocab: Sequence[str]):
        vocab = list(vocab)
        if len(set(vocab)) != len(vocab):
            raise ValueError("the vocabulary has duplicate words")
        for special in (UNK, ENDOFTEXT):
            if special not in vocab:
                raise ValueError(f"the vocabulary must contain {special!r}")
        self.vocab = vocab
        self._ids = {word: i for i, word in enumerate(vocab)}
        self.unk_id = self._ids[UNK]
        self.eot_id = self._ids[ENDOFTEXT]

    @staticmethod
    def split(text: str) -> list[str]:
        """Cut text into words and punctuation marks (whitespace is dropped).

            >>> WordTokenizer.split("Don't panic--it's fine.")
            ['Don', "'", 't', 'panic', '--', 'it', "'", 's', 'fine', '.']
        """
        return WORD_PATTERN.findall(text)

    @classmethod
    def from_text(cls, text: str | Iterable[str], min_count: int = 1) -> WordTokenizer:
        """The vocabulary of ``text`` (or of several documents): words seen at least ``min_count``
        times, sorted, then ``<|endoftext|>`` and ``<|unk|>``."""
        documents = [text] if isinstance(text, str) else list(text)
        counts = Counter(word for document in documents for word in cls.split(document))
        words = sorted(word for word, count in counts.items() if count >= min_count and word not in (UNK, ENDOFTEXT))
        return cls([*words, ENDOFTEXT, UNK])

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        unk = self.unk_id
        return [self._ids.get(word, unk) for word in self.split(text)]

    def encode_documents(self, documents: Iterable[str]) -> list[int]:
        """Encode several documents with ``<|endoftext|>`` between them."""
        ids: list[int] = []
        for k, document in enumerate(documents):
            if k:
                ids.append(self.eot_id)
            ids.extend(self.encode(document))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Words joined by spaces, with no space before punctuation: the spacing is a guess, since
        ``split`` threw the real whitespace away."""
        text = " ".join(self.vocab[i] for i in ids)
        return re.sub(r" ([^\w\s<])", r"\1", text)
