"""Knowledge distillation: a small student learns from a trained teacher (lesson 15).

Unlike ``trainer``'s plain training, which fits the corpus's one-hot next tokens, the student here
also fits a teacher's whole distributions; ``Distiller`` is the ``Trainer`` with one hook changed.

A trained language model knows more than the labels it was trained on. For the next token it
gives a whole distribution: after "The for" it may put most of its probability on " statement",
some on " loop" and " clause", and almost none on ",". Which tokens are *plausible* is
information that the one-hot target of the corpus does not carry. Distillation (Hinton, Vinyals
and Dean, 2015) trains a smaller *student* to match the *teacher*'s distributions as well as the
data:

    loss = alpha * T^2 KL(p_T || q_T) + (1 - alpha) * CE(student, targets)

with p_T = softmax(teacher logits / T) and q_T = softmax(student logits / T). A temperature
T > 1 flattens both distributions, so that the small probabilities (the plausible alternatives)
weigh more in the match; T^2 keeps the gradient of the soft term about the same size whatever
T is.

* ``kl_div_with_temperature``: the soft term, a fused op with a hand-written backward, and its
  composed reference ``kl_div_with_temperature_composed``;
* ``distillation_loss`` (and ``distillation_terms``, which also returns the two terms): the two
  terms combined; with alpha = 0 it *is* the cross-entropy;
* ``Distiller``: lesson 07's ``Trainer`` with this loss as its objective; the teacher runs in eval mode under
  ``no_grad`` on every batch, and with alpha = 0 a run is plain training, bit for bit;
* ``teacher_logits``: a model's logits in eval mode without a graph, what the teacher provides;
* ``estimate_kl``: how far a student is from its teacher on fixed windows of text.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from ..core import functional as F
from ..text.data import random_batch
from ..model.gpt import GPT
from ..core.tensor import Tensor, is_grad_enabled
from ..train.trainer import TrainConfig, Trainer

_REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------------------------
# Checks shared by the loss functions and the Distiller


def check_temperature(temperature: float) -> float:
    """The temperature divides the logits: it must be a finite number > 0."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer, np.floating)):
        raise TypeError(f"temperature must be a number, got {type(temperature).__name__}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    return float(temperature)


def check_alpha(alpha: float) -> float:
    """alpha weighs the soft (teacher) term against the hard (label) term: it must be in [0, 1]."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise TypeError(f"alpha must be a number, got {type(alpha).__name__}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (0: labels only, 1: teacher only), got {alpha}")
    return float(alpha)


def _check_logits(student_logits: Tensor, teacher_logits, temperature: float,
                  reduction: str) -> tuple[np.ndarray, float]:
    """The teacher's logits as an array of the student's dtype, and the checked temperature."""
    if not isinstance(student_logits, Tensor):
        raise TypeError(f"student_logits must be a Tensor, got {type(student_logits).__name__}")
    if isinstance(teacher_logits, Tensor):
        if teacher_logits.requires_grad:
            raise TypeError("teacher_logits require grad, but the teacher is a constant here: compute "
                            "them under no_grad() (or pass .data); no gradient flows into the teacher")
        teacher_logits = teacher_logits.data
    teacher = np.asarray(teacher_logits)
    if teacher.dtype.kind != "f":
        raise TypeError(f"teacher_logits must be floating point, got {teacher.dtype}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"kl_div_with_temperature: reduction must be one of {_REDUCTIONS}, "
                         f"got {reduction!r}")
    s_shape = student_logits.shape
    if student_logits.ndim < 1 or s_shape[-1] == 0 or student_logits.size == 0:
        raise ValueError(f"kl_div_with_temperature needs logits with a non-empty last axis, got {s_shape}")
    if teacher.shape != s_shape:
        if teacher.shape[-1:] != s_shape[-1:]:
            raise ValueError(f"teacher logits cover {teacher.shape[-1:]} classes and student logits "
                             f"{s_shape[-1:]} (shapes {teacher.shape} and {s_shape}): teacher and "
                             f"student must share one vocabulary (one tokenizer)")
        raise ValueError(f"teacher logits of shape {teacher.shape} do not match student logits of "
                         f"shape {s_shape}: both must score the same positions")
    temperature = check_temperature(temperature)
    # a constant takes the Tensor's dtype (the rule of Tensor arithmetic): float64 in gradchecks
    return teacher.astype(student_logits.dtype, copy=False), temperature


def _shifted_scaled(logits: np.ndarray, temperature: float) -> np.ndarray:
    """logits / T - max(logits / T) per row, in a new array: exp() of it cannot overflow."""
    x = logits / temperature
    x -= x.max(axis=1, keepdims=True)
    return x


def _check_finite(result: np.ndarray, student: np.ndarray, teacher: np.ndarray, temperature: float) -> None:
    """Called with the result, so that the inputs are only scanned again when something is wrong."""
    if np.isfinite(result).all():
        return
    for name, values in (("teacher", teacher), ("student", student)):
        if not np.isfinite(values).all():
            raise ValueError(f"{name} logits contain NaN or inf; a distribution needs finite logits")
    raise FloatingPointError(f"kl_div_with_temperature overflowed: logits / T (T = {temperature}) are "
                             f"too large for the dtype")


# ----------------------------------------------------------------------------------------------
# The soft term


def kl_div_with_temperature(student_logits: Tensor, teacher_logits: np.ndarray, temperature: float = 1.0,
                            reduction: str = "mean") -> Tensor:
    """T^2 KL(p_T || q_T) between the teacher's and the student's distributions, fused.

    For one position with student logits z_s and teacher logits z_t (the last axis, V classes):

        q = softmax(z_s / T),   p = softmax(z_t / T),   loss = T^2 sum_i p_i (log p_i - log q_i)

    ``reduction`` "mean" averages over the N positions (all leading axes together: over tokens,
    not over sequences), "sum" adds them, "none" returns one value per position, shape (...).
    The loss is 0 when the two distributions are equal (exactly 0 for identical logits) and
    positive otherwise.

    Backward. Only -sum_i p_i log q_i depends on z_s, and log q_i = z_s,i / T - logsumexp(z_s / T):

        d log q_i / d z_s,j = (delta_ij - q_j) / T
        d KL / d z_s,j      = -(1/T) sum_i p_i (delta_ij - q_j) = (q_j - p_j) / T     (sum_i p_i = 1)

    so with the factor T^2 and the mean, d loss / d z_s = T (q - p) / N. The teacher is a constant
    (a NumPy array, or a Tensor that does not require grad) and gets no gradient.

    Why T^2: for a large T, q - p is about (z_s - z_t - mean) / (T V), so the bare KL's gradient
    shrinks like 1/T^2; the factor keeps the soft term's pull the same size at every temperature,
    so alpha means the same thing whatever T is.

    This is PyTorch's ``F.kl_div(log_softmax(z_s / T), log_softmax(z_t / T), log_target=True,
    reduction="batchmean") * T**2`` on logits reshaped to (N, V) (batchmean divides by the first
    axis only, so on (B, T, V) logits it would divide by B).

    >>> z = np.array([[2.0, 0.0, -1.0]])
    >>> kl_div_with_temperature(Tensor(z), z, temperature=2.0).item()   # a model against itself
    0.0
    >>> round(kl_div_with_temperature(Tensor(z), z[:, ::-1], temperature=2.0).item(), 4)
    2.9297
    """
    teacher, temperature = _check_logits(student_logits, teacher_logits, temperature, reduction)
    V = student_logits.shape[-1]
    dtype = student_logits.dtype
    zs = student_logits.data.reshape(-1, V)  # (N, V)
    N = zs.shape[0]
    # With a = z_s / T and b = z_t / T, each shifted by its row maximum (softmax ignores a
    # shift), and the normalisers Z_s = sum exp(a), Z_t = sum exp(b):
    #     log q = a - log Z_s,  log p = b - log Z_t,  KL = sum p (b - a) + log Z_s - log Z_t.
    # Written this way it takes a few passes over the (N, V) logits and three arrays, in place.
    a = _shifted_scaled(zs, temperature)
    b = _shifted_scaled(teacher.reshape(-1, V), temperature)
    p = np.exp(b)
    z_t = p.sum(axis=1, keepdims=True)
    p /= z_t
    b -= a
    b *= p
    cross = b.sum(axis=1)  # sum p (b - a), (N,)
    del b
    q = np.exp(a, out=a)
    z_s = q.sum(axis=1, keepdims=True)
    per_position = (cross + (np.log(z_s[:, 0]) - np.log(z_t[:, 0]))) * temperature ** 2  # (N,)
    _check_finite(per_position, zs, teacher, temperature)
    if reduction == "none":
        out = per_position.reshape(student_logits.shape[:-1])
    elif reduction == "sum":
        out = np.asarray(per_position.sum())
    else:
        out = np.asarray(per_position.sum() / N)
    out = out.astype(dtype, copy=False)
    if not (student_logits.requires_grad and is_grad_enabled()):
        return Tensor(out)  # no graph needed: skip the passes that prepare the gradient
    q /= z_s
    q -= p  # q - p, all the backward needs
    difference = q
    del p, q

    def backward(g):
        if reduction == "none":
            weight = g.reshape(-1, 1) * temperature
        elif reduction == "sum":
            weight = g * temperature
        else:
            weight = g * (temperature / N)
        return ((difference * weight).astype(dtype, copy=False).reshape(student_logits.shape),)

    return Tensor.from_op(out, (student_logits,), backward)


def kl_div_with_temperature_composed(student_logits: Tensor, teacher_logits: np.ndarray,
                                     temperature: float = 1.0, reduction: str = "mean") -> Tensor:
    """Reference for ``kl_div_with_temperature`` from primitives: the composed log-softmax of both
    (the teacher's as a constant), the sum over classes, the reduction, times T^2."""
    teacher, temperature = _check_logits(student_logits, teacher_logits, temperature, reduction)
    V = student_logits.shape[-1]
    log_q = F.log_softmax_composed(student_logits.reshape(-1, V) * (1.0 / temperature))  # (N, V)
    log_p = F.log_softmax_composed(Tensor(teacher.reshape(-1, V)) * (1.0 / temperature)).data
    per_position = ((log_q - log_p) * -np.exp(log_p)).sum(axis=-1) * temperature ** 2  # (N,)
    if reduction == "none":
        return per_position.reshape(student_logits.shape[:-1])
    if reduction == "sum":
        return per_position.sum()
    return per_position.mean()


# ----------------------------------------------------------------------------------------------
# The combined loss


def distillation_terms(student_logits: Tensor, teacher_logits: np.ndarray | None, targets: np.ndarray | None,
                       temperature: float = 1.0, alpha: float = 0.5
                       ) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """(loss, soft, hard): ``distillation_loss`` and its two terms, T^2 KL and cross-entropy, each
    before its weight. A term whose weight is 0 is not computed (None), and neither is its input
    needed: with alpha = 0 there is no teacher, with alpha = 1 no targets."""
    alpha = check_alpha(alpha)
    temperature = check_temperature(temperature)
    soft = hard = None
    if alpha > 0:
        if teacher_logits is None:
            raise ValueError(f"alpha = {alpha} weighs a teacher term, but teacher_logits is None")
        soft = kl_div_with_temperature(student_logits, teacher_logits, temperature)
    if alpha < 1:
        if targets is None:
            raise ValueError(f"alpha = {alpha} leaves weight {1 - alpha} on the labels, but targets is None")
        hard = F.cross_entropy(student_logits, targets)
    if soft is None:
        return hard, soft, hard  # alpha = 0: the loss *is* the cross-entropy, the same node
    if hard is None:
        return soft, soft, hard  # alpha = 1
    return soft * alpha + hard * (1.0 - alpha), soft, hard


def distillation_loss(student_logits: Tensor, teacher_logits: np.ndarray | None, targets: np.ndarray | None,
                      temperature: float = 1.0, alpha: float = 0.5) -> Tensor:
    """alpha T^2 KL(p_T || q_T) + (1 - alpha) CE(student_logits, targets), both means over tokens.

    Shapes: student and teacher logits (..., V), targets integer class ids (...). The gradient is
    alpha T (q_T - p_T) / N + (1 - alpha) (softmax(z_s) - onehot(target)) / N: the student is
    pulled towards the teacher's softened distribution and towards the label at once.
    alpha = 0 returns ``F.cross_entropy(student_logits, targets)`` itself (no teacher needed).
    """
    return distillation_terms(student_logits, teacher_logits, targets, temperature, alpha)[0]


# ----------------------------------------------------------------------------------------------
# Training a student


def teacher_logits(teacher: GPT, inputs: np.ndarray) -> np.ndarray:
    """The teacher's logits (B, T, V) for ``inputs`` (B, T): in eval mode (no dropout, so the
    same targets every time) and without a graph; the teacher's own mode is restored."""
    with teacher.inference():
        return teacher(inputs).data


class DistillationObjective:
    """``distillation_terms`` of a student's logits on a batch of windows: the loss, with its
    ``soft`` and ``hard`` terms (None for a term whose weight is 0). The teacher scores each batch
    (eval mode, ``no_grad``); ``teacher_seconds`` adds up the time it took."""

    def __init__(self, teacher: GPT | None, temperature: float, alpha: float):
        self.teacher, self.temperature, self.alpha = teacher, temperature, alpha
        self.teacher_seconds = 0.0

    def __call__(self, model: GPT, batch: tuple[np.ndarray, np.ndarray]):
        inputs, targets = batch
        logits = model(inputs)                                          # (B, T, V)
        guide = None
        if self.alpha > 0:
            start = time.perf_counter()
            guide = teacher_logits(self.teacher, inputs)                # (B, T, V), a constant
            self.teacher_seconds += time.perf_counter() - start
        loss, soft, hard = distillation_terms(logits, guide, targets, self.temperature, self.alpha)
        return loss, {"soft": soft, "hard": hard}


class Distiller(Trainer):
    """Trains a student GPT on ``distillation_loss`` against a fixed teacher.

    Everything but the objective is lesson 07's ``Trainer``: random windows from ``config.seed``,
    AdamW with weight-decay groups, warmup and cosine schedule, gradient clipping, validation loss
    (cross-entropy on the labels, so runs with and without a teacher compare) every
    ``eval_interval`` steps, checkpoints of the student. Two runs with the same config therefore
    see the same batches in the same order, and with alpha = 0 a run is ``Trainer``'s, bit for bit.

    Each step the teacher scores the batch (eval mode, ``no_grad``): its logits are computed per
    batch rather than stored, since logits for a whole corpus take tokens x V floats.
    ``soft_loss`` and ``hard_loss`` are the two terms per step (NaN for a term not computed),
    kept in ``history.terms``.
    """

    def __init__(self, student: GPT, teacher: GPT | None, train_tokens: np.ndarray,
                 val_tokens: np.ndarray | None = None, config: TrainConfig = TrainConfig(),
                 temperature: float = 1.0, alpha: float = 0.5, log: Callable[[str], None] | None = print,
                 tokenizer_ref: str = ""):
        temperature = check_temperature(temperature)
        alpha = check_alpha(alpha)
        if teacher is None and alpha > 0:
            raise ValueError(f"alpha = {alpha} needs a teacher (only alpha = 0 trains without one)")
        if teacher is not None:
            if teacher is student:
                raise ValueError("the teacher and the student are the same model")
            t, s = teacher.config, student.config
            if t.vocab_size != s.vocab_size:
                raise ValueError(f"teacher vocabulary {t.vocab_size} and student vocabulary {s.vocab_size} "
                                 f"differ: distillation compares distributions over one vocabulary")
            if t.context_length < s.context_length:
                raise ValueError(f"the teacher's context ({t.context_length}) is shorter than the "
                                 f"student's ({s.context_length}): it cannot score the student's windows")
        self.distillation = DistillationObjective(teacher, temperature, alpha)
        super().__init__(student, train_tokens, val_tokens, config, log, tokenizer_ref,
                         objective=self.distillation)

    @property
    def student(self) -> GPT:
        return self.model

    @property
    def teacher(self) -> GPT | None:
        return self.distillation.teacher

    @property
    def temperature(self) -> float:
        return self.distillation.temperature

    @property
    def alpha(self) -> float:
        return self.distillation.alpha

    @property
    def teacher_seconds(self) -> float:
        """Time spent in the teacher's forward passes."""
        return self.distillation.teacher_seconds

    @property
    def soft_loss(self) -> list[float]:
        return self.history.terms.setdefault("soft", [])

    @property
    def hard_loss(self) -> list[float]:
        return self.history.terms.setdefault("hard", [])


def estimate_kl(student: GPT, teacher: GPT, tokens: np.ndarray, batch_size: int, num_batches: int,
                temperature: float = 1.0, seed: int = 1234) -> float:
    """Mean T^2 KL(teacher || student) per token over ``num_batches`` random windows drawn with a
    fixed seed (the same windows every time, as ``estimate_loss`` draws them), in eval mode and
    without a graph. At T = 1 it is the plain KL in nats: how many nats per token the student's
    predictions lose against the teacher's."""
    temperature = check_temperature(temperature)
    if teacher.config.vocab_size != student.config.vocab_size:
        raise ValueError(f"teacher vocabulary {teacher.config.vocab_size} and student vocabulary "
                         f"{student.config.vocab_size} differ")
    rng = np.random.default_rng(seed)
    context = min(student.config.context_length, teacher.config.context_length)
    values = []
    with student.inference():
        for _ in range(num_batches):
            inputs, _ = random_batch(tokens, batch_size, context, rng)
            values.append(kl_div_with_temperature(student(inputs), teacher_logits(teacher, inputs),
                                                  temperature).item())
    return float(np.mean(values))
