"""The four built-in benchmark tasks: answers a program can verify, four choices, separate splits."""

from __future__ import annotations

import importlib
import re

import pytest

from tinygrad_llm.evaluate.benchmarks import (TASK_NAMES, arithmetic_task, builtin_task, builtin_tasks, continuation_task,
                                              identifier_cloze_task, module_of_function_task,
                                              prose_sentences, standard_library_functions)
from tinygrad_llm.text.corpus import load_documents


@pytest.fixture(scope="module")
def documents():
    return load_documents()


@pytest.fixture(scope="module")
def sentences(documents):
    return prose_sentences(documents)


def test_every_task_has_four_distinct_choices_and_no_context_in_both_splits(documents):
    for task in builtin_tasks(count=60, documents=documents):
        assert len(task.docs) >= 40 and len(task.fewshot_docs) >= 8, task.name
        assert task.random_baseline() == 0.25
        for doc in task.docs + task.fewshot_docs:
            assert len(doc.choices) == 4 and len(set(doc.choices)) == 4
        assert not {d.context for d in task.docs} & {d.context for d in task.fewshot_docs}, task.name


def test_the_right_answers_are_not_always_in_one_position(documents):
    for task in builtin_tasks(count=100, documents=documents):
        positions = {doc.answer for doc in task.docs}
        assert positions == {0, 1, 2, 3}, task.name


def test_continuations_are_the_real_sentence_endings(documents, sentences):
    task = continuation_task(documents, count=50)
    text = " ".join(" ".join(s.split()) for s in sentences)   # the tasks fold runs of spaces
    for doc in task.docs:
        assert f"{doc.context} {doc.choices[doc.answer]}" in text


def test_cloze_answers_are_the_identifiers_that_follow_in_the_corpus(documents, sentences):
    task = identifier_cloze_task(documents, count=50)
    assert task.target_delimiter == ""
    text = " ".join(" ".join(s.split()) for s in sentences)   # the tasks fold runs of spaces
    for doc in task.docs:
        assert doc.context.endswith('"')
        assert f'{doc.context}{doc.choices[doc.answer]}"' in text


def test_module_answers_define_the_function_and_the_other_choices_do_not():
    task = module_of_function_task(count=80)
    for doc in task.docs:
        function = re.search(r"function (\w+)\(\)", doc.context).group(1)
        right = importlib.import_module(doc.choices[doc.answer])
        assert callable(getattr(right, function))
        owners = dict(standard_library_functions())
        assert owners[function] == doc.choices[doc.answer]


def test_arithmetic_answers_are_the_sums():
    for doc in arithmetic_task(count=50).docs:
        a, b = map(int, re.findall(r"\d+", doc.context))
        assert int(doc.choices[doc.answer]) == a + b


def test_tasks_are_reproducible_from_their_seed(documents):
    assert continuation_task(documents, 30, seed=3) == continuation_task(documents, 30, seed=3)
    assert continuation_task(documents, 30, seed=3) != continuation_task(documents, 30, seed=4)


def test_builtin_tasks_are_found_by_name(documents):
    assert [t.name for t in builtin_tasks(count=20, documents=documents)] == list(TASK_NAMES)
    assert builtin_task("arithmetic", 20) == arithmetic_task(20)
    with pytest.raises(ValueError, match="no built-in task 'sums'; the tasks are continuation"):
        builtin_task("sums")
