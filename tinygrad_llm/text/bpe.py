"""Byte-level byte-pair encoding (BPE): the tokenizer of GPT-2 and GPT-4, written out (lesson 02).

Unlike ``simple``'s character and word tokenizers, BPE learns its vocabulary from the text, has no
unknown token and keeps frequent words whole.

Text becomes UTF-8 bytes, so the 256 byte values already spell every string and no input is ever
"unknown". Training then repeats one step: find the most frequent adjacent pair of tokens and
replace it everywhere by a new token. After ``k`` steps the vocabulary has ``256 + k`` tokens and
frequent words have become single tokens:

    >>> tok = BPETokenizer.train("aaabdaaabac", vocab_size=259, pattern=None, special_tokens=())
    >>> [(pair, tok.token_bytes(new)) for pair, new in tok.merges]
    [((97, 97), b'aa'), ((97, 98), b'ab'), ((256, 257), b'aaab')]
    >>> tok.encode("aaabdaaabac")
    [258, 100, 258, 97, 99]

Three ideas make it the tokenizer of real models:

* pre-tokenization: a regex (``GPT2_SPLIT_PATTERN``, ``GPT4_SPLIT_PATTERN``) first cuts text into
  words, numbers, punctuation and whitespace, and merges never cross those cuts, so "dog" "dog."
  and "dog!" share the token for " dog" instead of each getting their own;
* special tokens such as ``<|endoftext|>`` take the last ids and are never produced from user text
  unless the caller allows it (``encode(..., allowed_special=...)``, with tiktoken's semantics);
* encoding applies the learned merges in the order they were learned (their rank), which is what
  reproduces the training segmentation on new text.

The split patterns live in ``patterns``; saving, loading, tiktoken ranks and GPT-2's
``vocab.json`` + ``merges.txt`` live in ``formats``, which works on plain tables
(``TokenizerTables``) that the methods here hand over and build from.
"""

from __future__ import annotations

import heapq
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import chain, repeat
from pathlib import Path
from typing import NamedTuple

import numpy as np
import regex

from . import formats
from .formats import TokenizerTables
from .patterns import ENDOFTEXT, pattern_name, resolve_pattern


_INFINITY = float("inf")
_CACHE_MAX_ENTRIES = 1 << 17   # pre-tokens remembered by encode; the cache is emptied when full
_CACHE_MAX_PIECE = 256         # longer pieces (pattern=None) are not worth remembering
_SHORT_PIECE = 64              # up to this many bytes the plain merge loop beats the heap one


class BatchEncoding(NamedTuple):
    """What ``encode_batch`` returns: token ids and which of them are real.

    ``ids`` and ``attention_mask`` are ``np.int64`` arrays of shape (B, L); rows are right-padded,
    and ``attention_mask`` is 1 for a real token and 0 for padding.
    """

    ids: np.ndarray
    attention_mask: np.ndarray


def _lone_surrogate_error(text: str) -> ValueError:
    """The error for a string that is not valid Unicode (it holds half of a UTF-16 pair)."""
    found = regex.search("[\ud800-\udfff]", text)
    where = f" U+{ord(found.group()):04X} at index {found.start()}" if found else ""
    return ValueError(f"text contains a lone surrogate{where}: it is not valid Unicode and has no "
                      "UTF-8 bytes (decode your input with errors='replace' or fix its source)")


def _special_splitter(names: Iterable[str]) -> regex.Pattern:
    # longest first, so "<|end|>" never wins over "<|endoftext|>" at the same position
    alternatives = sorted(names, key=len, reverse=True)
    return regex.compile("(" + "|".join(regex.escape(name) for name in alternatives) + ")")


def count_pretokens(text: str, pattern: str | None, special_tokens: Iterable[str] = ()) -> Counter:
    """How often each pre-token occurs: cut out special tokens, then split the rest by ``pattern``.

        >>> sorted(count_pretokens("the cat<|endoftext|>the", "gpt2", ["<|endoftext|>"]).items())
        [(' cat', 1), ('the', 2)]
    """
    counts: Counter = Counter()
    pattern = resolve_pattern(pattern)
    special_tokens = list(special_tokens)
    # special tokens are document boundaries: no merge may cross one or learn its characters
    chunks = _special_splitter(special_tokens).split(text)[::2] if special_tokens else [text]
    if pattern is None:
        counts.update(chunk for chunk in chunks if chunk)
        return counts
    findall = regex.compile(pattern).findall
    for chunk in chunks:
        counts.update(findall(chunk))   # Counter.update on a list counts in C
    return counts


