"""Scoring what a model produces: ROUGE and BLEU for text, accuracy and a confusion matrix for
classifiers (lesson 09).

Perplexity (``evaluation.py``) asks how well a model predicts a text someone else wrote. The text
metrics here ask the opposite question: how close is a text the model *wrote* (the hypothesis) to
a text a person wrote for the same input (the reference)? Both count shared n-grams, runs of n
consecutive words, and a shared n-gram counts at most as often as it occurs in each text ("clipped"):

* ROUGE-N (from summarisation): P = matches / hypothesis n-grams, R = matches / reference n-grams,
  F1 = 2PR / (P + R). ROUGE-L uses the longest common subsequence (LCS) instead of n-grams: words
  in the same order, gaps allowed, so P = LCS / hypothesis words and R = LCS / reference words.
  Scores are in [0, 1], one per (hypothesis, reference) pair; ``mean_rouge`` averages over pairs.
  (This is rouge-score's "rougeL", over the whole text; its sentence-split "rougeLsum" is not here.)
* BLEU (from translation): the clipped n-gram precisions p_1..p_4 are summed over the whole corpus
  before dividing, combined by a geometric mean and multiplied by a brevity penalty that punishes
  a corpus of hypotheses shorter than its references (c words against r)::

      BLEU = 100 * BP * exp((1/4) * sum_n log p_n),    BP = 1 if c > r else exp(1 - r/c)

Tokenisation decides what a word is, and changes every number, so each metric follows the package
that papers report it with; the tests check that we agree with both:

* ROUGE tokenises like ``rouge-score`` (``rouge_tokenize``): lowercase, turn every run of
  characters outside [a-z0-9] into a space, split on whitespace. Punctuation disappears, "don't"
  becomes "don" and "t", and letters outside a-z ("é") are dropped. No stemming (its default).
* BLEU tokenises like ``sacrebleu``'s default "13a" tokenizer (``bleu_tokenize``, the rules of
  WMT's mteval-v13a script): case is kept, punctuation becomes tokens of its own, except that a
  period or comma between two digits stays ("3.14", "1,000"), a hyphen stays unless it follows a
  digit ("well-known", but "2 - 3"), and an apostrophe always stays ("don't").

Classifiers are scored with ``accuracy`` and a ``confusion_matrix`` (rows are the true class,
columns the predicted one, as in scikit-learn), from which ``precision_recall_f1`` and
``macro_f1`` follow.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

# --- checking inputs --------------------------------------------------------------------------


def _check_text(text, name: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    return text


def _check_pairs(hypotheses, references) -> None:
    for name, texts in (("hypotheses", hypotheses), ("references", references)):
        if isinstance(texts, str) or not isinstance(texts, (Sequence, np.ndarray)):
            raise TypeError(f"{name} must be a list with one entry per pair, got {type(texts).__name__}")
    if len(hypotheses) == 0:
        raise ValueError("there are no hypotheses to score (the list is empty)")
    if len(hypotheses) != len(references):
        raise ValueError(f"got {len(hypotheses)} hypotheses but {len(references)} references; "
                         "each hypothesis needs its reference(s)")
    for i, text in enumerate(hypotheses):
        _check_text(text, f"hypotheses[{i}]")


# --- n-grams and subsequences ------------------------------------------------------------------


def ngram_counts(tokens: Sequence[str], n: int) -> Counter:
    """How often each run of ``n`` consecutive tokens occurs.

    >>> ngram_counts(["a", "b", "a", "b"], 2)
    Counter({('a', 'b'): 2, ('b', 'a'): 1})
    """
    if n < 1:
        raise ValueError(f"n-grams need n >= 1, got {n}")
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def clipped_matches(hypothesis_counts: Counter, reference_counts: Counter) -> int:
    """Shared n-grams, each counted at most as often as it occurs in either text.

    >>> clipped_matches(Counter({"the": 3, "cat": 1}), Counter({"the": 2, "dog": 1}))
    2
    """
    return sum((hypothesis_counts & reference_counts).values())  # & keeps the minimum count


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence: tokens of both, in the same order, gaps allowed.

    >>> lcs_length("a b c d".split(), "a c b d".split())
    3
    """
    # previous[j] = LCS of a[:i-1] and b[:j]; one row of the (len(a)+1, len(b)+1) table at a time
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


