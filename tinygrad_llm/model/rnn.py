"""Recurrent language models: the baseline attention replaced (lesson 20, the first of the model-families lessons).

Unlike ``gpt``, where every position looks at every earlier one at once, a recurrent network reads
the tokens in order and carries everything it remembers in one state vector h of fixed size:

    Elman:  h_t = tanh(W x_t + U h_{t-1} + b)
    GRU:    r = σ(W_r x + U_r h + b_r),  z = σ(W_z x + U_z h + b_z)           reset and update gates
            n = tanh(W_n x + b_n + r ⊙ (U_n h + b_hn)),  h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
    LSTM:   i, f, o = σ(...), g = tanh(...);  c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t)

(the gate order and bias placement of PyTorch's ``nn.GRU`` and ``nn.LSTM``, so weights carry over).
The input projections W x of all T positions are one matrix product; the recurrent part U h must
run step after step, since each step needs the one before: T small products in sequence, where
attention does one large product for all positions. Gradients flow back through every step
(backpropagation through time); training cuts the text into windows and carries the state from
one window to the next without its graph (truncated BPTT).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import functional as F
from ..core.checks import check_choice, check_fraction, check_positive_int
from ..core.tensor import Tensor, stack
from .nn import Dropout, Embedding, Linear, Module, ModuleList, check_token_ids

CELLS = ("elman", "gru", "lstm")
GATES = {"elman": 1, "gru": 3, "lstm": 4}


@dataclass(frozen=True)
class RNNConfig:
    """A recurrent language model: ``cell`` ("elman", "gru", "lstm") with ``hidden_size`` units in
    each of ``n_layer`` layers over ``d_model``-wide token embeddings; ``context_length`` is the
    window of truncated backpropagation through time."""

    vocab_size: int
    context_length: int = 128
    d_model: int = 128
    hidden_size: int = 256
    n_layer: int = 1
    cell: str = "gru"
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("vocab_size", "context_length", "d_model", "hidden_size", "n_layer"):
            check_positive_int(f"RNNConfig.{name}", getattr(self, name))
        check_choice("RNNConfig.cell", self.cell, CELLS)
        check_fraction("RNNConfig.dropout", self.dropout, high_open=True)


class RecurrentLayer(Module):
    """One layer of ``cell`` units: ``input`` projects every position at once, ``recurrent`` runs
    once per step on the previous state."""

    def __init__(self, cell: str, in_features: int, hidden_size: int, rng=None, dtype=np.float32):
        self.cell, self.hidden_size = check_choice("cell", cell, CELLS), hidden_size
        gates = GATES[cell] * hidden_size
        std = 1.0 / np.sqrt(hidden_size)   # PyTorch's init for recurrent layers: U(-1/√H, 1/√H)
        self.input = Linear(in_features, gates, rng=rng, dtype=dtype)
        self.recurrent = Linear(hidden_size, gates, rng=rng, dtype=dtype)
        rng = np.random.default_rng(0) if rng is None else rng
        for layer in (self.input, self.recurrent):
            layer.weight.data[...] = rng.uniform(-std, std, layer.weight.shape)
            layer.bias.data[...] = rng.uniform(-std, std, layer.bias.shape)

    def initial_state(self, batch_size: int, dtype) -> tuple[Tensor, ...]:
        zeros = Tensor(np.zeros((batch_size, self.hidden_size), dtype=dtype))
        return (zeros, zeros) if self.cell == "lstm" else (zeros,)

    def step(self, projected: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """One time step: ``projected`` = W x_t + b (B, gates), ``state`` = (h,) or (h, c)."""
        H, h = self.hidden_size, state[0]
        recurrent = self.recurrent(h)                                   # (B, gates)
        if self.cell == "elman":
            return ((projected + recurrent).tanh(),)
        if self.cell == "gru":
            r = (projected[:, :H] + recurrent[:, :H]).sigmoid()
            z = (projected[:, H:2 * H] + recurrent[:, H:2 * H]).sigmoid()
            n = (projected[:, 2 * H:] + r * recurrent[:, 2 * H:]).tanh()
            return (n + z * (h - n),)                                    # (1 - z) n + z h
        gates = projected + recurrent
        i, f = gates[:, :H].sigmoid(), gates[:, H:2 * H].sigmoid()
        g, o = gates[:, 2 * H:3 * H].tanh(), gates[:, 3 * H:].sigmoid()
        c = f * state[1] + i * g
        return (o * c.tanh(), c)

    def forward(self, x: Tensor, state: tuple[Tensor, ...] | None = None) -> tuple[Tensor, tuple[Tensor, ...]]:
        """``x`` (B, T, in) -> the hidden states (B, T, H) and the state after the last step."""
        B, T, _ = x.shape
        state = self.initial_state(B, x.dtype) if state is None else state
        projected = self.input(x)                                       # (B, T, gates): all steps at once
        outputs = []
        for t in range(T):                                              # careful: inherently sequential
            state = self.step(projected[:, t], state)
            outputs.append(state[0])
        return stack(outputs, axis=1), state


class RNNLanguageModel(Module):
    """Embedding -> recurrent layers -> a linear head over the vocabulary.

    >>> model = RNNLanguageModel(RNNConfig(vocab_size=20, d_model=8, hidden_size=12, cell="lstm"))
    >>> logits, state = model(np.array([[1, 2, 3]]))
    >>> logits.shape, len(state), state[0][0].shape
    ((1, 3, 20), 1, (1, 12))
    """

    def __init__(self, config: RNNConfig, rng: np.random.Generator | None = None, dtype=np.float32):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.config = config
        self.token_embedding = Embedding(config.vocab_size, config.d_model, rng=rng, dtype=dtype)
        sizes = [config.d_model] + [config.hidden_size] * (config.n_layer - 1)
        self.layers = ModuleList(RecurrentLayer(config.cell, n, config.hidden_size, rng, dtype) for n in sizes)
        self.dropout = Dropout(config.dropout, rng)
        self.head = Linear(config.hidden_size, config.vocab_size, rng=rng, dtype=dtype)

    def forward(self, idx: np.ndarray, targets: np.ndarray | None = None, state: list | None = None):
        """Logits (B, T, V) and the state of every layer after the last step (pass it to the next
        window; ``detach_state`` cuts its graph). With ``targets``: ((logits, state), loss), so
        that ``model(inputs, targets)[1]`` is the loss, as for ``GPT``, and the Trainer's default
        objective and validation loss work unchanged."""
        idx = check_token_ids(idx, self.config.vocab_size)
        if idx.ndim != 2 or idx.shape[1] == 0:
            raise ValueError(f"token ids must have shape (batch, time) with time >= 1, got {idx.shape}")
        x = self.dropout(self.token_embedding(idx))
        states = []
        for i, layer in enumerate(self.layers):
            x, layer_state = layer(x, None if state is None else state[i])
            x = self.dropout(x)
            states.append(layer_state)
        logits = self.head(x)
        if targets is None:
            return logits, states
        loss = F.cross_entropy(logits.reshape(-1, self.config.vocab_size), np.asarray(targets).reshape(-1))
        return (logits, states), loss


def detach_state(state: list[tuple[Tensor, ...]]) -> list[tuple[Tensor, ...]]:
    """The same state without its graph: truncated BPTT carries the values, not the gradients."""
    return [tuple(Tensor(t.data.copy()) for t in layer) for layer in state]
