"""Preference data (tinygrad_llm.align.preferences): rankings, their pairs, simulated labellers,
the JSON-lines file and its errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tinygrad_llm.align.preferences import (PreferenceFileError, Ranking, encode_pairs, noisy_ranking,
                                            ranking_pairs, read_preferences, write_preferences)


@pytest.mark.parametrize("k", [2, 3, 4, 7])
def test_a_ranking_of_k_states_k_choose_2_ordered_pairs(k):
    pairs = ranking_pairs(k)
    assert len(pairs) == math.comb(k, 2) == len(set(pairs))
    assert all(0 <= i < j < k for i, j in pairs)


@pytest.mark.parametrize("k", [0, 1, 2.0, True, "3"])
def test_ranking_pairs_refuses_what_is_not_a_ranking(k):
    with pytest.raises(ValueError, match="at least 2"):
        ranking_pairs(k)


def test_ranking_pairs_put_the_better_response_first():
    ranking = Ranking("Say hi.", ("Hello!", "hi", "go away"))
    assert ranking.pairs() == [("Hello!", "hi"), ("Hello!", "go away"), ("hi", "go away")]


@pytest.mark.parametrize("responses, match", [(("only one",), "at least two"), (("a", "a"), "same response"),
                                              (("a", ""), "response 1"), (["a", "b"], "tuple")])
def test_a_bad_ranking_is_refused(responses, match):
    with pytest.raises(ValueError, match=match):
        Ranking("prompt", responses)


def test_noise_free_labellers_rank_by_score():
    assert noisy_ranking([0.1, 0.9, 0.5, 0.3], 0.0, np.random.default_rng(0)).tolist() == [1, 2, 3, 0]


@pytest.mark.parametrize("gap, noise", [(0.5, 0.5), (1.0, 0.25), (0.2, 1.0)])
def test_noisy_labellers_prefer_the_better_item_with_the_logistic_probability(gap, noise):
    """The difference of two Gumbel draws is logistic, so P(better first) = s(gap / noise)."""
    rng = np.random.default_rng(1)
    wins = np.mean([noisy_ranking([gap, 0.0], noise, rng)[0] == 0 for _ in range(20_000)])
    assert abs(wins - 1 / (1 + math.exp(-gap / noise))) < 0.012


@pytest.mark.parametrize("scores, noise", [([1.0], 0.1), ([1.0, float("nan")], 0.1), ([1.0, 2.0], -1.0)])
def test_noisy_ranking_refuses_bad_numbers(scores, noise):
    with pytest.raises(ValueError):
        noisy_ranking(scores, noise, np.random.default_rng(0))


def test_a_preference_file_round_trips_and_reads_both_record_shapes(tmp_path):
    rankings = [Ranking("Explain for.", ("a clear answer", "a short one", "a rude one")),
                Ranking("Explain «while».", ("ünïcode answer", "no"))]
    path = tmp_path / "prefs.jsonl"
    write_preferences(path, rankings)
    assert read_preferences(path) == rankings
    with path.open("a", encoding="utf-8") as f:
        f.write("\n" + json.dumps({"prompt": "p", "chosen": "good", "rejected": "bad"}) + "\n")
    assert read_preferences(path)[-1] == Ranking("p", ("good", "bad"))


@pytest.mark.parametrize("line, match", [
    ("{not json", "line 2: not JSON"),
    ("[1, 2]", "line 2: expected an object"),
    ('{"prompt": "p", "responses": "ab"}', "line 2: 'responses' must be a list"),
    ('{"prompt": "p", "chosen": "a"}', r"line 2: expected the keys .* got \['chosen', 'prompt'\]"),
    ('{"prompt": "p", "responses": ["a"]}', "line 2: a ranking needs a tuple of at least two"),
    ('{"prompt": "", "responses": ["a", "b"]}', "line 2: a ranking needs a non-empty prompt"),
    ('{"prompt": "p", "chosen": "a", "rejected": "a"}', "line 2: .*same response"),
])
def test_a_malformed_record_is_refused_naming_its_line(tmp_path, line, match):
    path = tmp_path / "prefs.jsonl"
    path.write_text(json.dumps({"prompt": "p", "responses": ["a", "b"]}) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(PreferenceFileError, match=match):
        read_preferences(path)


def test_missing_empty_and_binary_files_are_refused(tmp_path):
    with pytest.raises(PreferenceFileError, match="no preference file"):
        read_preferences(tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(PreferenceFileError, match="no preference records"):
        read_preferences(tmp_path / "empty.jsonl")
    (tmp_path / "binary.jsonl").write_bytes(b"\xff\xfe{}")
    with pytest.raises(PreferenceFileError, match="not UTF-8"):
        read_preferences(tmp_path / "binary.jsonl")


def test_encoded_pairs_share_the_prompt_and_end_with_end_of_text(tiny_tokenizer):
    rankings = [Ranking("Name a loop.", ("for", "while", "spam")), Ranking("Say hi.", ("hello", "go away"))]
    pairs = encode_pairs(tiny_tokenizer, rankings, context_length=64)
    assert len(pairs) == 3 + 1
    for pair in pairs:
        n = pair.chosen.prompt_length
        assert n == pair.rejected.prompt_length
        assert pair.chosen.ids[:n].tolist() == pair.rejected.ids[:n].tolist()
        assert pair.chosen.ids[-1] == pair.rejected.ids[-1] == tiny_tokenizer.eot_id
    assert tiny_tokenizer.decode(pairs[0].chosen.response_ids[:-1].tolist()) == "for"
