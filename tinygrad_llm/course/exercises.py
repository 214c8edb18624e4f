"""The course's exercises (lessons 01 onwards; each ends with two or three): a registry of checkers.

A learner answers an exercise by editing one file, ``exercises/NN_K.py`` (a function that raises
``NotImplementedError`` until it is written, or ``ANSWER = None`` until a number is filled in),
then runs ``tinygrad-llm exercise check NN.K`` or ``python -m pytest -m exercises``. A checker
imports that file, runs the answer on tiny inputs (seconds at most) and compares it with the
package or with the quantity it predicts. A wrong answer gets a message that says what kind of
result was expected and a hint, never the expected value itself. Reference solutions live in
``exercises/solutions/``; the test suite runs every checker on them, on the untouched stubs and on
a plausible wrong answer, so the checkers cannot rot.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import numpy as np

from .settings import PROJECT_ROOT

EXERCISE_DIR = PROJECT_ROOT / "exercises"


class ExerciseFailed(Exception):
    """The answer is missing or wrong; the message says how, with a hint."""


@dataclass(frozen=True)
class Exercise:
    id: str                                 # "05.2": lesson 05, exercise 2
    title: str
    check: Callable[[ModuleType], str]      # returns what was verified; raises ExerciseFailed
    hint: str

    @property
    def lesson(self) -> int:
        return int(self.id.split(".")[0])

    @property
    def filename(self) -> str:
        return self.id.replace(".", "_") + ".py"


REGISTRY: dict[str, Exercise] = {}


def exercise(id: str, title: str, hint: str):
    """Register the decorated checker under ``id``."""
    def register(check: Callable[[ModuleType], str]) -> Callable[[ModuleType], str]:
        if id in REGISTRY:
            raise ValueError(f"exercise {id} is registered twice")
        REGISTRY[id] = Exercise(id, title, check, hint)
        return check
    return register


# --- reading and calling an answer ------------------------------------------------------------

def load_answer(path: Path) -> ModuleType:
    """Import the learner's file afresh (an edited file must be re-read on every check)."""
    if not path.is_file():
        raise ExerciseFailed(f"answer file not found: {path}")
    spec = importlib.util.spec_from_file_location(f"exercise_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # a syntax error or a failing import in the learner's file
        raise ExerciseFailed(f"{path.name} does not run: {type(error).__name__}: {error}") from None
    return module


def _call(module: ModuleType, name: str, *args: Any, **kwargs: Any) -> Any:
    function = getattr(module, name, None)
    if not callable(function):
        raise ExerciseFailed(f"the answer file defines no function {name}()")
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        raise ExerciseFailed(f"not answered yet: write the body of {name}()") from None
    except ExerciseFailed:
        raise
    except Exception as error:
        raise ExerciseFailed(f"{name}() raised {type(error).__name__}: {error}") from None


def _number(module: ModuleType, name: str = "ANSWER") -> float:
    value = getattr(module, name, None)
    if value is None:
        raise ExerciseFailed(f"not answered yet: set {name} to your prediction (a number)")
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ExerciseFailed(f"{name} should be a number, got {type(value).__name__}")
    return float(value)


def _array(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ExerciseFailed(f"{what} should be an array of numbers, got {type(value).__name__}") from None
    if array.shape != shape:
        raise ExerciseFailed(f"{what} should have shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ExerciseFailed(f"{what} contains inf or nan")
    return array


def _compare(got: Any, expected: np.ndarray, what: str, id: str, rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """Fail with exercise ``id``'s hint unless ``got`` matches ``expected`` in shape and value."""
    expected = np.asarray(expected, dtype=np.float64)
    got = _array(got, expected.shape, what)
    if not np.allclose(got, expected, rtol=rtol, atol=atol):
        worst = float(np.abs(got - expected).max())
        raise ExerciseFailed(f"{what} is off by up to {worst:.3g}. Hint: {REGISTRY[id].hint}")


def _predicted(module: ModuleType, actual: float, what: str, id: str, rtol: float = 0.02) -> str:
    guess = _number(module)
    if not math.isclose(guess, actual, rel_tol=rtol, abs_tol=1e-9):
        direction = "too large" if guess > actual else "too small"
        raise ExerciseFailed(f"your prediction of {what} is {direction}. Hint: {REGISTRY[id].hint}")
    shown = f"{actual:,.0f}" if float(actual).is_integer() else f"{actual:.4g}"
    return f"{what}: your prediction matches the measured {shown}"


def check_exercise(id: str, folder: str | Path | None = None) -> str:
    """Check the answer to exercise ``id`` in ``folder`` (default ``exercises/``); returns what
    was verified, raises ``ExerciseFailed`` with a hint otherwise, ``KeyError`` for an unknown id."""
    if id not in REGISTRY:
        known = ", ".join(REGISTRY)
        raise KeyError(f"no exercise {id!r}; the exercises are {known}")
    entry = REGISTRY[id]
    module = load_answer(Path(folder or EXERCISE_DIR) / entry.filename)
    return entry.check(module)


# --- lesson 01: autograd ----------------------------------------------------------------------

@exercise("01.1", "central differences by hand",
          "(f(x + eps e_i) - f(x - eps e_i)) / (2 eps), one entry i at a time; f returns a float")
def _check_01_1(module):
    from ..core.tensor import Tensor
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 2))
    w = rng.normal(size=(3, 2))
    f = lambda a: float((np.tanh(a) * w).sum())   # a smooth function with a known gradient
    got = _call(module, "numerical_gradient", f, x.copy(), 1e-5)
    t = Tensor(x, requires_grad=True)
    (t.tanh() * Tensor(w)).sum().backward()
    _compare(got, t.grad, "numerical_gradient(f, x, eps)", "01.1", rtol=1e-5, atol=1e-7)
    return "your central differences agree with autograd's gradient of sum(tanh(x) * w)"


@exercise("01.2", "predict a gradient: a value used four times",
          "y = x * x * x + x uses x four times; the engine adds the gradient of every use")
def _check_01_2(module):
    from ..core.tensor import Tensor
    x = Tensor(np.array(2.0), requires_grad=True)
    (x * x * x + x).backward()
    return _predicted(module, float(x.grad), "dy/dx at x = 2", "01.2")


# --- lesson 02: tokenization ------------------------------------------------------------------

@exercise("02.1", "count adjacent pairs (one BPE statistic)",
          "a dict {(a, b): count} over zip(ids, ids[1:]); overlapping pairs such as (1, 1) in [1, 1, 1] count twice")
def _check_02_1(module):
    for ids in ([1, 2, 3, 1, 2], [1, 1, 1], [5], []):
        expected: dict = {}
        for pair in zip(ids, ids[1:]):
            expected[pair] = expected.get(pair, 0) + 1
        got = _call(module, "pair_counts", list(ids))
        if not isinstance(got, dict) or dict(got) != expected:
            raise ExerciseFailed(f"pair_counts({ids}) is not right. Hint: {REGISTRY['02.1'].hint}")
    return "pair_counts counts every adjacent pair, overlaps included"


@exercise("02.2", "apply one merge",
          "walk left to right; where ids[i], ids[i+1] == pair emit new_id and skip two, else emit ids[i]")
def _check_02_2(module):
    from ..text.bpe import merge_by_rank
    rng = np.random.default_rng(2)
    cases = [([1, 2, 1, 2, 3], (1, 2)), ([1, 1, 1], (1, 1)), ([4], (1, 2))]
    cases += [(rng.integers(0, 3, 20).tolist(), (0, 1))]
    for ids, pair in cases:
        expected = merge_by_rank(list(ids), {pair: 0}, {pair: 99})
        got = _call(module, "merge", list(ids), pair, 99)
        if list(got) != list(expected):
            raise ExerciseFailed(f"merge({ids}, {pair}, 99) is not right. Hint: {REGISTRY['02.2'].hint}")
    return "merge replaces every non-overlapping occurrence, left to right, as the tokenizer does"


# --- lesson 03: data loading ------------------------------------------------------------------

@exercise("03.1", "cut a token array into training windows",
          "window i starts at i * stride; inputs are tokens[s:s+T], targets the same shifted by one; "
          "keep only windows whose targets fit in the array")
def _check_03_1(module):
    tokens = np.arange(20)
    for T, stride in ((4, 4), (4, 2), (5, 3)):
        starts = range(0, len(tokens) - T, stride)
        expected_x = np.stack([tokens[s:s + T] for s in starts])
        expected_y = np.stack([tokens[s + 1:s + T + 1] for s in starts])
        got = _call(module, "windows", tokens, T, stride)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise ExerciseFailed("windows() should return a pair (inputs, targets)")
        what = f"windows(tokens, context_length={T}, stride={stride})"
        _compare(got[0], expected_x, what + " inputs", "03.1")
        _compare(got[1], expected_y, what + " targets", "03.1")
    return "windows() cuts the same (inputs, targets) pairs as a next-token data loader"


@exercise("03.2", "predict: how many windows does an epoch have?",
          "count the starts 0, stride, 2 stride, ... for which start + context_length + 1 <= n")
def _check_03_2(module):
    n, T, stride = 1000, 64, 48
    return _predicted(module, len(range(0, n - T, stride)),
                      "the number of windows of 64 tokens with stride 48 in 1,000 tokens", "03.2",
                      rtol=0)


# --- lesson 04: embeddings --------------------------------------------------------------------

@exercise("04.1", "the backward of an embedding lookup",
          "grad_weight starts at zeros (vocab_size, d); row ids[i] receives grad_out[i], and a repeated id "
          "must add up (np.add.at, not fancy assignment)")
def _check_04_1(module):
    from ..core.tensor import Tensor
    from ..model.nn import Embedding
    rng = np.random.default_rng(4)
    ids = np.array([[1, 3, 1], [0, 1, 5]])
    grad_out = rng.normal(size=(2, 3, 4))
    layer = Embedding(6, 4, rng=rng, dtype=np.float64)
    (layer(ids) * Tensor(grad_out)).sum().backward()
    _compare(_call(module, "embedding_backward", ids, grad_out, 6),
             layer.weight.grad, "embedding_backward(ids, grad_out, 6)", "04.1")
    return "your embedding gradient matches the package's, repeated ids included"


@exercise("04.2", "cosine similarity between embedding rows",
          "normalise every row by its L2 norm, then one matrix product gives all the cosines")
def _check_04_2(module):
    rng = np.random.default_rng(5)
    e = rng.normal(size=(5, 8))
    unit = e / np.linalg.norm(e, axis=1, keepdims=True)
    _compare(_call(module, "cosine_similarity_matrix", e),
             unit @ unit.T, "cosine_similarity_matrix(e)", "04.2")
    return "cosine_similarity_matrix gives 1 on the diagonal and the cosine of every pair elsewhere"


# --- lesson 05: attention ---------------------------------------------------------------------

@exercise("05.1", "causal self-attention in NumPy",
          "scores = q k^T / sqrt(d); set scores above the diagonal to -inf; softmax each row "
          "(subtract its max first); multiply by v")
def _check_05_1(module):
    from ..core.attention import scaled_dot_product_attention
    from ..core.tensor import Tensor
    rng = np.random.default_rng(6)
    q, k, v = (rng.normal(size=(2, 3, 5, 4)) for _ in range(3))
    expected = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), causal=True).data
    _compare(_call(module, "causal_attention", q, k, v), expected, "causal_attention(q, k, v)", "05.1")
    return "your attention matches scaled_dot_product_attention(causal=True)"


