"""How big is a model? Parameters per component and the memory to store and to train it (lesson 06).

Everything here is computed from a ``GPTConfig`` alone, without building the model, so GPT-2 1.5B
is as cheap to count as the course model. The tests check the formulas against
``GPT(config).num_parameters()``.

The rule of thumb "1B parameters = 4 GB" counts float32 weights only. Training with AdamW in
float32 keeps four numbers per parameter: the weight, its gradient and Adam's two moments, so
16 bytes per parameter before any activation: 16 GB for 1B parameters.
"""

from __future__ import annotations

from ..model.gpt import GPTConfig

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
