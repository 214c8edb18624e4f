"""QLoRA: LoRA adapters trained on a frozen, quantized base model (lesson 13).

LoRA (lesson 12) already trains only small adapters, but the frozen base still sits in memory in
float32, 4 bytes per weight, and for a large model that base is most of the memory. QLoRA
(Dettmers et al., 2023) stores the frozen base in 4 bits and trains float adapters beside it:

    y = x W~^T + b + (alpha / r) x A^T B^T,      W~ = s (q - z) dequantized on the fly

Gradients flow through W~ to the input of each layer (dL/dx = dL/dy W~ + ...), so adapters in
every layer train, but W~ itself gets no gradient and no optimizer state: only A and B do. The
paper's 4-bit format is NormalFloat4 with double-quantized scales; we use the int4 (or int8)
group-wise codes of ``quantize.py``, the same idea with a uniform grid.

Memory while fine-tuning, activations aside:

    frozen base        codes + scales of the quantized weights, plus the float biases and norms
    adapters           4 bytes per trainable parameter
    gradients          4 bytes per trainable parameter
    AdamW state        8 bytes per trainable parameter (m and v)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..model.nn import Module
from ..finetune.lora import DEFAULT_TARGETS, apply_lora
from .quantize import QuantScheme, unique_arrays, quantize_model

QLORA_SCHEME = QuantScheme(bits=4, granularity="group", group_size=64)


def apply_qlora(model: Module, scheme: QuantScheme = QLORA_SCHEME,
                target: str | Sequence[str] = DEFAULT_TARGETS, r: int = 8, alpha: float = 16.0,
                dropout: float = 0.0, adapter_name: str = "default",
                rng: np.random.Generator | None = None) -> list[str]:
    """Quantize every Linear and Embedding of ``model`` with ``scheme`` (in place), then put LoRA
    adapters on the layers ``target`` selects (see ``peft.apply_lora``); returns their names.
    Only the adapters train; the quantized base stays frozen, its codes unchanged."""
    quantize_model(model, scheme)
    return apply_lora(model, target, r=r, alpha=alpha, dropout=dropout, adapter_name=adapter_name, rng=rng)


@dataclass(frozen=True)
class FinetuneMemory:
    """Bytes held while fine-tuning (activations not included)."""

    frozen_bytes: int         # frozen parameters and buffers: the base model as stored
    trainable_bytes: int      # the parameters that train (adapters)
    gradient_bytes: int       # one gradient per trainable parameter
    optimizer_bytes: int      # AdamW's m and v: two numbers per trainable parameter

    @property
    def total_bytes(self) -> int:
        return self.frozen_bytes + self.trainable_bytes + self.gradient_bytes + self.optimizer_bytes


def finetune_memory(model: Module) -> FinetuneMemory:
    """Memory of a fine-tuning run of ``model`` from what it holds: trainable parameters (those
    that require grad) with their gradients and AdamW state at the parameter's dtype; everything
    else, parameters and persistent buffers (quantized codes, scales), counted once as frozen."""
    trainable = unique_arrays(p.data for p in model.parameters() if p.requires_grad)
    trainable_ids = {id(a) for a in trainable}
    frozen = unique_arrays([p.data for p in model.parameters() if id(p.data) not in trainable_ids]
                     + [b for _, b in model.named_buffers(persistent_only=True)])
    trainable_bytes = sum(a.nbytes for a in trainable)
    return FinetuneMemory(frozen_bytes=sum(a.nbytes for a in frozen), trainable_bytes=trainable_bytes,
                          gradient_bytes=trainable_bytes, optimizer_bytes=2 * trainable_bytes)
