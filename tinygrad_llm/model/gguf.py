"""GGUF, the file llama.cpp runs: block quantization, names and keys of its GPT-2 architecture (lesson 16).

Unlike ``state`` (safetensors: named arrays and a JSON header), a GGUF file carries everything a
runtime needs in one place: typed key-value metadata (the architecture's hyperparameters, the
tokenizer's tokens, merges and special ids) and tensors, each in a storage type of its own. This
module works on plain tables (names, arrays, lists) and knows no model class; the ``gguf``
package (an optional extra, pure Python) reads and writes the container.

The storage types we write, each quantizing a row in blocks of 32 values:

    F32, F16    plain floats
    Q8_0        d = max|x| / 127 (float16), q = round(x / d) (half away from zero) in int8: 34 bytes
    Q4_0        d = m / -8 with m the entry of largest |x| (float16), q = trunc(x / d + 8.5) in 0..15,
                two per byte (entry j low nibble, j + 16 high): 18 bytes
    Q4_1        d and the offset m (float16), x ~ d q + m with q in 0..15: 20 bytes

llama.cpp's GPT-2 names: ``token_embd``, ``position_embd``, ``blk.N.attn_norm``, ``blk.N.attn_qkv``,
``blk.N.attn_output``, ``blk.N.ffn_norm``, ``blk.N.ffn_up``, ``blk.N.ffn_down``, ``output_norm``, and
``output`` when the head is not tied to the embedding. Shapes are given here in NumPy's order
(rows, columns); the file stores the reverse (GGML's ne[0] is the row length).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..text.formats import bytes_to_unicode

BLOCK = 32
TYPES = ("f32", "f16", "q8_0", "q4_0", "q4_1")
BYTES_PER_BLOCK = {"q8_0": 34, "q4_0": 18, "q4_1": 20}
EXTRA_HINT = 'the gguf package is not installed: pip install -e ".[gguf]"'
# llama.cpp's names for the split patterns it implements (its "pre-tokenizers")
PRE_TOKENIZERS = {"gpt2": "gpt-2", "gpt4": "llama-bpe"}
TOKEN_TYPE_NORMAL, TOKEN_TYPE_CONTROL = 1, 3


def _gguf():
    try:
        import gguf  # optional: the "gguf" extra
    except ImportError as error:
        raise ImportError(EXTRA_HINT) from error
    return gguf


# ----------------------------------------------------------------------------------------------
# Blocks


def _blocks(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] % BLOCK:
        raise ValueError(f"block quantization needs rows whose length is a multiple of {BLOCK}, got shape {x.shape}")
    return x.reshape(-1, BLOCK)


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + np.float32(0.5))


def _inverse(d: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)


def _pack_nibbles(q: np.ndarray) -> np.ndarray:
    """(blocks, 32) codes 0..15 -> (blocks, 16) bytes: entry j in the low nibble, j + 16 in the high."""
    q = q.astype(np.uint8)
    return q[:, :BLOCK // 2] | (q[:, BLOCK // 2:] << np.uint8(4))


def _unpack_nibbles(packed: np.ndarray) -> np.ndarray:
    return np.concatenate([packed & np.uint8(0x0F), packed >> np.uint8(4)], axis=1)


def _half_bytes(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float16).reshape(-1, 1).view(np.uint8)


def quantize_blocks(x: np.ndarray, kind: str) -> np.ndarray:
    """Rows of ``x`` (rows, cols) stored as ``kind``: float arrays for f32/f16, otherwise uint8
    of shape (rows, cols / 32 * bytes per block)."""
    if kind == "f32":
        return np.asarray(x, dtype=np.float32)
    if kind == "f16":
        return np.asarray(x, dtype=np.float16)
    blocks = _blocks(x)
    rows = np.asarray(x).shape[0]
    if kind == "q8_0":
        d = np.abs(blocks).max(axis=1, keepdims=True) / np.float32(127)
        q = _round_half_away(blocks * _inverse(d)).astype(np.int8).view(np.uint8)
        out = np.concatenate([_half_bytes(d), q], axis=1)
    elif kind == "q4_0":
        peak = np.take_along_axis(blocks, np.abs(blocks).argmax(axis=1)[:, None], axis=1)
        d = peak / np.float32(-8)
        q = np.trunc(blocks * _inverse(d) + np.float32(8.5)).astype(np.uint8).clip(0, 15)
        out = np.concatenate([_half_bytes(d), _pack_nibbles(q)], axis=1)
    elif kind == "q4_1":
        low, high = blocks.min(axis=1, keepdims=True), blocks.max(axis=1, keepdims=True)
        d = (high - low) / np.float32(15)
        q = np.trunc((blocks - low) * _inverse(d) + np.float32(0.5)).astype(np.uint8).clip(0, 15)
        out = np.concatenate([_half_bytes(d), _half_bytes(low), _pack_nibbles(q)], axis=1)
    else:
        raise ValueError(f"unknown GGUF storage type {kind!r}; known: {', '.join(TYPES)}")
    return out.reshape(rows, -1)


def dequantize_blocks(data: np.ndarray, kind: str, shape: tuple[int, int]) -> np.ndarray:
    """The float32 values a stored tensor stands for, shaped ``shape``."""
    if kind in ("f32", "f16"):
        return np.asarray(data).astype(np.float32).reshape(shape)
    if kind not in BYTES_PER_BLOCK:
        raise ValueError(f"unknown GGUF storage type {kind!r}; known: {', '.join(TYPES)}")
    blocks = np.ascontiguousarray(data, dtype=np.uint8).reshape(-1, BYTES_PER_BLOCK[kind])
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    if kind == "q8_0":
        values = blocks[:, 2:].copy().view(np.int8).astype(np.float32) * d
    elif kind == "q4_0":
        values = (_unpack_nibbles(blocks[:, 2:]).astype(np.float32) - 8) * d
    else:
        m = blocks[:, 2:4].copy().view(np.float16).astype(np.float32)
        values = _unpack_nibbles(blocks[:, 4:]).astype(np.float32) * d + m
    return values.reshape(shape)


def q4_1_from_grid(codes: np.ndarray, scale: np.ndarray, offset: np.ndarray, group_size: int) -> np.ndarray:
    """Q4_1 blocks holding given 4-bit codes (rows, cols) in 0..15 with x = scale q + offset per
    (row, group): a group of a multiple of 32 columns is that many blocks with the same scale.
    The scale and offset are rounded to float16, the one change the type makes to such a grid."""
    codes = np.asarray(codes)
    rows, cols = codes.shape
    if group_size % BLOCK or cols % group_size:
        raise ValueError(f"Q4_1 holds groups of a multiple of {BLOCK} columns; got group size {group_size} "
                         f"for rows of {cols}")
    if codes.min() < 0 or codes.max() > 15:
        raise ValueError("Q4_1 codes must be in 0..15")
    per_block = group_size // BLOCK
    d = np.repeat(np.asarray(scale, dtype=np.float32), per_block, axis=1).reshape(-1)
    m = np.repeat(np.asarray(offset, dtype=np.float32), per_block, axis=1).reshape(-1)
    q = codes.reshape(-1, BLOCK)
    return np.concatenate([_half_bytes(d), _half_bytes(m), _pack_nibbles(q)], axis=1).reshape(rows, -1)


# ----------------------------------------------------------------------------------------------
# GPT-2's names and keys


def gpt2_tensor_names(n_layer: int, tied: bool) -> dict[str, str]:
    """Our parameter names -> llama.cpp's GPT-2 tensor names."""
    names = {"token_embedding.weight": "token_embd.weight", "position_embedding.weight": "position_embd.weight",
             "final_norm.weight": "output_norm.weight", "final_norm.bias": "output_norm.bias"}
    if not tied:
        names["head.weight"] = "output.weight"
    parts = {"norm1": "attn_norm", "attn.qkv": "attn_qkv", "attn.proj": "attn_output", "norm2": "ffn_norm",
             "mlp.up": "ffn_up", "mlp.down": "ffn_down"}
    for i in range(n_layer):
        for ours, theirs in parts.items():
            for kind in ("weight", "bias"):
                names[f"blocks.{i}.{ours}.{kind}"] = f"blk.{i}.{theirs}.{kind}"
    return names


