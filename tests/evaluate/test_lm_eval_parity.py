"""Our harness against lm-evaluation-harness on the same model and documents (skips without lm-eval)."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm import GPT, BPETokenizer, GPTConfig
from tinygrad_llm.evaluate.harness import Doc, Task, evaluate_task, fewshot_context, score_choices

lm_eval = pytest.importorskip("lm_eval", reason='lm-evaluation-harness is not installed (pip install -e ".[harness]")')

TEXT = ("The for statement iterates over a sequence. The while statement repeats a block. "
        "A function is defined with def. 2 + 2 = 4. 3 + 4 = 7.\n") * 8


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    from tinygrad_llm.evaluate.lm_eval_adapter import run_lm_eval

    tokenizer = BPETokenizer.train(TEXT, 300, special_tokens=("<|endoftext|>",))
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, context_length=32, d_model=32, n_layer=2, n_head=2),
                rng=np.random.default_rng(0), dtype=np.float64).eval()
    docs = tuple(Doc(f"{a} + {b} =", (str(a + b), str(a + b + 1), str(a * b), "def"), (a + b) % 4)
                 for a in range(1, 5) for b in range(1, 5))
    shots = tuple(Doc(f"{a} + {a} =", (str(2 * a), str(2 * a + 1), str(a * a + 3), "def"), 0) for a in range(5, 9))
    task = Task("sums", "multiple_choice", docs, fewshot_docs=shots, description="Arithmetic.")
    theirs = run_lm_eval(model, tokenizer, [task], tmp_path_factory.mktemp("lm_eval_data"))
    fewshot = run_lm_eval(model, tokenizer, [task], tmp_path_factory.mktemp("lm_eval_fewshot"), num_fewshot=2)
    ours = evaluate_task(model, tokenizer, task)
    return model, tokenizer, task, ours, theirs, fewshot


def test_the_same_prompts_and_continuations(both):
    _, _, task, _, theirs, _ = both
    samples = sorted(theirs["samples"]["sums"], key=lambda s: s["doc_id"])
    for doc, sample in zip(task.docs, samples):
        prompt = fewshot_context(task, doc, 0, np.random.default_rng(0))
        assert [tuple(a) for a in sample["arguments"]] == [(prompt, " " + c) for c in doc.choices]


def test_per_example_log_likelihoods_agree(both):
    model, tokenizer, task, _, theirs, _ = both
    samples = sorted(theirs["samples"]["sums"], key=lambda s: s["doc_id"])
    requests = [(fewshot_context(task, d, 0, np.random.default_rng(0)), [" " + c for c in d.choices]) for d in task.docs]
    for scores, sample in zip(score_choices(model, tokenizer, requests), samples):
        theirs_ll = [ll for ll, _ in sample["filtered_resps"]]
        np.testing.assert_allclose(scores.logprobs, theirs_ll, rtol=0, atol=1e-9)


def test_acc_and_acc_norm_agree_per_example_and_overall(both):
    _, _, _, ours, theirs, _ = both
    samples = sorted(theirs["samples"]["sums"], key=lambda s: s["doc_id"])
    assert ours.per_doc["acc"] == [s["acc"] for s in samples]
    assert ours.per_doc["acc_norm"] == [s["acc_norm"] for s in samples]
    assert ours.metrics["acc"] == pytest.approx(theirs["results"]["sums"]["acc,none"])
    assert ours.metrics["acc_norm"] == pytest.approx(theirs["results"]["sums"]["acc_norm,none"])


def test_their_few_shot_prompts_score_the_same_with_our_cached_scoring(both):
    model, tokenizer, task, _, _, fewshot = both
    samples = sorted(fewshot["samples"]["sums"], key=lambda s: s["doc_id"])
    requests = [(s["arguments"][0][0], [a[1] for a in s["arguments"]]) for s in samples]
    assert all(r[0].startswith("Arithmetic.\n\n") and r[0].count("\n\n") == 3 for r in requests)
    for scores, sample in zip(score_choices(model, tokenizer, requests), samples):
        np.testing.assert_allclose(scores.logprobs, [ll for ll, _ in sample["filtered_resps"]], rtol=0, atol=1e-9)


def test_run_lm_eval_refuses_more_shots_than_the_few_shot_split(both, tmp_path):
    from tinygrad_llm.evaluate.lm_eval_adapter import run_lm_eval

    model, tokenizer, task, _, _, _ = both
    with pytest.raises(ValueError, match="5-shot needs 5 few-shot documents, it has 4"):
        run_lm_eval(model, tokenizer, [task], tmp_path, num_fewshot=5)
