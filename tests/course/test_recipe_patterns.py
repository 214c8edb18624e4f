"""The course tokenizer with GPT-2's split pattern: its own file, the same recipe otherwise."""

from __future__ import annotations

import pytest

from tinygrad_llm.course.recipe import COURSE_PATTERN, course_tokenizer, course_tokenizer_path
from tinygrad_llm.text.patterns import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN


@pytest.fixture(autouse=True)
def output_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGRAD_LLM_OUT", str(tmp_path / "outputs"))


def test_each_pattern_has_its_own_tokenizer_file():
    assert COURSE_PATTERN == "gpt4"
    assert course_tokenizer_path(True).name == "course_tokenizer_quick.json"
    assert course_tokenizer_path(True, "gpt2").name == "course_tokenizer_quick_gpt2.json"
    assert course_tokenizer_path(False, "gpt2").name == "course_tokenizer_gpt2.json"


def test_the_gpt2_pattern_course_tokenizer_is_trained_saved_and_reloaded():
    tokenizer = course_tokenizer(True, "gpt2")
    assert tokenizer.pattern == GPT2_SPLIT_PATTERN and course_tokenizer_path(True, "gpt2").is_file()
    assert course_tokenizer(True, "gpt2").encode("it's 2024") == tokenizer.encode("it's 2024")
    assert course_tokenizer(True).pattern == GPT4_SPLIT_PATTERN   # the course default is untouched
    assert tokenizer.vocab_size == course_tokenizer(True).vocab_size


def test_an_unknown_pattern_is_refused():
    with pytest.raises(ValueError, match="one of gpt4, gpt2"):
        course_tokenizer_path(True, "llama")
