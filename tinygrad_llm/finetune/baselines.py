"""The baselines a fine-tuned model must beat on a text-classification task (lesson 10).

Unlike the model, which reads tokens, these read words, in plain NumPy: the majority class; the
best *single-keyword rule* ("if the word w occurs say class a, else class b"), which tells whether
one word solves the task; and a bag-of-words logistic regression (softmax regression on word
counts, trained by gradient descent with an L2 penalty).
"""


from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np



# ----------------------------------------------------------------------------------------------
# Words


WORD_PATTERN = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lower-cased runs of letters, digits and underscores.

        >>> words('Call x.__init__(self)!')
        ['call', 'x', '__init__', 'self']
    """
    return WORD_PATTERN.findall(text.lower())


def word_vocabulary(texts: Iterable[str], min_count: int = 1) -> dict[str, int]:
    """Word -> column, for the words seen at least ``min_count`` times, in sorted order."""
    counts = Counter(word for text in texts for word in words(text))
    return {word: i for i, word in enumerate(sorted(w for w, c in counts.items() if c >= min_count))}


def bag_of_words(texts: Sequence[str], vocabulary: dict[str, int]) -> np.ndarray:
    """(N, W) word counts; words outside the vocabulary are ignored (float64)."""
    counts = np.zeros((len(texts), len(vocabulary)))
    for row, text in enumerate(texts):
        for word in words(text):
            column = vocabulary.get(word)
            if column is not None:
                counts[row, column] += 1
    return counts


# ----------------------------------------------------------------------------------------------
# Baselines


def majority_class(labels: np.ndarray) -> int:
    """The most frequent class id (the smallest one among ties)."""
    return int(np.argmax(np.bincount(np.asarray(labels))))


@dataclass(frozen=True)
class KeywordRule:
    """If ``word`` occurs in the passage, say ``present_class``, else ``absent_class``."""

    word: str
    present_class: int
    absent_class: int

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.present_class if self.word in set(words(t)) else self.absent_class
                         for t in texts], dtype=np.int64)


def best_keyword_rule(texts: Sequence[str], labels: np.ndarray, num_classes: int,
                      min_count: int = 2) -> tuple[KeywordRule, float]:
    """The single-keyword rule with the highest accuracy on (texts, labels), and that accuracy.

    For word w, let n_k = passages of class k that contain it and m_k those that do not. The best
    rule for w says argmax n when w occurs and argmax m otherwise, with accuracy
    (max n + max m) / N; we try every word seen at least ``min_count`` times. It can name only
    two classes, so on K balanced classes it scores at most 2/K; that is the point of the check.
    """
    labels = np.asarray(labels, dtype=np.int64)
    vocabulary = word_vocabulary(texts, min_count)
    if not vocabulary:
        raise ValueError("no word occurs often enough to make a keyword rule")
    present = bag_of_words(texts, vocabulary) > 0                        # (N, W)
    onehot = np.eye(num_classes)[labels]                                 # (N, K)
    with_word = present.T.astype(np.float64) @ onehot                    # (W, K): n_k per word
    without_word = onehot.sum(axis=0) - with_word                        # (W, K): m_k per word
    correct = with_word.max(axis=1) + without_word.max(axis=1)           # (W,)
    best = int(np.argmax(correct))                                       # first best: sorted words
    word = sorted(vocabulary, key=vocabulary.get)[best]
    rule = KeywordRule(word, int(np.argmax(with_word[best])), int(np.argmax(without_word[best])))
    return rule, float(correct[best] / len(labels))


class SoftmaxRegression:
    """Multinomial logistic regression, trained by full-batch gradient descent:

        P = softmax(X W + b),   loss = -(1/N) sum_i log P[i, y_i] + (l2 / 2) |W|^2
        dW = X^T (P - Y) / N + l2 W,   db = mean over rows of (P - Y)      (Y one-hot)

    The loss is convex, so gradient descent with step 1/L reaches its minimum, where
    L = lambda_max(X^T X) / (2N) + l2 bounds its curvature (softmax's own curvature is at most
    1/2); ``fit`` uses that step unless given one. The bias is not penalised.
    """

    def __init__(self, num_features: int, num_classes: int, l2: float = 1e-3):
        if l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {l2}")
        self.weight = np.zeros((num_features, num_classes))   # (W, K)
        self.bias = np.zeros(num_classes)                      # (K,)
        self.l2 = l2

    @property
    def num_parameters(self) -> int:
        return self.weight.size + self.bias.size

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        logits = features @ self.weight + self.bias                      # (N, K)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.argmax(features @ self.weight + self.bias, axis=1)

    def loss_and_gradients(self, features: np.ndarray, labels: np.ndarray):
        """(loss, dW, db) at the current weights (the equations of the class docstring)."""
        n = len(labels)
        p = self.predict_proba(features)
        loss = -np.mean(np.log(p[np.arange(n), labels])) + 0.5 * self.l2 * np.sum(self.weight ** 2)
        p[np.arange(n), labels] -= 1.0                                   # P - Y
        return loss, features.T @ p / n + self.l2 * self.weight, p.mean(axis=0)

    def fit(self, features: np.ndarray, labels: np.ndarray, steps: int = 500,
            learning_rate: float | None = None) -> list[float]:
        """Gradient descent from the current weights; returns the loss before every step."""
        features = np.asarray(features, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.int64)
        if features.shape != (len(labels), self.weight.shape[0]):
            raise ValueError(f"features of shape {features.shape} for {len(labels)} labels and "
                             f"{self.weight.shape[0]} features")
        if learning_rate is None:
            # the bias is a weight on a constant feature 1, so the bound includes that column
            with_bias = np.hstack([features, np.ones((len(labels), 1))])
            learning_rate = 1.0 / (np.linalg.norm(with_bias, 2) ** 2 / (2 * len(labels)) + self.l2)
        losses = []
        for _ in range(steps):
            loss, d_weight, d_bias = self.loss_and_gradients(features, labels)
            losses.append(float(loss))
            self.weight -= learning_rate * d_weight
            self.bias -= learning_rate * d_bias
        return losses
