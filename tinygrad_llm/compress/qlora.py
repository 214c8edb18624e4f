"""QLoRA: LoRA adapters trained on a frozen, quantized base model (lesson 13).

``lora`` (lesson 12) already trains only small adapters, but the frozen base still sits in memory in
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

``scale.memory.finetune_memory`` (the same function as ``finetune_cost``) counts these from what
a model holds: the quantized layers' codes and scales are their persistent buffers.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..model.nn import Module
from ..finetune.lora import DEFAULT_TARGETS, apply_lora
from .quantize import QuantScheme, quantize_model

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
