"""Text and classifier metrics of lesson 09: ROUGE, BLEU, accuracy, the confusion matrix.

Hand-computed examples carry their arithmetic in comments. The agreement tests compare with the
reference packages (rouge-score, sacrebleu) on a few hundred sentence pairs made from Python's
documentation topics with seeded random edits; they are skipped when the packages are absent.
"""

from __future__ import annotations

import doctest
import functools
import math

import numpy as np
import pytest

from tinygrad_llm.evaluate import metrics
from tinygrad_llm.evaluate.metrics import (BleuScore, RougeScore, accuracy, bleu_tokenize, closest_reference_length,
                                  confusion_matrix, corpus_bleu, lcs_length, macro_f1, mean_rouge,
                                  ngram_counts, precision_recall_f1, rouge, rouge_l, rouge_n,
                                  rouge_tokenize, sentence_bleu)

SMOOTHING = ["exp", "floor", "add-k", "none"]


def test_docstring_examples_run():
    result = doctest.testmod(metrics)
    assert result.attempted >= 10 and result.failed == 0


# --- ROUGE --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("", []),
    ("  \n\t ", []),
    ("Hello, World!", ["hello", "world"]),
    ("don't stop-believing", ["don", "t", "stop", "believing"]),
    ("x_1 = f(2.5)", ["x", "1", "f", "2", "5"]),
    ("naïve café", ["na", "ve", "caf"]),   # letters outside a-z are dropped, like rouge-score
    ("?!...", []),
])
def test_rouge_tokenize_lowercases_and_keeps_only_ascii_letters_and_digits(text, words):
    assert rouge_tokenize(text) == words


def test_rouge_by_hand():
    hypothesis = "the cat was found under the bed"
    reference = "the cat was under the bed"
    # unigrams: hypothesis 7 (the x2, cat, was, found, under, bed), reference 6 (the x2, ...);
    # clipped matches: the 2 + cat + was + under + bed = 6 -> P = 6/7, R = 6/6
    r1 = rouge_n(hypothesis, reference, 1)
    assert r1.precision == pytest.approx(6 / 7) and r1.recall == 1.0
    assert r1.f1 == pytest.approx(2 * (6 / 7) * 1 / (6 / 7 + 1))   # = 12/13
    # bigrams: hypothesis "the cat, cat was, was found, found under, under the, the bed" (6),
    # reference "the cat, cat was, was under, under the, the bed" (5); matches 4 -> P 4/6, R 4/5
    r2 = rouge_n(hypothesis, reference, 2)
    assert (r2.precision, r2.recall) == pytest.approx((4 / 6, 4 / 5))
    assert r2.f1 == pytest.approx(2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5))  # = 8/11
    # LCS: the whole reference is a subsequence of the hypothesis (drop "found"): 6 -> P 6/7, R 1
    rl = rouge_l(hypothesis, reference)
    assert (rl.precision, rl.recall) == pytest.approx((6 / 7, 1.0))
    assert rouge(hypothesis, reference) == {"rouge1": r1, "rouge2": r2, "rougeL": rl}


def test_rouge_clips_repeated_words():
    # "the" 4 times in the hypothesis, once in the reference: 1 match -> P 1/4, R 1/2
    score = rouge_n("the the the the", "the cat", 1)
    assert (score.precision, score.recall) == (0.25, 0.5)
    assert score.f1 == pytest.approx(1 / 3)   # 2 * 1/4 * 1/2 / (3/4)


def test_rouge_identical_texts_score_one_whatever_case_and_punctuation():
    for score in rouge("The cat, sat.", "the cat sat").values():
        assert score == RougeScore(1.0, 1.0, 1.0)


def test_rouge_without_overlap_scores_zero():
    for score in rouge("a dog barked loudly", "the cat sat").values():
        assert score == RougeScore(0.0, 0.0, 0.0)


@pytest.mark.parametrize("hypothesis, reference", [("", "the cat"), ("the cat", ""), ("", ""), ("!!", "?")])
def test_rouge_of_an_empty_text_is_zero(hypothesis, reference):
    for score in rouge(hypothesis, reference).values():
        assert score == RougeScore(0.0, 0.0, 0.0)