@exercise("05.2", "predict: the size of the attention weights",
          "the weights have one entry per (batch, head, query, key); a float32 takes 4 bytes")
def _check_05_2(module):
    B, H, T = 8, 4, 128
    return _predicted(module, B * H * T * T * 4,
                      "the bytes of float32 attention weights for B=8, n_head=4, T=128", "05.2")


# --- lesson 06: the GPT -----------------------------------------------------------------------

@exercise("06.1", "predict: the parameter count of a small GPT",
          "per block: 2 layer norms (2 d each), attention (d x 3d + 3d, d x d + d), MLP (d x 4d + 4d, 4d x d + d); "
          "plus token and position tables and a final layer norm; the head is tied to the token table")
def _check_06_1(module):
    from ..model.gpt import GPT, GPTConfig
    config = GPTConfig(vocab_size=100, context_length=16, d_model=32, n_layer=2, n_head=2)
    actual = GPT(config, rng=np.random.default_rng(0)).num_parameters()
    return _predicted(module, actual, "the parameters of GPTConfig(vocab_size=100, context_length=16, "
                      "d_model=32, n_layer=2, n_head=2)", "06.1", rtol=0)


@exercise("06.2", "layer norm in NumPy",
          "mean and variance over the last axis (the biased variance, divide by d), (x - mean) / sqrt(var + eps), "
          "then * weight + bias")
