"""The split patterns: the regexes that cut text into pre-tokens before BPE (lesson 02).

BPE (``bpe``) never merges across the cuts these patterns make, so they decide what a token can
be: GPT-2's keeps a leading space with the word after it, GPT-4's also caps numbers at three
digits and keeps newlines apart from other whitespace. The names ``"gpt2"`` and ``"gpt4"`` stand
for them wherever a pattern is asked for; ``None`` means no split at all.

    >>> import regex
    >>> regex.findall(GPT4_SPLIT_PATTERN, "In 2024, it's   done")
    ['In', ' ', '202', '4', ',', ' it', "'s", '  ', ' done']
"""

from __future__ import annotations

import regex

# GPT-2's pre-tokenizer: contractions, optional space + letters, optional space + digits,
# optional space + other symbols, then whitespace. `\s+(?!\S)` leaves the last space of a run
# to the word after it, so " world" keeps its leading space.
GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# GPT-4's (tiktoken's cl100k_base): case-insensitive contractions, numbers in groups of at most
# three digits (so "2024" is "202" + "4", and the vocabulary is not spent on every year), a
# leading non-letter may join a word, and newlines are split from other whitespace.
# `?+`, `++`, `*+` are possessive (no backtracking), which the `regex` package supports.
GPT4_SPLIT_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+"""
                      r"""| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")

NAMED_PATTERNS = {"gpt2": GPT2_SPLIT_PATTERN, "gpt4": GPT4_SPLIT_PATTERN}
ENDOFTEXT = "<|endoftext|>"


def resolve_pattern(pattern: str | None) -> str | None:
    """The regex for ``"gpt2"``, ``"gpt4"``, ``None`` (no split) or a custom regex string."""
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be 'gpt2', 'gpt4', None or a regex string, not {type(pattern).__name__}")
    pattern = NAMED_PATTERNS.get(pattern, pattern)
    try:
        regex.compile(pattern)
    except regex.error as error:
        raise ValueError(f"pattern {pattern!r} is not a valid regex: {error}") from None
    return pattern


def pattern_name(pattern: str | None) -> str | None:
    """``"gpt2"``/``"gpt4"`` for the named patterns, else the pattern itself (for messages)."""
    for name, known in NAMED_PATTERNS.items():
        if pattern == known:
            return name
    return pattern