def tokenizer_tables(token_bytes: list[bytes], merges: list[tuple[bytes, bytes]], special: dict[str, int],
                     pattern: str) -> dict:
    """The tokenizer keys of a GGUF file: every id's token in GPT-2's byte-to-character spelling
    (special tokens by name, typed CONTROL), the merges as "left right" strings, the pre-tokenizer."""
    if pattern not in PRE_TOKENIZERS:
        raise ValueError(f"llama.cpp knows no pre-tokenizer for the split pattern {pattern!r}; "
                         f"known: {', '.join(PRE_TOKENIZERS)}")
    table = bytes_to_unicode()
    spell = lambda data: "".join(table[b] for b in data)
    by_id = {i: name for name, i in special.items()}
    tokens = [by_id[i] if i in by_id else spell(data) for i, data in enumerate(token_bytes)]
    types = [TOKEN_TYPE_CONTROL if i in by_id else TOKEN_TYPE_NORMAL for i in range(len(token_bytes))]
    return {"model": "gpt2", "pre": PRE_TOKENIZERS[pattern], "tokens": tokens, "token_type": types,
            "merges": [f"{spell(a)} {spell(b)}" for a, b in merges]}


# ----------------------------------------------------------------------------------------------
# The container


def write_gguf(path: str | Path, arch: str, metadata: dict, tokenizer: dict, tensors: list[tuple[str, np.ndarray, str]]) -> None:
    """Write a GGUF file: ``metadata`` keys of the architecture (e.g. ``context_length``), the
    tokenizer tables of ``tokenizer_tables`` (plus ``bos_token_id``/``eos_token_id`` when given),
    and (name, stored array, storage type) tensors. Written to a temporary file, then renamed."""
    gguf = _gguf()
    path = Path(path)
    kinds = {"f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16,
             "q8_0": gguf.GGMLQuantizationType.Q8_0, "q4_0": gguf.GGMLQuantizationType.Q4_0,
             "q4_1": gguf.GGMLQuantizationType.Q4_1}
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        writer = gguf.GGUFWriter(temporary, arch)
        writer.add_name(metadata.get("name", "tinygrad_llm model"))
        writer.add_context_length(metadata["context_length"])
        writer.add_embedding_length(metadata["embedding_length"])
        writer.add_feed_forward_length(metadata["feed_forward_length"])
        writer.add_block_count(metadata["block_count"])
        writer.add_head_count(metadata["head_count"])
        writer.add_layer_norm_eps(metadata["layer_norm_epsilon"])
        writer.add_file_type(metadata.get("file_type", 0))
        writer.add_tokenizer_model(tokenizer["model"])
        writer.add_tokenizer_pre(tokenizer["pre"])
        writer.add_token_list(tokenizer["tokens"])
        writer.add_token_types(tokenizer["token_type"])
        writer.add_token_merges(tokenizer["merges"])
        for key in ("bos_token_id", "eos_token_id"):
            if tokenizer.get(key) is not None:
                getattr(writer, f"add_{key}")(tokenizer[key])
        for name, array, kind in tensors:
            if kind not in kinds:
                raise ValueError(f"unknown GGUF storage type {kind!r} for {name}")
            raw = None if kind in ("f32", "f16") else kinds[kind]
            writer.add_tensor(name, np.ascontiguousarray(array), raw_dtype=raw)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_gguf(path: str | Path) -> tuple[dict, dict[str, tuple[str, tuple[int, ...], np.ndarray]]]:
    """(metadata by key, tensors by name as (storage type, shape in NumPy order, stored array))."""
    gguf = _gguf()
    path = Path(path)
    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, OSError, IndexError) as error:
        raise ValueError(f"{path}: not a readable GGUF file ({error})") from None
    metadata = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        metadata[key] = field.contents()
    names = {getattr(gguf.GGMLQuantizationType, k.upper()): k for k in TYPES}
    tensors = {}
    for tensor in reader.tensors:
        kind = names.get(tensor.tensor_type)
        if kind is None:
            raise ValueError(f"{path}: tensor {tensor.name} has storage type {tensor.tensor_type.name}, "
                             f"which we do not read (we read {', '.join(TYPES)})")
        shape = tuple(int(n) for n in reversed(tensor.shape.tolist()))
        tensors[tensor.name] = (kind, shape, np.array(tensor.data))
    return metadata, tensors
