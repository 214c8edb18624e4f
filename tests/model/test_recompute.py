"""Activation checkpointing: the same loss and gradients as a plain pass, with less memory held."""

from __future__ import annotations

import tracemalloc

import numpy as np

from tinygrad_llm import GPT, GPTConfig
from tinygrad_llm.model.recompute import checkpoint_blocks, uncheckpoint_blocks

CONFIG = GPTConfig(vocab_size=50, context_length=32, d_model=64, n_layer=4, n_head=4, dropout=0.1)


def loss_and_grads(checkpointed: bool):
    model = GPT(CONFIG, rng=np.random.default_rng(0))
    names = [name for name, _ in model.named_parameters()]
    if checkpointed:
        assert checkpoint_blocks(model) == 4
    ids = np.random.default_rng(1).integers(0, 50, (8, 33))
    _, loss = model(ids[:, :-1], targets=ids[:, 1:])
    loss.backward()
    if checkpointed:
        assert uncheckpoint_blocks(model) == 4
    grads = dict((name, p.grad) for name, p in model.named_parameters())
    assert list(grads) == names
    return float(loss.item()), grads


def test_checkpointed_blocks_give_the_same_loss_and_gradients_with_dropout():
    plain_loss, plain = loss_and_grads(False)
    loss, grads = loss_and_grads(True)
    assert loss == plain_loss
    for name in plain:
        np.testing.assert_array_equal(grads[name], plain[name], err_msg=name)


def peak_bytes(checkpointed: bool) -> int:
    model = GPT(CONFIG, rng=np.random.default_rng(0))
    if checkpointed:
        checkpoint_blocks(model)
    ids = np.random.default_rng(1).integers(0, 50, (16, 33))
    tracemalloc.start()
    _, loss = model(ids[:, :-1], targets=ids[:, 1:])
    held = tracemalloc.get_traced_memory()[0]   # what the graph keeps between forward and backward
    loss.backward()
    tracemalloc.stop()
    return held


def test_checkpointing_keeps_far_less_between_forward_and_backward():
    assert peak_bytes(True) < 0.5 * peak_bytes(False)
