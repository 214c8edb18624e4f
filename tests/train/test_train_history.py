"""TrainHistory.grad_norm (lesson 07 plots it): one gradient norm per step, before clipping,
kept through a checkpoint; a checkpoint written before the field existed still loads."""

from __future__ import annotations

import json

import numpy as np

from tinygrad_llm import GPT, GPTConfig
from tinygrad_llm.model.state import load_safetensors, save_safetensors
from tinygrad_llm.text.data import random_batch
from tinygrad_llm.train.trainer import TrainConfig, Trainer

MODEL = GPTConfig(vocab_size=10, context_length=8, d_model=16, n_layer=1, n_head=2)
TOKENS = np.tile(np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.uint16), 32)
CONFIG = TrainConfig(steps=4, batch_size=2, learning_rate=1e-2, warmup_steps=1, eval_interval=2,
                     eval_batches=1, log_interval=2, grad_clip=0.5, seed=0)


def make_trainer() -> Trainer:
    return Trainer(GPT(MODEL, np.random.default_rng(0)), TOKENS, TOKENS, CONFIG, log=None)


def test_trainer_records_the_gradient_norm_before_clipping_at_every_step():
    trainer = make_trainer()
    norms = []
    original = trainer.train_step

    def step_and_measure():
        # the norm the step will see: the same batch, drawn from a copy of the batch generator
        probe = make_trainer()
        probe.model.load_state_dict(trainer.model.state_dict())
        probe.rng.bit_generator.state = trainer.rng.bit_generator.state
        inputs, targets = random_batch(TOKENS, CONFIG.batch_size, MODEL.context_length, probe.rng)
        probe.model.zero_grad()
        probe.model(inputs, targets)[1].backward()
        norms.append(float(np.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in probe.model.parameters()
                                       if p.grad is not None))))   # the norm, not clipped
        return original()

    trainer.train_step = step_and_measure
    history = trainer.train()
    assert len(history.grad_norm) == CONFIG.steps
    np.testing.assert_allclose(history.grad_norm, norms, rtol=1e-5)
    assert max(history.grad_norm) > CONFIG.grad_clip, "the recorded norm is the one before clipping"


def test_a_checkpoint_keeps_the_norms_and_an_older_one_without_them_loads(tmp_path):
    trainer = make_trainer()
    trainer.train()
    path = tmp_path / "model.safetensors"
    trainer.save(path)
    resumed = make_trainer()
    resumed.load(path)
    assert resumed.history.grad_norm == trainer.history.grad_norm
    # the same checkpoint as written before grad_norm existed: its history has no such key
    tensors, metadata = load_safetensors(path)
    history = json.loads(metadata["history"])
    del history["grad_norm"]
    older = tmp_path / "older.safetensors"
    save_safetensors(older, {name: np.array(a) for name, a in tensors.items()},
                     {**metadata, "history": json.dumps(history)})
    from_older = make_trainer()
    from_older.load(older)
    assert from_older.history.grad_norm == [] and from_older.history.train_loss == trainer.history.train_loss
