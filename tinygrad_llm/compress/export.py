"""Take your model home: a course GPT and its tokenizer as a GGUF file for llama.cpp, and back (lesson 16).

Unlike ``gguf`` (in ``model``), which knows the file's blocks, names and keys but no class, this module
maps a ``GPT`` and a ``BPETokenizer`` onto them. ``export_gguf`` stores the transformer's matrices
(and the token embedding, which a tied head shares) in the chosen type; norms, biases and the
position table stay float32, as llama.cpp's own converter keeps them (its kernels add them to
float32 activations). Weights quantized by ``gptq`` or ``awq`` at 4 bits keep their grid in Q4_1: the same codes,
with each group's scale and offset rounded to float16; 3- and 8-bit grids with zero points have
no GGUF type of this kind that holds them, and the export says so rather than re-rounding them.
``load_gguf`` reads such a file back into a GPT, with the dequantized weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..model.gguf import (PRE_TOKENIZERS, dequantize_blocks, gpt2_tensor_names, q4_1_from_grid, quantize_blocks,
                          read_gguf, tokenizer_tables, write_gguf)
from ..model.gpt import GPT, GPTConfig
from ..text.bpe import ENDOFTEXT, BPETokenizer, pattern_name
from ..text.formats import bytes_to_unicode
from .gptq import GridWeights

DTYPES = ("f32", "f16", "q8_0", "q4_0")
FILE_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7}   # llama.cpp's "mostly ..." file types
LAYER_NORM_EPS = 1e-5


def _stored(name: str, array: np.ndarray, dtype: str) -> str:
    """The storage type of one tensor: matrices take ``dtype``, everything else stays float."""
    # careful: llama.cpp adds biases and norms to float32 activations and has no f32 + f16 kernel
    matrix = array.ndim == 2 and not name.startswith("position_embd")
    return dtype if matrix else "f32"


def export_gguf(model: GPT, tokenizer: BPETokenizer, path: str | Path, dtype: str = "f32",
                grids: dict[str, GridWeights] | None = None) -> Path:
    """Write ``model`` and ``tokenizer`` as a GGUF file in llama.cpp's GPT-2 architecture.

    ``dtype``: "f32", "f16", "q8_0" or "q4_0" for the matrices; ``grids`` (from ``gptq_model`` or
    ``awq_model``, 4-bit) store those layers in Q4_1 on their own grid instead."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    config = model.config
    if config.position != "learned":
        raise ValueError("llama.cpp's GPT-2 architecture needs learned positions (position='learned')")
    if not config.bias:
        raise ValueError("llama.cpp's GPT-2 architecture needs biases (bias=True)")
    if ENDOFTEXT not in tokenizer.special_tokens:
        raise ValueError(f"the tokenizer has no {ENDOFTEXT} token, which llama.cpp uses to begin and end text")
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens, the model's embedding {config.vocab_size}")
    pattern = pattern_name(tokenizer.pattern)
    if pattern not in PRE_TOKENIZERS:
        raise ValueError(f"llama.cpp splits text only with a known pattern ({', '.join(PRE_TOKENIZERS)}); "
                         f"this tokenizer uses {tokenizer.pattern!r}")
    grids = grids or {}
    for layer, grid in grids.items():
        if grid.bits != 4:
            raise ValueError(f"{layer}: a {grid.bits}-bit grid with zero points has no GGUF type that holds it "
                             f"(Q4_1 holds 4-bit grids); export it dequantized with dtype='f32' or 'f16'")
    names = gpt2_tensor_names(config.n_layer, config.tie_weights)
    tensors, kinds = [], set()
    for ours, param in model.named_parameters():
        theirs = names.get(ours)
        if theirs is None:
            raise ValueError(f"parameter {ours} has no place in llama.cpp's GPT-2 architecture")
        layer = ours.rsplit(".", 1)[0]
        if ours.endswith(".weight") and layer in grids:
            grid = grids[layer]
            offset = -grid.scale * (grid.zero_point.astype(np.float32) + 8)
            data, kind = q4_1_from_grid(grid.codes.astype(np.int16) + 8, grid.scale, offset, grid.group_size), "q4_1"
        else:
            kind = _stored(theirs, param.data, dtype)
            data = quantize_blocks(param.data, kind)
        kinds.add(kind)
        tensors.append((theirs, data, kind))
    quantized = kinds - {"f32", "f16"}
    file_type = FILE_TYPES["q4_1" if "q4_1" in quantized else dtype]
    special = tokenizer.special_tokens
    tables = tokenizer_tables([b"" if i in special.values() else tokenizer.token_bytes(i)
                               for i in range(tokenizer.vocab_size)],
                              [(tokenizer.token_bytes(a), tokenizer.token_bytes(b)) for (a, b), _ in tokenizer.merges],
                              special, pattern)
    tables["bos_token_id"] = tables["eos_token_id"] = special[ENDOFTEXT]
    metadata = {"name": "tinygrad_llm GPT", "context_length": config.context_length,
                "embedding_length": config.d_model, "feed_forward_length": 4 * config.d_model,
                "block_count": config.n_layer, "head_count": config.n_head,
                "layer_norm_epsilon": LAYER_NORM_EPS, "file_type": file_type}
    path = Path(path)
    write_gguf(path, "gpt2", metadata, tables, tensors)
    return path