# --- ROUGE -------------------------------------------------------------------------------------

_NOT_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")


def rouge_tokenize(text: str) -> list[str]:
    """ROUGE's words (rouge-score's default tokenizer, no stemming): lowercase, replace every run
    of characters outside a-z and 0-9 with a space, split on whitespace.

    >>> rouge_tokenize("The café's 2nd-best dish!")
    ['the', 'caf', 's', '2nd', 'best', 'dish']
    """
    # careful: lowercase first, then filter, as rouge-score does ("É".lower() is "é", dropped too)
    return _NOT_ALPHANUMERIC.sub(" ", _check_text(text, "text").lower()).split()


@dataclass(frozen=True)
class RougeScore:
    """Precision, recall and their harmonic mean F1, each in [0, 1]."""

    precision: float
    recall: float
    f1: float

    @classmethod
    def from_counts(cls, matches: int, hypothesis_total: int, reference_total: int) -> RougeScore:
        """P = matches / hypothesis total, R = matches / reference total, F1 = 2PR / (P + R);
        an empty side gives 0, not a division by zero (rouge-score's convention).

        >>> RougeScore.from_counts(2, 4, 2)
        RougeScore(precision=0.5, recall=1.0, f1=0.6666666666666666)
        """
        precision = matches / max(hypothesis_total, 1)
        recall = matches / max(reference_total, 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        return cls(precision, recall, f1)


def _rouge_n_tokens(hypothesis: list[str], reference: list[str], n: int) -> RougeScore:
    hyp, ref = ngram_counts(hypothesis, n), ngram_counts(reference, n)
    return RougeScore.from_counts(clipped_matches(hyp, ref), sum(hyp.values()), sum(ref.values()))


def _rouge_l_tokens(hypothesis: list[str], reference: list[str]) -> RougeScore:
    return RougeScore.from_counts(lcs_length(hypothesis, reference), len(hypothesis), len(reference))


def rouge_n(hypothesis: str, reference: str, n: int = 1) -> RougeScore:
    """ROUGE-N of one pair: clipped n-gram matches over the hypothesis's n-grams (precision) and
    over the reference's (recall), on ``rouge_tokenize`` words. An empty text scores 0.

    >>> rouge_n("the cat sat", "the cat sat down", n=2).recall
    0.6666666666666666
    """
    hyp = rouge_tokenize(_check_text(hypothesis, "hypothesis"))
    return _rouge_n_tokens(hyp, rouge_tokenize(_check_text(reference, "reference")), n)


def rouge_l(hypothesis: str, reference: str) -> RougeScore:
    """ROUGE-L of one pair: LCS / hypothesis words (precision), LCS / reference words (recall),
    on ``rouge_tokenize`` words. An empty text scores 0.

    >>> rouge_l("a c b d", "a b c d").f1
    0.75
    """
    hyp = rouge_tokenize(_check_text(hypothesis, "hypothesis"))
    return _rouge_l_tokens(hyp, rouge_tokenize(_check_text(reference, "reference")))


def rouge(hypothesis: str, reference: str) -> dict[str, RougeScore]:
    """ROUGE-1, ROUGE-2 and ROUGE-L of one pair, keyed "rouge1", "rouge2", "rougeL" (rouge-score's
    names), on ``rouge_tokenize`` words."""
    hyp = rouge_tokenize(_check_text(hypothesis, "hypothesis"))
    ref = rouge_tokenize(_check_text(reference, "reference"))
    return {"rouge1": _rouge_n_tokens(hyp, ref, 1), "rouge2": _rouge_n_tokens(hyp, ref, 2),
            "rougeL": _rouge_l_tokens(hyp, ref)}


def mean_rouge(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, RougeScore]:
    """``rouge`` of every (hypothesis, reference) pair, averaged over the pairs.

    careful: each of precision, recall and F1 is averaged on its own, so the mean F1 is not the
    F1 of the mean precision and mean recall (this is how summarisation papers report ROUGE).
    """
    _check_pairs(hypotheses, references)
    for i, text in enumerate(references):
        _check_text(text, f"references[{i}]")
    scores = [rouge(h, r) for h, r in zip(hypotheses, references)]
    return {key: RougeScore(*(float(np.mean([getattr(s[key], field) for s in scores]))
                              for field in ("precision", "recall", "f1")))
            for key in scores[0]}


# --- BLEU --------------------------------------------------------------------------------------

# 13a splits these off everywhere: ASCII punctuation except the apostrophe, the hyphen, the period
# and the comma, which have the rules below.
_SYMBOLS = "!\"#$%&()*+/:;<=>?@[\\]^_`{|}~"
# careful: each rule is one left-to-right pass with non-overlapping matches, in this order, as in
# mteval-v13a; so in "a.,5" the comma stays attached to the 5 ("a . ,5"). We keep the quirk.
_13A_RULES = [
    (re.compile("([" + re.escape(_SYMBOLS) + "])"), r" \1 "),
    (re.compile(r"([^0-9])([.,])"), r"\1 \2 "),   # a period or comma not after a digit ...
    (re.compile(r"([.,])([^0-9])"), r" \1 \2"),   # ... or not before a digit is split off
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),       # a hyphen after a digit is split off
]
_ENTITIES = [("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")]  # undone in this order

