"""The shared training loop: determinism, learning, NaN detection, progress lines, and
checkpoints that resume exactly."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from tinygrad_llm import GPT, GPTConfig
from tinygrad_llm.model.state import CheckpointError, load_safetensors, save_safetensors
from tinygrad_llm.train.trainer import (CHECKPOINT_FORMAT, TrainConfig, Trainer, estimate_loss,
                                   load_checkpoint_file, load_model)

MODEL = GPTConfig(vocab_size=10, context_length=8, d_model=16, n_layer=1, n_head=2)
# A repeating sentence: "1" is followed by 4 or by 5, so predicting it well needs context.
TOKENS = np.tile(np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.uint16), 64)
VAL_TOKENS = np.tile(np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.uint16), 8)


def train_config(**changes) -> TrainConfig:
    settings = dict(steps=10, batch_size=4, learning_rate=1e-2, min_learning_rate=1e-3,
                    warmup_steps=2, eval_interval=4, eval_batches=2, log_interval=2, seed=0)
    settings.update(changes)
    return TrainConfig(**settings)


def make_trainer(model_config=MODEL, model_seed=0, log=None, **changes) -> Trainer:
    model = GPT(model_config, np.random.default_rng(model_seed))
    return Trainer(model, TOKENS, VAL_TOKENS, train_config(**changes), log=log, tokenizer_ref="tok.json")


# ----------------------------------------------------------------------------------------------
# Training


def test_the_same_seed_gives_the_same_losses_and_another_seed_does_not():
    first = make_trainer().train()
    second = make_trainer().train()
    assert first.train_loss == second.train_loss and len(first.train_loss) == 10
    assert first.val_loss == second.val_loss
    other = make_trainer(seed=1).train()
    assert other.train_loss != first.train_loss


def test_loss_goes_down_on_a_repetitive_sequence():
    trainer = make_trainer(steps=60, batch_size=8, warmup_steps=5, eval_interval=20)
    history = trainer.train()
    assert history.train_loss[0] == pytest.approx(math.log(MODEL.vocab_size), abs=0.15)
    # The sequence is predictable from context except after a lone "1" at the start of a
    # window, so the loss can fall far below ln 10 = 2.3; 60 steps reach about 0.12.
    assert np.mean(history.train_loss[-5:]) < 0.4
    assert history.val_loss[-1] < 0.4
    assert history.val_loss == sorted(history.val_loss, reverse=True)


def test_validation_runs_every_eval_interval_and_at_the_end():
    history = make_trainer(eval_interval=4).train()
    assert history.steps == list(range(1, 11))
    assert history.eval_steps == [4, 8, 10]
    assert history.val_perplexity == pytest.approx([math.exp(v) for v in history.val_loss])
    assert history.tokens_per_second > 0


def test_training_can_be_split_into_calls_and_stops_at_the_configured_steps():
    trainer = make_trainer()
    trainer.train(steps=3)
    assert trainer.step == 3
    trainer.train(steps=100)
    assert trainer.step == 10
    trainer.train()
    assert trainer.step == 10 and len(trainer.history.train_loss) == 10


def test_a_time_limit_stops_after_the_step_that_exceeds_it():
    trainer = make_trainer()
    trainer.train(time_limit=0.0)
    assert trainer.step == 1 and trainer.history.eval_steps == [1]


def test_progress_lines_show_step_loss_validation_speed_elapsed_and_eta():
    lines = []
    make_trainer(log=lines.append, log_interval=5, eval_interval=4).train()
    # a line at every log_interval, every evaluation and the end: steps 4, 5, 8, 10
    assert [int(line.split()[1].split("/")[0]) for line in lines] == [4, 5, 8, 10]
    line = lines[0]
    assert line.startswith("step     4/10 | loss ")
    for part in ("| val ", "(ppl ", "tok/s", "elapsed", "| ETA "):
        assert part in line, part
    assert "val" not in lines[1]


def test_estimate_loss_is_repeatable_and_restores_the_training_mode():
    model = GPT(dataclasses.replace(MODEL, dropout=0.3), np.random.default_rng(0))
    first = estimate_loss(model, VAL_TOKENS, batch_size=4, num_batches=3)
    assert model.training
    assert estimate_loss(model, VAL_TOKENS, batch_size=4, num_batches=3) == first  # eval mode: no dropout
    model.eval()
    estimate_loss(model, VAL_TOKENS, batch_size=4, num_batches=3)
    assert not model.training


def test_a_nan_loss_stops_training_with_a_clear_message():
    trainer = make_trainer()
    trainer.train(steps=2)
    trainer.model.blocks[0].mlp.up.weight.data[0, 0] = np.nan
    with pytest.raises(FloatingPointError, match=r"training loss became nan at step 2; stopping"):
        trainer.train()
    assert trainer.step == 2 and len(trainer.history.train_loss) == 2


def test_a_huge_learning_rate_ends_in_a_clear_error_not_garbage():
    # Adam moves every weight by about lr per step: 1e38 overflows float32 on the first update.
    trainer = make_trainer(learning_rate=1e38, min_learning_rate=1e37, warmup_steps=1)
    with pytest.raises(FloatingPointError, match="Lower the learning rate"):
        with np.errstate(all="ignore"):
            trainer.train()


def test_the_trainer_rejects_too_few_tokens_and_bad_settings():
    model = GPT(MODEL)
    with pytest.raises(ValueError, match="training set has 8 tokens, fewer than one window"):
        Trainer(model, TOKENS[:8], config=train_config())
    with pytest.raises(ValueError, match="validation set has 5 tokens"):
        Trainer(model, TOKENS, TOKENS[:5], config=train_config())
    with pytest.raises(ValueError, match=r"TrainConfig.steps must be an integer >= 1"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
        TrainConfig(learning_rate=0.0)


# ----------------------------------------------------------------------------------------------
# Checkpoints


def test_resuming_from_a_checkpoint_continues_exactly(tmp_path):
    config = dataclasses.replace(MODEL, dropout=0.2)  # so the dropout generator's state matters too
    uninterrupted = make_trainer(config)
    uninterrupted.train()

    first_half = make_trainer(config)
    first_half.train(steps=5)
    path = tmp_path / "run" / "step5.safetensors"
    first_half.save(path)

    resumed = make_trainer(config, model_seed=123)  # other initial weights, a fresh generator
    resumed.load(path)
    assert resumed.step == 5
    resumed.train(steps=5)

    assert resumed.history.train_loss == uninterrupted.history.train_loss
    for (name, a), b in zip(uninterrupted.model.named_parameters(), resumed.model.parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    # without restoring the dropout generator the losses would differ: the check has teeth
    forgetful = make_trainer(config, model_seed=123)
    forgetful.load(path)
    forgetful.model.blocks[0].attn.rng.bit_generator.state = np.random.default_rng(7).bit_generator.state
    forgetful.train(steps=5)
    assert forgetful.history.train_loss[5:] != uninterrupted.history.train_loss[5:]


def test_a_checkpoint_holds_weights_optimizer_state_and_configs(tmp_path):
    trainer = make_trainer()
    trainer.train(steps=3)
    path = tmp_path / "ckpt.safetensors"
    trainer.save(path)
    tensors, metadata = load_checkpoint_file(path)
    assert metadata["format"] == CHECKPOINT_FORMAT and metadata["step"] == "3"
    assert metadata["tokenizer"] == "tok.json"
    assert GPTConfig(**json.loads(metadata["model_config"])) == MODEL
    assert json.loads(metadata["train_config"])["steps"] == 10
    names = set(tensors)
    assert {f"model.{k}" for k in trainer.model.state_dict()} <= names
    # AdamW keeps two moments per parameter
    assert sum(k.startswith("optimizer.") for k in names) == 3 * len(trainer.model.parameters())  # m, v, step


def test_loading_into_a_model_of_another_config_names_the_mismatch(tmp_path):
    trainer = make_trainer()
    path = tmp_path / "ckpt.safetensors"
    trainer.save(path)
    other = make_trainer(dataclasses.replace(MODEL, d_model=32))
    with pytest.raises(CheckpointError, match="does not match") as info:
        other.load(path)
    message = str(info.value)
    assert str(path) in message and "d_model=16" in message and "d_model=32" in message


def test_load_model_builds_the_model_from_the_stored_config(tmp_path):
    config = dataclasses.replace(MODEL, position="sinusoidal", tie_weights=False, bias=False)
    trainer = make_trainer(config)
    trainer.train(steps=2)
    path = tmp_path / "ckpt.safetensors"
    trainer.save(path)
    model, metadata = load_model(path)
    assert model.config == config and metadata["tokenizer"] == "tok.json"
    idx = TOKENS[:8][None].astype(np.int64)
    trainer.model.eval()
    np.testing.assert_array_equal(model(idx).data, trainer.model(idx).data)
    model64, _ = load_model(path, dtype=np.float64)
    assert model64.parameters()[0].dtype == np.float64


def test_a_safetensors_file_that_is_not_a_checkpoint_is_rejected(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_safetensors(path, {"w": np.zeros(3)}, {"format": "pt"})
    with pytest.raises(CheckpointError, match="not a tinygrad_llm checkpoint"):
        load_model(path)
    with pytest.raises(CheckpointError, match="not a tinygrad_llm checkpoint"):
        make_trainer().load(path)
    save_safetensors(path, {}, None)
    with pytest.raises(CheckpointError, match="not a tinygrad_llm checkpoint"):
        load_model(path)


def test_a_checkpoint_of_another_version_is_rejected(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    make_trainer().save(path)
    tensors, metadata = load_safetensors(path)
    save_safetensors(path, dict(tensors), {**metadata, "version": "999"})
    with pytest.raises(CheckpointError, match="checkpoint version 999"):
        load_model(path)
