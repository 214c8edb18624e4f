"""A PyTorch twin of ``tinygrad_llm.GPT`` for benchmarks: same architecture, same weight names
where they matter, so weights can be copied across. Imported only by benchmark scripts.

``torch_generate`` is greedy decoding for it, with or without a key/value cache written the
plain way (preallocated buffers, one position per step), the reference for our ``generate``."""

from __future__ import annotations

import math

import numpy as np


def build_torch_gpt(config, state: dict[str, np.ndarray] | None = None):
    """A torch ``nn.Module`` with ``forward(idx, targets=None)``; ``state`` (our state_dict) is
    copied in when given."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    C, H = config.d_model, config.n_head

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1 = nn.LayerNorm(C, bias=config.bias)
            self.qkv = nn.Linear(C, 3 * C, bias=config.bias)
            self.proj = nn.Linear(C, C, bias=config.bias)
            self.norm2 = nn.LayerNorm(C, bias=config.bias)
            self.up = nn.Linear(C, 4 * C, bias=config.bias)
            self.down = nn.Linear(4 * C, C, bias=config.bias)

        def forward(self, x, kv=None):
            B, T, _ = x.shape
            q, k, v = self.qkv(self.norm1(x)).view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
            if kv is not None:  # (keys, values, start): write the new positions, attend to all
                keys, values, start = kv
                keys[:, :, start:start + T] = k
                values[:, :, start:start + T] = v
                k, v = keys[:, :, :start + T], values[:, :, :start + T]
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(C // H)  # (B, H, T, Tk)
            if T > 1:  # a single query is the last position and sees every key (as in our GPT)
                Tk = k.shape[2]
                mask = torch.triu(torch.ones(T, Tk, dtype=torch.bool), diagonal=Tk - T + 1)
                scores = scores.masked_fill(mask, float("-inf"))
            y = scores.softmax(-1) @ v
            x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
            return x + self.down(F.gelu(self.up(self.norm2(x)), approximate="tanh"))

    class TorchGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = config
            self.token_embedding = nn.Embedding(config.vocab_size, C)
            self.position_embedding = nn.Embedding(config.context_length, C)
            self.blocks = nn.ModuleList(Block() for _ in range(config.n_layer))
            self.final_norm = nn.LayerNorm(C, bias=config.bias)

        def forward(self, idx, targets=None, cache=None):
            """``cache``: a dict with "keys", "values" (n_layer, B, H, context, hs) and "length",
            for inference; ``idx`` then holds only the new tokens."""
            start = 0 if cache is None else cache["length"]
            x = self.token_embedding(idx) + self.position_embedding.weight[start:start + idx.shape[1]]
            for i, block in enumerate(self.blocks):
                x = block(x, None if cache is None else (cache["keys"][i], cache["values"][i], start))
            if cache is not None:
                cache["length"] += idx.shape[1]
            logits = self.final_norm(x) @ self.token_embedding.weight.T
            if targets is None:
                return logits
            return logits, F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    model = TorchGPT()
    if state is not None:
        names = {"attn.qkv": "qkv", "attn.proj": "proj", "mlp.up": "up", "mlp.down": "down"}
        converted = {}
        for name, array in state.items():
            for ours, theirs in names.items():
                name = name.replace(ours, theirs)
            converted[name] = torch.tensor(np.asarray(array))
        model.load_state_dict(converted, strict=True)
    return model


def torch_generate(model, idx, max_new_tokens: int, use_cache: bool = True):
    """Greedy decoding with the model from ``build_torch_gpt``: ``idx`` (B, T) int64 tensor in,
    (B, T + max_new_tokens) out. Without ``use_cache`` every step re-encodes the whole sequence.
    The sequence must fit the context (no window slide: this is a benchmark, not a library)."""
    import torch

    config = model.config
    if idx.shape[1] + max_new_tokens > config.context_length:
        raise ValueError("torch_generate: prompt + new tokens must fit the context length")
    B = idx.shape[0]
    cache = None
    if use_cache:
        shape = (config.n_layer, B, config.n_head, config.context_length, config.d_model // config.n_head)
        cache = {"keys": torch.zeros(shape), "values": torch.zeros(shape), "length": 0}
    tokens, pending = idx, idx
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            logits = model(pending, cache=cache) if use_cache else model(tokens)
            chosen = logits[:, -1, :].argmax(dim=-1, keepdim=True)  # (B, 1)
            tokens = torch.cat([tokens, chosen], dim=1)
            pending = chosen
    return tokens
