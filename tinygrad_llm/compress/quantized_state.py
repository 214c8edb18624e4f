"""Quantized checkpoints: int8 and int4 codes in a safetensors file (lesson 13).

Unlike ``state``, which writes float arrays, the file here holds a quantized model: it is lesson
07's safetensors format, holding the quantized model's state dict as it is:
int8 codes (int4 codes packed two per byte, as uint8), float32 scales, int8 zero points and the
float parameters that were not quantized (biases, LayerNorms). The metadata records the model
config and, for each quantized layer, its kind, shapes and ``QuantScheme``, so ``load_quantized``
rebuilds the same layers before filling them. Nothing is dequantized on the way: a round trip is
bit-exact.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from ..model.state import CheckpointError, load_safetensors, save_safetensors
from ..model.gpt import GPT, GPTConfig
from ..model.nn import Module
from ..finetune.lora import LoRALinear
from .qat import QATEmbedding, QATLinear
from .quantize import QUANTIZED_LAYERS, QuantizedEmbedding, QuantizedLinear, QuantScheme, unpack_int4

QUANT_FORMAT = "tinygrad_llm.quantized/1"   # written into every quantized checkpoint's metadata


def _layer_record(module: Module) -> dict:
    record = {"scheme": module.scheme.to_dict(), "dtype": module.dtype.name}
    if isinstance(module, QuantizedLinear):
        record.update(kind="linear", in_features=module.in_features, out_features=module.out_features,
                      bias=module.bias is not None, activations=module.activations)
    else:
        record.update(kind="embedding", num_embeddings=module.num_embeddings,
                      embedding_dim=module.embedding_dim)
    return record


def _layer_from_record(record: dict) -> Module:
    scheme = QuantScheme(**record["scheme"])
    if record["kind"] == "linear":
        return QuantizedLinear(record["in_features"], record["out_features"], scheme, record["bias"],
                               record["activations"], record["dtype"])
    if record["kind"] == "embedding":
        return QuantizedEmbedding(record["num_embeddings"], record["embedding_dim"], scheme, record["dtype"])
    raise ValueError(f"unknown layer kind {record['kind']!r}")


def save_quantized(model: GPT, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write a quantized GPT to a safetensors file: int8 codes (int4: packed uint8), float32
    scales, int8 zero points and the float parameters, with metadata that records the model
    config and each quantized layer's scheme."""
    if not isinstance(model, GPT):
        raise TypeError(f"save_quantized writes a GPT, got {type(model).__name__}")
    wrapped = [name for name, m in model.named_modules() if isinstance(m, (LoRALinear, QATLinear, QATEmbedding))]
    if wrapped:
        raise ValueError(f"save_quantized: {', '.join(wrapped[:3])}{', ...' if len(wrapped) > 3 else ''} are LoRA "
                         f"or QAT layers; save LoRA adapters with save_lora and remove them with "
                         f"unload_lora(model, merge=False), or convert_qat then quantize_model, first")
    layers = {name: _layer_record(m) for name, m in model.named_modules() if isinstance(m, QUANTIZED_LAYERS)}
    if not layers:
        raise ValueError("save_quantized: the model has no quantized layer; call quantize_model first")
    info = {"format": QUANT_FORMAT, "model_config": json.dumps(dataclasses.asdict(model.config)),
            "layers": json.dumps(layers)}
    save_safetensors(path, model.state_dict(), {**(metadata or {}), **info})


def _value_problems(name: str, module: Module, tensors: dict[str, np.ndarray]) -> list[str]:
    """Codes outside the scheme's range, or scales that are not positive and finite."""
    low, high = module.scheme.code_range
    problems = []
    codes = tensors[f"{name}.qweight"]
    if module.scheme.bits == 4:
        codes = unpack_int4(np.asarray(codes), int(np.prod(module.weight_shape)))
    if codes.size and (codes.min() < low or codes.max() > high):
        problems.append(f"{name}.qweight: codes outside {low}..{high} for {module.scheme.name}")
    scale = tensors[f"{name}.scale"]
    if not np.all(np.isfinite(scale) & (scale > 0)):
        problems.append(f"{name}.scale: scales must be positive and finite")
    zero = tensors.get(f"{name}.zero_point")
    if zero is not None and zero.size and (zero.min() < low or zero.max() > high):
        problems.append(f"{name}.zero_point: zero points outside {low}..{high}")
    return problems


def load_quantized(path: str | os.PathLike) -> tuple[GPT, dict[str, str]]:
    """A quantized GPT from a ``save_quantized`` file, in eval mode, with the file's metadata.

    Every quantized tensor is checked before loading: its name, dtype (int8 codes must not
    arrive as float or int16, say), shape and values (codes within the scheme's range, positive
    finite scales). All problems are reported in one CheckpointError."""
    tensors, metadata = load_safetensors(path)
    if metadata.get("format") != QUANT_FORMAT:
        raise CheckpointError(f"{path}: not a quantized model (format {metadata.get('format')!r}, expected "
                              f"{QUANT_FORMAT!r}); float checkpoints load with training.load_model")
    try:
        model = GPT(GPTConfig(**json.loads(metadata["model_config"])))
        layers = {name: _layer_from_record(record) for name, record in json.loads(metadata["layers"]).items()}
        for name, layer in layers.items():
            model.set_submodule(name, layer)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(f"{path}: corrupt quantization metadata ({type(error).__name__}: {error})") from None
    expected = model.state_dict()
    problems = [f"{k}: missing" for k in expected if k not in tensors]
    problems += [f"{k}: unexpected tensor" for k in tensors if k not in expected]
    problems += [f"{k}: {tensors[k].dtype} {tensors[k].shape} in the file, expected {v.dtype} {v.shape}"
                 for k, v in expected.items() if k in tensors
                 and (tensors[k].dtype != v.dtype or tensors[k].shape != v.shape)]
    if not problems:
        for name, layer in layers.items():
            problems += _value_problems(name, layer, tensors)
    if problems:
        raise CheckpointError(f"{path}: corrupt quantized checkpoint: " + "; ".join(problems))
    model.load_state_dict(tensors)
    model.eval()
    return model, metadata
