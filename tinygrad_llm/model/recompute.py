"""Activation checkpointing: keep a block's input, recompute its inside during backward (lesson 17).

Unlike a plain forward pass, which keeps every intermediate array a block's backward will need
(the attention probabilities, the MLP's 4C-wide activations, ...), a checkpointed block runs its
forward without recording a graph and keeps only its input. When the gradient reaches it, it runs
the forward again, this time recording, and backpropagates through that fresh graph at once. The
activations of one block live at a time instead of all of them: memory falls from about
n_layer x (one block's activations) to one block's plus the n_layer inputs, for one more forward
pass of compute (about a third more time, since backward costs twice the forward).

Dropout must drop the same entries the second time: the random generators of the block's dropout
layers are saved before the first run and restored for the second.
"""

from __future__ import annotations

import numpy as np

from ..core.tensor import Tensor, enable_grad, is_grad_enabled, no_grad
from .nn import Dropout, Module


def _generators(module: Module) -> list[np.random.Generator]:
    seen, out = set(), []
    for m in module.modules():
        rng = getattr(m, "rng", None)
        if isinstance(m, Dropout) or isinstance(rng, np.random.Generator):
            if isinstance(rng, np.random.Generator) and id(rng) not in seen:
                seen.add(id(rng))
                out.append(rng)
    return out


def checkpoint(module: Module, x: Tensor, *args) -> Tensor:
    """``module(x, *args)``, keeping only ``x``: the graph inside is rebuilt during backward.
    Gradients reach ``x`` and every parameter of ``module`` exactly as without checkpointing."""
    if not (is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in module.parameters()))):
        return module(x, *args)
    generators = _generators(module)
    states = [g.bit_generator.state for g in generators]
    with no_grad():
        out = module(x, *args)

    def backward(g):
        after = [gen.bit_generator.state for gen in generators]
        for gen, state in zip(generators, states):   # the same dropout masks as the first run
            gen.bit_generator.state = state
        leaf = Tensor(x.data, requires_grad=x.requires_grad)
        with enable_grad():
            y = module(leaf, *args)
        for gen, state in zip(generators, after):
            gen.bit_generator.state = state
        y.backward(g)                                # parameters of module get their gradients here
        return (leaf.grad,)

    return Tensor.from_op(out.data, (x,), backward)


class Checkpointed(Module):
    """Wraps a transformer block so that training runs it through ``checkpoint``; inference with
    a KV cache calls the block directly (there is no backward to save memory for)."""

    def __init__(self, block: Module):
        self.block = block

    def forward(self, x: Tensor, mask=None, kv=None) -> Tensor:
        if kv is not None:
            return self.block(x, mask, kv)
        return checkpoint(self.block, x, mask)


def checkpoint_blocks(model: Module) -> int:
    """Wrap every ``blocks.N`` of ``model`` in ``Checkpointed``, in place; returns how many.
    Parameter names gain a ``.block`` level (``blocks.0.block.attn...``); ``uncheckpoint_blocks``
    undoes it before saving."""
    names = [name for name, m in model.named_modules()
             if name.startswith("blocks.") and name.count(".") == 1 and not isinstance(m, Checkpointed)]
    for name in names:
        model.set_submodule(name, Checkpointed(model.get_submodule(name)))
    return len(names)


def uncheckpoint_blocks(model: Module) -> int:
    """Put the plain blocks back; returns how many were wrapped."""
    names = [name for name, m in model.named_modules() if isinstance(m, Checkpointed)]
    for name in names:
        model.set_submodule(name, model.get_submodule(name).block)
    return len(names)