SMOOTH_METHODS = {"exp": None, "floor": 0.1, "add-k": 1.0, "none": None}  # method: default value


def bleu_tokenize(text: str, lowercase: bool = False) -> list[str]:
    """BLEU's tokens, by sacrebleu's default "13a" rules: drop trailing whitespace and the marker
    "<skipped>", join words hyphenated across a line break, undo four HTML entities, then split
    off punctuation (periods and commas only when not between digits, hyphens only after a digit).

    >>> bleu_tokenize("It's well-known: 3.14, not 2-3.")
    ["It's", 'well-known', ':', '3.14', ',', 'not', '2', '-', '3', '.']
    """
    text = _check_text(text, "text").rstrip()
    if lowercase:
        text = text.lower()
    text = text.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    for entity, character in _ENTITIES:
        text = text.replace(entity, character)
    text = f" {text} "  # so that the rules see a non-digit on either side of the text
    for pattern, replacement in _13A_RULES:
        text = pattern.sub(replacement, text)
    return text.split()


@dataclass(frozen=True)
class BleuScore:
    """A BLEU score (0-100) and the statistics it is made of.

    ``precisions`` are the (smoothed) n-gram precisions in percent; ``matches`` and ``totals``
    the raw clipped matches and hypothesis n-grams per order, summed over the corpus (before any
    smoothing); ``sys_len`` and ``ref_len`` the hypothesis and effective reference lengths c and r.
    """

    score: float
    precisions: tuple[float, ...]
    bp: float
    sys_len: int
    ref_len: int
    matches: tuple[int, ...]
    totals: tuple[int, ...]

    def __str__(self) -> str:
        precisions = "/".join(f"{p:.1f}" for p in self.precisions)
        return (f"BLEU = {self.score:.2f} {precisions} (BP = {self.bp:.3f}, "
                f"hyp_len = {self.sys_len}, ref_len = {self.ref_len})")


def closest_reference_length(hypothesis_length: int, reference_lengths: Sequence[int]) -> int:
    """The reference length nearest the hypothesis length; a tie goes to the shorter reference.

    >>> closest_reference_length(5, [3, 7, 9])
    3
    """
    return min(reference_lengths, key=lambda length: (abs(length - hypothesis_length), length))


def _references_of(entry, i: int) -> list[str]:
    """One hypothesis's references: a string, or a non-empty list of strings."""
    if isinstance(entry, str):
        return [entry]
    if not isinstance(entry, (Sequence, np.ndarray)) or len(entry) == 0:
        raise TypeError(f"references[{i}] must be a str or a non-empty list of str, got {entry!r}")
    return [_check_text(text, f"references[{i}][{j}]") for j, text in enumerate(entry)]