def test_rouge2_of_one_word_texts_is_zero_even_when_equal():
    # one word has no bigram: 0 matches out of max(0, 1)
    assert rouge_n("cat", "cat", 2) == RougeScore(0.0, 0.0, 0.0)
    assert rouge_n("cat", "cat", 1) == RougeScore(1.0, 1.0, 1.0)


@pytest.mark.parametrize("a, b, length", [
    ("", "a b", 0),
    ("a b c", "a b c", 3),
    ("a b c d", "d c b a", 1),
    ("a b c d", "a c b d", 3),
    ("x a y b z c", "a b c", 3),
    ("a a a", "a", 1),
])
def test_lcs_length(a, b, length):
    assert lcs_length(a.split(), b.split()) == length
    assert lcs_length(b.split(), a.split()) == length   # symmetric


def test_ngram_counts():
    assert ngram_counts("a b a b".split(), 1) == {("a",): 2, ("b",): 2}
    assert ngram_counts("a b".split(), 3) == {}
    with pytest.raises(ValueError, match="n >= 1"):
        ngram_counts(["a"], 0)


def test_mean_rouge_averages_precision_recall_and_f1_separately():
    pairs = [("the cat", "the cat sat on the mat"),   # P 1, R 2/6, F1 1/2
             ("the cat sat on the mat", "the cat")]   # P 2/6, R 1, F1 1/2
    mean = mean_rouge([h for h, _ in pairs], [r for _, r in pairs])["rouge1"]
    assert mean.precision == pytest.approx((1 + 2 / 6) / 2)
    assert mean.recall == pytest.approx((2 / 6 + 1) / 2)
    assert mean.f1 == pytest.approx(0.5)   # the mean of the F1s, not the F1 of the means (2/3)
    assert set(mean_rouge(["a"], ["a"])) == {"rouge1", "rouge2", "rougeL"}


def test_rouge_rejects_bad_input_naming_the_problem():
    with pytest.raises(ValueError, match="no hypotheses"):
        mean_rouge([], [])
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        mean_rouge(["a", "b"], ["a"])
    with pytest.raises(TypeError, match=r"hypotheses\[1\] must be a str, got int"):
        mean_rouge(["a", 3], ["a", "b"])
    with pytest.raises(TypeError, match=r"references\[0\] must be a str, got list"):
        mean_rouge(["a"], [["a"]])
    with pytest.raises(TypeError, match="hypotheses must be a list"):
        mean_rouge("a cat", "a cat")
    with pytest.raises(TypeError, match="reference must be a str, got NoneType"):
        rouge("a", None)
    with pytest.raises(TypeError, match="hypothesis must be a str, got bytes"):
        rouge_l(b"a", "a")


# --- BLEU ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, tokens", [
    ("", []),
    ("Hello, world!", ["Hello", ",", "world", "!"]),
    ("It's well-known: 3.14, 1,000 and 2-3.", ["It's", "well-known", ":", "3.14", ",", "1,000", "and",
                                                "2", "-", "3", "."]),
    ("f(x)[0] == {'a': 1}", ["f", "(", "x", ")", "[", "0", "]", "=", "=", "{", "'a'", ":", "1", "}"]),
    ("e.g. U.S.A.", ["e", ".", "g", ".", "U", ".", "S", ".", "A", "."]),
    ("a.,5", ["a", ".", ",5"]),                       # one pass per rule, as mteval-v13a does
    ("Tom &amp; Jerry &lt;3 &quot;hi&quot;", ["Tom", "&", "Jerry", "<", "3", '"', "hi", '"']),
    ("hyphen-\nated words\nhere  \n", ["hyphenated", "words", "here"]),
    ("<skipped> done", ["done"]),
])
def test_bleu_tokenize_follows_13a(text, tokens):
    assert bleu_tokenize(text) == tokens


def test_bleu_tokenize_keeps_case_unless_asked():
    assert bleu_tokenize("The Cat") == ["The", "Cat"]
    assert bleu_tokenize("The Cat", lowercase=True) == ["the", "cat"]


