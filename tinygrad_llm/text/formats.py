"""Saving and loading BPE tokenizers, and moving them to and from other tools (lesson 02).

Unlike ``bpe``, which holds the tokenizer, this module knows no class: its readers and writers
take and return plain tables (``TokenizerTables``: merges, special tokens, pattern, byte ids) and
``token -> bytes`` dicts, and ``BPETokenizer`` builds itself from them. Readers check what they
read and name the file (and line) in every ``ValueError``.

Three formats, all plain text:

* ours: one JSON file a person can read, one merge per line with the token it makes,
  ``[104, 101, 256, "he"]``, a ``version`` so that a future change of meaning is detected, and the
  number of merges with a SHA-256 checksum of the tables, so a cut or edited file is refused
  (files written before these two fields existed still load);
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

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..core.checks import is_integer
from ..core.files import write_text_atomically

FORMAT_NAME = "tinygrad_llm BPETokenizer"
FORMAT_VERSION = 1


@dataclass
class TokenizerTables:
    """Everything that defines a byte-level BPE tokenizer, as plain data.

    ``merges``: ``(left id, right id, new id)`` in rank order; ``byte_ids[b]``: the id of byte
    ``b``; ``special_tokens``: name -> id; ``pattern``: the split regex, a name or ``None``.
    """

    merges: list[tuple[int, int, int]]
    special_tokens: dict[str, int] = field(default_factory=dict)
    pattern: str | None = "gpt4"
    byte_ids: list[int] = field(default_factory=lambda: list(range(256)))


def token_bytes_table(tables: TokenizerTables) -> dict[int, bytes]:
    """id -> bytes of every ordinary token (bytes and merges, no special tokens).

        >>> token_bytes_table(TokenizerTables([(104, 105, 256)]))[256]
        b'hi'
    """
    table = {token_id: bytes([b]) for b, token_id in enumerate(tables.byte_ids)}
    for rank, (a, b, new) in enumerate(tables.merges):
        if a not in table or b not in table:
            raise ValueError(f"merge {rank} ({a}, {b}) -> {new} uses an id not defined before it")
        table[new] = table[a] + table[b]
    return table


def check_id_bounds(ids: list, what: str) -> None:
    """Ids of a foreign file: integers (not bools, not 1000.7), non-negative, and below twice the
    number of tokens. careful: the vocabulary size is one more than the largest id, so a single id
    of 10**12 would ask for an embedding table of 10**12 rows; a real vocabulary leaves few gaps."""
    for token_id in ids:
        if not is_integer(token_id) or token_id < 0:
            raise ValueError(f"{what} has the id {token_id!r}; ids must be non-negative integers")
    bound = 2 * max(len(ids), 256)
    largest = max(ids, default=0)
    if largest >= bound:
        raise ValueError(f"{what} has the id {largest}, far beyond its {len(ids)} tokens (ids must stay "
                         f"below {bound}): the file is corrupt")


def render_token(data: bytes) -> str:
    """A token's bytes as readable text; bytes that are not UTF-8 on their own show as ``\\xNN``.

        >>> render_token(" the".encode()), render_token("é".encode()[:1])
        (' the', '\\\\xc3')
    """
    return data.decode("utf-8", errors="backslashreplace")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"tokenizer file not found: {path}") from None
    except UnicodeDecodeError as error:
        line = path.read_bytes()[:error.start].count(b"\n") + 1
        raise ValueError(f"{path}, line {line}: not UTF-8 text ({error.reason} at byte {error.start})") from None


# --- our own format ---------------------------------------------------------------------------

def tables_checksum(tables: TokenizerTables) -> str:
    """SHA-256 of the tables in a fixed spelling: any change of a merge, id, name or pattern
    changes it."""
    canonical = json.dumps([[list(m) for m in tables.merges], sorted(tables.special_tokens.items()),
                            tables.pattern, list(tables.byte_ids)], ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def save_tokenizer(tables: TokenizerTables, path: str | Path) -> None:
    """Write ``tables`` as our JSON format (see the module docstring)."""
    path = Path(path)
    token_bytes = token_bytes_table(tables)
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "pattern": tables.pattern,
        "special_tokens": tables.special_tokens,
        # None: byte b has id b
        "byte_ids": None if list(tables.byte_ids) == list(range(256)) else list(tables.byte_ids),
        "merge_count": len(tables.merges),
        "checksum": tables_checksum(tables),
    }
    lines = ["{"]
    lines += [f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}," for key, value in header.items()]
    lines.append('  "merges": [')
    for k, (a, b, new) in enumerate(tables.merges):
        entry = json.dumps([a, b, new, render_token(token_bytes[new])], ensure_ascii=False)
        lines.append(f"    {entry}{',' if k + 1 < len(tables.merges) else ''}")
    lines += ["  ]", "}", ""]
    write_text_atomically(path, "\n".join(lines))


def load_tokenizer(path: str | Path) -> TokenizerTables:
    """Read a file written by ``save_tokenizer``; anything wrong raises ``ValueError`` naming the file."""
    path = Path(path)
    text = _read_text(path)
    try:
        data = json.loads(text)
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
    for k, entry in enumerate(merges):
        if (not isinstance(entry, list) or len(entry) != 4 or not isinstance(entry[3], str)
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in entry[:3])):
            raise fail(f"merge {k} is {entry!r}, expected [left id, right id, new id, text]")
    specials = data["special_tokens"]
    if not isinstance(specials, dict) or not all(is_integer(i) for i in specials.values()):
        raise fail("'special_tokens' must map names to integer ids")
    byte_ids = data["byte_ids"]
    if byte_ids is not None and not (isinstance(byte_ids, list) and all(is_integer(i) for i in byte_ids)):
        raise fail("'byte_ids' must be null or a list of 256 integer ids")
    tables = TokenizerTables([tuple(entry[:3]) for entry in merges], dict(specials), data["pattern"],
                             list(range(256)) if byte_ids is None else byte_ids)
    try:
        check_id_bounds([*tables.byte_ids, *(m[2] for m in tables.merges), *specials.values()], "the file")
        token_bytes = token_bytes_table(tables)
    except ValueError as error:
        raise fail(str(error)) from None
    for name, token_id in specials.items():
        if token_id in token_bytes:
            raise fail(f"special token {name!r} has id {token_id}, which is already taken by an ordinary token")
    # the text column is for people, and doubles as a check that ids and tokens still agree
    for k, entry in enumerate(merges):
        if render_token(token_bytes[entry[2]]) != entry[3]:
            raise fail(f"merge {k} says it makes {entry[3]!r} but its ids make "
                       f"{render_token(token_bytes[entry[2]])!r}: the file is corrupt")
    # files written before merge_count and checksum existed have neither; newer ones must agree
    if "merge_count" in data and data["merge_count"] != len(merges):
        raise fail(f"the file says it holds {data['merge_count']!r} merges but has {len(merges)}: "
                   "it is truncated or corrupt")
    if "checksum" in data and data["checksum"] != tables_checksum(tables):
        raise fail("the checksum does not match the merges, special tokens, pattern and byte ids: "
                   "the file was changed after it was saved")
    return tables


# --- tiktoken's mergeable ranks ---------------------------------------------------------------

def to_tiktoken_ranks(token_bytes: dict[int, bytes], target: str = "tiktoken") -> dict[bytes, int]:
    """token bytes -> id for every ordinary token (special tokens go to tiktoken separately).

    tiktoken merges by the rank of the concatenated bytes, we by the rank of the merge; for a
    tokenizer whose ids grow with merge order (every one trained here) they coincide.
    """
    ranks: dict[bytes, int] = {}
    for token_id, data in sorted(token_bytes.items()):
        if data in ranks:
            raise ValueError(f"tokens {ranks[data]} and {token_id} are both {data!r}; {target} names a token "
                             "by its bytes, so this vocabulary cannot be written there")
        ranks[data] = token_id
    return ranks


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
                        special_tokens: dict[str, int] | None = None) -> TokenizerTables:
    """The tables of tiktoken-style ranks (see the module docstring)."""
    if not isinstance(ranks, dict) or not all(isinstance(k, bytes) and is_integer(v) for k, v in ranks.items()):
        raise TypeError("ranks must be a dict from bytes to int")
    if len(set(ranks.values())) != len(ranks):
        raise ValueError("two tokens share a rank; ranks must be distinct")
    special_tokens = dict(special_tokens or {})
    check_id_bounds([*ranks.values(), *special_tokens.values()], "the ranks")
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
    return TokenizerTables(merges, special_tokens, pattern, byte_ids)


def read_tiktoken_file(path: str | Path) -> dict[bytes, int]:
    """Read a ``.tiktoken`` file (one ``base64(token bytes) rank`` per line) into ranks.

    Checked line by line: two fields, valid base64, integer ranks, no token or rank twice, and
    ranks dense from 0 (every rank 0 .. n-1 present), as tiktoken's own files are.
    """
    path = Path(path)
    ranks: dict[bytes, int] = {}
    seen: dict[int, int] = {}
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line:
            continue
        fields = line.split(" ")
        if len(fields) != 2 or not fields[1].isdigit():
            raise ValueError(f"{path}, line {number}: expected 'base64-token rank', got {line[:60]!r}")
        try:
            token = base64.b64decode(fields[0], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{path}, line {number}: {fields[0][:40]!r} is not valid base64") from None
        rank = int(fields[1])
        if token in ranks or rank in seen:
            raise ValueError(f"{path}, line {number}: token {token!r} or rank {rank} appears twice "
                             f"(first on line {seen.get(rank, '?')})")
        ranks[token] = rank
        seen[rank] = number
    if sorted(seen) != list(range(len(seen))):
        gap = next(k for k, rank in enumerate(sorted(seen)) if rank != k)
        raise ValueError(f"{path}: rank {gap} is missing; ranks must run from 0 to {len(seen) - 1} without gaps")
    return ranks


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


def special_token_files(special_tokens: dict[str, int], endoftext: str = "<|endoftext|>",
                        model_max_length: int | None = None) -> dict[str, dict]:
    """The Hugging Face files that keep special tokens special, by file name.

    ``vocab.json`` lists a special token like any other entry, so a reader that sees only it
    splits ``<|user|>`` into ``<``, ``|``, ``user``, ... . ``tokenizer_config.json`` names every
    special token as an added token (``special: true``, matched before the split) and says which
    one begins and ends a text; ``special_tokens_map.json`` and ``added_tokens.json`` say the same
    for older readers. ``endoftext``, when the tokenizer has it, is bos, eos and unk, as in GPT-2
    (a model export refuses a tokenizer without it: ``model.gpt2.export_gpt2``)."""
    others = [name for name in sorted(special_tokens, key=special_tokens.get) if name != endoftext]
    roles = {"bos_token": endoftext, "eos_token": endoftext, "unk_token": endoftext}
    if endoftext not in special_tokens:
        roles = {}
    added = {str(i): {"content": name, "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False, "special": True}
             for name, i in sorted(special_tokens.items(), key=lambda item: item[1])}
    config = {"tokenizer_class": "GPT2Tokenizer", "add_bos_token": False, "add_prefix_space": False,
              "clean_up_tokenization_spaces": False, "errors": "replace", **roles,
              "added_tokens_decoder": added}
    if others:
        config["additional_special_tokens"] = others
    if model_max_length is not None:
        config["model_max_length"] = model_max_length
    special_map = {**roles, **({"additional_special_tokens": others} if others else {})}
    return {"tokenizer_config.json": config, "special_tokens_map.json": special_map,
            "added_tokens.json": dict(sorted(special_tokens.items(), key=lambda item: item[1]))}


def save_gpt2(tables: TokenizerTables, folder: str | Path, model_max_length: int | None = None) -> None:
    """Write ``vocab.json`` and ``merges.txt`` into ``folder`` (GPT-2 / Hugging Face layout), and,
    when the tokenizer has special tokens, the files of ``special_token_files`` that keep them
    special (``model_max_length``: the context length, when a model goes with the tokenizer).

    The split pattern is not part of these files: readers assume GPT-2's.
    """
    folder = Path(folder)
    table = bytes_to_unicode()
    token_bytes = token_bytes_table(tables)
    ids = to_tiktoken_ranks(token_bytes, "vocab.json")
    vocab = {_to_gpt2_string(data, table): token_id for data, token_id in sorted(ids.items(), key=lambda x: x[1])}
    for name, token_id in tables.special_tokens.items():
        if name in vocab:
            raise ValueError(f"special token {name!r} has the same spelling as ordinary token {vocab[name]}")
        vocab[name] = token_id
    lines = ["#version: 0.2"]
    for a, b, _ in tables.merges:
        lines.append(f"{_to_gpt2_string(token_bytes[a], table)} {_to_gpt2_string(token_bytes[b], table)}")
    write_text_atomically(folder / "vocab.json", json.dumps(vocab, ensure_ascii=False, indent=0) + "\n")
    write_text_atomically(folder / "merges.txt", "\n".join(lines) + "\n")
    if tables.special_tokens:
        for name, content in special_token_files(tables.special_tokens, model_max_length=model_max_length).items():
            write_text_atomically(folder / name, json.dumps(content, ensure_ascii=False, indent=2) + "\n")


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


def looks_special(name: str) -> bool:
    """Whether a vocabulary entry is spelled like a special token: ``<|endoftext|>``, ``<s>``,
    ``[CLS]``. GPT-2's files do not mark special tokens, so this spelling is how we know one.

        >>> looks_special("<|endoftext|>"), looks_special("[PAD]"), looks_special("the")
        (True, True, False)
    """
    return len(name) > 2 and ((name[0], name[-1]) in (("<", ">"), ("[", "]")))


def load_gpt2(source, pattern: str | None = "gpt2") -> TokenizerTables:
    """Read GPT-2-style files (see ``save_gpt2``) into tables, checking that they agree.

    Every entry of ``vocab.json`` must be a single byte or made by a merge of ``merges.txt``;
    the entries that are neither must be spelled like special tokens (GPT-2's ``<|endoftext|>``)
    and become them. A cut ``merges.txt`` leaves ordinary entries unmade and is refused."""
    vocab_path, merges_path = _gpt2_paths(source)
    try:
        vocab = json.loads(_read_text(vocab_path))
    except json.JSONDecodeError as error:
        raise ValueError(f"{vocab_path}: not valid JSON, the file is truncated or corrupt ({error})") from None
    if not isinstance(vocab, dict) or not all(isinstance(i, int) and not isinstance(i, bool) for i in vocab.values()):
        raise ValueError(f"{vocab_path}: expected a JSON object from token strings to integer ids")
    try:
        check_id_bounds(list(vocab.values()), vocab_path.name)
    except ValueError as error:
        raise ValueError(f"{vocab_path}: {error}") from None
    if len(set(vocab.values())) != len(vocab):
        raise ValueError(f"{vocab_path}: two entries share an id; ids must be distinct")
    table = bytes_to_unicode()
    missing = [b for b in range(256) if table[b] not in vocab]
    if missing:
        raise ValueError(f"{vocab_path}: the single bytes {missing[:8]} have no id; not a byte-level vocabulary")
    byte_ids = [vocab[table[b]] for b in range(256)]

    merges, made = [], set(table.values())
    for number, line in enumerate(_read_text(merges_path).split("\n"), start=1):
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
    unmade = [name for name in vocab if name not in made]
    ordinary = [name for name in unmade if not looks_special(name)]
    if ordinary:
        raise ValueError(f"{merges_path}: {len(ordinary)} entries of {vocab_path.name} are made by no merge "
                         f"(first {ordinary[0]!r}, id {vocab[ordinary[0]]}): merges.txt is truncated or "
                         "belongs to another vocabulary")
    return TokenizerTables(merges, {name: vocab[name] for name in unmade}, pattern, byte_ids)