def _smoothed_precisions(matches: list[int], totals: list[int], method: str,
                         value: float) -> tuple[list[float], int]:
    """(precisions in percent, number of orders that have n-grams), with the smoothing methods of
    Chen and Cherry (2014) as sacrebleu names them. The first order without any hypothesis n-gram
    stops the list: it and the orders above it keep precision 0."""
    precisions = [0.0] * len(matches)
    halvings, orders = 1.0, 0
    for n, (matched, total) in enumerate(zip(matches, totals), start=1):
        if method == "add-k" and n > 1:
            # careful: sacrebleu adds k before looking at the total, so an order that a short
            # hypothesis does not even have scores (0 + k) / (0 + k) = 100%. We agree with it.
            matched, total = matched + value, total + value
        if total == 0:
            break
        orders = n
        if matched > 0:
            precisions[n - 1] = 100.0 * matched / total
        elif method == "exp":  # the k-th order without matches counts as 1 / 2^k matches
            halvings *= 2
            precisions[n - 1] = 100.0 / (halvings * total)
        elif method == "floor":  # ... or as ``value`` matches
            precisions[n - 1] = 100.0 * value / total
    return precisions, orders


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str | Sequence[str]],
                smooth_method: str = "exp", smooth_value: float | None = None, lowercase: bool = False,
                max_order: int = 4, effective_order: bool = False) -> BleuScore:
    """Corpus BLEU (0-100) on ``bleu_tokenize`` tokens, agreeing with ``sacrebleu.corpus_bleu``.

    ``references[i]`` holds the reference of ``hypotheses[i]``: one string, or a list of strings
    when there are several. careful: sacrebleu takes the transpose (a list of reference *streams*,
    each with one string per hypothesis).

    Per order n, clipped matches and hypothesis n-grams are summed over the corpus, then divided
    (with several references, an n-gram may match as often as it occurs in any one of them). The
    effective reference length r sums, per hypothesis, the reference length closest to its length.
    ``smooth_method`` (sacrebleu's names) fills in orders without matches: "exp" (default) gives the
    k-th such order 1/2^k matches, "floor" gives it ``smooth_value`` (0.1) matches, "add-k" adds
    ``smooth_value`` (1) to the matches and totals of every order n >= 2, "none" leaves it at 0 (and
    BLEU at 0). Without a single matching word BLEU is 0 whatever the smoothing.
    ``effective_order`` averages only over the orders the hypotheses have (for short sentences).
    """
    if smooth_method not in SMOOTH_METHODS:
        raise ValueError(f"smooth_method must be one of {list(SMOOTH_METHODS)}, got {smooth_method!r}")
    if max_order < 1:
        raise ValueError(f"max_order must be >= 1, got {max_order}")
    if smooth_value is not None and smooth_value < 0:
        raise ValueError(f"smooth_value must be >= 0, got {smooth_value}")
    _check_pairs(hypotheses, references)
    value = SMOOTH_METHODS[smooth_method] if smooth_value is None else smooth_value
    matches, totals = [0] * max_order, [0] * max_order
    sys_len = ref_len = 0
    for i, (hypothesis, entry) in enumerate(zip(hypotheses, references)):
        hyp = bleu_tokenize(hypothesis, lowercase)
        refs = [bleu_tokenize(text, lowercase) for text in _references_of(entry, i)]
        sys_len += len(hyp)
        ref_len += closest_reference_length(len(hyp), [len(ref) for ref in refs])
        for n in range(1, max_order + 1):
            hyp_counts = ngram_counts(hyp, n)
            best_reference = Counter()  # each n-gram's largest count in any one reference
            for ref in refs:
                best_reference |= ngram_counts(ref, n)  # | keeps the maximum count
            matches[n - 1] += clipped_matches(hyp_counts, best_reference)
            totals[n - 1] += sum(hyp_counts.values())

    if sys_len >= ref_len:
        bp = 1.0
    else:
        bp = math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0
    if matches[0] == 0:  # no word in common (or no words): nothing to smooth
        return BleuScore(0.0, (0.0,) * max_order, bp, sys_len, ref_len, tuple(matches), tuple(totals))
    precisions, available = _smoothed_precisions(matches, totals, smooth_method, value)
    orders = available if effective_order else max_order
    used = precisions[:orders]  # a precision of 0 makes the geometric mean 0
    score = bp * math.exp(sum(math.log(p) for p in used) / orders) if min(used) > 0 else 0.0
    return BleuScore(score, tuple(precisions), bp, sys_len, ref_len, tuple(matches), tuple(totals))