def train_merges(word_counts: dict[bytes, int], num_merges: int,
                 verbose: bool = False) -> list[tuple[int, int]]:
    """Learn up to ``num_merges`` merges from words (byte strings) and their frequencies.

    Returns the merged pairs in order; merge ``k`` creates token ``256 + k``. It stops early when
    no pair is left (every word is a single token).

    The rules, which the naive trainer in the tests restates in ten lines:

    * the count of a pair is how often merging it would fire: the sum over words of (occurrences,
      scanned left to right without overlap) x (word frequency). In "aaaa" the pair (a, a) counts
      twice, not three times, because merging "aa" consumes both of its characters;
    * the most frequent pair is merged; ties go to the smallest pair (compare the first ids, then
      the second), so the same text always gives the same merges.

    How it stays fast: every unique word is stored once as a doubly linked list of tokens (arrays
    ``token``, ``next_``, ``prev``), and ``where[pair]`` remembers the positions where the pair
    starts. A merge visits only those positions and changes the pair counts around each one, never
    recounting the corpus. A lazy max-heap finds the best pair: an entry whose count went stale is
    pushed back with the true count when it surfaces. Runs of equal tokens ("aaaa...", a million
    spaces) would make that local update walk the whole run at every occurrence; a merge of
    (x, x) therefore rewrites each run at once by formula, and a run of new tokens keeps its
    length as it grows, so training stays linear in the text whatever it holds.
    """
    token: list[int] = []     # token id at each position; -1 once merged into its left neighbour
    next_: list[int] = []     # position of the next token of the same word, -1 at the word's end
    prev: list[int] = []      # position of the previous token, -1 at the word's start
    freq: list[int] = []      # how often the word containing this position occurs
    for word, count in word_counts.items():
        n = len(word)
        if n < 2:
            continue          # a single byte has no pair to contribute
        start = len(token)
        token.extend(word)
        next_.extend(range(start + 1, start + n))
        next_.append(-1)
        prev.append(-1)
        prev.extend(range(start, start + n - 1))
        freq.extend(repeat(count, n))

    stats: dict[tuple[int, int], int] = {}
    where: dict[tuple[int, int], set[int]] = {}
    last = None
    for i in range(len(token) - 1):
        if next_[i] < 0:
            last = None
            continue
        pair = (token[i], token[i + 1])
        where.setdefault(pair, set()).add(i)
        if pair == last:      # the second (x, x) of a run overlaps the first: merging skips it
            last = None
            continue
        stats[pair] = stats.get(pair, 0) + freq[i]
        last = pair
    heap = [(-count, pair) for pair, count in stats.items()]
    heapq.heapify(heap)       # min-heap on (-count, pair): most frequent first, then smallest pair

    def add_pairs(start: int, stop: int, sign: int, weight: int, new: int = -1, touched=None) -> None:
        # Add sign * weight for each pair in the positions start .. (before) stop, counting runs
        # of equal pairs without overlap. `start` is the first token of a run, so counting is
        # correct from there; `stop` is the position after the region (-1: the word's end).
        node, last = start, None
        while (after := next_[node]) != stop:
            pair = (token[node], token[after])
            if touched is not None and new in pair:
                where.setdefault(pair, set()).add(node)
                touched.add(pair)
            if pair == last:
                last = None
            else:
                stats[pair] = stats.get(pair, 0) + sign * weight
                last = pair
            node = after

    def merge_run(i: int, new: int, weight: int, touched: set) -> None:
        # Merge (x, x) along the whole run of x starting at i at once: L tokens become L // 2 new
        # tokens (and one x if L is odd), pairing them left to right as merging does. Positions
        # arrive in increasing order, so the first valid one of a run is its start; the other
        # positions of the run are stale afterwards. The counts change by formula, not by a
        # recount, so a run of a million equal bytes costs one pass, not a pass per occurrence:
        #   before  (u, x) + floor(L / 2) (x, x) + (x, v)
        #   after   (u, new) + floor(m / 2) (new, new) + (new, x) + (x, v)   [L = 2m + 1]
        #           (u, new) + floor(m / 2) (new, new) + (new, v)            [L = 2m]
        # where u and v are the run's neighbours, never x because the run is maximal.
        x, left = token[i], prev[i]
        made = []
        node = i
        while node >= 0 and token[node] == x and (partner := next_[node]) >= 0 and token[partner] == x:
            token[node], token[partner] = new, -1      # splice the partner out of the list
            after = next_[partner]
            next_[node] = after
            if after >= 0:
                prev[after] = node
            made.append(node)
            node = after
        leftover = node >= 0 and token[node] == x
        right = next_[node] if leftover else node       # the right neighbour v, or -1

        def change(pair: tuple[int, int], delta: int, position: int = -1) -> None:
            stats[pair] = stats.get(pair, 0) + delta
            if position >= 0:
                where.setdefault(pair, set()).add(position)
                touched.add(pair)

        change((x, x), -len(made) * weight)            # floor(L / 2) = m occurrences merged
        if left >= 0:
            change((token[left], x), -weight)
            change((token[left], new), weight, left)
        if len(made) > 1:
            pair = (new, new)
            stats[pair] = stats.get(pair, 0) + len(made) // 2 * weight
            where.setdefault(pair, set()).update(made[:-1])
            touched.add(pair)
        if leftover:
            change((new, x), weight, made[-1])          # (x, v) stays as it was
        elif right >= 0:
            change((x, token[right]), -weight)
            change((new, token[right]), weight, made[-1])

    vocab = [bytes([b]) for b in range(256)]
    merges: list[tuple[int, int]] = []
    while len(merges) < num_merges:
        while heap:
            negative_count, pair = heapq.heappop(heap)
            count = stats.get(pair, 0)
            if count == -negative_count:
                break
            if count > 0:     # stale: the pair lost occurrences since this entry was pushed
                heapq.heappush(heap, (-count, pair))
        else:
            break             # no pair left anywhere
        a, b = pair
        new = 256 + len(merges)
        merges.append(pair)
        vocab.append(vocab[a] + vocab[b])
        if verbose:
            print(f"merge {len(merges):>5}/{num_merges}: ({a}, {b}) -> {new} {vocab[new]!r} count {count}")

        touched: set[tuple[int, int]] = set()
        # the run of new tokens this merge has just built, ending at run_end: "ababab" becomes
        # new new new one occurrence at a time, and the (new, new) count depends on its length
        run_end, run_length = -1, 0
        # positions in increasing order = left to right inside each word, as merging applies
        for i in sorted(where.pop(pair)):
            j = next_[i]
            if token[i] != a or j < 0 or token[j] != b:
                continue      # stale position: an earlier merge changed it
            weight = freq[i]
            if a == b:
                merge_run(i, new, weight, touched)
                continue
            # The region whose pair counts can change, from the left neighbour to the right one.
            # careful: a run of equal tokens beside the merge changes length, and (x, x) counts
            # depend on that length (floor(L / 2)), so the region must start at the start of a
            # run of a's and end at the end of a run of b's; a run of new tokens on the left is
            # the one this loop is building, whose length we know without walking it.
            start = prev[i]
            correction = 0
            if start < 0:
                start = i
            elif token[start] == a:
                while prev[start] >= 0 and token[prev[start]] == a:
                    start = prev[start]
            elif start == run_end:
                # counting from the run's last token sees one (new, new) more; a run of even
                # length L gains none by growing to L + 1 (floor(L / 2) = floor((L + 1) / 2))
                correction = weight if run_length % 2 == 0 else 0
            end = next_[j]
            if end >= 0:
                if token[end] == b:
                    while next_[end] >= 0 and token[next_[end]] == b:
                        end = next_[end]
                end = next_[end]
            add_pairs(start, end, -1, weight)
            token[i], token[j] = new, -1          # splice j out of the linked list
            after = next_[j]
            next_[i] = after
            if after >= 0:
                prev[after] = i
            add_pairs(start, end, +1, weight, new, touched)
            if correction:
                stats[(new, new)] -= correction
            run_length = run_length + 1 if prev[i] == run_end and run_end >= 0 else 1
            run_end = i
        # only pairs containing the new token can have grown; all others only shrank, and their
        # stale heap entries are corrected when they surface
        for grown in touched:
            if stats[grown] > 0:   # a pair made by one occurrence may be gone after the next
                heapq.heappush(heap, (-stats[grown], grown))
        del stats[pair]       # every counted occurrence was merged: its count is now 0
    return merges


