"""The one training loop reproduces the loops it replaced, bit for bit, and resumes exactly.

``tests/data/loop_parity.json`` holds what the separate loops computed on the tiny runs of
``loop_cases`` (recorded by ``record_loops.py`` from the package before they became one
``Trainer``): per-step losses, the parts of the loss, validation numbers and a digest of the
final weights. Each test runs the same case through today's code and compares. On a machine
whose arithmetic is the recording machine's (the same ``fingerprint``: one forward and backward
pass of the tiny GPT, bit for bit) the comparison is ==, every bit of every loss and weight. On
another machine float32 products round differently in their last bits (another BLAS kernel), so
there every loss must agree to 1e-5 (absolute and relative) and the weights by their sums, to 3e-4
of each array's scale (``close_sums``): a changed rule (a learning rate, a step off by one, a lost random state) moves the numbers by far
more than that. Then every kind of trainer is saved halfway, loaded into a fresh trainer and
finished: the result must equal the uninterrupted run, weights and histories.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loop_cases as cases  # noqa: E402

from tinygrad_llm import functional as F  # noqa: E402
from tinygrad_llm.compress.distill import Distiller  # noqa: E402
from tinygrad_llm.sparsity.pruning import finetune_pruned, hold_mask, iterative_prune, magnitude_prune  # noqa: E402
from tinygrad_llm.compress.qat import prepare_qat  # noqa: E402
from tinygrad_llm.compress.quantize import QuantScheme  # noqa: E402
from tinygrad_llm.core.tensor import no_grad  # noqa: E402
from tinygrad_llm.finetune.classifier import (ClassifierHead, FineTuneConfig, GPTClassifier,  # noqa: E402
                                              classifier_trainer, freeze, train_classifier)
from tinygrad_llm.finetune.instruction_data import EncodedExample  # noqa: E402
from tinygrad_llm.finetune.instruction_tuning import InstructConfig, InstructionTrainer  # noqa: E402
from tinygrad_llm.model.gpt import GPT, GPTConfig  # noqa: E402
from tinygrad_llm.train.batches import RandomWindows  # noqa: E402
from tinygrad_llm.train.optim import AdamW  # noqa: E402
from tinygrad_llm.train.trainer import TrainConfig, Trainer  # noqa: E402

_RECORDED = json.loads((Path(__file__).resolve().parents[1] / "data" / "loop_parity.json").read_text())
RECORD = _RECORDED["cases"]
EXACT = cases.fingerprint() == _RECORDED["fingerprint"]   # this machine computes what the recorder did
TOLERANCE = 1e-5          # losses and metrics: float32 rounding moves them by ~1e-7
WEIGHT_TOLERANCE = 3e-4   # weight sums, relative to the array's sum of |w| (see close_sums)
TOKENS, VAL = cases.tokens(600, 0), cases.tokens(200, 1)


def same(a, b) -> bool:
    """== that counts NaN equal to NaN (a loss term not computed is recorded as NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def close(a, b) -> bool:
    """Like ``same``, but floats within ``TOLERANCE`` (absolute plus relative) and a weights digest
    compared by its per-array sums, not its hash (which no other rounding reproduces)."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= TOLERANCE * (1 + abs(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        if "sums" in a and "sums" in b:
            return close_sums(a["sums"], b["sums"])
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    return a == b


def close_sums(a: dict, b: dict) -> bool:
    """Per-array [sum, sum of |w|] within ``WEIGHT_TOLERANCE`` of the array's sum of |w|: AdamW
    turns a rounding-sized change in a near-zero gradient into a step of the learning rate's size
    in that entry, so weights drift further from another machine's than losses do (5e-5 of the
    scale measured, against 2e-3 for a learning rate 1 % off)."""
    if a.keys() != b.keys():
        return False
    return all(abs(x - y) <= WEIGHT_TOLERANCE * (1 + b[name][1])
               for name in a for x, y in zip(a[name], b[name]))


def agrees(a, b) -> bool:
    """The comparison this machine can promise: bit for bit where its arithmetic is the recorder's."""
    return same(a, b) if EXACT else close(a, b)


