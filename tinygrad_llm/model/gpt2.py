"""GPT-2 checkpoints in and out: Hugging Face's files for our GPT (after lesson 07).

Our ``GPT`` (``gpt``) is GPT-2's architecture, so OpenAI's released weights fit it once three things are
translated:

* names: Hugging Face names the layers after OpenAI's original code (``h.0.attn.c_attn``), we name
  them after what they do (``blocks.0.attn.qkv``); ``_BLOCK_NAMES`` below is the whole table;
* layout: GPT-2's linear layers are ``Conv1D`` modules computing ``x @ W + b`` with W stored
  (in, out), the transpose of our ``Linear``'s (out, in) for ``x @ W.T + b``; four weights per
  block are transposed on the way;
* configuration: ``config.json`` (``n_embd``, ``n_layer``, ``n_head``, ``n_positions``, ...)
  becomes a ``GPTConfig``; settings our GPT cannot express are refused with a clear error.

A Hugging Face GPT-2 folder holds ``config.json``, ``model.safetensors`` and the tokenizer files
``vocab.json`` + ``merges.txt``. ``load_gpt2(folder)`` reads the model and
``BPETokenizer.from_gpt2(folder)`` the tokenizer; ``export_gpt2(model, folder)`` writes a folder
that ``transformers.GPT2LMHeadModel.from_pretrained(folder)`` reads, for when you outgrow NumPy.

Memory: the weights are read from the file straight into the model's own arrays, one tensor at a
time (``readinto`` when the file's dtype and layout are the model's; otherwise through a buffer of
that one tensor, transposed and converted on the way). Nothing holds the whole checkpoint a second
time, so loading GPT-2 124M (498 MB of float32 weights) peaks near the size of the model itself.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from ..text.bpe import BPETokenizer
from ..text.patterns import ENDOFTEXT, GPT2_SPLIT_PATTERN
from ..core.files import write_text_atomically
from .state import (SAFETENSORS_DTYPES, CheckpointError, bfloat16_to_float32, read_safetensors_header,
                         save_safetensors)
from .gpt import GPT, GPTConfig

# (our name, GPT-2's name, stored transposed by Conv1D) for the tensors of one block
_BLOCK_NAMES = [
    ("norm1.weight", "ln_1.weight", False),
    ("norm1.bias", "ln_1.bias", False),
    ("attn.qkv.weight", "attn.c_attn.weight", True),    # (C, 3C) in GPT-2: q, k, v side by side
    ("attn.qkv.bias", "attn.c_attn.bias", False),
    ("attn.proj.weight", "attn.c_proj.weight", True),
    ("attn.proj.bias", "attn.c_proj.bias", False),
    ("norm2.weight", "ln_2.weight", False),
    ("norm2.bias", "ln_2.bias", False),
    ("mlp.up.weight", "mlp.c_fc.weight", True),         # (C, 4C) in GPT-2
    ("mlp.up.bias", "mlp.c_fc.bias", False),
    ("mlp.down.weight", "mlp.c_proj.weight", True),     # (4C, C) in GPT-2
    ("mlp.down.bias", "mlp.c_proj.bias", False),
]
_OUTER_NAMES = [
    ("token_embedding.weight", "wte.weight", False),
    ("position_embedding.weight", "wpe.weight", False),
    ("final_norm.weight", "ln_f.weight", False),
    ("final_norm.bias", "ln_f.bias", False),
]
# Saved by old versions of transformers: the causal mask and a constant, not weights.
_BUFFER = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)")
_ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh")   # both are GELU's tanh approximation, like ours
_LAYER_NORM_EPS = 1e-5                              # what our LayerNorm uses
_WEIGHT_DTYPES = (np.float16, np.float32, np.float64)  # bfloat16 arrives as float32


def gpt2_name_table(config: GPTConfig) -> list[tuple[str, str, bool]]:
    """``(our name, GPT-2's name, transposed)`` for every weight of a GPT-2-shaped model, GPT-2's
    names without the ``transformer.`` prefix; an untied head is GPT-2's ``lm_head.weight``
    (an ``nn.Linear``, so not transposed)."""
    table = list(_OUTER_NAMES)
    for i in range(config.n_layer):
        table += [(f"blocks.{i}.{ours}", f"h.{i}.{theirs}", transposed)
                  for ours, theirs, transposed in _BLOCK_NAMES]
    if not config.tie_weights:
        table.append(("head.weight", "lm_head.weight", False))
    return table


# --- config.json ------------------------------------------------------------------------------

def gpt2_config(hf_config: dict, where: str = "config.json") -> GPTConfig:
    """The ``GPTConfig`` of a Hugging Face GPT-2 ``config.json`` (as a dict), or a
    ``CheckpointError`` naming the setting our GPT does not support."""

    def fail(problem: str) -> CheckpointError:
        return CheckpointError(f"{where}: {problem}")

    def integer(*keys: str) -> int:
        for key in keys:
            if key in hf_config:
                value = hf_config[key]
                if isinstance(value, bool) or not isinstance(value, int):
                    raise fail(f"{key} must be an integer, got {value!r}")
                return value
        raise fail(f"missing {' or '.join(keys)}")

    model_type = hf_config.get("model_type", "gpt2")
    if model_type != "gpt2":
        raise fail(f"model_type is {model_type!r}; this loader reads GPT-2 checkpoints only")
    activation = hf_config.get("activation_function", "gelu_new")   # transformers' default
    if activation not in _ACTIVATIONS:
        raise fail(f"activation_function {activation!r} is not supported: our GPT uses GELU's tanh "
                   f"approximation ({' or '.join(_ACTIVATIONS)})")
    eps = hf_config.get("layer_norm_epsilon", _LAYER_NORM_EPS)
    if not isinstance(eps, (int, float)) or not math.isclose(eps, _LAYER_NORM_EPS, rel_tol=1e-6):
        raise fail(f"layer_norm_epsilon {eps!r} is not supported: our LayerNorm uses {_LAYER_NORM_EPS}")
    d_model = integer("n_embd")
    n_inner = hf_config.get("n_inner")
    if n_inner is not None and n_inner != 4 * d_model:
        raise fail(f"n_inner {n_inner!r} is not supported: our MLP is 4 * n_embd = {4 * d_model} wide")
    for key, supported in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
                           ("add_cross_attention", False)):
        if hf_config.get(key, supported) != supported:
            raise fail(f"{key}={hf_config[key]!r} is not supported (our GPT has {key}={supported})")
    try:
        return GPTConfig(vocab_size=integer("vocab_size"), context_length=integer("n_positions", "n_ctx"),
                         d_model=d_model, n_layer=integer("n_layer"), n_head=integer("n_head"),
                         dropout=0.0, bias=True, tie_weights=bool(hf_config.get("tie_word_embeddings", True)),
                         position="learned")
    except ValueError as error:   # non-positive sizes, n_embd not divisible by n_head
        raise fail(str(error)) from None


def _read_config(folder: Path) -> dict:
    path = folder / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{folder}: no config.json (a GPT-2 folder holds config.json and "
                              f"model.safetensors)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return config


# --- model.safetensors ------------------------------------------------------------------------

class _StoredTensor:
    """One tensor of a safetensors file, known by its header entry and read only when asked."""

    def __init__(self, path: Path, entry: dict, data_start: int):
        self.path, self.entry = path, entry
        self.offset = data_start + entry["data_offsets"][0]
        self.file_dtype = np.dtype("<u2") if entry["dtype"] == "BF16" else SAFETENSORS_DTYPES[entry["dtype"]]
        self.dtype = np.dtype(np.float32) if entry["dtype"] == "BF16" else self.file_dtype
        self.shape = tuple(entry["shape"])

    def read(self) -> np.ndarray:
        """The tensor as a new array (bfloat16 converted to float32)."""
        array = np.empty(self.shape, dtype=self.file_dtype)
        self._read_bytes(array)
        return bfloat16_to_float32(array) if self.entry["dtype"] == "BF16" else array

    def copy_into(self, target: np.ndarray, transposed: bool) -> None:
        """Fill ``target`` with the tensor (its transpose if ``transposed``), converting the dtype."""
        if not transposed and self.file_dtype == target.dtype and target.flags.c_contiguous:
            self._read_bytes(target)   # straight from the file into the model: no copy at all
        else:
            np.copyto(target, self.read().T if transposed else self.read(), casting="same_kind")

    def _read_bytes(self, out: np.ndarray) -> None:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            if out.nbytes and f.readinto(memoryview(out.reshape(-1)).cast("B")) != out.nbytes:
                raise CheckpointError(f"{self.path}: truncated while reading a tensor")


def _read_weights(folder: Path) -> tuple[dict[str, _StoredTensor], str]:
    """GPT-2's tensors by name (``transformer.`` prefix removed), not yet read, and the file name
    for messages. Reads ``model.safetensors`` or a sharded checkpoint
    (``model.safetensors.index.json`` naming the file of every tensor)."""
    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            files = [folder / name for name in sorted(set(weight_map.values()))]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
            raise CheckpointError(f"{index}: not a safetensors index ({error})") from None
    else:
        hint = (" (pytorch_model.bin is a pickle, which this library never reads: a pickle can run "
                "code; convert it to safetensors first)" if (folder / "pytorch_model.bin").exists() else "")
        raise CheckpointError(f"{folder}: no model.safetensors{hint}")
    tensors: dict[str, _StoredTensor] = {}
    for path in files:
        header, _, data_start = read_safetensors_header(path)
        for name, entry in header.items():
            tensors[name.removeprefix("transformer.")] = _StoredTensor(path, entry, data_start)
    return tensors, single.name if len(files) == 1 else index.name


def load_gpt2(folder: str | Path, dtype=np.float32) -> GPT:
    """A GPT with the weights of the Hugging Face GPT-2 checkpoint in ``folder``
    (``config.json`` + ``model.safetensors``), in ``dtype`` (float16 and bfloat16 weights are
    converted), in eval mode. The tokenizer is ``BPETokenizer.from_gpt2(folder)``.

    Every problem (a missing file, an unsupported setting, a missing or unknown tensor, a tensor
    of the wrong dtype or shape) raises ``CheckpointError`` naming it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"GPT-2 folder not found: {folder}")
    config = gpt2_config(_read_config(folder), where=str(folder / "config.json"))
    tensors, file_name = _read_weights(folder)
    where = folder / file_name

    table = gpt2_name_table(config)
    # With tied weights GPT-2's head is wte; transformers ignores a stored lm_head.weight then, as do we.
    known = {theirs for _, theirs, _ in table} | ({"lm_head.weight"} if config.tie_weights else set())
    missing = [theirs for _, theirs, _ in table if theirs not in tensors]
    unknown = [name for name in tensors if name not in known and not _BUFFER.fullmatch(name)]
    if missing:
        raise CheckpointError(f"{where}: missing tensors {_first(missing)}")
    if unknown:
        raise CheckpointError(f"{where}: unexpected tensors {_first(unknown)} (not part of GPT-2)")

    for _, theirs, _ in table:
        if tensors[theirs].dtype not in _WEIGHT_DTYPES:
            raise CheckpointError(f"{where}: tensor {theirs!r} has dtype {tensors[theirs].dtype}; weights "
                                  f"must be floating point (F16, BF16, F32 or F64)")

    # careful: building the model draws a random init that is overwritten at once; it costs a few
    # seconds for GPT-2 124M but no memory beyond the model itself.
    model = GPT(config, dtype=dtype)
    own = model.state_dict()
    for ours, theirs, transposed in table:
        stored = tensors[theirs]
        expected = own[ours].shape[::-1] if transposed else own[ours].shape
        if stored.shape != expected:
            raise CheckpointError(f"{where}: tensor {theirs!r} has shape {stored.shape}, expected "
                                  f"{expected} for the sizes in config.json")
    for ours, theirs, transposed in table:   # every check passed: now read, one tensor at a time
        tensors[theirs].copy_into(own[ours], transposed)
    model.eval()
    return model


