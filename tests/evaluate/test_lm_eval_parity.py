"""Our harness against lm-evaluation-harness on the same model and documents (skips without lm-eval)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tinygrad_llm import GPT, BPETokenizer, GPTConfig
from tinygrad_llm.evaluate.harness import Doc, Task, evaluate_task, fewshot_context, score_choices

lm_eval = pytest.importorskip("lm_eval", reason='lm-evaluation-harness is not installed (pip install -e ".[harness]")')

TEXT = ("The for statement iterates over a sequence. The while statement repeats a block. "
        "A function is defined with def. 2 + 2 = 4. 3 + 4 = 7.\n") * 8


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")   # the data set is a local file: never ask the hub
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lm_eval import simple_evaluate

    from tinygrad_llm.evaluate.lm_eval_adapter import lm_eval_model, lm_eval_task_config

    tokenizer = BPETokenizer.train(TEXT, 300, special_tokens=("<|endoftext|>",))
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, context_length=32, d_model=32, n_layer=2, n_head=2),
                rng=np.random.default_rng(0), dtype=np.float64).eval()
    docs = tuple(Doc(f"{a} + {b} =", (str(a + b), str(a + b + 1), str(a * b), "def"), (a + b) % 4)
                 for a in range(1, 5) for b in range(1, 5))
    task = Task("sums", "multiple_choice", docs, description="Arithmetic.")
    config = lm_eval_task_config(task, tmp_path_factory.mktemp("lm_eval_data"))
    theirs = simple_evaluate(model=lm_eval_model(model, tokenizer), tasks=[config], num_fewshot=0,
                             log_samples=True, bootstrap_iters=0)
    ours = evaluate_task(model, tokenizer, task)
    return model, tokenizer, task, ours, theirs


def test_the_same_prompts_and_continuations(both):
    _, _, task, _, theirs = both
    samples = sorted(theirs["samples"]["sums"], key=lambda s: s["doc_id"])
    for doc, sample in zip(task.docs, samples):
        prompt = fewshot_context(task, doc, 0, np.random.default_rng(0))
        assert [tuple(a) for a in sample["arguments"]] == [(prompt, " " + c) for c in doc.choices]


def test_per_example_log_likelihoods_agree(both):
    model, tokenizer, task, _, theirs = both
    samples = sorted(theirs["samples"]["sums"], key=lambda s: s["doc_id"])
    requests = [(fewshot_context(task, d, 0, np.random.default_rng(0)), [" " + c for c in d.choices]) for d in task.docs]
    for scores, sample in zip(score_choices(model, tokenizer, requests), samples):
        theirs_ll = [ll for ll, _ in sample["filtered_resps"]]
        np.testing.assert_allclose(scores.logprobs, theirs_ll, rtol=0, atol=1e-9)


def test_acc_and_acc_norm_agree_per_example_and_overall(both):
    _, _, _, ours, theirs = both
    samples = sorted(theirs["samples"]["sums"], key=lambda s: s["doc_id"])
    assert ours.per_doc["acc"] == [s["acc"] for s in samples]
    assert ours.per_doc["acc_norm"] == [s["acc_norm"] for s in samples]
    assert ours.metrics["acc"] == pytest.approx(theirs["results"]["sums"]["acc,none"])
    assert ours.metrics["acc_norm"] == pytest.approx(theirs["results"]["sums"]["acc_norm,none"])