def sentence_bleu(hypothesis: str, references: str | Sequence[str], smooth_method: str = "exp",
                  smooth_value: float | None = None, lowercase: bool = False, max_order: int = 4,
                  effective_order: bool = True) -> BleuScore:
    """BLEU of one hypothesis, with sacrebleu's ``sentence_bleu`` defaults ("exp" smoothing,
    effective order). careful: averaging sentence BLEU over a corpus is not corpus BLEU."""
    return corpus_bleu([hypothesis], [references], smooth_method, smooth_value, lowercase, max_order,
                       effective_order)


# --- classifiers -------------------------------------------------------------------------------


def _paired_arrays(first, second, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(first), np.asarray(second)
    for name, array in zip(names, (a, b)):
        if array.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if len(a) != len(b):
        raise ValueError(f"got {len(a)} {names[0]} but {len(b)} {names[1]}")
    if len(a) == 0:
        raise ValueError(f"there is nothing to score ({names[0]} and {names[1]} are empty)")
    return a, b


def accuracy(predictions: Sequence | np.ndarray, labels: Sequence | np.ndarray) -> float:
    """The fraction of predictions equal to their label (labels of any kind that compare with ==).

    >>> accuracy([0, 1, 1, 2], [0, 1, 2, 2])
    0.75
    """
    predictions, labels = _paired_arrays(predictions, labels, ("predictions", "labels"))
    return float(np.mean(predictions == labels))


def confusion_matrix(labels: Sequence[int] | np.ndarray, predictions: Sequence[int] | np.ndarray,
                     num_classes: int | None = None) -> np.ndarray:
    """(C, C) counts: entry [i, j] is how many examples of true class i were predicted as class j
    (scikit-learn's layout). Classes are integers 0..C-1; C defaults to the largest one seen + 1.

    >>> confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2]).tolist()
    [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    """
    labels, predictions = _paired_arrays(labels, predictions, ("labels", "predictions"))
    for name, array in (("labels", labels), ("predictions", predictions)):
        if array.dtype.kind not in "iub":
            raise TypeError(f"{name} must be integer class ids, got dtype {array.dtype}")
        if array.min() < 0:
            raise ValueError(f"{name} must be class ids >= 0, got {array.min()}")
    largest = int(max(labels.max(), predictions.max()))
    if num_classes is None:
        num_classes = largest + 1
    elif largest >= num_classes:
        raise ValueError(f"class id {largest} does not fit num_classes={num_classes}")
    # each (true, predicted) pair becomes one index true * C + predicted of the flattened matrix
    pairs = labels.astype(np.int64) * num_classes + predictions.astype(np.int64)
    return np.bincount(pairs, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def precision_recall_f1(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: precision = correct / predicted as the class (column sum), recall = correct /
    truly in the class (row sum), F1 = their harmonic mean. A 0/0 gives 0, as scikit-learn does.

    >>> [p.tolist() for p in precision_recall_f1(np.array([[2, 0], [1, 1]]))]
    [[0.6666666666666666, 1.0], [1.0, 0.5], [0.8, 0.6666666666666666]]
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix is square, got shape {matrix.shape}")
    correct = np.diag(matrix).astype(np.float64)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(correct, predicted, out=np.zeros_like(correct), where=predicted > 0)
    recall = np.divide(correct, actual, out=np.zeros_like(correct), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(correct), where=both > 0)
    return precision, recall, f1


def macro_f1(matrix: np.ndarray) -> float:
    """The unweighted mean of the per-class F1, over the classes that occur as a label or as a
    prediction (so a rare class counts as much as a common one; scikit-learn's average="macro").

    >>> round(macro_f1(np.array([[2, 0], [1, 1]])), 4)
    0.7333
    """
    _, _, f1 = precision_recall_f1(matrix)
    matrix = np.asarray(matrix)
    present = (matrix.sum(axis=0) + matrix.sum(axis=1)) > 0
    if not present.any():   # careful: the mean over no classes would be NaN, not a score
        raise ValueError("macro_f1 needs at least one example: the confusion matrix is all zeros")
    return float(f1[present].mean())