def _first(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# --- export -----------------------------------------------------------------------------------

def export_gpt2(model: GPT, folder: str | Path, tokenizer: BPETokenizer | None = None) -> Path:
    """Write ``model`` as a Hugging Face GPT-2 folder: ``config.json`` and ``model.safetensors``
    (GPT-2's names under ``transformer.``, Conv1D layout, the model's dtype), and, given a
    ``tokenizer``, its ``vocab.json`` + ``merges.txt``. Returns the folder.

    Only models GPT-2 can express are exported: learned positions and biases (the head may be
    tied or not). The tokenizer must split text with GPT-2's pattern, because GPT-2's files
    cannot record another one and every reader assumes GPT-2's.
    """
    config = model.config
    if config.position != "learned":
        raise ValueError(f"GPT-2 has learned positions; a model with position={config.position!r} "
                         f"cannot be exported to the GPT-2 format")
    if not config.bias:
        raise ValueError("GPT-2 has biases in every Linear and LayerNorm; a model with bias=False "
                         "cannot be exported to the GPT-2 format")
    if tokenizer is not None:
        if ENDOFTEXT not in tokenizer.special_tokens:
            raise ValueError(f"the tokenizer has no {ENDOFTEXT} token, which transformers and llama.cpp use "
                             f"to begin and end a text (without it they add their own, outside the model's "
                             f"vocabulary); train it with special_tokens=({ENDOFTEXT!r},), or export the "
                             f"model alone")
        if tokenizer.pattern != GPT2_SPLIT_PATTERN:
            raise ValueError("the tokenizer does not split text with GPT-2's pattern, and vocab.json + "
                             "merges.txt cannot say so: readers would tokenize differently. Train the "
                             "tokenizer with pattern='gpt2', or export the model alone and keep the "
                             "tokenizer in our format (tokenizer.save)")
        if tokenizer.vocab_size > config.vocab_size:
            raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens, more than the model's "
                             f"vocab_size {config.vocab_size}")
    folder = Path(folder)
    state = model.state_dict()
    tensors = {}
    for ours, theirs, transposed in gpt2_name_table(config):
        name = theirs if theirs.startswith("lm_head.") else f"transformer.{theirs}"
        tensors[name] = state[ours].T if transposed else state[ours]
    # transformers refuses a safetensors file whose metadata does not name its framework
    save_safetensors(folder / "model.safetensors", tensors, metadata={"format": "pt"})

    eot = None
    if tokenizer is not None:
        eot = tokenizer.eot_id
    elif tokenizer is None and config.vocab_size == 50257:
        eot = 50256   # GPT-2's own vocabulary
    hf_config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.context_length,
        "n_ctx": config.context_length,
        "n_embd": config.d_model,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": None,                       # 4 * n_embd
        "activation_function": "gelu_new",
        "layer_norm_epsilon": _LAYER_NORM_EPS,
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "initializer_range": 0.02,
        "tie_word_embeddings": config.tie_weights,
        "bos_token_id": eot,
        "eos_token_id": eot,
        "dtype": np.dtype(model.output_weight().dtype).name,   # transformers' name (torch_dtype is deprecated)
    }
    write_text_atomically(folder / "config.json", json.dumps(hf_config, indent=2) + "\n")
    if tokenizer is not None:
        tokenizer.save_gpt2(folder, model_max_length=config.context_length)
    return folder
