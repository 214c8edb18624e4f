"""Saving and loading BPE tokenizers, and moving them to and from other tools (lesson 02).

Three formats, all plain text:

* ours: one JSON file a person can read, one merge per line with the token it makes,
  ``[104, 101, 256, "he"]``, and a ``version`` so that a future change of meaning is detected;
* tiktoken's ``mergeable_ranks``: a dict token bytes -> rank, where the rank is also the token id.
  It stores no merges; a token's merge is recovered as the split of its bytes that BPE with all
  lower ranks arrives at (a token of rank r is always built from two tokens of lower rank);
* GPT-2's ``vocab.json`` (token string -> id) and ``merges.txt`` (one ``"left right"`` merge per
  line, in rank order). JSON and line-based files want printable text, so GPT-2 writes each byte
  as one visible character (``bytes_to_unicode``): printable ASCII and Latin-1 bytes stand for
  themselves, the other 68 byte values (control characters, space, ...) are shifted to code
  points from U+0100 on. That is why a leading space shows up as ``Ġ`` (U+0120) in GPT-2's files.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.files import write_text_atomically
from .bpe import BPETokenizer, resolve_pattern

FORMAT_NAME = "tinygrad_llm BPETokenizer"
FORMAT_VERSION = 1


def render_token(data: bytes) -> str:
    """A token's bytes as readable text; bytes that are not UTF-8 on their own show as ``\\xNN``.

        >>> render_token(" the".encode()), render_token("é".encode()[:1])
        (' the', '\\\\xc3')
    """
    return data.decode("utf-8", errors="backslashreplace")


# --- our own format ---------------------------------------------------------------------------

def save_tokenizer(tokenizer: BPETokenizer, path: str | Path) -> None:
    """Write ``tokenizer`` as our JSON format (see the module docstring)."""
    path = Path(path)
    byte_ids = tokenizer.byte_ids
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "pattern": tokenizer.pattern,
        "special_tokens": tokenizer.special_tokens,
        "byte_ids": None if byte_ids == list(range(256)) else byte_ids,   # None: byte b has id b
    }
    lines = ["{"]
    lines += [f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}," for key, value in header.items()]
    lines.append('  "merges": [')
    merges = tokenizer.merges
    for k, ((a, b), new) in enumerate(merges):
        entry = json.dumps([a, b, new, render_token(tokenizer.token_bytes(new))], ensure_ascii=False)
        lines.append(f"    {entry}{',' if k + 1 < len(merges) else ''}")
    lines += ["  ]", "}", ""]
    write_text_atomically(path, "\n".join(lines))


def load_tokenizer(path: str | Path) -> BPETokenizer:
    """Read a file written by ``save_tokenizer``; anything wrong raises ``ValueError`` naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"tokenizer file not found: {path}") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a tokenizer file (not UTF-8 text: {error})") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON, the file is truncated or corrupt ({error})") from None

    def fail(problem: str) -> ValueError:
        return ValueError(f"{path}: {problem}")

    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise fail(f"not a tokenizer file of this library (expected format {FORMAT_NAME!r})")
    if data.get("version") != FORMAT_VERSION:
        raise fail(f"format version {data.get('version')!r}, but this library reads version "
                   f"{FORMAT_VERSION}; save it again with a matching version of the library")
    missing = {"pattern", "special_tokens", "byte_ids", "merges"} - data.keys()
    if missing:
        raise fail(f"missing fields {sorted(missing)}")
    merges = data["merges"]
    if not isinstance(merges, list):
        raise fail("'merges' must be a list")
    triples = []
    for k, entry in enumerate(merges):
        if (not isinstance(entry, list) or len(entry) != 4 or not isinstance(entry[3], str)
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in entry[:3])):
            raise fail(f"merge {k} is {entry!r}, expected [left id, right id, new id, text]")
        triples.append(tuple(entry[:3]))
    if not isinstance(data["special_tokens"], dict):
        raise fail("'special_tokens' must map names to ids")
    try:
        tokenizer = BPETokenizer(triples, data["special_tokens"], data["pattern"], data["byte_ids"])
    except (ValueError, TypeError) as error:
        raise fail(str(error)) from None
    # the text column is for people, and doubles as a check that ids and tokens still agree
    for k, entry in enumerate(merges):
        if render_token(tokenizer.token_bytes(entry[2])) != entry[3]:
            raise fail(f"merge {k} says it makes {entry[3]!r} but its ids make "
                       f"{render_token(tokenizer.token_bytes(entry[2]))!r}: the file is corrupt")
    return tokenizer