def _check_06_2(module):
    from ..core.functional import layer_norm
    from ..core.tensor import Tensor
    rng = np.random.default_rng(7)
    x, w, b = rng.normal(size=(3, 4, 6)), rng.normal(size=6), rng.normal(size=6)
    expected = layer_norm(Tensor(x), Tensor(w), Tensor(b), eps=1e-5).data
    _compare(_call(module, "layer_norm", x, w, b, 1e-5), expected, "layer_norm(x, weight, bias, eps)", "06.2")
    return "your layer norm matches the package's fused one"


# --- lesson 07: pretraining -------------------------------------------------------------------

@exercise("07.1", "one AdamW update by hand",
          "m and v are running means of g and g^2; divide them by (1 - beta^t) (bias correction); "
          "decay the weight by lr * weight_decay * p outside the Adam ratio")
def _check_07_1(module):
    from ..model.nn import Parameter
    from ..train.optim import AdamW
    rng = np.random.default_rng(8)
    start = rng.normal(size=(4, 3))
    p = Parameter(start.copy(), dtype=np.float64)
    optimizer = AdamW([p], lr=0.1, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    mine, m, v = start.copy(), np.zeros_like(start), np.zeros_like(start)
    for t in range(1, 4):
        g = rng.normal(size=start.shape)
        p.grad = g.copy()
        optimizer.step()
        result = _call(module, "adamw_update", mine, g, m, v, t, 0.1, (0.9, 0.95), 1e-8, 0.1)
        if not (isinstance(result, tuple) and len(result) == 3):
            raise ExerciseFailed("adamw_update() should return (param, m, v)")
        mine, m, v = (np.asarray(a, dtype=np.float64) for a in result)
        _compare(mine, p.data, f"the parameter after step {t}", "07.1", rtol=1e-9, atol=1e-12)
    return "three of your AdamW steps match tinygrad_llm.train.optim.AdamW"


@exercise("07.2", "warmup then cosine decay",
          "steps 0..warmup-1 rise linearly to max_lr (step 0 is max_lr / warmup); then "
          "min_lr + (max_lr - min_lr) (1 + cos(pi progress)) / 2; min_lr after total_steps")
def _check_07_2(module):
    from ..train.optim import cosine_schedule
    for step in (0, 1, 9, 10, 11, 55, 99, 100, 150):
        expected = cosine_schedule(step, 3e-3, 10, 100, 3e-4)
        _compare(_call(module, "learning_rate", step, 3e-3, 10, 100, 3e-4),
                 np.array(expected), f"learning_rate(step={step})", "07.2")
    return "your schedule matches cosine_schedule at warmup, decay and after the end"


@exercise("07.3", "change a setting: the warmup length",
          "during warmup the rate at step s is max_lr * (s + 1) / warmup_steps (steps count from 0)")
def _check_07_3(module):
    from ..train.optim import cosine_schedule
    warmup = _number(module, "WARMUP_STEPS")
    if not float(warmup).is_integer() or warmup < 1:
        raise ExerciseFailed("WARMUP_STEPS should be a positive whole number of steps")
    rate = cosine_schedule(4, 1.0, int(warmup), 1000)
    if not math.isclose(rate, 0.5):
        side = "too short" if rate > 0.5 else "too long"
        raise ExerciseFailed(f"with that warmup the rate at step 4 is not half the peak: the warmup is {side}. "
                             f"Hint: {REGISTRY['07.3'].hint}")
    return "with that warmup, step 4 runs at half the peak learning rate, as cosine_schedule computes"


# --- lesson 08: decoding ----------------------------------------------------------------------

def _logits_for_decoding() -> np.ndarray:
    return np.random.default_rng(9).normal(size=(3, 10)) * 2


@exercise("08.1", "top-k sampling probabilities",
          "divide the logits by the temperature, keep the k largest per row (set the rest to -inf), "
          "softmax; the result is a probability row per input row")
def _check_08_1(module):
    from ..model.generation import next_token_distribution
    logits = _logits_for_decoding()
    for k, temperature in ((1, 1.0), (3, 1.0), (4, 0.7)):
        expected = next_token_distribution(logits, temperature=temperature, top_k=k)
        _compare(_call(module, "top_k_probs", logits, k, temperature),
                 expected, f"top_k_probs(logits, k={k}, temperature={temperature})", "08.1")
    return "your top-k probabilities match next_token_distribution"


@exercise("08.2", "top-p (nucleus) probabilities",
          "sort the softmax probabilities from large to small; keep a token while the mass ranked "
          "above it is still below p (the top token is always kept); renormalise")
def _check_08_2(module):
    from ..model.generation import next_token_distribution
    logits = _logits_for_decoding()
    for top_p in (0.3, 0.8, 0.95):
        expected = next_token_distribution(logits, top_p=top_p)
        _compare(_call(module, "top_p_probs", logits, top_p),
                 expected, f"top_p_probs(logits, p={top_p})", "08.2")
    return "your nucleus probabilities match next_token_distribution"


@exercise("08.3", "change a setting: the temperature",
          "p_top(tau) = 1 / (1 + exp(-1 / tau) + exp(-2 / tau)) for logits [2, 1, 0]; a lower tau sharpens p")
def _check_08_3(module):
    from ..model.generation import next_token_distribution
    tau = _number(module, "TEMPERATURE")
    if tau <= 0:
        raise ExerciseFailed("TEMPERATURE should be a positive number")
    top = float(next_token_distribution(np.array([2.0, 1.0, 0.0]), temperature=tau)[0])
    if abs(top - 0.9) > 0.005:
        side = "too high (p is too flat)" if top < 0.9 else "too low (p is too sharp)"
        raise ExerciseFailed(f"at that temperature the top token gets p = {top:.3f}, not 0.9: the temperature is "
                             f"{side}. Hint: {REGISTRY['08.3'].hint}")
    return f"at temperature {tau:g} the top token gets p = {top:.3f}"


# --- lesson 09: evaluation --------------------------------------------------------------------

@exercise("09.1", "perplexity from per-token losses",
          "perplexity is exp of the mean negative log-likelihood per token, over all tokens together")
def _check_09_1(module):
    nll = np.random.default_rng(10).uniform(1, 5, size=37)
    _compare(_call(module, "perplexity_from_nll", nll),
             np.array(math.exp(nll.mean())), "perplexity_from_nll(nll)", "09.1")
    return "perplexity_from_nll is exp(mean nll)"


@exercise("09.2", "predict: how many windows does a strided evaluation need?",
          "each window scores the targets the previous windows did not; windows start at 0, stride, "
          "2 stride, ... and stop once the last target (index n - 1) is scored")
def _check_09_2(module):
    from ..evaluate.perplexity import sliding_windows
    return _predicted(module, len(sliding_windows(200, 64, 32)),
                      "the windows sliding_windows(200, 64, 32) makes", "09.2", rtol=0)


# --- lesson 10: classification ----------------------------------------------------------------

@exercise("10.1", "a confusion matrix",
          "matrix[true, predicted] counts the examples; rows are the true classes")
def _check_10_1(module):
    rng = np.random.default_rng(11)
    true, predicted = rng.integers(0, 3, 30), rng.integers(0, 3, 30)
    expected = np.zeros((3, 3))
    np.add.at(expected, (true, predicted), 1)
    _compare(_call(module, "confusion_matrix", true, predicted, 3),
             expected, "confusion_matrix(true, predicted, 3)", "10.1")
    return "your confusion matrix has true classes in rows and predictions in columns"


@exercise("10.2", "macro-averaged F1 from a confusion matrix",
          "per class: precision = diagonal / column sum, recall = diagonal / row sum, "
          "F1 = 2 P R / (P + R) (0 when P + R is 0); then the plain mean over classes")
def _check_10_2(module):
    for matrix in (np.array([[5, 1, 0], [2, 3, 1], [0, 0, 4]]), np.array([[3, 0], [3, 0]])):
        diagonal = np.diag(matrix).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.nan_to_num(diagonal / matrix.sum(axis=0))
            recall = np.nan_to_num(diagonal / matrix.sum(axis=1))
            f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
        _compare(_call(module, "macro_f1", matrix),
                 np.array(f1.mean()), f"macro_f1 of a {len(matrix)}-class matrix", "10.2")
    return "your macro-F1 treats every class alike, an empty class included"


# --- lesson 11: instruction fine-tuning -------------------------------------------------------

@exercise("11.1", "mask the prompt out of the loss",
          "targets[i] predicts token i + 1; targets whose token belongs to the prompt (i + 1 < prompt_length) "
          "become ignore_index, the rest stay; do not modify the input array")
def _check_11_1(module):
    targets = np.arange(1, 11)
    for prompt_length in (1, 4, 10):
        expected = targets.copy()
        expected[: prompt_length - 1] = -100
        _compare(_call(module, "mask_prompt", targets.copy(),
                 prompt_length, -100), expected, f"mask_prompt(targets, prompt_length={prompt_length})", "11.1")
    return "mask_prompt keeps exactly the response's targets in the loss"


@exercise("11.2", "predict: how many tokens does the loss average over?",
          "a sequence of n tokens gives n - 1 targets; the prompt's targets are ignored, "
          "the response's (and the end-of-text token's) are scored")
def _check_11_2(module):
    prompt_length, response_length = 12, 7     # the response includes its end-of-text token
    targets = np.arange(prompt_length + response_length - 1)
    scored = int((targets >= prompt_length - 1).sum())
    return _predicted(module, scored, "the scored targets for a 12-token prompt and a 7-token response",
                      "11.2", rtol=0)


# --- lesson 12: LoRA --------------------------------------------------------------------------

@exercise("12.1", "predict: the trainable parameters of one LoRA adapter",
          "A is (r, in_features) and B is (out_features, r); the base weight is frozen")
def _check_12_1(module):
    from ..finetune.lora import LoRAAdapter
    adapter = LoRAAdapter(128, 384, r=8)
    return _predicted(module, adapter.num_parameters(), "the parameters of a rank-8 adapter on a 128 -> 384 Linear",
                      "12.1", rtol=0)


@exercise("12.2", "the LoRA forward pass",
          "y = x W^T + b + (alpha / r) (x A^T) B^T; W is (out, in), A (r, in), B (out, r)")
def _check_12_2(module):
    from ..finetune.lora import LoRAAdapter
    from ..core.tensor import Tensor
    rng = np.random.default_rng(12)
    adapter = LoRAAdapter(6, 5, r=2, alpha=4.0, rng=rng, dtype=np.float64)
    adapter.B.data[...] = rng.normal(size=adapter.B.shape)   # B starts at zero; make the update visible
    W, b, x = rng.normal(size=(5, 6)), rng.normal(size=5), rng.normal(size=(3, 6))
    expected = x @ W.T + b + adapter(Tensor(x)).data
    _compare(_call(module, "lora_forward", x, W, b, adapter.A.data, adapter.B.data, 4.0, 2),
             expected, "lora_forward(x, W, b, A, B, alpha=4, r=2)", "12.2")
    return "your LoRA forward matches base Linear + LoRAAdapter"


# --- lesson 13: quantization ------------------------------------------------------------------

@exercise("13.1", "symmetric int8 quantization, one scale per row",
          "scale = max |w| of the row / 127; codes = round(w / scale) as integers in -127..127; "
          "dequantized = codes * scale")
def _check_13_1(module):
    from ..compress.quantize import QuantScheme, quantize
    rng = np.random.default_rng(13)
    w = rng.normal(size=(4, 16)).astype(np.float32)
    expected = quantize(w, QuantScheme(bits=8, granularity="channel")).dequantize(np.float64)
    _compare(_call(module, "quantize_dequantize_int8", w),
             expected, "quantize_dequantize_int8(w)", "13.1", rtol=1e-5, atol=1e-6)
    return "your int8 round trip matches quantize(w, QuantScheme(8, 'channel'))"


@exercise("13.2", "predict: the bytes of an int8 matrix with per-row scales",
          "one byte per weight, plus one float32 scale (4 bytes) per row")
def _check_13_2(module):
    from ..compress.quantize import QuantScheme, quantize
    q = quantize(np.ones((256, 512), dtype=np.float32), QuantScheme(bits=8, granularity="channel"))
    return _predicted(module, q.nbytes, "the bytes of a (256, 512) int8 per-channel weight", "13.2",
                      rtol=0)


@exercise("13.3", "change a setting: the int4 group size",
          "int4 stores half a byte per weight; every group of g weights adds one float32 scale (4 bytes)")
def _check_13_3(module):
    from ..compress.quantize import QuantScheme, quantize
    group = _number(module, "GROUP_SIZE")
    if not float(group).is_integer() or group < 1 or 256 % int(group):
        raise ExerciseFailed("GROUP_SIZE should be a whole number that divides the row length, 256")
    q = quantize(np.ones((64, 256), dtype=np.float32), QuantScheme(bits=4, granularity="group", group_size=int(group)))
    per_weight = q.nbytes / (64 * 256)
    if not math.isclose(per_weight, 0.625):
        side = "large" if per_weight < 0.625 else "small"
        raise ExerciseFailed(f"that group size stores {per_weight:.4g} bytes per weight, not 0.625: the groups are "
                             f"too {side}. Hint: {REGISTRY['13.3'].hint}")
    return "that group size stores 5 bits per weight: 4 for the code, 1 for its share of the scale"


# --- lesson 14: pruning -----------------------------------------------------------------------

@exercise("14.1", "a magnitude-pruning mask",
          "remove the k = round(sparsity * w.size) entries of smallest |w| (True = kept); "
          "np.argsort(np.abs(w), axis=None, kind='stable') orders them, ties by position")
def _check_14_1(module):
    from ..sparsity.pruning import magnitude_masks
    rng = np.random.default_rng(14)
    w = rng.normal(size=(6, 5))
    for sparsity in (0.0, 0.3, 0.5, 0.9):
        expected = magnitude_masks({"w": w}, sparsity)["w"]
        got = _call(module, "magnitude_mask", w, sparsity)
        got = np.asarray(got)
        if got.shape != w.shape or got.dtype != bool:
            raise ExerciseFailed(f"magnitude_mask should return a boolean array of shape {w.shape}")
        if not np.array_equal(got, expected):
            raise ExerciseFailed(f"magnitude_mask(w, {sparsity}) keeps the wrong entries "
                                 f"({int(got.sum())} kept). Hint: {REGISTRY['14.1'].hint}")
    return "your mask keeps the same weights as magnitude_masks"


@exercise("14.2", "predict: the weights left after pruning",
          "sparsity is the fraction removed; the count removed is rounded to an integer")
def _check_14_2(module):
    from ..sparsity.pruning import magnitude_masks
    w = np.random.default_rng(15).normal(size=(48, 20))
    kept = int(magnitude_masks({"w": w}, 0.7)["w"].sum())
    return _predicted(module, kept, "the weights a (48, 20) matrix keeps at 70 % sparsity", "14.2",
                      rtol=0)


# --- lesson 15: distillation ------------------------------------------------------------------

@exercise("15.1", "the distillation loss",
          "p = softmax(teacher / T), log q = log_softmax(student / T) (subtract the row max); "
          "loss = T^2 * mean over rows of sum_i p_i (log p_i - log q_i)")
def _check_15_1(module):
    from ..compress.distill import kl_div_with_temperature
    from ..core.tensor import Tensor
    rng = np.random.default_rng(16)
    student, teacher = rng.normal(size=(4, 7)) * 3, rng.normal(size=(4, 7)) * 3
    for temperature in (1.0, 2.0, 4.0):
        expected = kl_div_with_temperature(Tensor(student), teacher, temperature).item()
        _compare(_call(module, "distillation_kl", student, teacher, temperature),
                 np.array(expected), f"distillation_kl(temperature={temperature})", "15.1",
                 rtol=1e-6)
    return "your loss matches kl_div_with_temperature at three temperatures"


@exercise("15.2", "predict: a softened probability",
          "softmax(z / T) with z = [0, ln 9] and T = 2 is proportional to [1, 9 ** (1 / 2)]")
def _check_15_2(module):
    z = np.array([0.0, math.log(9.0)]) / 2.0
    p = np.exp(z) / np.exp(z).sum()
    return _predicted(module, float(p[1]), "the second probability of softmax([0, ln 9] / 2)",
                      "15.2", rtol=0.01)


# --- lesson 16: GPTQ, AWQ and GGUF ------------------------------------------------------------

@exercise("16.1", "GPTQ's update after rounding one column",
          "e = (w_i - q) / [H^-1]_ii for every row; column i becomes q and each later column j "
          "loses e * [H^-1]_ij")
def _check_16_1(module):
    rng = np.random.default_rng(17)
    x = rng.normal(size=(40, 6)) * np.geomspace(0.5, 3.0, 6)
    H_inverse = np.linalg.inv(2 / len(x) * x.T @ x)
    W = rng.normal(size=(3, 6))
    for i in (0, 2, 5):
        q = np.round(W[:, i] * 4) / 4
        expected = W.copy()
        expected[:, i] = q
        expected[:, i + 1:] -= np.outer((W[:, i] - q) / H_inverse[i, i], H_inverse[i, i + 1:])
        _compare(_call(module, "gptq_update", W.copy(), H_inverse, i, q), expected, f"gptq_update(i={i})",
                 "16.1", rtol=1e-9, atol=1e-12)
    return "your update matches GPTQ's optimal correction of the remaining columns"


@exercise("16.2", "fold AWQ's scale into a LayerNorm",
          "LN(x) / s is a LayerNorm with weight / s and bias / s; the Linear's column j (W[:, j]) is multiplied by s_j")
def _check_16_2(module):
    from ..compress.awq import apply_scales
    from ..model.gpt import GPT, GPTConfig
    model = GPT(GPTConfig(vocab_size=16, context_length=4, d_model=8, n_layer=1, n_head=2),
                rng=np.random.default_rng(18), dtype=np.float64)
    block = model.blocks[0]
    block.norm1.bias.data[...] = np.random.default_rng(19).normal(size=8)
    before = (block.norm1.weight.data.copy(), block.norm1.bias.data.copy(), block.attn.qkv.weight.data.copy())
    s = np.random.default_rng(20).uniform(0.5, 2.0, 8)
    got = _call(module, "fold_scale", *[a.copy() for a in before], s.copy())
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        raise ExerciseFailed("fold_scale should return three arrays: (norm weight, norm bias, W)")
    apply_scales(model, "blocks.0", "attn.qkv", s)
    after = (block.norm1.weight.data, block.norm1.bias.data, block.attn.qkv.weight.data)
    for what, mine, expected in zip(("the LayerNorm weight", "the LayerNorm bias", "W"), got, after):
        _compare(mine, expected, what, "16.2", rtol=1e-12)
    return "your folded LayerNorm and Linear match apply_scales: the model computes the same function"


@exercise("16.3", "predict: the bytes of a Q8_0 tensor",
          "Q8_0 stores each row in blocks of 32 values: 32 int8 codes and one float16 scale (2 bytes)")
def _check_16_3(module):
    from ..model.gguf import quantize_blocks
    stored = quantize_blocks(np.ones((256, 512), dtype=np.float32), "q8_0")
    return _predicted(module, stored.nbytes, "the bytes of a (256, 512) matrix in Q8_0", "16.3", rtol=0)


# --- lesson 17: the arithmetic of scale -------------------------------------------------------

@exercise("17.1", "model-state bytes per rank under ZeRO",
          "mixed precision with Adam: weights 2, gradients 2, optimizer state 12 bytes per parameter; "
          "stage 1 divides the optimizer state by the ranks, stage 2 the gradients too, stage 3 the weights too")
def _check_17_1(module):
    from ..scale.sharding import rank_memory
    for n, ranks in ((1_000, 1), (7_500_000_000, 64), (1_200, 8)):
        for stage in (0, 1, 2, 3):
            expected = rank_memory(n, ranks, stage).total
            _compare(_call(module, "bytes_per_rank", n, ranks, stage), np.array(expected),
                     f"bytes_per_rank({n}, {ranks}, stage={stage})", "17.1", rtol=1e-9)
    return "your bytes per rank match rank_memory for every stage"


@exercise("17.2", "predict: a training budget in petaflop/s-days",
          "6 N D FLOPs (2 for the forward pass, 4 for the backward, per parameter and token); "
          "one petaflop/s-day is 1e15 FLOP/s for 86,400 seconds")
def _check_17_2(module):
    from ..scale.compute import petaflop_s_days, training_flops
    return _predicted(module, petaflop_s_days(training_flops(1e9, 20e9)),
                      "the petaflop/s-days of 1B parameters trained on 20B tokens", "17.2", rtol=0.01)


@exercise("17.3", "predict: the ranks ZeRO stage 3 needs for a 16 GB GPU",
          "stage 3 divides all 16 bytes per parameter (mixed precision, Adam) by the number of ranks; "
          "round up to a whole number of ranks")
def _check_17_3(module):
    from ..scale.sharding import rank_memory
    ranks = next(r for r in range(1, 10_000) if rank_memory(7_500_000_000, r, 3).total <= 16e9)
    return _predicted(module, ranks, "the fewest ranks that hold a 7.5B model in 16 GB each at stage 3",
                      "17.3", rtol=0)


# --- lesson 18: scaling laws ------------------------------------------------------------------

@exercise("18.1", "a pure power law fitted in log space",
          "log L = log A - alpha log N is a straight line: np.polyfit(np.log(n), np.log(loss), 1) gives "
          "(slope, intercept); alpha = -slope and A = exp(intercept)")
def _check_18_1(module):
    from ..scale.laws import fit_power_law
    rng = np.random.default_rng(18)
    n = np.geomspace(1e3, 1e7, 7)
    loss = 9.0 * n ** -0.08 * np.exp(rng.normal(0, 0.01, n.size))
    expected = fit_power_law(n, loss, irreducible=False)
    got = _call(module, "fit_pure_power_law", n, loss)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise ExerciseFailed("fit_pure_power_law should return a pair (A, alpha)")
    _compare(got, np.array([expected.A, expected.alpha]), "fit_pure_power_law(n, loss) = (A, alpha)", "18.1",
             rtol=1e-6)
    return "your (A, alpha) match fit_power_law(n, loss, irreducible=False)"


@exercise("18.2", "predict: the loss factor for a hundred times the parameters",
          "L(100 N) / L(N) = (100 N)^-alpha / N^-alpha = 100^-alpha, with alpha = 0.076")
def _check_18_2(module):
    return _predicted(module, 100.0 ** -0.076, "the factor L(100 N) / L(N) for L proportional to N^-0.076",
                      "18.2", rtol=0.002)


# --- lesson 19: data parallelism --------------------------------------------------------------

@exercise("19.1", "a rank's rows of the global batch",
          "each of the R ranks takes B / R contiguous rows: rank r starts at r * (B / R) and stops "
          "where rank r + 1 starts")
def _check_19_1(module):
    from ..distributed.ddp import shard_rows
    for batch, ranks in ((8, 2), (12, 3), (16, 4), (5, 1)):
        for rank in range(ranks):
            expected = shard_rows(batch, rank, ranks)
            got = _call(module, "rank_rows", batch, rank, ranks)
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise ExerciseFailed("rank_rows should return a pair (start, stop)")
            if tuple(int(v) for v in got) != (expected.start, expected.stop):
                raise ExerciseFailed(f"rank_rows({batch}, {rank}, {ranks}) gives the wrong rows. "
                                     f"Hint: {REGISTRY['19.1'].hint}")
    return "your rows match shard_rows for every rank"


@exercise("19.2", "predict: the bytes one rank sends in a ring all-reduce",
          "a ring all-reduce is a reduce-scatter and an all-gather; in each, a rank sends (R - 1) of the "
          "R chunks of n / R values; float32 is 4 bytes")
def _check_19_2(module):
    from ..scale.sharding import ring_values
    return _predicted(module, ring_values(1_000_000, 4) * 4,
                      "the bytes one of 4 ranks sends in a ring all-reduce of 1,000,000 float32 values", "19.2",
                      rtol=0)


# --- lesson 20: a recurrent baseline ----------------------------------------------------------

@exercise("20.1", "one step of a GRU cell",
          "gates from x @ w_ih.T + b_ih and h @ w_hh.T + b_hh in the order r, z, n; the reset gate "
          "multiplies the recurrent part of n only (bias b_hn included); h_new = (1 - z) n + z h")
def _check_20_1(module):
    from ..core.tensor import Tensor
    from ..model.rnn import RecurrentLayer
    rng = np.random.default_rng(20)
    layer = RecurrentLayer("gru", 3, 5, rng=rng, dtype=np.float64)
    x, h = rng.normal(size=(2, 3)), rng.normal(size=(2, 5))
    expected = layer.step(layer.input(Tensor(x)), (Tensor(h),))[0].data
    got = _call(module, "gru_step", x, h, layer.input.weight.data, layer.recurrent.weight.data,
                layer.input.bias.data, layer.recurrent.bias.data)
    _compare(got, expected, "gru_step(x, h, ...)", "20.1", rtol=1e-9, atol=1e-12)
    return "your GRU step matches RecurrentLayer.step"


@exercise("20.2", "predict: the parameters of a GRU layer",
          "three gates, each with an input matrix (hidden x input), a recurrent matrix (hidden x hidden) "
          "and two bias vectors (one on each side, as PyTorch keeps them)")
def _check_20_2(module):
    from ..model.rnn import RecurrentLayer
    count = RecurrentLayer("gru", 64, 96).num_parameters()
    return _predicted(module, count, "the parameters of a GRU layer with input 64 and hidden size 96", "20.2",
                      rtol=0)


# --- lesson 21: an encoder trained by masked language modelling -------------------------------

@exercise("21.1", "bidirectional attention with padding",
          "scores = q @ k.T / sqrt(d); set the scores of padding keys to -inf (no causal mask); "
          "softmax over the keys (subtract the row max); weights @ v")
def _check_21_1(module):
    from ..core.attention import scaled_dot_product_attention
    from ..core.tensor import Tensor
    rng = np.random.default_rng(21)
    q, k, v = rng.normal(size=(5, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    for pad in (np.zeros(5, dtype=bool), np.array([False, False, False, True, True])):
        expected = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), causal=False,
                                                mask=pad[None, :]).data
        _compare(_call(module, "bidirectional_attention", q, k, v, pad), expected,
                 f"bidirectional_attention(q, k, v, pad={pad.astype(int).tolist()})", "21.1", rtol=1e-9, atol=1e-12)
    return "your attention matches scaled_dot_product_attention(causal=False) with a padding mask"


@exercise("21.2", "predict: how many [MASK] tokens",
          "only the ordinary positions can be chosen (not [CLS] or [SEP]); 15 % of them are chosen and "
          "80 % of the chosen become [MASK]")
def _check_21_2(module):
    from ..text.masking import mask_tokens
    ids = np.ones((32, 64), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 2, 3
    draws = [mask_tokens(ids, np.random.default_rng(seed), mask_id=4, vocab_size=5, special_ids=(2, 3, 4))[0]
             for seed in range(200)]
    measured = float(np.mean([(inputs == 4).sum() for inputs in draws]))
    expected = 32 * 62 * 0.15 * 0.8
    if abs(measured - expected) > 3:      # the checker's own sanity check of the rule it asks about
        raise RuntimeError(f"mask_tokens drew {measured} [MASK]s on average, expected about {expected}")
    return _predicted(module, expected, "the expected [MASK] count of 32 windows of 64 tokens", "21.2", rtol=0.005)


# --- lesson 22: an encoder-decoder trained by span corruption ---------------------------------

@exercise("22.1", "undo span corruption",
          "read the target once: each sentinel starts a span that runs to the next sentinel; then walk "
          "the source and replace each sentinel by its span")
def _check_22_1(module):
    from ..text.spans import sentinel_ids, span_corrupt
    rng = np.random.default_rng(22)
    sentinels = sentinel_ids(500, 20)
    for length in (5, 30, 90):
        ids = rng.integers(0, 400, length)
        source, target = span_corrupt(ids, rng, sentinels)
        got = _call(module, "restore", source.tolist(), target.tolist(), sentinels)
        if list(map(int, got)) != ids.tolist():
            raise ExerciseFailed(f"restore(...) does not give back the text of {length} tokens. "
                                 f"Hint: {REGISTRY['22.1'].hint}")
    return "your restore puts three corrupted texts back together"


@exercise("22.2", "predict: the target length of span corruption",
          "noise = round(0.15 L) tokens in round(noise / 3) spans; the target holds the noise, one sentinel "
          "per span and one more to close")
def _check_22_2(module):
    from ..text.spans import sentinel_ids, span_corrupt
    _, target = span_corrupt(np.arange(128), np.random.default_rng(0), sentinel_ids(1000, 20))
    return _predicted(module, len(target), "the target length of a 128-token window", "22.2", rtol=0)


# --- lesson 23: benchmarks and in-context learning --------------------------------------------

@exercise("23.1", "a k-shot prompt",
          "each demonstration is its context, the target delimiter \" \" and its answer; every demonstration "
          "is followed by the few-shot delimiter \"\\n\\n\"; the question's context comes last, with no answer")
def _check_23_1(module):
    from ..evaluate.harness import Doc, Task, fewshot_context
    shots = (Doc("2 + 3 =", ("5", "6"), 0), Doc("4 + 4 =", ("7", "8"), 1), Doc("1 + 6 =", ("7", "9"), 0))
    question = Doc("3 + 5 =", ("8", "9"), 0)
    for k in (0, 1, 3):
        task = Task("sums", "multiple_choice", (question,), fewshot_docs=shots[:k])
        # with k of k documents the draw is a permutation: put the demonstrations in its order
        order = np.random.default_rng(0).choice(k, size=k, replace=False) if k else []
        demos = [(shots[i].context, shots[i].gold()) for i in order]
        expected = fewshot_context(task, question, k, np.random.default_rng(0))
        got = _call(module, "fewshot_prompt", demos, question.context)
        if got != expected:
            raise ExerciseFailed(f"fewshot_prompt with {k} demonstrations gives {got!r}, not the harness's "
                                 f"layout. Hint: {REGISTRY['23.1'].hint}")
    return "your prompts are laid out as lm-evaluation-harness lays them out"


@exercise("23.2", "acc and acc_norm from log-likelihoods",
          "acc picks the choice of largest summed log-likelihood; acc_norm divides each by the length of "
          "its choice in characters (without the leading space) before picking")
def _check_23_2(module):
    cases = [([-9.0, -4.0, -12.0], ["a long right answer", "no", "another long one"]),
             ([-3.0, -3.5], ["ab", "abcdef"]), ([-20.0, -6.0, -7.0, -30.0], ["x" * 40, "y", "zz", "w" * 90])]
    for logprobs, choices in cases:
        lengths = np.array([len(c) for c in choices], dtype=float)
        expected = (int(np.argmax(logprobs)), int(np.argmax(np.array(logprobs) / lengths)))
        got = _call(module, "pick", logprobs, choices)
        if not isinstance(got, tuple) or len(got) != 2 or tuple(int(g) for g in got) != expected:
            raise ExerciseFailed(f"pick({logprobs}, {choices}) should return the two indices (acc, acc_norm); "
                                 f"got {got!r}. Hint: {REGISTRY['23.2'].hint}")
    return "your choices match the harness's acc and acc_norm"


@exercise("23.3", "predict: the error bar of an accuracy",
          "an accuracy is the mean of n zeros and ones; its standard error is sqrt(p (1 - p) / n)")
def _check_23_3(module):
    return _predicted(module, math.sqrt(0.25 * 0.75 / 300), "the standard error of 25 % accuracy on 300 questions",
                      "23.3", rtol=0.03)


# --- lesson 24: domain-adaptive pretraining ---------------------------------------------------

@exercise("24.1", "the loss of a batch with replay",
          "k = round(fraction * batch_size) rows are general text; the weights are the shares of rows: "
          "(1 - k / batch_size) for the domain loss and k / batch_size for the general loss")
def _check_24_1(module):
    from ..train.batches import mix_rows
    for domain, general, n, fraction in ((3.0, 5.0, 16, 0.1), (2.5, 4.0, 10, 0.25), (1.0, 9.0, 20, 0.15)):
        k = mix_rows(n, fraction)
        expected = (1 - k / n) * domain + k / n * general
        _compare(_call(module, "replay_loss", domain, general, n, fraction), np.array(expected),
                 f"replay_loss({domain}, {general}, batch_size={n}, fraction={fraction})", "24.1")
    return "your loss weights each part by its rows, as MixedObjective does"


@exercise("24.2", "predict: rows of replay",
          "round(fraction * batch_size) rows of the batch come from the general text")
def _check_24_2(module):
    from ..train.batches import mix_rows
    return _predicted(module, mix_rows(20, 0.15), "the general-text rows of a batch of 20 at 15 % replay",
                      "24.2", rtol=0)


# --- lesson 25: the reward model ---------------------------------------------------------------

@exercise("25.1", "the Bradley-Terry loss",
          "-log s(m) = log(1 + e^-m) = np.logaddexp(0, -m) for the margin m = r_c - r_r, "
          "which stays finite for a margin of -1000")
def _check_25_1(module):
    from ..align.reward_model import pairwise_loss
    from ..core.tensor import Tensor
    rng = np.random.default_rng(27)
    for scale in (1.0, 50.0, 1000.0):
        chosen, rejected = rng.normal(size=6) * scale, rng.normal(size=6) * scale
        expected = pairwise_loss(Tensor(chosen), Tensor(rejected)).item()
        with np.errstate(over="ignore"):
            got = _call(module, "bradley_terry_loss", chosen, rejected)
        if not np.all(np.isfinite(np.asarray(got, dtype=np.float64))):
            raise ExerciseFailed(f"bradley_terry_loss at reward scale {scale:g} should be finite, got {got}. "
                                 f"Hint: {REGISTRY['25.1'].hint}")
        _compare(got, np.array(expected), f"bradley_terry_loss at reward scale {scale:g}", "25.1", rtol=1e-9)
    return "your loss matches pairwise_loss, also for margins in the hundreds"


@exercise("25.2", "predict: pairs from rankings",
          "a ranking of K answers states C(K, 2) = K (K - 1) / 2 preferences; there are 12 rankings")
def _check_25_2(module):
    from ..align.preferences import ranking_pairs
    return _predicted(module, float(12 * len(ranking_pairs(5))), "the number of preference pairs", "25.2",
                      rtol=0.0)


# --- lesson 26: direct preference optimisation -------------------------------------------------

@exercise("26.1", "the DPO loss",
          "h = (log pi_c - log pi_ref_c) - (log pi_r - log pi_ref_r); loss = mean of log(1 + e^(-beta h)), "
          "np.logaddexp(0, -beta * h)")
def _check_26_1(module):
    from ..align.dpo import preference_loss
    from ..core.tensor import Tensor
    rng = np.random.default_rng(28)
    pc, pr, rc, rr = (rng.normal(-20, 5, size=5) for _ in range(4))
    for beta in (0.1, 0.5, 2.0):
        expected = preference_loss(Tensor(pc), Tensor(pr), rc, rr, beta).item()
        _compare(_call(module, "dpo_loss", pc, pr, rc, rr, beta), np.array(expected), f"dpo_loss(beta={beta})",
                 "26.1", rtol=1e-9)
    return "your loss matches preference_loss at three values of beta"


@exercise("26.2", "predict: the DPO loss at the start",
          "when the policy equals the reference every margin h is 0, and -log s(0) = log 2")
def _check_26_2(module):
    from ..align.dpo import preference_loss
    from ..core.tensor import Tensor
    start = np.array([-12.0, -30.0])
    actual = preference_loss(Tensor(start), Tensor(start[::-1].copy()), start, start[::-1].copy(), 0.1).item()
    return _predicted(module, actual, "the DPO loss of a policy equal to its reference", "26.2", rtol=0.01)
