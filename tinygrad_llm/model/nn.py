"""Modules: parameters with names, and the layers a GPT is built from (lessons 04-06).

A ``Module`` is a bag of named parameters and sub-modules. Everything else (collecting the
parameters for an optimizer, saving and loading them, freezing, switching dropout off for
evaluation) follows from walking that tree, so it is written once here. The names mirror
PyTorch's (``Linear``, ``Embedding``, ``state_dict``), so what you learn transfers both ways.

Discovery is by attribute: a ``Parameter``, a ``Module`` or a ``ModuleList`` assigned to an
attribute is part of the tree, in the order it was assigned. NumPy arrays that belong to the model
but are not trained (a sinusoidal position table, int8 weights later) are *buffers*, declared
with ``register_buffer``.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

import numpy as np

from ..core import functional as F
from ..core.tensor import Tensor, no_grad


class Parameter(Tensor):
    """A Tensor that is a trainable weight of a module: requires grad, owns a copy of its data."""

    __slots__ = ()

    def __init__(self, data, dtype=None, requires_grad: bool = True):
        array = np.array(data.data if isinstance(data, Tensor) else data,
                         dtype=dtype if dtype is not None else getattr(data, "dtype", np.float32))
        super().__init__(array, requires_grad=requires_grad)


class Module:
    """Base class of every layer and model."""

    training = True

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    # --- the tree ---------------------------------------------------------------------------

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Every module in the tree with its dotted name ("" for the root), parents first."""
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            yield name, module
            children = [(f"{name}.{child_name}" if name else child_name, child)
                        for child_name, child in module.named_children()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        return (module for _, module in self.named_modules())

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Every parameter once (a shared one under its first name), in definition order."""
        seen: set[int] = set()
        for module_name, module in self.named_modules():
            for name, value in vars(module).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{module_name}.{name}" if module_name else name), value

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def register_buffer(self, name: str, value: np.ndarray, persistent: bool = True) -> None:
        """Attach a NumPy array that is part of the model but not trained. Persistent buffers are
        saved in the state dict; non-persistent ones (recomputable tables) are not."""
        setattr(self, name, value)
        buffers = dict(vars(self).get("_buffers", {}))
        buffers[name] = persistent
        self._buffers = buffers

    def named_buffers(self, persistent_only: bool = False) -> Iterator[tuple[str, np.ndarray]]:
        for module_name, module in self.named_modules():
            for name, persistent in vars(module).get("_buffers", {}).items():
                if persistent or not persistent_only:
                    yield (f"{module_name}.{name}" if module_name else name), getattr(module, name)

    def get_submodule(self, name: str) -> Module:
        module = self
        for part in name.split(".") if name else []:
            child = getattr(module, part, None) if not isinstance(module, ModuleList) else \
                (module[int(part)] if part.isdigit() and int(part) < len(module) else None)
            if not isinstance(child, Module):
                raise KeyError(f"{type(self).__name__} has no sub-module {name!r}")
            module = child
        return module

    def set_submodule(self, name: str, new: Module) -> None:
        """Replace the sub-module at a dotted name (used to inject LoRA layers, quantized layers)."""
        parent_name, _, last = name.rpartition(".")
        parent = self.get_submodule(parent_name)
        self.get_submodule(name)  # raises a clear error if it does not exist
        if isinstance(parent, ModuleList):
            parent[int(last)] = new
        else:
            setattr(parent, last, new)

    def find_modules(self, pattern: str, kind: type | None = None) -> list[str]:
        """Dotted names of the sub-modules whose name matches the regular expression ``pattern``
        (searched, not anchored) and, if given, that are instances of ``kind``."""
        regex = re.compile(pattern)
        return [name for name, module in self.named_modules()
                if name and regex.search(name) and (kind is None or isinstance(module, kind))]

    # --- modes and freezing -----------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    @contextmanager
    def inference(self) -> Iterator[Module]:
        """Eval mode (dropout off) and no graph for a ``with`` block, then the previous mode back,
        also when the block raises: the one way to evaluate, generate or extract features.

            >>> layer = Dropout(0.5).train()
            >>> with layer.inference():
            ...     print(layer.training)
            False
            >>> layer.training
            True
        """
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                yield self
        finally:
            self.train(was_training)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter of this module; frozen parameters get no
        gradient computed or stored."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # --- saving and loading -----------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter and persistent buffer arrays by dotted name (shared with the model)."""
        state = {name: p.data for name, p in self.named_parameters()}
        state.update(self.named_buffers(persistent_only=True))
        return state

    def load_state_dict(self, state: dict[str, np.ndarray], strict: bool = True) -> None:
        """Copy arrays into the model's parameters and buffers, in place (so optimizers and tied
        weights keep pointing at the same arrays). With ``strict``, any missing, unexpected or
        mis-shaped key raises one error that lists them all."""
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        misshaped = [f"{k}: checkpoint {np.shape(state[k])} vs model {own[k].shape}"
                     for k in own if k in state and np.shape(state[k]) != own[k].shape]
        problems = []
        if misshaped:
            problems.append("mis-shaped keys: " + "; ".join(misshaped))
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise KeyError(f"load_state_dict into {type(self).__name__}: " + " | ".join(problems))
        for name, target in own.items():
            if name in state:
                np.copyto(target, np.asarray(state[name]), casting="same_kind")

    # --- display ----------------------------------------------------------------------------

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        children = list(self.named_children())
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        count = self.num_parameters()
        tail = f")  # {count:,} parameters" if count else ")"
        return lines[0] + tail if not children else "\n".join(lines) + "\n" + tail


class ModuleList(Module):
    """A list of modules whose parameters are part of the tree (named "0", "1", ...)."""

    def __init__(self, modules=()):
        self._items: list[Module] = list(modules)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        return ((str(i), m) for i, m in enumerate(self._items))

    def __getitem__(self, index: int) -> Module:
        return self._items[index]

    def __setitem__(self, index: int, module: Module) -> None:
        self._items[index] = module

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._items)

    def append(self, module: Module) -> None:
        self._items.append(module)


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng(0)