# --- tiktoken's mergeable ranks ---------------------------------------------------------------

def _unique_token_bytes(tokenizer: BPETokenizer, target: str) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    special_ids = set(tokenizer.special_tokens.values())
    for token_id in range(tokenizer.vocab_size):
        if token_id in special_ids:
            continue
        try:
            data = tokenizer.token_bytes(token_id)
        except ValueError:
            continue     # an unused id in a foreign vocabulary
        if data in ranks:
            raise ValueError(f"tokens {ranks[data]} and {token_id} are both {data!r}; {target} names a token "
                             "by its bytes, so this vocabulary cannot be written there")
        ranks[data] = token_id
    return ranks


def to_tiktoken_ranks(tokenizer: BPETokenizer) -> dict[bytes, int]:
    """token bytes -> id for every ordinary token (special tokens go to tiktoken separately).

    tiktoken merges by the rank of the concatenated bytes, we by the rank of the merge; for a
    tokenizer whose ids grow with merge order (every one trained here) they coincide.
    """
    return _unique_token_bytes(tokenizer, "tiktoken")


def _split_by_lower_ranks(data: bytes, ranks: dict[bytes, int], limit: int) -> list[bytes]:
    """Byte-pair encode ``data`` using only tokens of rank below ``limit`` (tiktoken's rule:
    merge the adjacent pair whose concatenation has the lowest rank)."""
    parts = [data[i:i + 1] for i in range(len(data))]
    while len(parts) > 1:
        best_rank, best = limit, -1
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < best_rank:
                best_rank, best = rank, i
        if best < 0:
            break
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    return parts


def from_tiktoken_ranks(ranks: dict[bytes, int], pattern: str | None = "gpt4",
                        special_tokens: dict[str, int] | None = None) -> BPETokenizer:
    """Rebuild a ``BPETokenizer`` from tiktoken-style ranks (see the module docstring)."""
    if not isinstance(ranks, dict) or not all(isinstance(k, bytes) and isinstance(v, int) for k, v in ranks.items()):
        raise TypeError("ranks must be a dict from bytes to int")
    if len(set(ranks.values())) != len(ranks):
        raise ValueError("two tokens share a rank; ranks must be distinct")
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise ValueError(f"ranks lack the single bytes {missing[:8]}{'...' if len(missing) > 8 else ''}; "
                         "a byte-level vocabulary needs all 256")
    byte_ids = [ranks[bytes([b])] for b in range(256)]
    merges = []
    for data, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(data) < 2:
            continue
        parts = _split_by_lower_ranks(data, ranks, rank)
        if len(parts) != 2:
            raise ValueError(f"token {data!r} (rank {rank}) is not the merge of two lower-ranked tokens")
        merges.append((ranks[parts[0]], ranks[parts[1]], rank))
    return BPETokenizer(merges, special_tokens or {}, resolve_pattern(pattern), byte_ids)


# --- GPT-2's vocab.json + merges.txt ------------------------------------------------------------