def merge_by_rank(ids: list[int], ranks: dict, merges: dict) -> list[int]:
    """Apply merges by rank, the reference rule (GPT-2's): find the lowest-ranked adjacent pair,
    merge all its occurrences left to right, repeat until no adjacent pair has a rank.

        >>> merge_by_rank([97, 97, 97], {(97, 97): 0}, {(97, 97): 256})
        [256, 97]
    """
    rank_of = ranks.get
    while len(ids) > 1:
        pairs = list(zip(ids, ids[1:]))
        pair_ranks = list(map(rank_of, pairs, repeat(_INFINITY)))
        best = min(pair_ranks)
        if best == _INFINITY:
            break
        a, b = pair = pairs[pair_ranks.index(best)]
        new = merges[pair]
        merged, i, n = [], 0, len(ids)
        while i < n:
            if i + 1 < n and ids[i] == a and ids[i + 1] == b:
                merged.append(new)
                i += 2
            else:
                merged.append(ids[i])
                i += 1
        ids = merged
    return ids


def _merge_short(ids: list[int], ranks: dict, merges: dict) -> list[int]:
    """``merge_by_rank`` one merge at a time: the leftmost lowest-ranked pair, updating only the
    ranks of its two neighbours. The same result as long as a merge never creates a pair of lower
    rank than itself (true when each token is made by one merge; the constructor checks), since
    then the next lowest rank is the next occurrence to the right. Fastest for short pieces."""
    rank_of = ranks.get
    pair_ranks = list(map(rank_of, zip(ids, ids[1:]), repeat(_INFINITY)))
    while pair_ranks:
        best = min(pair_ranks)
        if best == _INFINITY:
            break
        i = pair_ranks.index(best)
        ids[i:i + 2] = [merges[(ids[i], ids[i + 1])]]
        del pair_ranks[i]
        if i > 0:
            pair_ranks[i - 1] = rank_of((ids[i - 1], ids[i]), _INFINITY)
        if i < len(pair_ranks):
            pair_ranks[i] = rank_of((ids[i], ids[i + 1]), _INFINITY)
    return ids