def test_corpus_bleu_by_hand():
    score = corpus_bleu(["the cat sat on the mat"], ["the cat sat on a mat"])
    # 1-grams: the x2 (1 clipped), cat, sat, on, mat -> 5 / 6
    # 2-grams: the cat, cat sat, sat on | on the, the mat -> 3 / 5
    # 3-grams: the cat sat, cat sat on | sat on the, on the mat -> 2 / 4
    # 4-grams: the cat sat on | cat sat on the, sat on the mat -> 1 / 3
    assert score.matches == (5, 3, 2, 1) and score.totals == (6, 5, 4, 3)
    assert score.precisions == pytest.approx((500 / 6, 60.0, 50.0, 100 / 3))
    # c = r = 6 so BP = 1; BLEU = 100 * (5/6 * 3/5 * 1/2 * 1/3)^(1/4) = 100 * (1/12)^(1/4)
    assert (score.bp, score.sys_len, score.ref_len) == (1.0, 6, 6)
    assert score.score == pytest.approx(100 * (1 / 12) ** 0.25)   # 53.728...
    assert str(score).startswith("BLEU = 53.73 83.3/60.0/50.0/33.3 (BP = 1.000")


@pytest.mark.parametrize("method, expected", [
    # "a cat sat on the mat" against "the cat sat on a mat": 6/6, 2/5, 1/4 and 0/3 four-grams
    ("none", 0.0),                                             # a zero precision: BLEU 0
    ("exp", 100 * (1 * 2 / 5 * 1 / 4 * 1 / (2 * 3)) ** 0.25),   # first empty order: 1/(2^1 * 3)
    ("floor", 100 * (1 * 2 / 5 * 1 / 4 * 0.1 / 3) ** 0.25),     # 0.1 / 3
    ("add-k", 100 * (1 * 3 / 6 * 2 / 5 * 1 / 4) ** 0.25),       # (m+1)/(t+1) for n >= 2
])
def test_corpus_bleu_smoothing_by_hand(method, expected):
    score = corpus_bleu(["a cat sat on the mat"], ["the cat sat on a mat"], smooth_method=method)
    assert score.matches == (6, 2, 1, 0) and score.totals == (6, 5, 4, 3)   # raw, before smoothing
    assert score.score == pytest.approx(expected)


def test_corpus_bleu_smooth_value_changes_floor_and_add_k():
    hyp, ref = ["a cat sat on the mat"], ["the cat sat on a mat"]
    assert corpus_bleu(hyp, ref, "floor", 0.5).precisions[3] == pytest.approx(100 * 0.5 / 3)
    assert corpus_bleu(hyp, ref, "add-k", 2).precisions[1] == pytest.approx(100 * 4 / 7)


def test_brevity_penalty_and_effective_order():
    # c = 2 words against r = 6: BP = exp(1 - 6/2) = e^-2; 1-gram 2/2 and 2-gram 1/1, no 3-grams
    score = corpus_bleu(["the cat"], ["the cat sat on the mat"])
    assert score.bp == pytest.approx(math.exp(-2)) and score.totals == (2, 1, 0, 0)
    assert score.score == 0.0   # orders 3 and 4 have no n-grams at all: precision 0
    short = corpus_bleu(["the cat"], ["the cat sat on the mat"], effective_order=True)
    assert short.score == pytest.approx(100 * math.exp(-2))   # geometric mean over 2 orders of 1
    assert sentence_bleu("the cat", "the cat sat on the mat") == short
    # a hypothesis longer than its reference is not penalised (precision does that)
    assert corpus_bleu(["the cat sat on the mat today"], ["the cat sat on the mat"]).bp == 1.0


def test_bleu_is_summed_over_the_corpus_not_averaged_over_sentences():
    hyps = ["the cat sat on the mat", "a dog"]
    refs = ["the cat sat on the mat", "a dog barked at the postman"]
    corpus = corpus_bleu(hyps, refs)
    # 1-grams 8/8, 2-grams 6/6, 3-grams 4/4, 4-grams 3/3; c = 8, r = 12: BP = exp(1 - 12/8)
    assert corpus.matches == corpus.totals == (8, 6, 4, 3)
    assert corpus.score == pytest.approx(100 * math.exp(-0.5))
    sentences = np.mean([sentence_bleu(h, r).score for h, r in zip(hyps, refs)])
    assert abs(sentences - corpus.score) > 1


def test_bleu_with_several_references():
    # clipping uses the largest count in any one reference: "the" twice is fine with reference 2
    score = corpus_bleu(["the the cat"], [["the cat", "the dog and the cat"]], max_order=1)
    assert score.matches == (3,) and score.totals == (3,)
    # closest reference length to c = 3: lengths 2 and 5 -> 2 (distance 1), so no penalty
    assert score.ref_len == 2 and score.bp == 1.0
    assert closest_reference_length(4, [2, 6]) == 2   # a tie goes to the shorter one
    assert closest_reference_length(4, [6, 3]) == 3


