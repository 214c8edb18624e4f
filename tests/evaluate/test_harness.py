"""The benchmark harness: log-likelihoods against a plain forward pass, prompts, task files, metrics."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

from tinygrad_llm import GPT, BPETokenizer, GPTConfig
from tinygrad_llm.evaluate import harness
from tinygrad_llm.evaluate.harness import (Doc, Task, bootstrap_stderr, encode_pair, evaluate_task,
                                           fewshot_context, format_table, load_task, save_task,
                                           score_choices)

TEXT = ("The for statement iterates over a sequence. The while statement repeats a block. "
        "A function is defined with def. A class is defined with class. 2 + 2 = 4. 3 + 4 = 7.\n") * 8


@pytest.fixture(scope="module")
def tokenizer():
    return BPETokenizer.train(TEXT, 300, special_tokens=("<|endoftext|>",))


@pytest.fixture(scope="module")
def model(tokenizer):
    return GPT(GPTConfig(vocab_size=tokenizer.vocab_size, context_length=24, d_model=32, n_layer=2, n_head=2),
               rng=np.random.default_rng(0), dtype=np.float64).eval()


def brute_force(model, tokenizer, context, continuation):
    """log p(continuation | context) from one full forward pass of the concatenation."""
    context_ids, continuation_ids = encode_pair(tokenizer, context, continuation)
    ids = (context_ids + continuation_ids)[-(model.config.context_length + 1):]
    logits = model(np.array([ids[:-1]])).data[0]
    logits = logits - logits.max(axis=-1, keepdims=True)
    logprobs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    n = len(continuation_ids)
    targets = np.array(ids[-n:])
    rows = logprobs[-n:]
    return float(rows[np.arange(n), targets].sum()), bool((rows.argmax(axis=-1) == targets).all())


def test_docstring_examples_run():
    assert doctest.testmod(harness).failed == 0


def test_cached_scoring_equals_a_full_forward_pass_for_every_choice(model, tokenizer):
    requests = [("The for statement", [" iterates over a sequence", " repeats", " is"]),
                ("A class is defined", [" with class", " with def"]),
                ("The while", [" statement repeats a block.", " loop"]),
                ("2 + 2 =", [" 4", " 5", " 22"])]
    scored = score_choices(model, tokenizer, requests, batch_size=2)
    for (context, choices), result in zip(requests, scored):
        for choice, logprob, greedy in zip(choices, result.logprobs, result.greedy):
            expected, expected_greedy = brute_force(model, tokenizer, context, choice)
            assert logprob == pytest.approx(expected, abs=1e-9)
            assert greedy == expected_greedy
        assert not result.truncated


def test_a_context_longer_than_the_window_is_cut_from_the_left_and_counted(model, tokenizer):
    long_context = "The for statement iterates over a sequence. " * 6
    (result,) = score_choices(model, tokenizer, [(long_context, [" The", " A class"])])
    assert result.truncated
    context_ids, _ = encode_pair(tokenizer, long_context, " The")
    assert len(context_ids) > model.config.context_length
    # each choice keeps as much of the context as fits before it (lm-evaluation-harness's cut)
    for choice, logprob in zip([" The", " A class"], result.logprobs):
        _, choice_ids = encode_pair(tokenizer, long_context, choice)
        kept = context_ids[-(model.config.context_length - (len(choice_ids) - 1)):]
        logits = model(np.array([kept + choice_ids[:-1]])).data[0]
        logits = logits - logits.max(axis=-1, keepdims=True)
        logprobs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
        rows = logprobs[len(kept) - 1:]
        assert logprob == pytest.approx(float(rows[np.arange(len(choice_ids)), choice_ids].sum()), abs=1e-9)
    assert len(encode_pair(tokenizer, long_context, " A class")[1]) > len(encode_pair(tokenizer, long_context, " The")[1])


def test_encode_pair_moves_trailing_spaces_to_the_continuation(tokenizer):
    context_ids, continuation_ids = encode_pair(tokenizer, "2 + 2 = ", "4")
    assert tokenizer.decode(context_ids) == "2 + 2 ="
    assert tokenizer.decode(continuation_ids) == " 4"


def test_fewshot_prompts_follow_the_harness_layout_and_are_reproducible():
    shots = tuple(Doc(f"{a}+{a}=", (str(2 * a), str(2 * a + 1)), 0) for a in range(1, 6))
    task = Task("add", "multiple_choice", (Doc("7+7=", ("14", "15"), 0),), fewshot_docs=shots,
                description="Add.")
    prompt = fewshot_context(task, task.docs[0], 3, np.random.default_rng(5))
    parts = prompt.split("\n\n")
    assert parts[0] == "Add." and parts[-1] == "7+7=" and len(parts) == 5
    assert all(p.split("=")[1].startswith(" ") for p in parts[1:-1])
    assert prompt == fewshot_context(task, task.docs[0], 3, np.random.default_rng(5))
    with pytest.raises(ValueError, match="6-shot needs 6 few-shot documents, it has 5"):
        fewshot_context(task, task.docs[0], 6, np.random.default_rng(0))


def test_acc_and_acc_norm_choose_by_summed_and_by_per_character_log_likelihood(model, tokenizer):
    docs = (Doc("The for statement", ("iterates over a sequence", "is"), 0),
            Doc("2 + 2 =", ("4", "5"), 1))
    task = Task("toy", "multiple_choice", docs)
    result = evaluate_task(model, tokenizer, task)
    for doc, acc, acc_norm in zip(docs, result.per_doc["acc"], result.per_doc["acc_norm"]):
        scores = [brute_force(model, tokenizer, doc.context, " " + c)[0] for c in doc.choices]
        assert acc == float(np.argmax(scores) == doc.answer)
        normed = np.array(scores) / np.array([len(c) for c in doc.choices])
        assert acc_norm == float(np.argmax(normed) == doc.answer)
    assert result.baseline == 0.5 and result.count == 2
    assert "acc_norm" in format_table([result])
    json.dumps(result.as_dict())


def test_generation_tasks_score_exact_match_and_rouge(model, tokenizer):
    task = Task("copy", "generate_until", (Doc("A class is defined with", target="class."),), max_gen_tokens=4)
    result = evaluate_task(model, tokenizer, task)
    assert set(result.metrics) == {"exact_match", "rouge_l"}
    assert 0.0 <= result.metrics["rouge_l"] <= 1.0


def test_bootstrap_stderr_is_close_to_the_binomial_formula():
    values = np.random.default_rng(0).random(400) < 0.3
    p = values.mean()
    assert bootstrap_stderr(values) == pytest.approx(np.sqrt(p * (1 - p) / values.size), rel=0.1)


def test_task_files_round_trip(tmp_path):
    task = Task("t", "multiple_choice", (Doc("a", ("b", "c"), 1),), fewshot_docs=(Doc("d", ("e", "f"), 0),))
    save_task(task, tmp_path / "t.jsonl")
    assert load_task(tmp_path / "t.jsonl") == task


@pytest.mark.parametrize("lines, fragment", [
    (['{"task": "t"}', '{"context": "a", "answer": 0}'], "line 2: missing field 'choices'"),
    (['{"task": "t"}', '{"context": "a", "choices": [], "answer": 0}'], "line 2: a multiple-choice document needs at least 2 choices, got 0"),
    (['{"task": "t"}', '{"context": "a", "choices": ["x"], "answer": 0}'], "at least 2 choices, got 1"),
    (['{"task": "t"}', '{"context": "a", "choices": ["x", "y"], "answer": 2}'], "'answer' must index"),
    (['{"task": "t"}', '{"context": "a", "choices": ["x", "y"], "answer": 0, "colour": 1}'], "unknown field"),
    (['{"task": "t", "output_type": "generate_until"}', '{"context": "a"}'], "line 2: missing field 'target'"),
    (['{"name": "t"}'], "line 1: the first line must be a header"),
    (['{"task": "t"}', 'not json'], "line 2: not valid JSON"),
    (['{"task": "t"}'], "has no documents"),
])
def test_malformed_task_files_name_the_line_and_the_field(tmp_path, lines, fragment):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_task(path)


def test_a_choice_longer_than_the_window_names_the_task_and_the_document(model, tokenizer):
    long_choice = "iterates over a sequence. " * 12
    task = Task("long", "multiple_choice", (Doc("The for", ("statement", "loop"), 0),
                                            Doc("The for", ("statement", long_choice), 0)))
    message = "task 'long', document 1: a choice of .* tokens does not fit the model's window of 24"
    with pytest.raises(ValueError, match=message):
        evaluate_task(model, tokenizer, task)