def _merge_long(ids: list[int], ranks: dict, merges: dict) -> list[int]:
    """``merge_by_rank`` in O(n log n) for long pieces: a heap of (rank, position) over a linked
    list. Popping in that order merges the occurrences of the lowest rank left to right, under the
    same condition as ``_merge_short``."""
    n = len(ids)
    token: list = list(ids)
    next_ = list(range(1, n + 1))
    next_[-1] = -1
    prev = list(range(-1, n - 1))
    heap = []
    for i, pair in enumerate(zip(ids, ids[1:])):
        rank = ranks.get(pair)
        if rank is not None:
            heap.append((rank, i))
    heapq.heapify(heap)
    while heap:
        rank, i = heapq.heappop(heap)
        j = next_[i]
        if token[i] is None or j < 0 or ranks.get((token[i], token[j])) != rank:
            continue          # stale: this position was merged or its pair changed
        new = merges[(token[i], token[j])]
        token[i], token[j] = new, None
        after = next_[j]
        next_[i] = after
        if after >= 0:
            prev[after] = i
            rank = ranks.get((new, token[after]))
            if rank is not None:
                heapq.heappush(heap, (rank, i))
        before = prev[i]
        if before >= 0:
            rank = ranks.get((token[before], new))
            if rank is not None:
                heapq.heappush(heap, (rank, before))
    return [t for t in token if t is not None]


def _as_id_list(ids) -> list:
    """``ids`` as a list of ints, or a clear error: ids are integers, never floats, bools or None."""
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise ValueError(f"expected a 1-D sequence of token ids, got an array of shape {ids.shape}")
        if ids.dtype.kind not in "iu":
            raise TypeError(f"token ids must be integers, got an array of dtype {ids.dtype}")
        return ids.tolist()
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise TypeError(f"expected a sequence of token ids, got {type(ids).__name__}")
    ids = list(ids)
    # careful: 97.0 == 97 and True == 1 as dict keys, so a float or bool id would decode silently
    for kind in set(map(type, ids)):
        if kind is not int and not (issubclass(kind, np.integer) or (issubclass(kind, int) and kind is not bool)):
            bad = next(i for i in ids if type(i) is kind)
            raise TypeError(f"token ids must be integers, got {bad!r} ({kind.__name__})")
    return ids


