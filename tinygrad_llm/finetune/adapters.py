"""Prompt tuning and bottleneck adapters (lesson 12).

Unlike ``lora``, which adapts weights, the two methods here leave every weight alone and add to the
computation instead:

* Prompt tuning (Lester et al., 2021) learns P "virtual token" vectors, a (P, C) matrix that is
  put in front of the token embeddings of every sequence. The model reads them like the
  embeddings of a prompt that no real token sequence could spell. Only P * C numbers are trained.
  They take the first P positions, so a sequence may hold at most context_length - P real tokens.

* Bottleneck adapters (Houlsby et al., 2019) add a small residual network after the attention
  and/or the MLP of every block:

      adapter(h) = h + up(gelu(down(h))),     down: C -> m,  up: m -> C,  m << C

  ``up`` starts at zero, so the adapted model starts exactly at the pretrained one.

``scale.memory.finetune_cost`` compares these with LoRA and with full fine-tuning: trainable
parameters, and the memory of their gradients and Adam state.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..core import functional as F
from ..model.gpt import GPT, GPTConfig, TransformerBlock
from ..model.nn import Linear, Module, Parameter, check_token_ids
from ..core.tensor import Tensor, concatenate

# ----------------------------------------------------------------------------------------------
# Prompt tuning


class PromptTunedGPT(Module):
    """A frozen GPT behind ``n_virtual_tokens`` trainable prompt vectors.

    ``init_ids``: start the prompt from the embeddings of these real tokens (one id per virtual
    token, e.g. the encoding of "Summarize the following text:"), which often trains faster than
    a random start. Without it the vectors are drawn from a normal distribution with the spread
    of the token embedding table, so they look like token embeddings to the model.

    The forward pass is GPT's, with the prompt spliced in after the embedding lookup; it returns
    logits for the real tokens only, so targets line up with ``idx`` as for a plain GPT.

    >>> gpt = GPT(GPTConfig(vocab_size=50, context_length=8, d_model=16, n_layer=1, n_head=2))
    >>> model = PromptTunedGPT(gpt, n_virtual_tokens=3)
    >>> model(np.array([[1, 2, 3]])).shape, model.num_parameters(trainable_only=True)
    ((1, 3, 50), 48)
    """

    def __init__(self, gpt: GPT, n_virtual_tokens: int, init_ids: np.ndarray | None = None,
                 rng: np.random.Generator | None = None):
        if not isinstance(gpt, GPT):
            raise TypeError(f"PromptTunedGPT wraps a GPT, got {type(gpt).__name__}")
        context = gpt.config.context_length
        if isinstance(n_virtual_tokens, bool) or not isinstance(n_virtual_tokens, (int, np.integer)) \
                or not 1 <= n_virtual_tokens < context:
            raise ValueError(f"n_virtual_tokens must be an integer from 1 to {context - 1} (the "
                             f"context length minus room for one real token), got {n_virtual_tokens!r}")
        self.gpt = gpt.requires_grad_(False)
        self.n_virtual_tokens = int(n_virtual_tokens)
        table = gpt.token_embedding.weight.data  # (V, C)
        if init_ids is None:
            rng = rng if rng is not None else np.random.default_rng(0)
            prompt = rng.normal(0.0, float(table.std()), (self.n_virtual_tokens, table.shape[1]))
        else:
            ids = check_token_ids(init_ids, gpt.config.vocab_size)
            if ids.shape != (self.n_virtual_tokens,):
                raise ValueError(f"init_ids must hold one token id per virtual token, shape "
                                 f"({self.n_virtual_tokens},), got {ids.shape}")
            prompt = table[ids]
        self.prompt = Parameter(prompt, dtype=table.dtype)  # (P, C), the only trainable weights

    @property
    def config(self) -> GPTConfig:
        """The wrapped GPT's configuration with the context left for real tokens, so code that
        reads ``model.config.context_length`` (generation's sliding window) crops correctly."""
        return replace(self.gpt.config, context_length=self.gpt.config.context_length - self.n_virtual_tokens)

    def output_weight(self) -> Tensor:
        return self.gpt.output_weight()

    def hidden_states(self, idx: np.ndarray) -> Tensor:
        """The final-norm output at the real tokens' positions, shape (B, T, C)."""
        gpt, P = self.gpt, self.n_virtual_tokens
        idx = check_token_ids(idx, gpt.config.vocab_size)
        if idx.ndim != 2:
            raise ValueError(f"PromptTunedGPT expects token ids of shape (batch, time), got {idx.shape}")
        B, T = idx.shape
        if P + T > gpt.config.context_length:
            raise ValueError(f"{P} virtual tokens + {T} tokens = {P + T} positions, more than the "
                             f"context length {gpt.config.context_length}; at most "
                             f"{gpt.config.context_length - P} real tokens fit")
        prompt = self.prompt.expand(B, P, self.prompt.shape[1])                # (B, P, C)
        x = concatenate([prompt, gpt.token_embedding(idx)], axis=1)            # (B, P+T, C)
        x = gpt.dropout(x + gpt.positions(P + T))  # the prompt holds positions 0 .. P-1
        for block in gpt.blocks:
            x = block(x)
        return gpt.final_norm(x[:, P:])                                        # (B, T, C)

    def forward(self, idx: np.ndarray, targets: np.ndarray | None = None, cache=None):
        """Logits (B, T, V) for the real tokens; with ``targets`` (B, T), also the mean
        cross-entropy over the real tokens, as ``(logits, loss)``."""
        if cache is not None:
            raise NotImplementedError("PromptTunedGPT has no KV cache: generate with use_cache=False")
        logits = F.linear(self.hidden_states(idx), self.output_weight())  # (B, T, V)
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits, targets)

    def extra_repr(self) -> str:
        return f"n_virtual_tokens={self.n_virtual_tokens}"


