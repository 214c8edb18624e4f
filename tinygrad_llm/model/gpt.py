"""The GPT: attention, the transformer block, and the model (lessons 05-06).

Shapes in the comments use: B batch size, T sequence length, C = d_model channels,
nh = n_head heads, hs = C // nh the size of one head, V vocabulary size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.checks import check_choice, check_fraction, check_positive_int
from ..core import functional as F
from ..core.attention import packed_attention, scaled_dot_product_attention
from .nn import Dropout, Embedding, LayerNorm, Linear, Module, ModuleList, check_token_ids
from ..core.tensor import Tensor, is_grad_enabled


@dataclass(frozen=True)
class GPTConfig:
    """The architecture. Defaults are the course model: small enough to train on a laptop CPU in
    minutes, the same shape of model as GPT-2 (whose 124M configuration is ``GPTConfig.gpt2()``)."""

    vocab_size: int = 2048       # the lesson-02 BPE tokenizer
    context_length: int = 128    # the longest sequence the model can see (learned positions end here)
    d_model: int = 128           # width of the residual stream
    n_layer: int = 4
    n_head: int = 4              # d_model must divide evenly into heads
    dropout: float = 0.0         # small models on small data overfit slowly; raise it for long runs
    bias: bool = True            # GPT-2 has biases in Linear and LayerNorm layers
    tie_weights: bool = True     # the output head reuses the token embedding (fewer parameters)
    position: str = "learned"    # "learned" (GPT-2) or "sinusoidal" (the original transformer)

    def __post_init__(self):
        for name in ("vocab_size", "context_length", "d_model", "n_layer", "n_head"):
            check_positive_int(f"GPTConfig.{name}", getattr(self, name))   # True is not 1 layer
        if self.d_model % self.n_head:
            raise ValueError(f"GPTConfig: d_model {self.d_model} is not divisible by n_head {self.n_head}")
        check_choice("GPTConfig.position", self.position, ("learned", "sinusoidal"))
        check_fraction("GPTConfig.dropout", self.dropout, high_open=True)
        for name in ("bias", "tie_weights"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"GPTConfig.{name} must be True or False, got {getattr(self, name)!r}")

    @classmethod
    def gpt2(cls, size: str = "124M") -> GPTConfig:
        """The published GPT-2 configurations (vocabulary 50,257, context 1,024)."""
        shapes = {"124M": (768, 12, 12), "355M": (1024, 24, 16), "774M": (1280, 36, 20),
                  "1.5B": (1600, 48, 25)}
        if size not in shapes:
            raise ValueError(f"unknown GPT-2 size {size!r}; choose from {', '.join(shapes)}")
        d_model, n_layer, n_head = shapes[size]
        return cls(vocab_size=50257, context_length=1024, d_model=d_model, n_layer=n_layer,
                   n_head=n_head, dropout=0.0, bias=True, tie_weights=True, position="learned")


def sinusoidal_positions(context_length: int, d_model: int) -> np.ndarray:
    """The fixed encoding of "Attention is all you need": for position p and pair index i,

        PE[p, 2i] = sin(p / 10000^(2i/d)),   PE[p, 2i+1] = cos(p / 10000^(2i/d))

    Each pair of channels is a clock at its own frequency, from one turn per 2 pi positions down
    to one per 10000 * 2 pi; shape (context_length, d_model)."""
    positions = np.arange(context_length)[:, None]
    frequencies = 1.0 / 10000 ** (np.arange(0, d_model, 2) / d_model)
    table = np.zeros((context_length, d_model))
    table[:, 0::2] = np.sin(positions * frequencies)
    table[:, 1::2] = np.cos(positions * frequencies[: d_model // 2])
    return table


class KVCache:
    """Keys and values of the positions seen so far, for every layer, so that generating one more
    token costs one position's worth of work instead of re-encoding the whole sequence.

    Buffers are preallocated to the context length: keys[layer] has shape (B, nh, context, hs)
    and positions 0 .. length-1 are filled. Inference only (use it under ``no_grad``).
    """

    def __init__(self, config: GPTConfig, batch_size: int, dtype=np.float32):
        hs = config.d_model // config.n_head
        shape = (config.n_layer, batch_size, config.n_head, config.context_length, hs)
        self.keys = np.zeros(shape, dtype=dtype)
        self.values = np.zeros(shape, dtype=dtype)
        self.length = 0
        self.capacity = config.context_length

    def reset(self) -> None:
        self.length = 0

    def reorder(self, indices) -> None:
        """Row i of the cache becomes what row ``indices[i]`` was, for every layer. Beam search
        uses it to make each surviving beam carry the keys and values of the beam it extends: a
        row may be repeated (a beam with several children) or dropped, so the batch size becomes
        len(indices). Only the filled positions are copied."""
        indices = np.asarray(indices)
        batch_size = self.keys.shape[1]
        if indices.ndim != 1 or indices.dtype.kind not in "iu" or indices.size == 0:
            raise ValueError(f"reorder takes a non-empty 1-D array of row numbers, got {indices!r}")
        if indices.min() < 0 or indices.max() >= batch_size:
            raise IndexError(f"reorder: row {indices.max() if indices.max() >= batch_size else indices.min()} "
                             f"is out of range for a cache of batch size {batch_size}")
        n = self.length
        for name in ("keys", "values"):
            old = getattr(self, name)
            new = np.zeros((old.shape[0], indices.size) + old.shape[2:], dtype=old.dtype)
            new[:, :, :, :n] = old[:, indices, :, :n]  # (n_layer, B', nh, n, hs)
            setattr(self, name, new)


class MultiHeadAttention(Module):
    """Self-attention with ``n_head`` heads and a fused query/key/value projection: causal (each
    position sees itself and the positions before it) unless ``causal=False``, where every
    position sees every other (the bidirectional attention of an encoder, lesson 21)."""

    def __init__(self, config: GPTConfig, rng: np.random.Generator | None = None, dtype=np.float32,
                 causal: bool = True):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.causal = causal
        self.n_head = config.n_head
        self.dropout_p = config.dropout
        self.rng = rng
        self.qkv = Linear(config.d_model, 3 * config.d_model, bias=config.bias, rng=rng, dtype=dtype)
        # GPT-2 scales the init of projections into the residual stream by 1/sqrt(2 n_layer):
        # each block adds two of them, and their sum should not grow with depth.
        self.proj = Linear(config.d_model, config.d_model, bias=config.bias, rng=rng, dtype=dtype,
                           std=0.02 / np.sqrt(2 * config.n_layer))
        self.resid_dropout = Dropout(config.dropout, rng)

    def forward(self, x: Tensor, mask: np.ndarray | None = None, kv: tuple | None = None) -> Tensor:
        """``kv`` = (keys, values, start): this layer's cache buffers and the number of positions
        already in them; the new keys and values are written after those and attention sees all."""
        B, T, C = x.shape
        nh, hs = self.n_head, C // self.n_head
        qkv = self.qkv(x).reshape(B, T, 3, nh, hs).transpose(2, 0, 3, 1, 4)  # (3, B, nh, T, hs)
        # a single query (one new token, with a cache) is the last position: it may see every key
        options = dict(causal=self.causal and T > 1, mask=mask, dropout_p=self.dropout_p, training=self.training, rng=self.rng)
        if kv is None:
            y = packed_attention(qkv, **options)  # (B, nh, T, hs)
        else:
            keys, values, start = kv
            keys[:, :, start:start + T] = qkv.data[1]
            values[:, :, start:start + T] = qkv.data[2]
            k, v = Tensor(keys[:, :, :start + T]), Tensor(values[:, :, :start + T])  # (B, nh, start+T, hs)
            y = scaled_dot_product_attention(qkv[0], k, v, **options)
        y = y.transpose(0, 2, 1, 3).reshape(B, T, C)  # heads side by side again
        return self.resid_dropout(self.proj(y))


class MLP(Module):
    """Position-wise feed-forward: expand 4x, GELU, project back."""

    def __init__(self, config: GPTConfig, rng: np.random.Generator | None = None, dtype=np.float32):
        self.up = Linear(config.d_model, 4 * config.d_model, bias=config.bias, rng=rng, dtype=dtype)
        self.down = Linear(4 * config.d_model, config.d_model, bias=config.bias, rng=rng, dtype=dtype,
                           std=0.02 / np.sqrt(2 * config.n_layer))
        self.dropout = Dropout(config.dropout, rng)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.down(self.up(x).gelu()))


class TransformerBlock(Module):
    """Pre-LayerNorm block: x + attention(norm(x)), then x + mlp(norm(x)). The residual path
    carries x through unchanged, so gradients reach early layers even in deep stacks."""

    def __init__(self, config: GPTConfig, rng: np.random.Generator | None = None, dtype=np.float32,
                 causal: bool = True):
        self.norm1 = LayerNorm(config.d_model, bias=config.bias, dtype=dtype)
        self.attn = MultiHeadAttention(config, rng, dtype, causal)
        self.norm2 = LayerNorm(config.d_model, bias=config.bias, dtype=dtype)
        self.mlp = MLP(config, rng, dtype)

    def forward(self, x: Tensor, mask: np.ndarray | None = None, kv: tuple | None = None) -> Tensor:
        x = x + self.attn(self.norm1(x), mask, kv)
        return x + self.mlp(self.norm2(x))


class GPT(Module):
    """A GPT-2-architecture language model.

    >>> model = GPT(GPTConfig(vocab_size=50, context_length=8, d_model=16, n_layer=1, n_head=2))
    >>> model(np.array([[1, 2, 3]])).shape
    (1, 3, 50)
    """

    causal = True   # the blocks' attention; an encoder (lesson 21) is the same model with False

    def __init__(self, config: GPTConfig, rng: np.random.Generator | None = None, dtype=np.float32):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.config = config
        self.token_embedding = Embedding(config.vocab_size, config.d_model, rng=rng, dtype=dtype)
        if config.position == "learned":
            self.position_embedding = Embedding(config.context_length, config.d_model, rng=rng, dtype=dtype)
        else:
            self.register_buffer("position_table", sinusoidal_positions(
                config.context_length, config.d_model).astype(dtype), persistent=False)
        self.dropout = Dropout(config.dropout, rng)
        self.blocks = ModuleList(TransformerBlock(config, rng, dtype, self.causal) for _ in range(config.n_layer))
        self.final_norm = LayerNorm(config.d_model, bias=config.bias, dtype=dtype)
        # With tied weights the head *is* the token embedding matrix (shared, not copied).
        self.head = None if config.tie_weights else Linear(config.d_model, config.vocab_size, bias=False,
                                                             rng=rng, dtype=dtype)

    def positions(self, T: int, start: int = 0) -> Tensor:
        """Position vectors for positions start .. start+T-1, shape (T, C)."""
        if self.config.position == "learned":
            return self.position_embedding.weight[start:start + T]
        return Tensor(self.position_table[start:start + T])

    def hidden_states(self, idx: np.ndarray, mask: np.ndarray | None = None,
                      cache: KVCache | None = None) -> Tensor:
        """The final-norm output for every position, shape (B, T, C): what a head reads.

        With a ``cache``, ``idx`` holds only the new tokens; they take the positions after the
        cached ones, and the cache grows by T."""
        idx = check_token_ids(idx, self.config.vocab_size)
        if idx.ndim != 2:
            raise ValueError(f"GPT expects token ids of shape (batch, time), got {idx.shape}")
        if 0 in idx.shape:
            raise ValueError(f"GPT needs at least one sequence of at least one token, got shape {idx.shape}")
        B, T = idx.shape
        start = 0 if cache is None else cache.length
        if start + T > self.config.context_length:
            raise ValueError(f"sequence of {start + T} tokens is longer than the context length "
                             f"{self.config.context_length}; crop it (generation slides a window)")
        if cache is not None:
            if is_grad_enabled():
                raise RuntimeError("a KV cache is for inference: run the model under no_grad()")
            if cache.keys.shape[1] != B:
                raise ValueError(f"the cache holds batch size {cache.keys.shape[1]}, the input has {B}")
        x = self.dropout(self.token_embedding(idx) + self.positions(T, start))  # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, mask, None if cache is None else (cache.keys[i], cache.values[i], start))
        if cache is not None:
            cache.length += T
        return self.final_norm(x)

    def output_weight(self) -> Tensor:
        return self.token_embedding.weight if self.head is None else self.head.weight

    def forward(self, idx: np.ndarray, targets: np.ndarray | None = None, cache: KVCache | None = None):
        """Logits (B, T, V) for next-token prediction; with ``targets`` (B, T), also the mean
        cross-entropy loss, returned as ``(logits, loss)``. ``cache``: see ``hidden_states``."""
        logits = F.linear(self.hidden_states(idx, cache=cache), self.output_weight())  # (B, T, V)
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits, targets)

    def extra_repr(self) -> str:
        c = self.config
        return (f"vocab_size={c.vocab_size}, context_length={c.context_length}, d_model={c.d_model}, "
                f"n_layer={c.n_layer}, n_head={c.n_head}")