class BPETokenizer:
    """A byte-level BPE tokenizer: ``train`` it on text, then ``encode``/``decode``.

    Ids: every byte value has an id (0..255 for tokenizers trained here), each merge adds one,
    and the special tokens come last, so ``vocab_size = 256 + len(merges) + len(special_tokens)``
    for a trained tokenizer. Loaded foreign vocabularies may order ids differently; ``vocab_size``
    is always one more than the largest id (the size of an embedding table for it).

    Build one with ``train``, ``load``, ``from_tiktoken_ranks`` or ``from_gpt2``; the constructor
    takes the raw tables and checks them.
    """

    def __init__(self, merges: Sequence[tuple[int, int, int]], special_tokens: dict[str, int] | None = None,
                 pattern: str | None = "gpt4", byte_ids: Sequence[int] | None = None):
        """``merges``: ``(a, b, new_id)`` in rank order; ``byte_ids[b]``: the id of byte ``b``
        (default: ``b`` itself); ``pattern``: ``"gpt2"``, ``"gpt4"``, ``None`` or a regex."""
        self.pattern = resolve_pattern(pattern)
        self._split = regex.compile(self.pattern).findall if self.pattern is not None else None
        byte_ids = list(range(256)) if byte_ids is None else [int(i) for i in byte_ids]
        if len(byte_ids) != 256 or len(set(byte_ids)) != 256 or min(byte_ids) < 0:
            raise ValueError("byte_ids must give 256 distinct non-negative ids, one per byte value")
        self._byte_ids = byte_ids
        self._identity_bytes = byte_ids == list(range(256))
        self._vocab: dict[int, bytes] = {i: bytes([b]) for b, i in enumerate(byte_ids)}
        self._merges: dict[tuple[int, int], int] = {}    # pair -> new id, in rank order
        self._ranks: dict[tuple[int, int], int] = {}     # pair -> rank (0 = learned first)
        made_twice = False
        for rank, merge in enumerate(merges):
            a, b, new = (int(x) for x in merge)
            if a not in self._vocab or b not in self._vocab:
                raise ValueError(f"merge {rank} ({a}, {b}) -> {new} uses an id not defined before it")
            if (a, b) in self._merges:
                raise ValueError(f"merge {rank}: the pair ({a}, {b}) is merged twice")
            merged = self._vocab[a] + self._vocab[b]
            if new in self._vocab:
                # GPT-2-style files may make one token by two different merges ("a"+"bc", "ab"+"c")
                if self._vocab[new] != merged or new in self._byte_ids:
                    raise ValueError(f"merge {rank} ({a}, {b}) -> {new} reuses the id of a different token")
                made_twice = True
            self._vocab[new] = merged
            self._merges[(a, b)] = new
            self._ranks[(a, b)] = rank
        # careful: with a token made by two merges, a merge can create a pair of lower rank than
        # itself, and the one-merge-at-a-time shortcuts would merge in a different order
        self._merge_piece = merge_by_rank if made_twice else _merge_short
        self._merge_piece_long = merge_by_rank if made_twice else _merge_long

        self._special_tokens: dict[str, int] = {}
        for name, i in (special_tokens or {}).items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"special token names must be non-empty strings, got {name!r}")
            i = int(i)
            if i < 0 or i in self._vocab or i in self._special_tokens.values():
                raise ValueError(f"special token {name!r} has id {i}, which is negative or already taken")
            self._special_tokens[name] = i
        self._decoder = dict(self._vocab)
        self._decoder.update((i, name.encode("utf-8")) for name, i in self._special_tokens.items())
        self._vocab_size = max(self._decoder) + 1
        self._cache: dict[str, list[int]] = {}
        self._special_regexes: dict[frozenset, regex.Pattern] = {}

    # ------------------------------------------------------------------ training
    @classmethod
    def train(cls, text: str, vocab_size: int, pattern: str | None = "gpt4",
              special_tokens: Sequence[str] = (ENDOFTEXT,), verbose: bool = False) -> BPETokenizer:
        """Learn a tokenizer of ``vocab_size`` tokens (256 bytes + merges + special tokens) from ``text``.

        ``pattern``: ``"gpt4"`` (default), ``"gpt2"``, ``None`` (no pre-tokenization: merges may
        cross spaces) or a custom regex. Special tokens found in ``text`` are cut out first, so
        ``"doc one<|endoftext|>doc two"`` trains on two documents and never learns ``<|`` from the
        separator. If the text runs out of pairs first, training stops early with a warning and
        the tokenizer is smaller than asked (``vocab_size`` tells the real size).
        ``verbose`` prints every merge.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        if isinstance(special_tokens, str):
            raise TypeError(f"special_tokens must be a sequence of names, like ({special_tokens!r},)")
        special_tokens = list(special_tokens)
        if len(set(special_tokens)) != len(special_tokens):
            raise ValueError(f"special_tokens has duplicates: {special_tokens}")
        if not all(isinstance(name, str) and name for name in special_tokens):
            raise ValueError(f"special token names must be non-empty strings: {special_tokens}")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)):
            raise TypeError(f"vocab_size must be an int, not {type(vocab_size).__name__}")
        smallest = 256 + len(special_tokens)
        if vocab_size < smallest:
            raise ValueError(f"vocab_size={vocab_size} is too small: the 256 byte tokens and "
                             f"{len(special_tokens)} special token(s) already need {smallest}")
        pattern = resolve_pattern(pattern)
        pretokens = count_pretokens(text, pattern, special_tokens)
        try:
            word_counts = {piece.encode("utf-8"): count for piece, count in pretokens.items()}
        except UnicodeEncodeError:
            raise _lone_surrogate_error(text) from None
        num_merges = vocab_size - smallest
        pairs = train_merges(word_counts, num_merges, verbose=verbose)
        if len(pairs) < num_merges:
            warnings.warn(f"the text has only enough pairs for {len(pairs)} merges, not {num_merges}: "
                          f"the tokenizer has {smallest + len(pairs)} tokens instead of {vocab_size}",
                          stacklevel=2)
        merges = [(a, b, 256 + k) for k, (a, b) in enumerate(pairs)]
        first_special = 256 + len(merges)
        specials = {name: first_special + k for k, name in enumerate(special_tokens)}
        return cls(merges, specials, pattern)

    # ------------------------------------------------------------------ the vocabulary
    @property
    def vocab_size(self) -> int:
        """One more than the largest id: the number of rows an embedding table needs."""
        return self._vocab_size

    @property
    def special_tokens(self) -> dict[str, int]:
        """Special token name -> id (a copy)."""
        return dict(self._special_tokens)

    @property
    def merges(self) -> list[tuple[tuple[int, int], int]]:
        """``((a, b), new_id)`` in rank order: the order encoding applies them."""
        return list(self._merges.items())

    @property
    def byte_ids(self) -> list[int]:
        """``byte_ids[b]`` is the token id of the single byte ``b``."""
        return list(self._byte_ids)

    def special_token_id(self, name: str) -> int:
        """The id of the special token ``name``."""
        try:
            return self._special_tokens[name]
        except KeyError:
            raise KeyError(f"no special token {name!r}; this tokenizer has {sorted(self._special_tokens)}") from None

    @property
    def eot_id(self) -> int:
        """The id of ``<|endoftext|>``."""
        return self.special_token_id(ENDOFTEXT)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes a token stands for (a special token: its name in UTF-8)."""
        try:
            return self._decoder[token_id]
        except (KeyError, TypeError):
            raise ValueError(f"token id {token_id!r} is not in the vocabulary (size {self.vocab_size})") from None

    def __repr__(self) -> str:
        return (f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self._merges)}, "
                f"pattern={pattern_name(self.pattern)!r}, special_tokens={list(self._special_tokens)})")

    # ------------------------------------------------------------------ encoding
    def _encode_piece(self, piece: str) -> list[int]:
        data = piece.encode("utf-8")   # UnicodeEncodeError for a lone surrogate, handled above us
        ids = list(data) if self._identity_bytes else [self._byte_ids[b] for b in data]
        if len(ids) <= _SHORT_PIECE:
            return self._merge_piece(ids, self._ranks, self._merges)
        return self._merge_piece_long(ids, self._ranks, self._merges)

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` as plain text: special-token strings in it are just characters."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        if self._split is None:
            pieces = [text] if text else []
        else:
            pieces = self._split(text)
            if sum(map(len, pieces)) != len(text):
                # careful: findall silently skips what the pattern does not match; a custom
                # pattern that misses characters would make decode(encode(s)) != s
                raise ValueError(f"the split pattern {self.pattern!r} does not match every character "
                                 "of the text, so some text would be lost; add a catch-all like |\\s|.")
        cache = self._cache
        try:
            # the common case: every piece was seen before, and this line runs in C
            return list(chain.from_iterable(map(cache.__getitem__, pieces)))
        except KeyError:
            pass
        try:
            fresh = {piece: self._encode_piece(piece) for piece in set(pieces).difference(cache)}
        except UnicodeEncodeError:
            raise _lone_surrogate_error(text) from None
        if len(cache) + len(fresh) > _CACHE_MAX_ENTRIES:
            cache.clear()           # a simple bound on memory; it refills with the pieces in use
        cache.update((piece, encoded) for piece, encoded in fresh.items() if len(piece) <= _CACHE_MAX_PIECE)
        try:
            return list(chain.from_iterable(map(cache.__getitem__, pieces)))
        except KeyError:
            pass                    # a long piece, or a piece dropped when the cache was emptied
        ids: list[int] = []
        for piece in pieces:
            encoded = fresh.get(piece)
            if encoded is None:
                encoded = cache.get(piece)
                if encoded is None:
                    encoded = self._encode_piece(piece)
            ids.extend(encoded)
        return ids

    def _resolve_specials(self, allowed_special, disallowed_special) -> tuple[set[str], set[str]]:
        known = set(self._special_tokens)
        if allowed_special == "all":
            allowed = set(known)
        elif allowed_special in ("none_raise", "none"):
            allowed = set()
        elif isinstance(allowed_special, str):
            raise ValueError(f"allowed_special must be 'all', 'none_raise' or a set of special "
                             f"token names, not the string {allowed_special!r}")
        else:
            allowed = set(allowed_special)
            unknown = allowed - known
            if unknown:
                raise ValueError(f"allowed_special names unknown special tokens {sorted(unknown)}; "
                                 f"this tokenizer has {sorted(known)}")
        if disallowed_special == "all":
            disallowed = known - allowed
        elif isinstance(disallowed_special, str):
            raise ValueError(f"disallowed_special must be 'all' or a collection of names, not {disallowed_special!r}")
        else:
            disallowed = set(disallowed_special)
            if disallowed - known:
                raise ValueError(f"disallowed_special names unknown special tokens {sorted(disallowed - known)}")
        if allowed_special == "none":
            disallowed = set()   # minbpe's "none": special strings are plain text
        return allowed, disallowed

    def _special_regex(self, names: set[str]) -> regex.Pattern:
        key = frozenset(names)
        if key not in self._special_regexes:
            self._special_regexes[key] = _special_splitter(names)
        return self._special_regexes[key]

    def encode(self, text: str, allowed_special: str | Iterable[str] = "none_raise",
               disallowed_special: str | Iterable[str] = "all") -> list[int]:
        """Encode ``text`` to token ids, with tiktoken's rules for special tokens.

        * default: a special-token string in ``text`` (say ``"<|endoftext|>"`` pasted by a user)
          raises ``ValueError``: it must not silently become a control token;
        * ``allowed_special="all"`` or a set of names: those strings become their special ids;
        * ``disallowed_special=()``: special-token strings that are not allowed are encoded as
          plain text (``allowed_special="none"`` is a shorthand for that: no special ids at all).

            >>> tok = BPETokenizer.train("hello world", 260, special_tokens=("<|endoftext|>",))
            >>> tok.encode("hi<|endoftext|>", allowed_special="all")[-1] == tok.eot_id
            True
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        allowed, disallowed = self._resolve_specials(allowed_special, disallowed_special)
        if disallowed:
            found = self._special_regex(disallowed).search(text)
            if found:
                raise ValueError(
                    f"text contains the special token {found.group()!r} at index {found.start()}. "
                    f"Pass allowed_special={{{found.group()!r}}} (or 'all') to encode it as its special id, "
                    "or disallowed_special=() to encode it as plain text.")
        if not allowed:
            return self.encode_ordinary(text)
        ids: list[int] = []
        parts = self._special_regex(allowed).split(text)
        # split with a capturing group alternates text, special, text, special, ..., text
        for k, part in enumerate(parts):
            if k % 2:
                ids.append(self._special_tokens[part])
            elif part:
                ids.extend(self.encode_ordinary(part))
        return ids

    def encode_batch(self, texts: Sequence[str], max_length: int | None = None, padding: str = "longest",
                     truncation: bool = True, pad_token: str | int = ENDOFTEXT,
                     allowed_special: str | Iterable[str] = "none_raise",
                     disallowed_special: str | Iterable[str] = "all") -> BatchEncoding:
        """Encode several texts into one right-padded (B, L) batch with an attention mask.

        ``padding="longest"``: L is the longest encoding (capped at ``max_length``);
        ``padding="max_length"``: L is ``max_length``. Longer encodings keep their first
        ``max_length`` tokens when ``truncation`` is on and raise otherwise. ``pad_token`` is a
        special token name or an id; padded positions have ``attention_mask == 0``.

            >>> tok = BPETokenizer.train("a b c", 258)
            >>> batch = tok.encode_batch(["a b", "a"])
            >>> batch.attention_mask.tolist()
            [[1, 1], [1, 0]]
        """
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise TypeError("texts must be a list of strings (a single str would be split into characters)")
        if len(texts) == 0:
            raise ValueError("texts is empty: a batch needs at least one text")
        if padding not in ("longest", "max_length"):
            raise ValueError(f"padding must be 'longest' or 'max_length', not {padding!r}")
        if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer))
                                       or max_length < 1):
            raise ValueError(f"max_length must be a positive int or None, not {max_length!r}")
        if padding == "max_length" and max_length is None:
            raise ValueError("padding='max_length' needs max_length")
        if isinstance(pad_token, str):
            if pad_token not in self._special_tokens:
                raise ValueError(f"pad_token {pad_token!r} is not a special token of this tokenizer "
                                 f"({sorted(self._special_tokens)}); pass a special token name or an id")
            pad_id = self._special_tokens[pad_token]
        elif isinstance(pad_token, (int, np.integer)) and not isinstance(pad_token, bool) \
                and 0 <= pad_token < self.vocab_size:
            pad_id = int(pad_token)
        else:
            raise ValueError(f"pad_token must be a special token name or an id below {self.vocab_size}, "
                             f"not {pad_token!r}")

        rows = [self.encode(text, allowed_special, disallowed_special) for text in texts]
        if max_length is not None:
            for k, row in enumerate(rows):
                if len(row) > max_length and not truncation:
                    raise ValueError(f"text {k} encodes to {len(row)} tokens, more than max_length="
                                     f"{max_length}; pass truncation=True to keep the first {max_length}")
            rows = [row[:max_length] for row in rows]
        length = max_length if padding == "max_length" else max(map(len, rows))
        ids = np.full((len(rows), length), pad_id, dtype=np.int64)   # (B, L)
        attention_mask = np.zeros((len(rows), length), dtype=np.int64)
        for k, row in enumerate(rows):
            ids[k, :len(row)] = row
            attention_mask[k, :len(row)] = 1
        return BatchEncoding(ids, attention_mask)

    # ------------------------------------------------------------------ decoding
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes of a sequence of ids (exact, even when it ends inside a UTF-8 character)."""
        ids = _as_id_list(ids)
        try:
            return b"".join(map(self._decoder.__getitem__, ids))
        except (KeyError, TypeError):
            bad = next(i for i in ids if not isinstance(i, (int, np.integer)) or i not in self._decoder)
            raise ValueError(f"token id {bad!r} is not in the vocabulary (size {self.vocab_size})") from None

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """The text of a sequence of ids.

        A slice of ids can end in the middle of a multi-byte character (a model can also emit
        bytes that are not UTF-8 at all); with the default ``errors="replace"`` each broken
        sequence becomes U+FFFD '\ufffd', ``errors="strict"`` raises instead. For the ids of
        ``encode(s)`` the result is always exactly ``s``.
        """
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    # ------------------------------------------------------------------ files and other formats
    def tables(self) -> TokenizerTables:
        """The plain tables that define this tokenizer (what the file formats read and write)."""
        return TokenizerTables([(a, b, new) for (a, b), new in self._merges.items()], dict(self._special_tokens),
                               self.pattern, list(self._byte_ids))

    @classmethod
    def from_tables(cls, tables: TokenizerTables, source: str | Path | None = None) -> BPETokenizer:
        """Build a tokenizer from plain tables; ``source`` (a file) is named in any error."""
        try:
            return cls(tables.merges, tables.special_tokens, tables.pattern, tables.byte_ids)
        except (ValueError, TypeError) as error:
            if source is None:
                raise
            raise ValueError(f"{source}: {error}") from None

    def save(self, path: str | Path) -> None:
        """Write our readable JSON format (see ``formats``), atomically."""
        formats.save_tokenizer(self.tables(), path)

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """Read a file written by ``save``; a damaged or foreign file raises ``ValueError`` naming it."""
        return cls.from_tables(formats.load_tokenizer(path), path)

    def to_tiktoken_ranks(self) -> dict[bytes, int]:
        """tiktoken's ``mergeable_ranks``: token bytes -> id, for ``tiktoken.Encoding``."""
        return formats.to_tiktoken_ranks(self._vocab)

    @classmethod
    def from_tiktoken_ranks(cls, ranks: dict[bytes, int], pattern: str | None = "gpt4",
                            special_tokens: dict[str, int] | None = None) -> BPETokenizer:
        """Rebuild the merges from tiktoken-style ranks (bytes -> rank, which is also the id)."""
        return cls.from_tables(formats.from_tiktoken_ranks(ranks, pattern, special_tokens))

    @classmethod
    def from_tiktoken_file(cls, path: str | Path, pattern: str | None = "gpt4",
                           special_tokens: dict[str, int] | None = None) -> BPETokenizer:
        """Load a ``.tiktoken`` ranks file (``base64 rank`` per line); special tokens are given apart."""
        ranks = formats.read_tiktoken_file(path)
        try:
            tables = formats.from_tiktoken_ranks(ranks, pattern, special_tokens)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        return cls.from_tables(tables, path)

    def save_gpt2(self, folder: str | Path, model_max_length: int | None = None) -> None:
        """Write GPT-2's ``vocab.json`` and ``merges.txt`` into ``folder``, and the Hugging Face
        files that keep the special tokens special (``formats.special_token_files``)."""
        formats.save_gpt2(self.tables(), folder, model_max_length)

    @classmethod
    def from_gpt2(cls, source: str | Path | tuple[str | Path, str | Path],
                  pattern: str | None = "gpt2") -> BPETokenizer:
        """Load GPT-2-style files: a folder with ``vocab.json`` + ``merges.txt``, or both paths."""
        tables = formats.load_gpt2(source, pattern)
        return cls.from_tables(tables, source if isinstance(source, (str, Path)) else source[1])