# ----------------------------------------------------------------------------------------------
# Bottleneck adapters

SUBLAYERS = ("attn", "mlp")


class BottleneckAdapter(Module):
    """h + up(gelu(down(h))) with ``up`` zero at the start: the identity until it is trained."""

    def __init__(self, d_model: int, bottleneck: int, rng: np.random.Generator | None = None,
                 dtype=np.float32):
        if isinstance(bottleneck, bool) or not isinstance(bottleneck, (int, np.integer)) or bottleneck < 1:
            raise ValueError(f"the adapter bottleneck must be a positive integer, got {bottleneck!r}")
        # down: std 1/sqrt(C), so the bottleneck sees values of about the size of h's
        self.down = Linear(d_model, bottleneck, rng=rng, dtype=dtype, std=1.0 / np.sqrt(d_model))
        self.up = Linear(bottleneck, d_model, rng=rng, dtype=dtype)
        self.up.weight.data[...] = 0.0  # zero update at the start (the bias is zero already)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.up(self.down(h).gelu())  # (B, T, C) -> (B, T, m) -> (B, T, C)


class WithAdapter(Module):
    """A block's sublayer (attention or MLP) followed by a bottleneck adapter. Arguments pass
    through unchanged, so the attention's mask and KV cache still work."""

    def __init__(self, base: Module, adapter: BottleneckAdapter):
        self.base = base
        self.adapter = adapter

    def forward(self, *args, **kwargs) -> Tensor:
        return self.adapter(self.base(*args, **kwargs))


def apply_bottleneck_adapters(model: Module, sublayers: tuple[str, ...] = SUBLAYERS,
                              bottleneck: int = 16, rng: np.random.Generator | None = None) -> list[str]:
    """Wrap ``attn`` and/or ``mlp`` of every TransformerBlock in ``model`` with an adapter,
    freeze everything else, and return the wrapped names.

    careful: the wrapped sublayer's parameters move one level down (``blocks.0.attn.qkv.weight``
    becomes ``blocks.0.attn.base.qkv.weight``); ``remove_bottleneck_adapters`` restores the tree."""
    if isinstance(sublayers, str) or not sublayers or not set(sublayers) <= set(SUBLAYERS):
        raise ValueError(f"sublayers must be a non-empty tuple drawn from {SUBLAYERS}, got {sublayers!r}")
    blocks = [(name, m) for name, m in model.named_modules() if isinstance(m, TransformerBlock)]
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no TransformerBlock to put adapters in")
    wrapped = [f"{name}.{s}" for name, block in blocks for s in sublayers
               if isinstance(getattr(block, s), WithAdapter)]
    if wrapped:
        raise ValueError(f"{', '.join(wrapped)} already have a bottleneck adapter")
    rng = rng if rng is not None else np.random.default_rng(0)
    model.requires_grad_(False)
    names = []
    for name, block in blocks:
        for sublayer in sublayers:
            d_model, dtype = block.norm1.dim, block.norm1.weight.dtype
            adapter = BottleneckAdapter(d_model, bottleneck, rng=rng, dtype=dtype)
            setattr(block, sublayer, WithAdapter(getattr(block, sublayer), adapter))
            names.append(f"{name}.{sublayer}")
    return names


def remove_bottleneck_adapters(model: Module) -> list[str]:
    """Put the original sublayers back (dropping the adapters); returns the unwrapped names."""
    names = []
    blocks = [(name, m) for name, m in model.named_modules() if isinstance(m, TransformerBlock)]
    for name, block in blocks:
        for sublayer in SUBLAYERS:
            if isinstance(getattr(block, sublayer), WithAdapter):
                setattr(block, sublayer, getattr(block, sublayer).base)
                names.append(f"{name}.{sublayer}")
    if not names:
        raise ValueError(f"{type(model).__name__} has no bottleneck adapters to remove")
    return names
