"""Record what the training loops computed before they became one ``Trainer``.

Run once against the package as it was (the flat layout of commit 6fefed0, four loops):

    git worktree add ../loop-old 6fefed0
    PYTHONPATH=../loop-old python tests/train/record_loops.py tests/data/loop_parity.json

Each case of ``loop_cases`` is trained through its old loop, and the per-step losses (and the
parts of the loss, validation numbers, and a digest and sums of the final weights) go into the
JSON file that ``test_loop_parity.py`` compares the one loop with, beside the machine's
``fingerprint``: exactly on a machine with the same fingerprint, to float32 precision elsewhere.
The hand-written loop of lesson 13's quantization-aware training is copied here as the lesson
wrote it.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loop_cases as cases  # noqa: E402

from tinygrad_llm import functional as F  # noqa: E402
from tinygrad_llm.classification import ClassifierHead, FineTuneConfig, GPTClassifier, freeze, train_classifier  # noqa: E402
from tinygrad_llm.data import random_batch  # noqa: E402
from tinygrad_llm.distill import Distiller  # noqa: E402
from tinygrad_llm.gpt import GPT, GPTConfig  # noqa: E402
from tinygrad_llm.instruct import EncodedExample, InstructConfig, InstructionTrainer  # noqa: E402
from tinygrad_llm.optim import AdamW, clip_grad_norm_, cosine_schedule  # noqa: E402
from tinygrad_llm.pruning import finetune_pruned, iterative_prune, magnitude_prune  # noqa: E402
from tinygrad_llm.qat import prepare_qat  # noqa: E402
from tinygrad_llm.quantize import QuantScheme  # noqa: E402
from tinygrad_llm.tensor import no_grad  # noqa: E402
from tinygrad_llm.training import TrainConfig, Trainer  # noqa: E402

TOKENS, VAL = cases.tokens(600, 0), cases.tokens(200, 1)


def gpt(shape: dict, seed: int) -> GPT:
    return GPT(GPTConfig(**shape), rng=np.random.default_rng(seed))


def lm_config(steps: int = cases.LM_STEPS) -> TrainConfig:
    return TrainConfig(max_steps=steps, **cases.LM_SETTINGS)


def lm_record(trainer: Trainer) -> dict:
    h = trainer.history
    return {"train_loss": h.train_loss, "eval_steps": h.eval_steps, "val_loss": h.val_loss,
            "weights": cases.digest(trainer.model.state_dict())}


def trainer_case() -> dict:
    trainer = Trainer(gpt(cases.GPT_SHAPE, 0), TOKENS, VAL, lm_config(), log=None)
    trainer.train()
    return lm_record(trainer)


def trainer_resume_case() -> dict:
    first = Trainer(gpt(cases.GPT_SHAPE, 0), TOKENS, VAL, lm_config(), log=None)
    first.train(steps=cases.LM_STEPS // 2)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "half.safetensors"
        first.save(path)
        second = Trainer(gpt(cases.GPT_SHAPE, 99), TOKENS, VAL, lm_config(), log=None)
        second.load(path)
    second.train()
    return lm_record(second)


def distiller_case(alpha: float) -> dict:
    teacher = gpt(cases.TEACHER_SHAPE, 7)
    distiller = Distiller(gpt(cases.SMALL_SHAPE, 1), teacher, TOKENS, VAL, lm_config(), temperature=2.0,
                          alpha=alpha, log=None)
    distiller.train()
    return {**lm_record(distiller), "soft_loss": distiller.soft_loss, "hard_loss": distiller.hard_loss}


def instruct_case(replay_fraction: float) -> dict:
    examples = [EncodedExample(ids, prompt_length) for ids, prompt_length in cases.instruction_rows()]
    model = gpt(cases.INSTRUCT_SHAPE, 2)
    trainer = InstructionTrainer(model, examples, InstructConfig(**cases.INSTRUCT_SETTINGS,
                                                                 replay_fraction=replay_fraction),
                                 pad_id=0, replay_tokens=TOKENS, val_tokens=VAL, log=None)
    h = trainer.train()
    return {"loss": h.loss, "instruction_loss": h.instruction_loss, "replay_loss": h.replay_loss,
            "eval_steps": h.eval_steps, "val_perplexity": h.val_perplexity,
            "weights": cases.digest(model.state_dict())}


def classifier_case(kind: str) -> dict:
    inputs, labels = cases.classification_data(23, 0)
    val = cases.classification_data(9, 1)
    if kind == "top_k":
        model = freeze(GPTClassifier(gpt(cases.TEACHER_SHAPE, 4), 3, pooling="mean", head="mlp",
                                     rng=np.random.default_rng(5)), "top_k", k=1)
    else:  # a head on fixed features, the cached-features case
        features = np.random.default_rng(6).normal(size=(23, 16)) + labels[:, None]
        inputs, val = features, (np.random.default_rng(7).normal(size=(9, 16)) + val[1][:, None], val[1])
        model = ClassifierHead(16, 3, kind="mlp", hidden=8, dropout=0.1, rng=np.random.default_rng(8))
    h = train_classifier(model, inputs, labels, FineTuneConfig(**cases.CLASSIFY_SETTINGS),
                         np.random.default_rng(9), val=val)
    return {"train_loss": h.train_loss, "eval_steps": h.eval_steps, "val_accuracy": h.val_accuracy,
            "val_loss": h.val_loss, "best_step": h.best_step, "weights": cases.digest(model.state_dict())}


def finetune_pruned_case() -> dict:
    model = gpt(cases.GPT_SHAPE, 0)
    mask = magnitude_prune(model, 0.5)
    h = finetune_pruned(model, mask, TOKENS, lm_config(5), VAL)
    return {"train_loss": h.train_loss, "val_loss": h.val_loss, "weights": cases.digest(model.state_dict())}


def iterative_prune_case() -> dict:
    model = gpt(cases.GPT_SHAPE, 0)
    mask, records = iterative_prune(model, TOKENS, 0.6, 3, lm_config(6), val_tokens=VAL)
    return {"records": records, "sparsity": mask.sparsity(), "weights": cases.digest(model.state_dict())}


def qat_case() -> dict:
    """Lesson 13, section 6: the student imitates the float model through fake quantization."""
    corpus_train, BATCH_SIZE, T = TOKENS, cases.QAT_BATCH, cases.TEACHER_SHAPE["context_length"]
    QAT_RNG = np.random.default_rng(1)

    def train_to_imitate(student, teacher, steps: int, lr: float) -> list[float]:
        """AdamW steps on L = -sum p log q over random training windows; returns KL(p || q) per step."""
        optimizer = AdamW(student.parameters(), lr=lr, weight_decay=0.0)
        student.train()
        kl = []
        for step in range(steps):
            inputs, _ = random_batch(corpus_train, BATCH_SIZE, T, QAT_RNG)
            with no_grad():
                p = F.softmax(teacher(inputs), axis=-1).data                     # (B, T, V) float model
            entropy = float(-(p * np.log(np.maximum(p, 1e-30))).sum(axis=-1).mean())
            loss = -(F.log_softmax(student(inputs), axis=-1) * p).sum(axis=-1).mean()
            optimizer.zero_grad()
            loss.backward()
            clip_grad_norm_(student.parameters(), 1.0)
            optimizer.lr = cosine_schedule(step, lr, max(1, steps // 8), steps, lr / 10)
            optimizer.step()
            kl.append(loss.item() - entropy)
        student.eval()
        return kl

    teacher = gpt(cases.TEACHER_SHAPE, 7).eval()
    student = gpt(cases.TEACHER_SHAPE, 7)
    prepare_qat(student, QuantScheme(bits=4, granularity="channel"))
    kl = train_to_imitate(student, teacher, cases.QAT_STEPS, cases.QAT_LR)
    return {"kl": kl, "weights": cases.digest(student.state_dict())}


def main(path: str) -> None:
    record = {
        "trainer": trainer_case(),
        "trainer_resume": trainer_resume_case(),
        "distiller": distiller_case(0.5),
        "distiller_alpha0": distiller_case(0.0),
        "instruct": instruct_case(0.0),
        "instruct_replay": instruct_case(0.25),
        "classifier_top_k": classifier_case("top_k"),
        "classifier_head": classifier_case("head"),
        "finetune_pruned": finetune_pruned_case(),
        "iterative_prune": iterative_prune_case(),
        "qat": qat_case(),
    }
    assert record["trainer_resume"] == record["trainer"], "the old Trainer resumed exactly"
    Path(path).write_text(json.dumps({"fingerprint": cases.fingerprint(), "cases": record}, indent=1) + "\n")
    print(f"wrote {path}: " + ", ".join(record))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "loop_parity.json")
