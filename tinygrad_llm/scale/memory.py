"""How big is a model? Parameters, memory and compute, planned and measured (lesson 06; lessons 10-13).

The first half (lesson 06) computes from a ``GPTConfig`` alone, without building the model, so
GPT-2 1.5B is as cheap to count as the course model; the tests check the formulas against
``GPT(config).num_parameters()``. The second half measures a built model and a training step:
the gradients and optimizer state actually stored (lesson 10), the activations a graph keeps
for backward and the peak memory of a step (lesson 10), and ``finetune_cost``, what fine-tuning
a model costs in parameters and bytes, used to compare full fine-tuning, head-only training,
LoRA and adapters (lesson 12) and a quantized base (QLoRA, lesson 13).

The rule of thumb "1B parameters = 4 GB" counts float32 weights only. Training with AdamW in
float32 keeps four numbers per parameter: the weight, its gradient and Adam's two moments, so
16 bytes per parameter before any activation: 16 GB for 1B parameters.
"""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from ..core.tensor import Tensor
from ..model.gpt import GPTConfig
from ..model.nn import Module, Parameter

BYTES_PER_VALUE = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1}


def parameter_counts(config: GPTConfig) -> dict[str, int]:
    """Parameters by component (biases and LayerNorms included where the config has them)."""
    C, V, L = config.d_model, config.vocab_size, config.n_layer
    b = 1 if config.bias else 0
    norm = C + b * C  # LayerNorm weight (+ bias)
    counts = {
        "token embedding": V * C,
        "position embedding": config.context_length * C if config.position == "learned" else 0,
        "attention (all layers)": L * (3 * C * C + b * 3 * C + C * C + b * C),
        "feed-forward (all layers)": L * (4 * C * C + b * 4 * C + 4 * C * C + b * C),
        "layer norms": (2 * L + 1) * norm,
        "output head": 0 if config.tie_weights else V * C,
    }
    counts["total"] = sum(counts.values())
    return counts


def activation_bytes(config: GPTConfig, batch_size: int, bytes_per_value: int = 4) -> int:
    """Rough activation memory kept for the backward pass of one training step.

    Per layer and token our implementation keeps about 19 C values (the inputs of the LayerNorms,
    the QKV, projection and MLP matrices, the GELU input and output) plus the attention
    probabilities, n_head * T values per token; then the logits and their softmax, 2 V per token.
    An estimate for planning, not a measurement (``benchmarks/bench_train.py`` measures).
    """
    C, T, V = config.d_model, config.context_length, config.vocab_size
    per_token = config.n_layer * (19 * C + config.n_head * T) + 2 * V
    return batch_size * T * per_token * bytes_per_value


def memory_table(config: GPTConfig, batch_size: int | None = None) -> list[dict]:
    """Rows of (what, bytes): the weights in each precision, then float32 AdamW training."""
    n = parameter_counts(config)["total"]
    rows = [{"what": f"weights, {name}", "bytes": n * size} for name, size in BYTES_PER_VALUE.items()]
    rows.append({"what": "training fp32: weights + grads", "bytes": n * 8})
    rows.append({"what": "training fp32: weights + grads + AdamW m, v", "bytes": n * 16})
    if batch_size is not None:
        rows.append({"what": f"+ activations, batch {batch_size} x {config.context_length} (estimate)",
                     "bytes": n * 16 + activation_bytes(config, batch_size)})
    return rows


def format_bytes(count: float) -> str:
    """1536 -> '1.5 KiB' (binary units, as memory is sold and measured)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def training_flops(config: GPTConfig, batch_size: int) -> int:
    """Floating point operations of one training step (forward + backward), counting the matrix
    products only, which dominate: a product of (m, k) and (k, n) costs 2 m k n.

    Forward: every token goes through the Linear weights (12 C^2 per layer) and the output head
    (V C), and each layer's attention does two (T, T, C)-sized products per sequence (scores and
    the weighted sum; we compute the full square, masked, as most implementations do). The
    backward pass costs twice the forward (a gradient for the input and one for the weight).
    """
    C, T, V, L = config.d_model, config.context_length, config.vocab_size, config.n_layer
    tokens = batch_size * T
    forward = 2 * tokens * (L * 12 * C * C + V * C) + L * batch_size * 2 * (2 * T * T * C)
    return 3 * forward


# ----------------------------------------------------------------------------------------------
# Measured: what a built model and a training step hold (lessons 10-13)


def gradient_bytes(model: Module) -> int:
    """Bytes of the gradients stored in the model's parameters (frozen ones store none)."""
    return sum(p.grad.nbytes for p in model.parameters() if p.grad is not None)


