"""A PyTorch twin of ``tinygrad_llm.GPT`` for benchmarks: same architecture, same weight names
where they matter, so weights can be copied across. Imported only by benchmark scripts."""

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

        def forward(self, x):
            B, T, _ = x.shape
            q, k, v = self.qkv(self.norm1(x)).view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(C // H)
            mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
            y = scores.masked_fill(mask, float("-inf")).softmax(-1) @ v
            x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
            return x + self.down(F.gelu(self.up(self.norm2(x)), approximate="tanh"))

    class TorchGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.token_embedding = nn.Embedding(config.vocab_size, C)
            self.position_embedding = nn.Embedding(config.context_length, C)
            self.blocks = nn.ModuleList(Block() for _ in range(config.n_layer))
            self.final_norm = nn.LayerNorm(C, bias=config.bias)

        def forward(self, idx, targets=None):
            x = self.token_embedding(idx) + self.position_embedding.weight[: idx.shape[1]]
            for block in self.blocks:
                x = block(x)
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