@pytest.mark.parametrize("method", SMOOTHING)
def test_bleu_edge_cases(method):
    assert corpus_bleu(["The cat sat."], ["The cat sat."], method).score == pytest.approx(100.0)
    nothing = corpus_bleu(["a dog barked"], ["the cat sat"], method)
    assert nothing.score == 0.0 and nothing.precisions == (0.0,) * 4   # no word in common
    empty = corpus_bleu([""], ["the cat sat"], method)
    assert (empty.score, empty.bp, empty.sys_len, empty.ref_len) == (0.0, 0.0, 0, 3)
    assert corpus_bleu(["the cat sat"], [""], method).score == 0.0
    lowered = corpus_bleu(["the Cat sat down"], ["the cat sat down"], method, lowercase=True)
    assert lowered.score == pytest.approx(100.0)


def test_bleu_rejects_bad_input_naming_the_problem():
    with pytest.raises(ValueError, match="no hypotheses"):
        corpus_bleu([], [])
    with pytest.raises(ValueError, match="1 hypotheses but 2 references"):
        corpus_bleu(["a"], ["a", "b"])
    with pytest.raises(TypeError, match=r"hypotheses\[0\] must be a str, got NoneType"):
        corpus_bleu([None], ["a"])
    with pytest.raises(TypeError, match=r"references\[0\]\[1\] must be a str, got int"):
        corpus_bleu(["a"], [["a", 1]])
    with pytest.raises(TypeError, match=r"references\[0\] must be a str or a non-empty list"):
        corpus_bleu(["a"], [[]])
    with pytest.raises(TypeError, match="hypotheses must be a list"):
        corpus_bleu("a", ["a"])
    with pytest.raises(ValueError, match="smooth_method must be one of"):
        corpus_bleu(["a"], ["a"], smooth_method="add-one")
    with pytest.raises(ValueError, match="max_order"):
        corpus_bleu(["a"], ["a"], max_order=0)
    with pytest.raises(ValueError, match="smooth_value must be >= 0"):
        corpus_bleu(["a"], ["a"], smooth_method="floor", smooth_value=-0.1)


def test_bleu_score_is_a_frozen_record():
    score = corpus_bleu(["a b"], ["a b"])
    assert isinstance(score, BleuScore)
    with pytest.raises(AttributeError):
        score.score = 0.0


# --- classifiers ----------------------------------------------------------------------------------

def test_accuracy_and_confusion_matrix_by_hand():
    labels = [0, 0, 1, 1, 1, 2]
    predictions = [0, 1, 1, 1, 2, 2]
    assert accuracy(predictions, labels) == pytest.approx(4 / 6)   # positions 0, 2, 3, 5
    matrix = confusion_matrix(labels, predictions)
    # row = true class, column = predicted: class 1 was predicted once as 2 (position 4)
    assert matrix.tolist() == [[1, 1, 0],
                               [0, 2, 1],
                               [0, 0, 1]]
    assert matrix.sum() == 6 and np.trace(matrix) == 4
    assert confusion_matrix(labels, predictions, num_classes=4).shape == (4, 4)
    assert accuracy(["cat", "dog"], ["cat", "cat"]) == 0.5   # any labels that compare with ==


def test_precision_recall_f1_and_macro_f1_by_hand():
    matrix = np.array([[1, 1, 0],
                       [0, 2, 1],
                       [0, 0, 1]])
    precision, recall, f1 = precision_recall_f1(matrix)
    # precision = diagonal / column sums (1, 3, 2); recall = diagonal / row sums (2, 3, 1)
    assert precision == pytest.approx([1 / 1, 2 / 3, 1 / 2])
    assert recall == pytest.approx([1 / 2, 2 / 3, 1 / 1])
    assert f1 == pytest.approx([2 / 3, 2 / 3, 2 / 3])   # e.g. class 0: 2 * 1 * 1/2 / (3/2)
    assert macro_f1(matrix) == pytest.approx(2 / 3)
    # a class that never occurs (neither label nor prediction) is left out of the macro average
    padded = np.pad(matrix, ((0, 1), (0, 1)))
    assert macro_f1(padded) == pytest.approx(2 / 3)
    # a class that is never predicted has precision 0/0 -> 0, recall 0
    p, r, f = precision_recall_f1(np.array([[2, 0], [1, 0]]))
    assert (p.tolist(), r.tolist(), f.tolist()) == ([2 / 3, 0.0], [1.0, 0.0], [0.8, 0.0])
    assert macro_f1(np.array([[2, 0], [1, 0]])) == pytest.approx(0.4)


