"""An encoder-decoder with cross-attention, T5-style (lesson 22).

Unlike ``encoder``, whose output is one vector per input token, and ``gpt``, which continues one
sequence, an encoder-decoder reads a source sequence with a bidirectional ``Encoder`` and writes
a target sequence with a causal decoder whose blocks also look at the encoder's output:

    decoder block:  x = x + self_attention(norm(x))                    causal, over the target
                    x = x + cross_attention(norm(x), memory)           queries from the target,
                    x = x + mlp(norm(x))                               keys and values from the source

Cross-attention is the same scaled dot-product attention without a mask (a padding mask hides
the source's ``[PAD]``), and it may have more queries than keys. The encoder's keys and values do
not change while the decoder writes, so ``CrossAttention.keys_values`` computes them once per
layer and generation reuses them. The token embedding is shared by encoder, decoder and output
head (T5 shares it too): both sides speak the same vocabulary, and a small model saves V x C
parameters twice. Everything else is reused: ``TransformerBlock`` for the decoder's self-attention
and MLP, ``Encoder`` for the source.
"""

from __future__ import annotations

import numpy as np

from ..core import functional as F
from ..core.attention import scaled_dot_product_attention
from ..core.tensor import Tensor
from .encoder import IGNORE, Encoder
from .gpt import GPTConfig, TransformerBlock
from .nn import Embedding, LayerNorm, Linear, Module, ModuleList, check_token_ids


class CrossAttention(Module):
    """Attention from the decoder's positions (queries) to the encoder's output (keys, values)."""

    def __init__(self, config: GPTConfig, rng: np.random.Generator | None = None, dtype=np.float32):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.n_head = config.n_head
        self.query = Linear(config.d_model, config.d_model, bias=config.bias, rng=rng, dtype=dtype)
        self.key_value = Linear(config.d_model, 2 * config.d_model, bias=config.bias, rng=rng, dtype=dtype)
        self.proj = Linear(config.d_model, config.d_model, bias=config.bias, rng=rng, dtype=dtype,
                           std=0.02 / np.sqrt(3 * config.n_layer))   # three residual branches per block

    def keys_values(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values of the encoder's output ``memory`` (B, S, C): each (B, nh, S, hs)."""
        B, S, C = memory.shape
        kv = self.key_value(memory).reshape(B, S, 2, self.n_head, C // self.n_head).transpose(2, 0, 3, 1, 4)
        return kv[0], kv[1]

    def forward(self, x: Tensor, memory: Tensor | tuple[Tensor, Tensor], memory_mask: np.ndarray | None = None):
        """``x`` (B, T, C) attends to ``memory`` (B, S, C), or to its cached ``keys_values``."""
        B, T, C = x.shape
        q = self.query(x).reshape(B, T, self.n_head, C // self.n_head).transpose(0, 2, 1, 3)  # (B, nh, T, hs)
        k, v = memory if isinstance(memory, tuple) else self.keys_values(memory)
        y = scaled_dot_product_attention(q, k, v, causal=False, mask=memory_mask)          # (B, nh, T, hs)
        return self.proj(y.transpose(0, 2, 1, 3).reshape(B, T, C))


class DecoderBlock(TransformerBlock):
    """``TransformerBlock`` (causal self-attention, MLP) with cross-attention between the two."""

    def __init__(self, config: GPTConfig, rng: np.random.Generator | None = None, dtype=np.float32):
        super().__init__(config, rng, dtype, causal=True)
        self.norm_cross = LayerNorm(config.d_model, bias=config.bias, dtype=dtype)
        self.cross = CrossAttention(config, rng, dtype)

    def forward(self, x: Tensor, memory, memory_mask: np.ndarray | None = None) -> Tensor:
        x = x + self.attn(self.norm1(x))
        x = x + self.cross(self.norm_cross(x), memory, memory_mask)
        return x + self.mlp(self.norm2(x))


class EncoderDecoder(Module):
    """An ``Encoder`` over the source and a stack of ``DecoderBlock`` layers over the target, sharing
    one token embedding (also the output head). ``config`` describes both stacks.

    >>> model = EncoderDecoder(GPTConfig(vocab_size=30, context_length=8, d_model=16, n_layer=1, n_head=2), pad_id=29)
    >>> model(np.array([[1, 2, 3, 29]]), np.array([[5, 6]])).shape
    (1, 2, 30)
    """

    def __init__(self, config: GPTConfig, pad_id: int | None = None, rng: np.random.Generator | None = None,
                 dtype=np.float32):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.config = config
        self.encoder = Encoder(config, pad_id=pad_id, rng=rng, dtype=dtype)
        self.position_embedding = Embedding(config.context_length, config.d_model, rng=rng, dtype=dtype)
        self.blocks = ModuleList(DecoderBlock(config, rng, dtype) for _ in range(config.n_layer))
        self.final_norm = LayerNorm(config.d_model, bias=config.bias, dtype=dtype)

    def encode(self, source: np.ndarray) -> tuple[Tensor, np.ndarray | None]:
        """The encoder's output (B, S, C) and the padding mask of the source (or None)."""
        return self.encoder.hidden_states(source), self.encoder.padding_mask(source)

    def memory(self, encoded: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Every decoder layer's cross-attention keys and values of ``encoded``: computed once per
        source, reused for every token the decoder writes."""
        return [block.cross.keys_values(encoded) for block in self.blocks]

    def decode(self, target: np.ndarray, memory, memory_mask: np.ndarray | None = None) -> Tensor:
        """Logits (B, T, V) for the next target token at every position; ``memory``: the encoder's
        output, or its per-layer ``memory``."""
        target = check_token_ids(target, self.config.vocab_size)
        if target.ndim != 2 or 0 in target.shape:
            raise ValueError(f"target ids must have shape (batch, time) with time >= 1, got {target.shape}")
        T = target.shape[1]
        if T > self.config.context_length:
            raise ValueError(f"a target of {T} tokens is longer than the context length {self.config.context_length}")
        x = self.encoder.token_embedding(target) + self.position_embedding.weight[:T]   # (B, T, C), shared table
        for i, block in enumerate(self.blocks):
            x = block(x, memory[i] if isinstance(memory, list) else memory, memory_mask)
        return F.linear(self.final_norm(x), self.encoder.token_embedding.weight)       # tied head

    def forward(self, source: np.ndarray, target_inputs: np.ndarray, targets: np.ndarray | None = None):
        """Logits of the target given the source; with ``targets`` also the mean cross-entropy
        (``IGNORE`` positions skipped), as ``(logits, loss)``."""
        encoded, mask = self.encode(source)
        logits = self.decode(target_inputs, encoded, mask)
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits, np.asarray(targets), ignore_index=IGNORE)
