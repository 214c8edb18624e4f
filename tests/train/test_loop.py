"""The one loop's parts: settings refused by name, the non-finite guard, hooks, batch sources."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from tinygrad_llm import Mix, RandomWindows, ShuffledRows, TrainHook
from tinygrad_llm.model.gpt import GPT, GPTConfig
from tinygrad_llm.model.nn import Parameter
from tinygrad_llm.train import batches
from tinygrad_llm.train.batches import MixedBatch, items_of, mix_rows, rows_of
from tinygrad_llm.train.optim import clip_grad_norm_
from tinygrad_llm.train.trainer import TrainConfig, Trainer, TrainHistory

MODEL = GPTConfig(vocab_size=20, context_length=8, d_model=16, n_layer=1, n_head=2)
TOKENS = (np.arange(400) % 20).astype(np.uint16)


def test_module_docstring_examples_run():
    result = doctest.testmod(batches)
    assert result.attempted >= 4 and result.failed == 0


def small_config(**changes) -> TrainConfig:
    settings = dict(steps=6, batch_size=4, learning_rate=1e-2, min_learning_rate=1e-3, warmup_steps=1,
                    eval_interval=3, eval_batches=1, log_interval=100)
    return TrainConfig(**{**settings, **changes})


@pytest.mark.parametrize("setting, value, error, message", [
    ("learning_rate", math.nan, ValueError, "TrainConfig.learning_rate must be a finite number > 0, got nan"),
    ("learning_rate", math.inf, ValueError, "TrainConfig.learning_rate must be a finite number > 0"),
    ("learning_rate", -1e-3, ValueError, "TrainConfig.learning_rate must be a finite number > 0"),
    ("min_learning_rate", -1.0, ValueError, r"TrainConfig.min_learning_rate must be a finite number in \[0,"),
    ("min_learning_rate", 1.0, ValueError, r"TrainConfig.min_learning_rate must be a finite number in \[0,"),
    ("min_learning_rate", math.nan, ValueError, "TrainConfig.min_learning_rate"),
    ("grad_clip", -1.0, ValueError, "TrainConfig.grad_clip must be a finite number > 0"),
    ("grad_clip", 0.0, ValueError, "TrainConfig.grad_clip must be a finite number > 0"),
    ("grad_clip", math.nan, ValueError, "TrainConfig.grad_clip"),
    ("warmup_steps", -10, ValueError, "TrainConfig.warmup_steps must be an integer >= 0"),
    ("weight_decay", math.nan, ValueError, "TrainConfig.weight_decay must be a finite number >= 0"),
    ("weight_decay", -0.1, ValueError, "TrainConfig.weight_decay must be a finite number >= 0"),
    ("steps", True, TypeError, "TrainConfig.steps must be an integer, got True"),
    ("steps", 10.5, TypeError, "TrainConfig.steps must be an integer"),
    ("batch_size", 0, ValueError, "TrainConfig.batch_size must be an integer >= 1"),
    ("seed", -1, ValueError, "TrainConfig.seed must be an integer >= 0"),
    ("betas", (0.9, 1.0), ValueError, r"TrainConfig.betas\[1\] must be a finite number in \[0, 1\)"),
    ("betas", (0.9,), ValueError, "TrainConfig.betas must be a pair"),
])
def test_bad_settings_are_refused_by_name(setting, value, error, message):
    with pytest.raises(error, match=message):
        small_config(**{setting: value})


@pytest.mark.parametrize("max_norm", [0.0, -1.0, math.nan, math.inf])
def test_clip_grad_norm_refuses_a_norm_that_would_flip_or_erase_the_gradient(max_norm):
    p = Parameter(np.ones(3, dtype=np.float32))
    p.grad = np.full(3, 2.0, dtype=np.float32)
    with pytest.raises(ValueError, match="max_norm must be a finite number > 0"):
        clip_grad_norm_([p], max_norm)
    assert np.array_equal(p.grad, np.full(3, 2.0))   # untouched


def test_a_bad_time_limit_or_step_count_is_refused():
    trainer = Trainer(GPT(MODEL), TOKENS, config=small_config(), log=None)
    with pytest.raises(ValueError, match="time_limit must be a finite number >= 0"):
        trainer.train(time_limit=-5)
    with pytest.raises(ValueError, match="time_limit"):
        trainer.train(time_limit=math.nan)
    with pytest.raises(ValueError, match="steps must be an integer >= 0"):
        trainer.train(steps=-1)
    assert trainer.step == 0


def test_the_schedule_floor_defaults_to_a_tenth_of_the_peak_when_not_given():
    config = small_config(min_learning_rate=None, learning_rate=2e-2)
    assert config.learning_rate_at(config.steps) == 2e-2 / 10
    assert small_config().learning_rate_at(100) == 1e-3


def test_a_non_finite_weight_stops_training_and_nothing_is_saved(tmp_path):
    trainer = Trainer(GPT(MODEL), TOKENS, config=small_config(), log=None)
    trainer.train(steps=1)
    trainer.model.token_embedding.weight.data[19, 0] = np.inf  # a row no window may read soon
    with pytest.raises(FloatingPointError, match="non-finite at step 1"):
        trainer.save(tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


@pytest.mark.parametrize("from_step, message", [(0, "became non-finite at step 1"),
                                                 (5, "became non-finite at step 6")])
def test_an_infinite_update_stops_training_and_nothing_is_saved(from_step, message, tmp_path):
    class Explode(TrainHook):   # what an unchecked learning rate would do
        def before_step(self, trainer):
            if trainer.step >= from_step:
                trainer.optimizer.lr = math.inf
    trainer = Trainer(GPT(MODEL), TOKENS, config=small_config(), log=None, hooks=[Explode()])
    with pytest.raises(FloatingPointError, match=message), np.errstate(all="ignore"):
        trainer.train()
    assert trainer.step == from_step and len(trainer.history.train_loss) == from_step
    with pytest.raises(FloatingPointError, match="non-finite"):
        trainer.save(tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


def test_hooks_run_at_their_points_in_order_and_unused_points_cost_no_call():
    calls = []

    class Recorder(TrainHook):
        def after_backward(self, trainer):
            grads = [p.grad for p in trainer.parameters if p.grad is not None]
            calls.append(("after_backward", trainer.step, bool(grads)))

        def before_step(self, trainer):
            calls.append(("before_step", trainer.step, trainer.optimizer.lr))

        def after_step(self, trainer):
            calls.append(("after_step", trainer.step))

        def after_evaluate(self, trainer, metrics):
            calls.append(("after_evaluate", trainer.step, sorted(metrics)))

        def after_train(self, trainer):
            calls.append(("after_train", trainer.step))

    class OnlyAfterStep(TrainHook):
        def after_step(self, trainer):
            pass

    trainer = Trainer(GPT(MODEL), TOKENS, config=small_config(steps=3), log=None,
                      hooks=[Recorder(), OnlyAfterStep()])
    trainer.train()
    assert [c[0] for c in calls[:3]] == ["after_backward", "before_step", "after_step"]
    assert calls[0][2] is True and calls[1][2] == trainer.config.learning_rate_at(0)
    assert ("after_evaluate", 3, ["val_loss"]) in calls and calls[-1] == ("after_train", 3)
    assert len(trainer._calls["after_step"]) == 2 and len(trainer._calls["after_backward"]) == 1


def test_an_after_backward_hook_sees_the_gradients_before_clipping():
    norms = []

    class Reduce(TrainHook):   # where data-parallel workers would sum their gradients
        def after_backward(self, trainer):
            for p in trainer.parameters:
                if p.grad is not None:
                    p.grad *= 1000.0
            norms.append(math.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in trainer.parameters
                                       if p.grad is not None)))

        def before_step(self, trainer):
            total = math.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in trainer.parameters
                                  if p.grad is not None))
            norms.append(total)

    Trainer(GPT(MODEL), TOKENS, config=small_config(steps=1), log=None, hooks=[Reduce()]).train()
    assert norms[0] > 10 and norms[1] == pytest.approx(1.0, rel=1e-4)   # clipped after the hook


def test_objective_terms_are_recorded_and_checkpointed(tmp_path):
    def objective(model, batch):
        inputs, targets = batch
        loss = model(inputs, targets)[1]
        return loss, {"half": loss * 0.5, "missing": None, "number": 2.0}

    def make():
        return Trainer(GPT(MODEL), TOKENS, config=small_config(), log=None, objective=objective)
    trainer = make()
    trainer.train(steps=3)
    h = trainer.history
    assert h.terms["half"] == [0.5 * v for v in h.train_loss] or \
        h.terms["half"] == pytest.approx([0.5 * v for v in h.train_loss], rel=1e-6)
    assert all(math.isnan(v) for v in h.terms["missing"]) and h.terms["number"] == [2.0] * 3
    trainer.save(tmp_path / "t.safetensors")
    other = make()
    other.load(tmp_path / "t.safetensors")
    assert other.history.terms["half"] == h.terms["half"] and other.step == 3


def test_an_old_history_with_val_loss_as_a_field_loads():
    h = TrainHistory.from_dict({"steps": [1], "train_loss": [2.0], "eval_steps": [1], "val_loss": [1.5],
                                "tokens_per_second": 10.0})
    assert h.val_loss == [1.5] and h.val_perplexity == [math.exp(1.5)] and h.terms == {}


def test_an_old_train_config_with_max_steps_loads():
    config = TrainConfig.from_dict({"max_steps": 7, "betas": [0.9, 0.95]})
    assert config.steps == 7 and config.betas == (0.9, 0.95)


def test_a_trainer_needs_tokens_or_a_batch_source():
    with pytest.raises(ValueError, match="needs train_tokens or a batch source"):
        Trainer(GPT(MODEL), config=small_config(), log=None)
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        Trainer(GPT(MODEL), TOKENS, config={"steps": 3}, log=None)


# --- batch sources ----------------------------------------------------------------------------


def test_shuffled_rows_fill_a_batch_across_passes_or_drop_the_rest():
    wrap = ShuffledRows(5, lambda idx: idx.tolist(), np.random.default_rng(0))
    drawn = wrap.next_batch(3) + wrap.next_batch(3) + wrap.next_batch(4)
    assert sorted(drawn[:5]) == sorted(drawn[5:]) == list(range(5))
    drop = ShuffledRows(5, lambda idx: idx.tolist(), np.random.default_rng(0), drop_last=True)
    first, second = drop.next_batch(3), drop.next_batch(3)
    assert len(set(first)) == 3 and len(set(second)) == 3 and drop.cursor == 3
    with pytest.raises(ValueError, match="cannot come from one pass"):
        drop.next_batch(6)


def test_a_shuffled_source_restores_its_position():
    source = ShuffledRows(7, lambda idx: idx.tolist(), np.random.default_rng(3))
    source.next_batch(5)
    state, rng_state = source.state_dict(), source.rng.bit_generator.state
    expected = [source.next_batch(4) for _ in range(3)]
    again = ShuffledRows(7, lambda idx: idx.tolist(), np.random.default_rng(99))
    again.load_state_dict(state)
    again.rng.bit_generator.state = rng_state
    assert [again.next_batch(4) for _ in range(3)] == expected
    with pytest.raises(ValueError, match="saved order of"):
        ShuffledRows(6, list, np.random.default_rng(0)).load_state_dict(state)


def test_a_mix_takes_its_fraction_of_rows_from_the_second_source():
    rng = np.random.default_rng(0)
    rows = ShuffledRows(10, rows_of(np.arange(10) * 100), rng)
    windows = RandomWindows(TOKENS, 8, rng)
    batch = Mix(rows, windows, 0.25).next_batch(8)
    assert isinstance(batch, MixedBatch) and batch.weights == (0.75, 0.25)
    (picked,), (inputs, targets) = batch.parts
    assert picked.shape == (6,) and inputs.shape == targets.shape == (2, 8)
    assert mix_rows(8, 0.0) == 0
    with pytest.raises(ValueError, match="0.01 of a batch of 8 is 0 rows"):
        mix_rows(8, 0.01)
    with pytest.raises(ValueError, match="replay_fraction must be a finite number in"):
        Mix(rows, windows, math.nan)


def test_sources_refuse_what_they_cannot_draw_from():
    with pytest.raises(ValueError, match="fewer than one window"):
        RandomWindows(TOKENS[:8], 8, np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng must be a np.random.Generator"):
        RandomWindows(TOKENS, 8, 0)
    with pytest.raises(ValueError, match="different lengths"):
        rows_of(np.arange(3), np.arange(4))
    assert items_of(["a", "b", "c"], "".join)(np.array([2, 0])) == "ca"


def test_a_trainer_on_shuffled_rows_with_an_evaluator_and_its_log():
    inputs = np.stack([np.roll(np.arange(9) % 20, k) for k in range(12)]).astype(np.int64)
    lines = []
    trainer = Trainer(GPT(MODEL), config=small_config(batch_size=3), log=lines.append,
                      batches=ShuffledRows(12, lambda idx: (inputs[idx, :-1], inputs[idx, 1:]),
                                           np.random.default_rng(0)),
                      evaluator=lambda model: {"rows_seen": 3.0}, evaluate_first=True)
    history = trainer.train()
    assert history.eval_steps == [0, 3, 6] and history.metrics["rows_seen"] == [3.0] * 3
    assert len(lines) == 2 and "rows seen 3" in lines[-1]
    assert history.seconds > 0


def test_huge_but_finite_weights_are_not_called_non_finite():
    trainer = Trainer(GPT(MODEL), TOKENS, config=small_config(), log=None)
    trainer.model.blocks[0].mlp.up.weight.data[:] = 1e30   # their squares overflow float32
    trainer.check_parameters()
    trainer.model.blocks[0].mlp.up.weight.data[0, 0] = np.nan
    with pytest.raises(FloatingPointError, match=r"blocks.0.mlp.up.weight \(shape \(64, 16\)\) became"):
        trainer.check_parameters()