def test_classifier_metrics_reject_bad_input_naming_the_problem():
    with pytest.raises(ValueError, match="got 2 predictions but 3 labels"):
        accuracy([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="nothing to score"):
        accuracy([], [])
    with pytest.raises(ValueError, match="got 3 labels but 2 predictions"):
        confusion_matrix([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="nothing to score"):
        confusion_matrix([], [])
    with pytest.raises(ValueError, match="labels must be class ids >= 0, got -1"):
        confusion_matrix([0, -1], [0, 1])
    with pytest.raises(ValueError, match="predictions must be class ids >= 0"):
        confusion_matrix([0, 1], [0, -100])
    with pytest.raises(TypeError, match="integer class ids, got dtype float64"):
        confusion_matrix([0.0, 1.0], [0, 1])
    with pytest.raises(ValueError, match="class id 3 does not fit num_classes=3"):
        confusion_matrix([0, 3], [0, 1], num_classes=3)
    with pytest.raises(ValueError, match="one-dimensional"):
        accuracy([[0, 1]], [[0, 1]])
    with pytest.raises(ValueError, match="square"):
        precision_recall_f1(np.zeros((2, 3)))


# --- agreement with the reference packages ----------------------------------------------------------

def _documentation_words() -> list[str]:
    from pydoc_data.topics import topics

    return " ".join(topics[key] for key in sorted(topics)).split()


def _edited(words: list[str], vocabulary: list[str], rng: np.random.Generator) -> list[str]:
    """A copy of ``words`` after 0-5 random edits: delete, insert, replace, swap, change case."""
    words = list(words)
    for _ in range(rng.integers(0, 6)):
        edit = rng.integers(5)
        i = int(rng.integers(0, len(words) + 1))
        if edit == 0 and words:
            del words[min(i, len(words) - 1)]
        elif edit == 1:
            words.insert(i, vocabulary[rng.integers(len(vocabulary))])
        elif edit == 2 and words:
            words[min(i, len(words) - 1)] = vocabulary[rng.integers(len(vocabulary))]
        elif edit == 3 and len(words) > 1:
            j = min(i, len(words) - 2)
            words[j], words[j + 1] = words[j + 1], words[j]
        elif edit == 4 and words:
            j = min(i, len(words) - 1)
            words[j] = words[j].upper() if rng.random() < 0.5 else words[j].capitalize()
    return words


@functools.lru_cache(maxsize=None)
def _sentence_triples(count: int = 300, seed: int = 0) -> tuple[tuple[str, str, str], ...]:
    """(hypothesis, reference, second reference): runs of 1-30 words of documentation, the others
    edited copies of it; a few are joined by newlines so that 13a's line rules are exercised."""
    words = _documentation_words()
    rng = np.random.default_rng(seed)
    triples = []
    for _ in range(count):
        length = int(rng.integers(1, 31))
        start = int(rng.integers(0, len(words) - length))
        reference = words[start:start + length]
        separator = "\n" if rng.random() < 0.1 else " "
        triples.append((separator.join(_edited(reference, words, rng)), " ".join(reference),
                        " ".join(_edited(reference, words, rng))))
    return tuple(triples)


# strings where a tokenizer could go wrong: non-ASCII case rules, entities, digits and dashes
TRICKY = ["İstanbul ǅemal ﬁne ÀÉÎ straße", "a.,5 x.5 5.x 1,000.50 .5 5.",
          "&amp;lt; &quot;x&quot; & <skipped>", "1-2-3 x--y -5 well-\nknown",
          "\t'quoted'  \"double\"\r\n", "e.g. U.S.A., i.e. 3.14159!", ""]


def _documentation_lines() -> list[str]:
    from pydoc_data.topics import topics

    return [line for key in sorted(topics) for line in topics[key].splitlines()] + TRICKY


def test_rouge_tokenize_agrees_with_rouge_score():
    tokenize = pytest.importorskip("rouge_score.tokenize")
    lines = _documentation_lines()
    assert len(lines) > 10_000
    for line in lines:
        assert rouge_tokenize(line) == tokenize.tokenize(line, None), line


def test_rouge_agrees_with_rouge_score():
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    triples = _sentence_triples()
    sums = {key: np.zeros(3) for key in ("rouge1", "rouge2", "rougeL")}
    for hypothesis, reference, _ in triples:
        ours = rouge(hypothesis, reference)
        theirs = scorer.score(reference, hypothesis)   # rouge-score takes (target, prediction)
        for key, score in ours.items():
            expected = (theirs[key].precision, theirs[key].recall, theirs[key].fmeasure)
            assert (score.precision, score.recall, score.f1) == pytest.approx(expected, rel=1e-9, abs=1e-12)
            sums[key] += expected
    mean = mean_rouge([h for h, _, _ in triples], [r for _, r, _ in triples])
    for key, total in sums.items():
        assert (mean[key].precision, mean[key].recall, mean[key].f1) == pytest.approx(total / len(triples))
    # the data must span the range, or agreement would mean little
    f1s = [rouge(h, r)["rouge2"].f1 for h, r, _ in triples]
    assert min(f1s) == 0.0 and max(f1s) == 1.0 and 0.2 < np.mean(f1s) < 0.9


def test_bleu_tokenize_agrees_with_sacrebleu_13a():
    pytest.importorskip("sacrebleu")
    from pydoc_data.topics import topics
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    tokenizer = Tokenizer13a()
    # every line, and every document whole (so that its line breaks and hyphenation are tested)
    for text in _documentation_lines() + [topics[key] for key in sorted(topics)]:
        assert bleu_tokenize(text) == tokenizer(text.rstrip()).split(), text[:200]
        assert bleu_tokenize(text, lowercase=True) == tokenizer(text.lower().rstrip()).split()


@pytest.mark.parametrize("method", SMOOTHING)
def test_corpus_bleu_agrees_with_sacrebleu(method):
    sacrebleu = pytest.importorskip("sacrebleu")
    triples = _sentence_triples()
    hyps, refs, second = ([t[i] for t in triples] for i in range(3))
    corpora = [slice(begin, begin + 30) for begin in range(0, len(triples), 30)] + [slice(None)]
    for chunk in corpora:   # ten corpora of 30 sentences, and one of all 300
        ours = corpus_bleu(hyps[chunk], refs[chunk], smooth_method=method)
        theirs = sacrebleu.corpus_bleu(hyps[chunk], [refs[chunk]], smooth_method=method)
        assert ours.score == pytest.approx(theirs.score, abs=1e-4)
        assert ours.precisions == pytest.approx(theirs.precisions, abs=1e-4)
        assert ours.bp == pytest.approx(theirs.bp)
        assert (ours.sys_len, ours.ref_len) == (theirs.sys_len, theirs.ref_len)
    # several references per hypothesis (sacrebleu takes them as streams), and lowercasing
    ours = corpus_bleu(hyps, [list(pair) for pair in zip(refs, second)], smooth_method=method, lowercase=True)
    theirs = sacrebleu.corpus_bleu(hyps, [refs, second], smooth_method=method, lowercase=True)
    assert ours.score == pytest.approx(theirs.score, abs=1e-4)
    assert (ours.sys_len, ours.ref_len) == (theirs.sys_len, theirs.ref_len)


@pytest.mark.parametrize("method", SMOOTHING)
def test_sentence_bleu_agrees_with_sacrebleu(method):
    sacrebleu = pytest.importorskip("sacrebleu")
    scores = []
    for hypothesis, reference, second in _sentence_triples():
        for refs, effective in (([reference], True), ([reference, second], False)):
            ours = sentence_bleu(hypothesis, refs, smooth_method=method, effective_order=effective)
            theirs = sacrebleu.sentence_bleu(hypothesis, refs, smooth_method=method,
                                             use_effective_order=effective)
            assert ours.score == pytest.approx(theirs.score, abs=1e-4), (hypothesis, refs)
            scores.append(ours.score)
    assert min(scores) == 0.0 and max(scores) == pytest.approx(100.0)