def test_the_tolerant_comparison_still_sees_a_changed_rule():
    """What ``close`` forgives is float32 rounding, not a different run: a learning rate 1 % off
    changes the losses of the plain trainer case, and its weights, by more than the tolerances."""
    config = dataclasses.replace(lm_config(), learning_rate=cases.LM_SETTINGS["learning_rate"] * 1.01)
    trainer = Trainer(gpt(cases.GPT_SHAPE, 0), TOKENS, VAL, config, log=None)
    trainer.train()
    record = lm_record(trainer)
    assert not close(record["train_loss"], RECORD["trainer"]["train_loss"])
    assert not close(record["weights"], RECORD["trainer"]["weights"])
    assert close(RECORD["trainer"], RECORD["trainer"])


def gpt(shape: dict, seed: int) -> GPT:
    return GPT(GPTConfig(**shape), rng=np.random.default_rng(seed))


def lm_config(steps: int = cases.LM_STEPS) -> TrainConfig:
    return TrainConfig(steps=steps, **cases.LM_SETTINGS)


def lm_record(trainer: Trainer) -> dict:
    h = trainer.history
    return {"train_loss": h.train_loss, "eval_steps": h.eval_steps, "val_loss": h.val_loss,
            "weights": cases.digest(trainer.model.state_dict())}


def resumed(make, tmp_path, first_steps: int):
    """Train ``first_steps`` with one trainer, save, load into a second fresh one, finish.
    (``train`` evaluates when it returns, so the cases stop at a step that evaluates anyway.)"""
    first = make()
    first.train(steps=first_steps)
    first.save(tmp_path / "half.safetensors")
    second = make(other_start=True)
    second.load(tmp_path / "half.safetensors")
    second.train()
    return second


# --- lesson 07: Trainer -----------------------------------------------------------------------


def make_lm(other_start: bool = False) -> Trainer:
    return Trainer(gpt(cases.GPT_SHAPE, 99 if other_start else 0), TOKENS, VAL, lm_config(), log=None)


def test_trainer_reproduces_the_old_trainer():
    trainer = make_lm()
    trainer.train()
    assert agrees(lm_record(trainer), RECORD["trainer"])