# ----------------------------------------------------------------------------------------------
# Layers


class Linear(Module):
    """y = x W^T + b, with W of shape (out_features, in_features) as in PyTorch.

    Initialised from N(0, std^2) with std = 0.02 (GPT-2's choice) unless ``std`` is given."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 rng: np.random.Generator | None = None, dtype=np.float32, std: float = 0.02):
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(_rng(rng).normal(0.0, std, (out_features, in_features)), dtype=dtype)
        self.bias = Parameter(np.zeros(out_features), dtype=dtype) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A trainable lookup table: row i is the vector of token i. Its backward adds the gradient
    of every use of a row into that row (a token that appears twice gets both updates)."""

    def __init__(self, num_embeddings: int, embedding_dim: int,
                 rng: np.random.Generator | None = None, dtype=np.float32, std: float = 0.02):
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(_rng(rng).normal(0.0, std, (num_embeddings, embedding_dim)), dtype=dtype)

    def forward(self, ids: np.ndarray) -> Tensor:
        ids = check_token_ids(ids, self.num_embeddings)
        return self.weight[ids]  # (..., embedding_dim)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


def check_token_ids(ids, vocab_size: int) -> np.ndarray:
    """Token ids as an integer array, or a clear error naming what is wrong."""
    if isinstance(ids, Tensor):
        raise TypeError("token ids must be an integer NumPy array, not a Tensor")
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"token ids must be integers, got {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        bad = ids[(ids < 0) | (ids >= vocab_size)].reshape(-1)[0]
        raise IndexError(f"token id {bad} is out of range for a vocabulary of {vocab_size}")
    return ids


class LayerNorm(Module):
    """Normalise each vector to mean 0 and variance 1, then scale and shift (trainable)."""

    def __init__(self, dim: int, eps: float = 1e-5, bias: bool = True, dtype=np.float32):
        self.dim, self.eps = dim, eps
        self.weight = Parameter(np.ones(dim), dtype=dtype)
        self.bias = Parameter(np.zeros(dim), dtype=dtype) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


class Dropout(Module):
    """Zero entries with probability p while training (see ``functional.dropout``)."""

    def __init__(self, p: float = 0.0, rng: np.random.Generator | None = None):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.rng = _rng(rng)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GELU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.gelu()
