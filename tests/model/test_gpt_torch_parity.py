"""Optional: our GPT and an equivalent PyTorch GPT, with the same weights, agree in logits, loss
and every parameter gradient (float64, 1e-9). The torch model is written here from the GPT-2
recipe, independently of ours: pre-LayerNorm blocks, a fused qkv Linear, causal softmax
attention, a tanh-GELU MLP, learned positions and a head tied to the token embedding."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm import GPT, AdamW, GPTConfig

torch = pytest.importorskip("torch")
nn = torch.nn


class TorchBlock(nn.Module):
    def __init__(self, d_model: int, n_head: int, bias: bool):
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(d_model, eps=1e-5, bias=bias)
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self.ln2 = nn.LayerNorm(d_model, eps=1e-5, bias=bias)
        self.up = nn.Linear(d_model, 4 * d_model, bias=bias)
        self.down = nn.Linear(4 * d_model, d_model, bias=bias)

    def attention(self, x):
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.qkv(x).split(C, dim=-1)
        q, k, v = (t.view(B, T, self.n_head, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        scores = q @ k.transpose(-2, -1) / hs ** 0.5
        future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
        y = (weights @ v).transpose(1, 2).reshape(B, T, C)
        return self.proj(y)

    def forward(self, x):
        x = x + self.attention(self.ln1(x))
        return x + self.down(nn.functional.gelu(self.up(self.ln2(x)), approximate="tanh"))


class TorchGPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.d_model)
        self.wpe = nn.Embedding(config.context_length, config.d_model)
        self.blocks = nn.ModuleList(TorchBlock(config.d_model, config.n_head, config.bias)
                                    for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.d_model, eps=1e-5, bias=config.bias)

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for block in self.blocks:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.T  # the tied head
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss


# our name -> torch name
def name_map(config: GPTConfig) -> dict[str, str]:
    names = {"token_embedding.weight": "wte.weight", "position_embedding.weight": "wpe.weight",
             "final_norm.weight": "ln_f.weight", "final_norm.bias": "ln_f.bias"}
    ours_to_torch = {"norm1": "ln1", "attn.qkv": "qkv", "attn.proj": "proj", "norm2": "ln2",
                     "mlp.up": "up", "mlp.down": "down"}
    for i in range(config.n_layer):
        for ours, theirs in ours_to_torch.items():
            for kind in ("weight", "bias"):
                names[f"blocks.{i}.{ours}.{kind}"] = f"blocks.{i}.{theirs}.{kind}"
    return names


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_gpt_matches_torch_in_logits_loss_and_gradients(bias):
    config = GPTConfig(vocab_size=37, context_length=12, d_model=24, n_layer=2, n_head=3, bias=bias)
    rng = np.random.default_rng(0)
    ours = GPT(config, rng, dtype=np.float64)
    for p in ours.parameters():  # O(1) weights, so that every gradient is sizeable
        p.data[...] = rng.normal(0.0, 0.3, p.shape)
    theirs = TorchGPT(config).double()

    names = name_map(config)
    ours_params = dict(ours.named_parameters())
    theirs_params = dict(theirs.named_parameters())
    assert set(ours_params) <= set(names) and set(theirs_params) == {names[n] for n in ours_params}
    with torch.no_grad():
        for name, p in ours_params.items():
            theirs_params[names[name]].copy_(torch.from_numpy(p.data))

    idx = rng.integers(0, config.vocab_size, (3, 10))
    targets = rng.integers(0, config.vocab_size, (3, 10))
    logits, loss = ours(idx, targets)
    loss.backward()
    torch_logits, torch_loss = theirs(torch.from_numpy(idx), torch.from_numpy(targets))
    torch_loss.backward()

    np.testing.assert_allclose(logits.data, torch_logits.detach().numpy(), rtol=1e-9, atol=1e-9)
    assert loss.item() == pytest.approx(torch_loss.item(), rel=1e-9, abs=1e-9)
    for name, p in ours_params.items():
        expected = theirs_params[names[name]].grad.numpy()
        assert np.abs(expected).max() > 1e-6, name  # a gradient worth comparing
        np.testing.assert_allclose(p.grad, expected, rtol=1e-9, atol=1e-9, err_msg=name)


def test_gpt_and_torch_stay_equal_through_three_adamw_steps():
    config = GPTConfig(vocab_size=19, context_length=6, d_model=8, n_layer=1, n_head=2)
    rng = np.random.default_rng(1)
    ours = GPT(config, rng, dtype=np.float64)
    theirs = TorchGPT(config).double()
    names = name_map(config)
    theirs_params = dict(theirs.named_parameters())
    with torch.no_grad():
        for name, p in ours.named_parameters():
            theirs_params[names[name]].copy_(torch.from_numpy(p.data))

    idx, targets = rng.integers(0, 19, (2, 6)), rng.integers(0, 19, (2, 6))
    ours_opt = AdamW(ours.parameters(), lr=0.01, betas=(0.9, 0.95), weight_decay=0.1)
    theirs_opt = torch.optim.AdamW(theirs.parameters(), lr=0.01, betas=(0.9, 0.95), weight_decay=0.1)
    for _ in range(3):
        _, loss = ours(idx, targets)
        ours_opt.zero_grad()
        loss.backward()
        ours_opt.step()
        _, torch_loss = theirs(torch.from_numpy(idx), torch.from_numpy(targets))
        theirs_opt.zero_grad()
        torch_loss.backward()
        theirs_opt.step()
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.data, theirs_params[names[name]].detach().numpy(),
                                   rtol=1e-9, atol=1e-9, err_msg=name)
