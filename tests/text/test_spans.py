"""Span corruption: T5's noise counts, sentinels from the end of the vocabulary, an exact round trip."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from tinygrad_llm.text import spans
from tinygrad_llm.text.spans import (random_segmentation, restore_spans, sentinel_ids, show_corruption, span_corrupt,
                                     span_counts, span_noise_mask)

SENTINELS = sentinel_ids(1000, 40)


def test_docstring_examples_run():
    assert doctest.testmod(spans).failed == 0


def test_sentinels_are_the_last_ids_counting_down():
    assert SENTINELS[:3] == [999, 998, 997] and len(set(SENTINELS)) == 40
    with pytest.raises(ValueError, match="do not fit"):
        sentinel_ids(10, 10)


def test_segments_are_at_least_one_and_add_up():
    rng = np.random.default_rng(0)
    for n, k in ((10, 1), (10, 10), (50, 7)):
        lengths = random_segmentation(n, k, rng)
        assert len(lengths) == k and lengths.min() >= 1 and lengths.sum() == n


@pytest.mark.parametrize("length", [10, 57, 128, 512])
def test_the_noise_is_the_density_in_spans_of_the_mean_length(length):
    rng = np.random.default_rng(length)
    noise, n_spans = span_counts(length)
    for _ in range(20):
        mask = span_noise_mask(length, rng)
        assert mask.sum() == noise == max(1, round(0.15 * length))
        assert int((mask & ~np.concatenate([[False], mask[:-1]])).sum()) == n_spans
        assert not mask[0], "a kept run comes first"


def test_the_mean_span_length_over_many_sequences_is_three():
    rng = np.random.default_rng(1)
    lengths = []
    for _ in range(200):
        mask = span_noise_mask(200, rng)
        starts = np.flatnonzero(mask & ~np.concatenate([[False], mask[:-1]]))
        ends = np.flatnonzero(mask & ~np.concatenate([mask[1:], [False]]))
        lengths.extend(ends - starts + 1)
    assert abs(np.mean(lengths) - 3.0) < 1e-9      # 30 noise tokens in 10 spans, every time


def test_inputs_and_targets_hold_the_text_exactly():
    rng = np.random.default_rng(2)
    for length in (3, 5, 40, 300):
        ids = rng.integers(0, 900, length)
        inputs, targets = span_corrupt(ids, rng, SENTINELS)
        n_spans = int(np.isin(inputs, SENTINELS).sum())
        assert restore_spans(inputs, targets, SENTINELS) == ids.tolist()
        assert targets[0] == SENTINELS[0] and targets[-1] == SENTINELS[n_spans]
        assert [t for t in targets if t in SENTINELS] == SENTINELS[:n_spans + 1]
        assert len(inputs) + len(targets) == length + 2 * n_spans + 1


def test_readable_form_names_the_sentinels():
    text = show_corruption(lambda ids: "".join(chr(97 + i) for i in ids), [0, 999, 3], [999, 1, 2, 998], SENTINELS)
    assert text == "inputs:  a<s0>d\ntargets: <s0>bc<s1>"


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(noise_density=0.0), "noise density"),
    (dict(noise_density=1.0), "noise density"),
    (dict(mean_span_length=12.0), "longer than the sequence of 10"),
    (dict(mean_span_length=0.5), "at least 1"),
])
def test_bad_settings_are_refused_by_name(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        span_corrupt(np.arange(10), np.random.default_rng(0), SENTINELS, **kwargs)


def test_too_few_sentinels_and_too_short_sequences_are_refused():
    with pytest.raises(ValueError, match="sentinels"):
        span_corrupt(np.arange(300), np.random.default_rng(0), SENTINELS[:3])
    with pytest.raises(ValueError, match="at least 2 tokens"):
        span_corrupt(np.arange(1), np.random.default_rng(0), SENTINELS)