def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (see the module docstring).

        >>> table = bytes_to_unicode()
        >>> table[ord("a")], table[ord(" ")], table[ord("\\n")]
        ('a', 'Ġ', 'Ċ')
    """
    # bytes that print as themselves in Latin-1: '!'..'~', '¡'..'¬', '®'..'ÿ'
    visible = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {b: chr(b) for b in visible}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)   # the k-th invisible byte becomes U+0100 + k
            shifted += 1
    return table


def _to_gpt2_string(data: bytes, table: dict[int, str]) -> str:
    return "".join(table[b] for b in data)


def save_gpt2(tokenizer: BPETokenizer, folder: str | Path) -> None:
    """Write ``vocab.json`` and ``merges.txt`` into ``folder`` (GPT-2 / Hugging Face layout).

    The split pattern is not part of these files: readers assume GPT-2's.
    """
    folder = Path(folder)
    table = bytes_to_unicode()
    ids = _unique_token_bytes(tokenizer, "vocab.json")
    vocab = {_to_gpt2_string(data, table): token_id for data, token_id in sorted(ids.items(), key=lambda x: x[1])}
    for name, token_id in tokenizer.special_tokens.items():
        if name in vocab:
            raise ValueError(f"special token {name!r} has the same spelling as ordinary token {vocab[name]}")
        vocab[name] = token_id
    lines = ["#version: 0.2"]
    for (a, b), _ in tokenizer.merges:
        left, right = (_to_gpt2_string(tokenizer.token_bytes(i), table) for i in (a, b))
        lines.append(f"{left} {right}")
    write_text_atomically(folder / "vocab.json", json.dumps(vocab, ensure_ascii=False, indent=0) + "\n")
    write_text_atomically(folder / "merges.txt", "\n".join(lines) + "\n")


def _gpt2_paths(source) -> tuple[Path, Path]:
    if isinstance(source, (tuple, list)):
        if len(source) != 2:
            raise ValueError("give a folder or a (vocab_path, merges_path) pair")
        return Path(source[0]), Path(source[1])
    folder = Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(f"GPT-2 tokenizer folder not found: {folder}")
    # Hugging Face names first; OpenAI's original release calls the same files encoder.json, vocab.bpe
    for vocab_name, merges_name in (("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe")):
        if (folder / vocab_name).is_file() and (folder / merges_name).is_file():
            return folder / vocab_name, folder / merges_name
    raise FileNotFoundError(f"{folder} holds neither vocab.json + merges.txt nor encoder.json + vocab.bpe")


def load_gpt2(source, pattern: str | None = "gpt2") -> BPETokenizer:
    """Read GPT-2-style files (see ``save_gpt2``). Vocabulary entries that are neither a single
    byte nor made by a merge (GPT-2's ``<|endoftext|>``) become special tokens."""
    vocab_path, merges_path = _gpt2_paths(source)
    try:
        vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{vocab_path}: not valid JSON, the file is truncated or corrupt ({error})") from None
    if not isinstance(vocab, dict) or not all(isinstance(i, int) and not isinstance(i, bool) for i in vocab.values()):
        raise ValueError(f"{vocab_path}: expected a JSON object from token strings to integer ids")
    table = bytes_to_unicode()
    missing = [b for b in range(256) if table[b] not in vocab]
    if missing:
        raise ValueError(f"{vocab_path}: the single bytes {missing[:8]} have no id; not a byte-level vocabulary")
    byte_ids = [vocab[table[b]] for b in range(256)]

    merges, made = [], set(table.values())
    lines = merges_path.read_text(encoding="utf-8").split("\n")
    for number, line in enumerate(lines, start=1):
        if not line or (number == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise ValueError(f"{merges_path}, line {number}: expected two tokens separated by one space, got {line!r}")
        left, right = parts
        for token in (left, right, left + right):
            if token not in vocab:
                raise ValueError(f"{merges_path}, line {number}: {token!r} is not in {vocab_path.name}")
        merges.append((vocab[left], vocab[right], vocab[left + right]))
        made.add(left + right)
    special_tokens = {name: token_id for name, token_id in vocab.items() if name not in made}
    try:
        return BPETokenizer(merges, special_tokens, resolve_pattern(pattern), byte_ids)
    except ValueError as error:
        raise ValueError(f"{merges_path}: {error}") from None