def optimizer_state_bytes(optimizer) -> int:
    """Bytes of the optimizer's per-parameter arrays (Adam's m and v: 2 floats per trainable
    parameter; step counters are not counted)."""
    return sum(value.nbytes for slots in optimizer.state.values()
               for value in slots.values() if value.ndim > 0)


def _owner(array: np.ndarray) -> np.ndarray:
    """The array that owns the memory a view looks into (a view keeps all of it alive)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def saved_activation_bytes(output: Tensor) -> int:
    """Bytes that the graph behind ``output`` keeps alive for backward: the outputs of its nodes
    and the arrays their backward closures captured, each memory block counted once, parameters
    (leaves) excluded. Call it before ``backward()``, which frees the graph."""
    leaves: set[int] = set()
    owners: dict[int, np.ndarray] = {}
    stack, visited = [output], set()
    while stack:
        node = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if node._backward is None:
            leaves.add(id(_owner(node.data)))
            continue
        arrays = [node.data]
        for cell in node._backward.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:  # a closure variable that was never assigned
                continue
            if isinstance(value, Tensor):
                value = value.data
            if isinstance(value, np.ndarray):
                arrays.append(value)
        for array in arrays:
            owner = _owner(array)
            owners[id(owner)] = owner
        stack.extend(node._parents)
    return sum(a.nbytes for key, a in owners.items() if key not in leaves)


def peak_memory(fn: Callable[[], object]) -> tuple[object, int]:
    """(fn(), the peak bytes allocated while it ran, above what was allocated before), traced
    with ``tracemalloc`` (NumPy reports its array memory to it)."""
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    try:
        result = fn()
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        if not already:
            tracemalloc.stop()
    return result, peak


# ----------------------------------------------------------------------------------------------
# What fine-tuning a model costs (lesson 12: LoRA, prompt tuning, adapters; lesson 13: QLoRA)


def trainable_parameters(model: Module) -> list[Parameter]:
    """The parameters an optimizer should update: those that require grad."""
    return [p for p in model.parameters() if p.requires_grad]


def trainable_parameter_count(model: Module) -> int:
    return model.num_parameters(trainable_only=True)


def trainable_percentage(model: Module) -> float:
    """Trainable parameters as a percentage of all parameters (frozen ones included)."""
    total = model.num_parameters()
    return 100.0 * trainable_parameter_count(model) / total if total else 0.0


def _distinct(arrays: Iterable[np.ndarray]) -> list[np.ndarray]:
    # a tied weight is one array reachable by two names: count it once
    return list({id(a): a for a in arrays}.values())


@dataclass(frozen=True)
class FinetuneCost:
    """What fine-tuning a model costs: parameter counts, and the bytes held while it trains
    (activations not included, they depend on the batch: see ``saved_activation_bytes``)."""

    parameters: int          # all parameters, frozen ones included
    trainable: int           # parameters that get a gradient and optimizer state
    trainable_percent: float
    weight_bytes: int        # all parameters, at their dtype
    frozen_bytes: int        # frozen parameters and stored buffers: the base model as it is held
    trainable_bytes: int     # the parameters that train
    gradient_bytes: int      # one gradient per trainable parameter
    optimizer_bytes: int     # AdamW's m and v: two numbers per trainable parameter

    @property
    def total_bytes(self) -> int:
        return self.frozen_bytes + self.trainable_bytes + self.gradient_bytes + self.optimizer_bytes


def finetune_cost(model: Module) -> FinetuneCost:
    """Parameter counts and the memory of a fine-tuning run of ``model``, from what it holds.

    Trainable parameters (those that require grad) bring their gradients and AdamW's m and v at
    the parameter's dtype, as ``optim.AdamW`` stores them (its per-parameter step counter, one
    integer per tensor, is left out). Everything else is frozen and counted once: the frozen
    parameters and the persistent buffers, which is how a layer reports storage that is not a
    float Parameter (a quantized layer's codes and scales), so no layer type is named here."""
    params = model.parameters()
    trainable = _distinct(p.data for p in params if p.requires_grad)
    trainable_ids = {id(a) for a in trainable}
    frozen = _distinct([p.data for p in params if id(p.data) not in trainable_ids]
                       + [b for _, b in model.named_buffers(persistent_only=True)])
    trainable_bytes = sum(a.nbytes for a in trainable)
    return FinetuneCost(parameters=model.num_parameters(),
                        trainable=trainable_parameter_count(model),
                        trainable_percent=trainable_percentage(model),
                        weight_bytes=sum(p.data.nbytes for p in params),
                        frozen_bytes=sum(a.nbytes for a in frozen),
                        trainable_bytes=trainable_bytes,
                        gradient_bytes=trainable_bytes,
                        optimizer_bytes=2 * trainable_bytes)


# lesson 13 asks the same question of a quantized base, under the name it introduced
finetune_memory = finetune_cost
