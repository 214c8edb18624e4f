"""Hostile inputs to the model area (lessons 04-08): configs, the GPT's input, generation from a
model whose output is not finite, checkpoints whose metadata or tensors do not fit."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm.model.generation import beam_search, next_token_distribution, sample_from
from tinygrad_llm.model.state import CheckpointError, load_safetensors, save_safetensors
from tinygrad_llm.train.trainer import load_model

NAN, INF = float("nan"), float("inf")
SMALL = dict(vocab_size=20, context_length=8, d_model=8, n_layer=1, n_head=2)

CONFIG_CASES = [
    (dict(n_layer=True), TypeError, "GPTConfig.n_layer must be an integer, got True"),
    (dict(d_model=8.0), TypeError, "GPTConfig.d_model must be an integer"),
    (dict(vocab_size=0), ValueError, "GPTConfig.vocab_size must be an integer >= 1"),
    (dict(dropout=NAN), ValueError, r"GPTConfig.dropout must be a finite number in \[0, 1\)"),
    (dict(dropout=True), TypeError, "GPTConfig.dropout must be a number"),
    (dict(position=None), ValueError, "GPTConfig.position must be one of"),
    (dict(bias="no"), TypeError, "GPTConfig.bias must be True or False"),
    (dict(tie_weights=1), TypeError, "GPTConfig.tie_weights must be True or False"),
]


@pytest.mark.parametrize("changes, error, message", CONFIG_CASES)
def test_bad_gpt_config_raises_naming_the_field(changes, error, message):
    with pytest.raises(error, match=message):
        tl.GPTConfig(**{**SMALL, **changes})


@pytest.mark.parametrize("alpha", [NAN, INF, "16"])
def test_lora_refuses_an_alpha_that_is_not_a_finite_number(alpha):
    model = tl.GPT(tl.GPTConfig(**SMALL))
    with pytest.raises((TypeError, ValueError), match="LoRA alpha must be a"):
        tl.apply_lora(model, alpha=alpha)


INPUT_CASES = [
    (np.zeros((1, 0), np.int64), ValueError, r"at least one sequence of at least one token, got shape \(1, 0\)"),
    (np.zeros((0, 3), np.int64), ValueError, "at least one sequence"),
    (np.array([[1.5, 2.0]]), TypeError, "token ids must be integers"),
    (np.array([[True, False]]), TypeError, "token ids must be integers"),
    (np.array([[20]]), IndexError, "token id 20 is out of range"),
]


@pytest.mark.parametrize("idx, error, message", INPUT_CASES)
def test_bad_token_input_to_the_gpt_raises(idx, error, message):
    with pytest.raises(error, match=message):
        tl.GPT(tl.GPTConfig(**SMALL))(idx)


class ConstantModel(tl.Module):
    """A stand-in model whose next-token logits are one fixed row."""

    def __init__(self, row):
        self.config = tl.GPTConfig(**{**SMALL, "vocab_size": len(row)})
        self.row, self.training = np.asarray(row, dtype=np.float32), False

    def __call__(self, idx, cache=None):
        return tl.Tensor(np.broadcast_to(self.row, (*np.shape(idx), len(self.row))).copy())

    def output_weight(self):
        return tl.Tensor(np.zeros((len(self.row), 8), np.float32))

    def eval(self):
        return self

    def train(self, mode=True):
        return self


LOGIT_ROWS = [([NAN] * 4, "4 non-finite values"), ([0.0, NAN, 1.0, 2.0], "1 non-finite value"),
              ([0.0, INF, 1.0, 2.0], "1 non-finite value"), ([-INF] * 4, "rule out every token")]


@pytest.mark.parametrize("row, message", LOGIT_ROWS)
@pytest.mark.parametrize("settings", [dict(temperature=0), dict(temperature=1.0), dict(top_k=2),
                                      dict(top_p=0.5)])
def test_generation_refuses_non_finite_logits_instead_of_emitting_token_0(row, message, settings):
    with pytest.raises(FloatingPointError, match=message):
        tl.generate(ConstantModel(row), np.array([0]), 3, rng=np.random.default_rng(0), use_cache=False,
                    **settings)


@pytest.mark.parametrize("row, message", LOGIT_ROWS[:3])
def test_beam_search_and_the_distribution_refuse_non_finite_logits(row, message):
    with pytest.raises(FloatingPointError, match=message):
        beam_search(ConstantModel(row), np.array([0]), 2, use_cache=False)
    with pytest.raises(FloatingPointError, match=message):
        next_token_distribution(np.array([row]))


@pytest.mark.parametrize("probs, error, message", [
    (np.array([[NAN, 0.5]]), FloatingPointError, "token probabilities has 1 non-finite"),
    (np.array([[0.0, 0.0]]), ValueError, "positive sum in every row"),
    (np.array([[-0.5, 1.5]]), ValueError, ">= 0"),
])
def test_sample_from_refuses_probabilities_that_are_not_a_distribution(probs, error, message):
    with pytest.raises(error, match=message):
        sample_from(probs, np.random.default_rng(0))


def test_minus_inf_logits_still_rule_tokens_out():
    out = tl.generate(ConstantModel([-INF, 0.0, -INF, -INF]), np.array([0]), 3,
                      rng=np.random.default_rng(0), use_cache=False)
    assert out.tolist() == [0, 1, 1, 1]


# --- checkpoints whose metadata or tensors do not fit ------------------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    model = tl.GPT(tl.GPTConfig(**SMALL))
    trainer = tl.Trainer(model, np.arange(200) % 20, None, tl.TrainConfig(steps=1, batch_size=2,
                         warmup_steps=1, eval_interval=100, log_interval=100), log=None)
    trainer.save(path)
    return path


def rewrite(source, target, tensors=None, **metadata_changes):
    stored, metadata = load_safetensors(source)
    stored = stored if tensors is None else tensors(stored)
    save_safetensors(target, stored, {**metadata, **metadata_changes})
    return target


METADATA_CASES = [
    (dict(model_config="{not json"), "'model_config' metadata is not valid JSON"),
    (dict(model_config="[1, 2]"), "'model_config' metadata is not a JSON object"),
    (dict(model_config=json.dumps({**dataclasses.asdict(tl.GPTConfig(**SMALL)), "rotary": 1})),
     "fields rotary that GPTConfig does not know"),
    (dict(model_config=json.dumps({**dataclasses.asdict(tl.GPTConfig(**SMALL)), "n_head": 3})),
     "'model_config' is invalid .*not divisible"),
    (dict(model_config=json.dumps({**dataclasses.asdict(tl.GPTConfig(**SMALL)), "n_layer": "1"})),
     "'model_config' is invalid .*must be an integer"),
]


@pytest.mark.parametrize("changes, message", METADATA_CASES)
def test_damaged_checkpoint_metadata_is_a_checkpoint_error_naming_the_file(checkpoint, tmp_path, changes, message):
    bad = rewrite(checkpoint, tmp_path / "bad.safetensors", **changes)
    with pytest.raises(CheckpointError, match=message) as info:
        load_model(bad)
    assert str(bad) in str(info.value)


def test_missing_model_config_is_named(checkpoint, tmp_path):
    stored, metadata = load_safetensors(checkpoint)
    del metadata["model_config"]
    save_safetensors(tmp_path / "bad.safetensors", stored, metadata)
    with pytest.raises(CheckpointError, match="has no 'model_config' entry"):
        load_model(tmp_path / "bad.safetensors")


TENSOR_CASES = [
    (lambda t: {k: v for k, v in t.items() if k != "model.final_norm.bias"},
     "missing tensors 'final_norm.bias'"),
    (lambda t: {**t, "model.extra.weight": np.zeros(2, np.float32)}, "unexpected tensors 'extra.weight'"),
    (lambda t: {**t, "model.final_norm.bias": np.zeros(3, np.float32)},
     r"wrong shape 'final_norm.bias' \(3,\) \(expected \(8,\)\)"),
    (lambda t: {**t, "model.final_norm.bias": np.zeros(8, np.int64)},
     r"integer or bool data where the weights are floating point 'final_norm.bias' \(int64\)"),
]


@pytest.mark.parametrize("change, message", TENSOR_CASES)
def test_tensors_that_do_not_fit_the_model_name_the_file_and_tensor(checkpoint, tmp_path, change, message):
    bad = rewrite(checkpoint, tmp_path / "bad.safetensors", tensors=change)
    with pytest.raises(CheckpointError, match=message) as info:
        load_model(bad)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("changes, message", [
    (dict(step="two"), "'step' metadata is not valid JSON"),
    (dict(step="[2]"), "'step' metadata is not a JSON int"),
    (dict(rng_states="{}"), "'rng_states' metadata is not a JSON list"),
    (dict(optimizer="oops"), "'optimizer' metadata is not valid JSON"),
])
def test_damaged_training_state_is_a_checkpoint_error(checkpoint, tmp_path, changes, message):
    bad = rewrite(checkpoint, tmp_path / "bad.safetensors", **changes)
    model = tl.GPT(tl.GPTConfig(**SMALL))
    trainer = tl.Trainer(model, np.arange(200) % 20, None, tl.TrainConfig(steps=1, batch_size=2,
                         warmup_steps=1, eval_interval=100, log_interval=100), log=None)
    with pytest.raises(CheckpointError, match=message):
        trainer.load(bad)