def test_trainer_resumes_exactly(tmp_path):
    assert agrees(lm_record(resumed(make_lm, tmp_path, cases.LM_STEPS // 2)), RECORD["trainer_resume"])
    assert RECORD["trainer_resume"] == RECORD["trainer"]


# --- lesson 15: Distiller ---------------------------------------------------------------------


def make_distiller(alpha: float = 0.5, other_start: bool = False) -> Distiller:
    return Distiller(gpt(cases.SMALL_SHAPE, 5 if other_start else 1), gpt(cases.TEACHER_SHAPE, 7), TOKENS, VAL,
                     lm_config(), temperature=2.0, alpha=alpha, log=None)


@pytest.mark.parametrize("alpha, key", [(0.5, "distiller"), (0.0, "distiller_alpha0")])
def test_distiller_reproduces_the_old_distiller(alpha, key):
    distiller = make_distiller(alpha)
    distiller.train()
    record = {**lm_record(distiller), "soft_loss": distiller.soft_loss, "hard_loss": distiller.hard_loss}
    assert agrees(record, RECORD[key])


def test_distiller_resumes_exactly_with_its_terms(tmp_path):
    distiller = resumed(lambda other_start=False: make_distiller(0.5, other_start), tmp_path, 4)
    record = {**lm_record(distiller), "soft_loss": distiller.soft_loss, "hard_loss": distiller.hard_loss}
    assert agrees(record, RECORD["distiller"])


# --- lesson 11: InstructionTrainer ------------------------------------------------------------


def make_instruct(replay_fraction: float, other_start: bool = False) -> InstructionTrainer:
    examples = [EncodedExample(ids, prompt_length) for ids, prompt_length in cases.instruction_rows()]
    config = InstructConfig(**cases.INSTRUCT_SETTINGS, replay_fraction=replay_fraction)
    return InstructionTrainer(gpt(cases.INSTRUCT_SHAPE, 8 if other_start else 2), examples, config, pad_id=0,
                              replay_tokens=TOKENS, val_tokens=VAL, log=None)


def instruct_record(trainer: InstructionTrainer, h) -> dict:
    return {"loss": h.loss, "instruction_loss": h.instruction_loss, "replay_loss": h.replay_loss,
            "eval_steps": h.eval_steps, "val_perplexity": h.val_perplexity,
            "weights": cases.digest(trainer.model.state_dict())}


@pytest.mark.parametrize("fraction, key", [(0.0, "instruct"), (0.25, "instruct_replay")])
def test_instruction_trainer_reproduces_the_old_one(fraction, key):
    trainer = make_instruct(fraction)
    assert agrees(instruct_record(trainer, trainer.train()), RECORD[key])


@pytest.mark.parametrize("fraction, key", [(0.0, "instruct"), (0.25, "instruct_replay")])
def test_instruction_trainer_resumes_exactly_mid_pass(fraction, key, tmp_path):
    # 3 steps of 4 rows (3 with replay) over 7 examples: the save falls inside a pass
    trainer = resumed(lambda other_start=False: make_instruct(fraction, other_start), tmp_path, 3)
    assert agrees(instruct_record(trainer, trainer.train()), RECORD[key])


# --- lesson 10: train_classifier --------------------------------------------------------------


def classifier_setup(kind: str):
    inputs, labels = cases.classification_data(23, 0)
    val = cases.classification_data(9, 1)
    if kind == "top_k":
        model = freeze(GPTClassifier(gpt(cases.TEACHER_SHAPE, 4), 3, pooling="mean", head="mlp",
                                     rng=np.random.default_rng(5)), "top_k", k=1)
    else:
        features = np.random.default_rng(6).normal(size=(23, 16)) + labels[:, None]
        inputs, val = features, (np.random.default_rng(7).normal(size=(9, 16)) + val[1][:, None], val[1])
        model = ClassifierHead(16, 3, kind="mlp", hidden=8, dropout=0.1, rng=np.random.default_rng(8))
    return model, inputs, labels, val


def classifier_record(model, h) -> dict:
    return {"train_loss": h.train_loss, "eval_steps": h.eval_steps, "val_accuracy": h.val_accuracy,
            "val_loss": h.val_loss, "best_step": h.best_step, "weights": cases.digest(model.state_dict())}


@pytest.mark.parametrize("kind", ["top_k", "head"])
def test_train_classifier_reproduces_the_old_loop(kind):
    model, inputs, labels, val = classifier_setup(kind)
    h = train_classifier(model, inputs, labels, FineTuneConfig(**cases.CLASSIFY_SETTINGS),
                         np.random.default_rng(9), val=val)
    assert agrees(classifier_record(model, h), RECORD[f"classifier_{kind}"])


@pytest.mark.parametrize("kind", ["top_k", "head"])
def test_classifier_training_resumes_exactly_with_the_best_weights(kind, tmp_path):
    def make(other_start: bool = False):
        model, inputs, labels, val = classifier_setup(kind)
        if other_start:   # scramble the weights: the checkpoint must bring them all back
            for p in model.parameters():
                p.data[...] = np.random.default_rng(1).normal(size=p.shape)
        return classifier_trainer(model, inputs, labels, FineTuneConfig(**cases.CLASSIFY_SETTINGS),
                                  np.random.default_rng(9 if not other_start else 10), val=val)
    trainer = resumed(make, tmp_path, 4)   # at the first evaluation: a best is held
    trainer.model.eval()
    record = RECORD[f"classifier_{kind}"]
    assert agrees(trainer.history.train_loss, record["train_loss"])
    assert agrees(trainer.history.metrics["val_accuracy"], record["val_accuracy"])
    assert trainer.hooks[0].best_step == record["best_step"]
    assert agrees(cases.digest(trainer.model.state_dict()), record["weights"])


# --- lesson 14: pruning -----------------------------------------------------------------------


def test_finetune_pruned_reproduces_the_old_run():
    model = gpt(cases.GPT_SHAPE, 0)
    h = finetune_pruned(model, magnitude_prune(model, 0.5), TOKENS, lm_config(5), VAL)
    record = {"train_loss": h.train_loss, "val_loss": h.val_loss, "weights": cases.digest(model.state_dict())}
    assert agrees(record, RECORD["finetune_pruned"])


def test_iterative_prune_reproduces_the_old_run():
    model = gpt(cases.GPT_SHAPE, 0)
    mask, records = iterative_prune(model, TOKENS, 0.6, 3, lm_config(6), val_tokens=VAL)
    record = {"records": records, "sparsity": mask.sparsity(), "weights": cases.digest(model.state_dict())}
    assert agrees(record, RECORD["iterative_prune"])


def test_pruned_fine_tuning_resumes_exactly(tmp_path):
    model = gpt(cases.GPT_SHAPE, 0)
    mask = magnitude_prune(model, 0.5)
    pruned = {name: array.copy() for name, array in model.state_dict().items()}

    def make(other_start: bool = False):
        if other_start:
            model.load_state_dict(pruned)   # any start: the checkpoint holds the weights
        return hold_mask(Trainer(model, TOKENS, VAL, lm_config(5), log=None), mask)
    trainer = resumed(make, tmp_path, 4)
    assert agrees(trainer.history.train_loss, RECORD["finetune_pruned"]["train_loss"])
    assert agrees(trainer.history.val_loss, RECORD["finetune_pruned"]["val_loss"])
    assert agrees(cases.digest(model.state_dict()), RECORD["finetune_pruned"]["weights"])
    assert mask.pruned_are_zero()


# --- lesson 13: quantization-aware training ---------------------------------------------------


def make_qat(other_start: bool = False) -> Trainer:
    """Lesson 13's QAT: the fake-quantized student imitates the float model (as the lesson builds it)."""
    teacher = gpt(cases.TEACHER_SHAPE, 7).eval()
    student = gpt(cases.TEACHER_SHAPE, 6 if other_start else 7)
    prepare_qat(student, QuantScheme(bits=4, granularity="channel"))

    def imitation_loss(model, batch):
        inputs, _ = batch
        with no_grad():
            p = F.softmax(teacher(inputs), axis=-1).data
        entropy = float(-(p * np.log(np.maximum(p, 1e-30))).sum(axis=-1).mean())
        loss = -(F.log_softmax(model(inputs), axis=-1) * p).sum(axis=-1).mean()
        return loss, {"kl": loss.item() - entropy}

    steps, lr = cases.QAT_STEPS, cases.QAT_LR
    config = TrainConfig(steps=steps, batch_size=cases.QAT_BATCH, learning_rate=lr, min_learning_rate=lr / 10,
                         warmup_steps=max(1, steps // 8), weight_decay=0.0, grad_clip=1.0,
                         eval_interval=10 ** 6, log_interval=10 ** 6)
    return Trainer(student, config=config, log=None, objective=imitation_loss,
                   batches=RandomWindows(TOKENS, cases.TEACHER_SHAPE["context_length"], np.random.default_rng(1)),
                   optimizer=AdamW(student.parameters(), lr=lr, weight_decay=0.0))


def test_qat_through_the_trainer_reproduces_lesson_13s_loop():
    trainer = make_qat()
    trainer.train()
    assert agrees({"kl": trainer.history.terms["kl"], "weights": cases.digest(trainer.model.state_dict())},
                RECORD["qat"])


def test_qat_resumes_exactly(tmp_path):
    trainer = resumed(make_qat, tmp_path, 3)
    assert agrees({"kl": trainer.history.terms["kl"], "weights": cases.digest(trainer.model.state_dict())},
                RECORD["qat"])


def test_the_record_covers_every_old_loop():
    assert set(RECORD) == {"trainer", "trainer_resume", "distiller", "distiller_alpha0", "instruct",
                           "instruct_replay", "classifier_top_k", "classifier_head", "finetune_pruned",
                           "iterative_prune", "qat"}
    assert dataclasses.is_dataclass(TrainConfig)