def _tokenizer_from_tables(tokens: list[str], types: list[int], merges: list[str], pre: str, where: Path) -> BPETokenizer:
    decode = {c: b for b, c in bytes_to_unicode().items()}
    byte_ids, special, by_bytes = [None] * 256, {}, {}
    for i, (token, kind) in enumerate(zip(tokens, types)):
        if kind == 3:   # CONTROL
            special[token] = i
            continue
        try:
            data = bytes(decode[c] for c in token)
        except KeyError:
            raise ValueError(f"{where}: token {i} ({token!r}) is not in GPT-2's byte spelling") from None
        by_bytes[data] = i
        if len(data) == 1:
            byte_ids[data[0]] = i
    if None in byte_ids:
        raise ValueError(f"{where}: the vocabulary lacks a token for byte {byte_ids.index(None)}")
    triples = []
    for rank, merge in enumerate(merges):
        left, _, right = merge.partition(" ")
        try:
            a, b = (bytes(decode[c] for c in part) for part in (left, right))
            triples.append((by_bytes[a], by_bytes[b], by_bytes[a + b]))
        except KeyError:
            raise ValueError(f"{where}: merge {rank} ({merge!r}) names a token the vocabulary lacks") from None
    patterns = {name: key for key, name in PRE_TOKENIZERS.items()}
    if pre not in patterns:
        raise ValueError(f"{where}: pre-tokenizer {pre!r} is not one we can split text with "
                         f"({', '.join(patterns)})")
    return BPETokenizer(triples, special, pattern=patterns[pre], byte_ids=byte_ids)


def load_gguf(path: str | Path, dtype=np.float32) -> tuple[GPT, BPETokenizer]:
    """A GPT-2-architecture GGUF file as (GPT, tokenizer); quantized tensors are dequantized."""
    path = Path(path)
    metadata, tensors = read_gguf(path)
    arch = metadata.get("general.architecture")
    if arch != "gpt2":
        raise ValueError(f"{path}: architecture {arch!r}; only llama.cpp's 'gpt2' is read")
    try:
        config = GPTConfig(vocab_size=len(metadata["tokenizer.ggml.tokens"]),
                           context_length=int(metadata["gpt2.context_length"]),
                           d_model=int(metadata["gpt2.embedding_length"]),
                           n_layer=int(metadata["gpt2.block_count"]),
                           n_head=int(metadata["gpt2.attention.head_count"]),
                           tie_weights="output.weight" not in tensors)
    except KeyError as error:
        raise ValueError(f"{path}: missing key {error.args[0]}") from None
    model = GPT(config, dtype=dtype)
    names = gpt2_tensor_names(config.n_layer, config.tie_weights)
    expected = {theirs for ours, theirs in names.items() if ours in dict(model.named_parameters())}
    missing, extra = expected - tensors.keys(), tensors.keys() - expected
    if missing or extra:
        raise ValueError(f"{path}: tensors do not fit a GPT-2 of this size (missing {sorted(missing)[:3]}, "
                         f"unexpected {sorted(extra)[:3]})")
    for ours, param in model.named_parameters():
        kind, shape, data = tensors[names[ours]]
        if shape != param.shape:
            raise ValueError(f"{path}: {names[ours]} has shape {shape}, the model needs {param.shape}")
        param.data[...] = dequantize_blocks(data, kind, shape)
    tokenizer = _tokenizer_from_tables(list(metadata["tokenizer.ggml.tokens"]),
                                       [int(t) for t in metadata["tokenizer.ggml.token_type"]],
                                       list(metadata.get("tokenizer.ggml.merges", [])),
                                       metadata.get("tokenizer.ggml.pre", "gpt-2"), path)
    return model.eval(), tokenizer
