"""Knowledge distillation: the fused KL-at-temperature op against its composed reference and
PyTorch, gradient checks in float64, the combined loss, and the Distiller's training loop."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from tinygrad_llm import GPT, GPTConfig, Tensor, Trainer, TrainConfig, gradcheck
from tinygrad_llm.compress import distill
from tinygrad_llm import functional as F
from tinygrad_llm.compress.distill import (Distiller, distillation_loss, distillation_terms, estimate_kl,
                                  kl_div_with_temperature, kl_div_with_temperature_composed, teacher_logits)

CONFIG = GPTConfig(vocab_size=40, context_length=12, d_model=16, n_layer=2, n_head=2)
SMALL = GPTConfig(vocab_size=40, context_length=12, d_model=8, n_layer=1, n_head=2)
TEMPERATURES = [0.5, 1.0, 2.0, 4.0]


def logits_pair(shape=(2, 3, 7), seed: int = 0, scale: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Student and teacher logits, float64, spread enough that the distributions differ clearly."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, scale, shape), rng.normal(0.0, scale, shape)


def tensor64(array: np.ndarray) -> Tensor:
    return Tensor(array.copy(), dtype=np.float64, requires_grad=True)


def numpy_kl(student: np.ndarray, teacher: np.ndarray, temperature: float) -> np.ndarray:
    """KL(p_T || q_T) per position, straight from the definition (no T^2)."""
    def probabilities(z):
        e = np.exp(z / temperature - (z / temperature).max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    p, q = probabilities(teacher), probabilities(student)
    return (p * (np.log(p) - np.log(q))).sum(axis=-1)


def token_stream(length: int = 400, vocab_size: int = 40, seed: int = 3) -> np.ndarray:
    """A token array with structure to learn: a noisy cycle through the vocabulary."""
    rng = np.random.default_rng(seed)
    steps = rng.choice([1, 1, 1, 2, 5], size=length)
    return (np.cumsum(steps) % vocab_size).astype(np.uint16)


def sharp_teacher(config: GPTConfig = CONFIG, seed: int = 7) -> GPT:
    """A random GPT whose logits are spread wide (large embedding), so that its next-token
    distributions are far from uniform and a fresh student starts far from them."""
    teacher = GPT(config, rng=np.random.default_rng(seed))
    teacher.token_embedding.weight.data *= 10.0
    return teacher


def test_docstring_examples_run():
    result = doctest.testmod(distill)
    assert result.attempted >= 1 and result.failed == 0


# ----------------------------------------------------------------------------------------------
# The fused op


@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_kl_grad_float64(temperature, reduction):
    student, teacher = logits_pair()
    assert gradcheck(lambda z: kl_div_with_temperature(z, teacher, temperature, reduction), tensor64(student))


@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_kl_fused_equals_composed_value_and_grad(temperature, reduction):
    student, teacher = logits_pair(seed=1)
    weights = np.random.default_rng(2).normal(size=student.shape[:-1] if reduction == "none" else ())
    fused, composed = tensor64(student), tensor64(student)
    out_fused = kl_div_with_temperature(fused, teacher, temperature, reduction)
    out_composed = kl_div_with_temperature_composed(composed, teacher, temperature, reduction)
    np.testing.assert_allclose(out_fused.data, out_composed.data, rtol=1e-12, atol=1e-12)
    (out_fused * weights).sum().backward()
    (out_composed * weights).sum().backward()
    np.testing.assert_allclose(fused.grad, composed.grad, rtol=1e-10, atol=1e-12)


def test_kl_composed_grad_float64():
    student, teacher = logits_pair(seed=4)
    assert gradcheck(lambda z: kl_div_with_temperature_composed(z, teacher, 2.0), tensor64(student))


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_kl_value_is_t_squared_times_the_definition(temperature):
    student, teacher = logits_pair(seed=5)
    expected = temperature ** 2 * numpy_kl(student, teacher, temperature)
    none = kl_div_with_temperature(Tensor(student, dtype=np.float64), teacher, temperature, "none")
    np.testing.assert_allclose(none.data, expected, rtol=1e-12, atol=1e-14)
    mean = kl_div_with_temperature(Tensor(student, dtype=np.float64), teacher, temperature)
    assert mean.shape == () and math.isclose(mean.item(), expected.mean(), rel_tol=1e-12)


def test_kl_gradient_formula():
    # d loss / d z_s = T (softmax(z_s / T) - softmax(z_t / T)) / N for the mean
    student, teacher = logits_pair(shape=(4, 6), seed=6)
    temperature = 3.0
    z = tensor64(student)
    kl_div_with_temperature(z, teacher, temperature).backward()
    q = np.exp(student / temperature) / np.exp(student / temperature).sum(axis=-1, keepdims=True)
    p = np.exp(teacher / temperature) / np.exp(teacher / temperature).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(z.grad, temperature * (q - p) / 4, rtol=1e-12, atol=1e-15)


def test_kl_t_squared_keeps_the_gradient_from_vanishing():
    # For a large T the scaled gradient tends to (centred z_s - centred z_t) / (V N), whatever T
    # is (Hinton et al.'s "matching logits" limit), with an error of order 1/T; without the T^2
    # factor it would shrink like 1/T^2.
    student, teacher = logits_pair(shape=(3, 5), seed=8, scale=1.0)
    N, V = student.shape
    centred = ((student - student.mean(axis=-1, keepdims=True))
               - (teacher - teacher.mean(axis=-1, keepdims=True)))
    limit = centred / (V * N)
    norms = []
    for temperature in (100.0, 1000.0):
        z = tensor64(student)
        kl_div_with_temperature(z, teacher, temperature).backward()
        assert np.abs(z.grad - limit).max() < np.abs(limit).max() / temperature
        norms.append(np.linalg.norm(z.grad))
    assert norms[1] == pytest.approx(norms[0], rel=2e-2)


def test_kl_is_zero_for_identical_logits_and_positive_otherwise():
    student, teacher = logits_pair(seed=9)
    for temperature in TEMPERATURES:
        z = tensor64(teacher)
        same = kl_div_with_temperature(z, teacher, temperature, "none")
        assert np.all(same.data == 0.0)
        same.sum().backward()
        assert np.all(z.grad == 0.0)
        # a shift of all logits of a position changes nothing: softmax ignores it
        shifted = kl_div_with_temperature(Tensor(teacher + 3.0, dtype=np.float64), teacher, temperature)
        assert abs(shifted.item()) < 1e-12
        different = kl_div_with_temperature(Tensor(student, dtype=np.float64), teacher, temperature, "none")
        assert np.all(different.data > 0)


def test_kl_float32_matches_float64_and_keeps_dtype():
    student, teacher = logits_pair(shape=(4, 5, 30), seed=10)
    z32 = Tensor(student.astype(np.float32), requires_grad=True)
    out32 = kl_div_with_temperature(z32, teacher.astype(np.float32), 2.0)
    out32.backward()
    z64 = tensor64(student)
    out64 = kl_div_with_temperature(z64, teacher, 2.0)
    out64.backward()
    assert out32.dtype == np.float32 and z32.grad.dtype == np.float32
    assert out32.item() == pytest.approx(out64.item(), rel=1e-5)
    np.testing.assert_allclose(z32.grad, z64.grad, rtol=1e-4, atol=1e-7)


def test_kl_accepts_a_teacher_tensor_without_grad_and_gives_it_no_gradient():
    student, teacher = logits_pair(seed=11)
    from_array = kl_div_with_temperature(Tensor(student, dtype=np.float64), teacher, 2.0)
    from_tensor = kl_div_with_temperature(Tensor(student, dtype=np.float64),
                                          Tensor(teacher, dtype=np.float64), 2.0)
    assert from_array.item() == from_tensor.item()


@pytest.mark.parametrize("temperature", [1.0, 2.0, 5.0])
def test_kl_matches_torch_batchmean_times_t_squared(temperature):
    torch = pytest.importorskip("torch")
    student, teacher = logits_pair(shape=(2, 4, 9), seed=12)
    V = student.shape[-1]
    ours = tensor64(student)
    loss = kl_div_with_temperature(ours, teacher, temperature)
    loss.backward()
    theirs = torch.tensor(student.reshape(-1, V), requires_grad=True)
    reference = torch.nn.functional.kl_div(
        torch.log_softmax(theirs / temperature, dim=-1),
        torch.log_softmax(torch.tensor(teacher.reshape(-1, V)) / temperature, dim=-1),
        reduction="batchmean", log_target=True) * temperature ** 2
    reference.backward()
    assert loss.item() == pytest.approx(reference.item(), rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(ours.grad.reshape(-1, V), theirs.grad.numpy(), rtol=1e-10, atol=1e-14)


# ----------------------------------------------------------------------------------------------
# The combined loss


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_distillation_loss_grad_float64(alpha, temperature):
    student, teacher = logits_pair(shape=(2, 3, 6), seed=13)
    targets = np.random.default_rng(14).integers(0, 6, (2, 3))
    assert gradcheck(lambda z: distillation_loss(z, teacher, targets, temperature, alpha), tensor64(student))


def test_distillation_loss_is_the_weighted_sum_of_its_terms():
    student, teacher = logits_pair(shape=(3, 4, 8), seed=15)
    targets = np.random.default_rng(16).integers(0, 8, (3, 4))
    alpha, temperature = 0.7, 2.0
    z = tensor64(student)
    loss, soft, hard = distillation_terms(z, teacher, targets, temperature, alpha)
    expected = alpha * temperature ** 2 * numpy_kl(student, teacher, temperature).mean() \
        + (1 - alpha) * F.cross_entropy(Tensor(student, dtype=np.float64), targets).item()
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    soft_expected = temperature ** 2 * numpy_kl(student, teacher, temperature).mean()
    assert soft.item() == pytest.approx(soft_expected, rel=1e-12)
    # the same loss built from the composed references has the same gradient
    loss.backward()
    reference = tensor64(student)
    (kl_div_with_temperature_composed(reference, teacher, temperature) * alpha
     + F.cross_entropy_composed(reference, targets) * (1 - alpha)).backward()
    np.testing.assert_allclose(z.grad, reference.grad, rtol=1e-10, atol=1e-14)


def test_distillation_loss_alpha_zero_is_cross_entropy_bit_for_bit():
    student, _ = logits_pair(shape=(2, 5, 11), seed=17)
    targets = np.random.default_rng(18).integers(0, 11, (2, 5))
    a = Tensor(student.astype(np.float32), requires_grad=True)
    b = Tensor(student.astype(np.float32), requires_grad=True)
    loss = distillation_loss(a, None, targets, temperature=3.0, alpha=0.0)  # no teacher needed
    reference = F.cross_entropy(b, targets)
    assert loss.data.tobytes() == reference.data.tobytes()
    loss.backward()
    reference.backward()
    assert a.grad.tobytes() == b.grad.tobytes()


def test_distillation_loss_alpha_one_is_the_soft_term_and_needs_no_targets():
    student, teacher = logits_pair(seed=19)
    loss, soft, hard = distillation_terms(Tensor(student, dtype=np.float64), teacher, None, 2.0, 1.0)
    assert hard is None and loss is soft
    assert loss.item() == kl_div_with_temperature(Tensor(student, dtype=np.float64), teacher, 2.0).item()


# ----------------------------------------------------------------------------------------------
# Clear errors


def test_errors_name_the_problem():
    student, teacher = logits_pair(shape=(2, 3, 7), seed=20)
    z = Tensor(student, dtype=np.float64)
    with pytest.raises(ValueError, match="share one vocabulary"):
        kl_div_with_temperature(z, teacher[..., :5], 2.0)
    with pytest.raises(ValueError, match="same positions"):
        kl_div_with_temperature(z, teacher[:1], 2.0)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="temperature"):
            kl_div_with_temperature(z, teacher, bad)
    with pytest.raises(TypeError, match="temperature"):
        kl_div_with_temperature(z, teacher, "2")
    targets = np.zeros((2, 3), dtype=np.int64)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
            distillation_loss(z, teacher, targets, 2.0, bad)
    with pytest.raises(ValueError, match="teacher_logits is None"):
        distillation_loss(z, None, targets, 2.0, 0.5)
    with pytest.raises(ValueError, match="targets is None"):
        distillation_loss(z, teacher, None, 2.0, 0.5)
    with pytest.raises(TypeError, match="no_grad"):
        kl_div_with_temperature(z, Tensor(teacher, dtype=np.float64, requires_grad=True), 2.0)
    with pytest.raises(TypeError, match="must be a Tensor"):
        kl_div_with_temperature(student, teacher, 2.0)
    with pytest.raises(TypeError, match="floating point"):
        kl_div_with_temperature(z, teacher.astype(np.int64), 2.0)
    broken = teacher.copy()
    broken[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="teacher logits contain NaN or inf"):
        kl_div_with_temperature(z, broken, 2.0)
    with pytest.raises(ValueError, match="reduction"):
        kl_div_with_temperature(z, teacher, 2.0, reduction="batchmean")


def test_distiller_rejects_mismatched_models_and_settings():
    tokens = token_stream()
    student = GPT(SMALL, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="vocabulary"):
        Distiller(student, GPT(GPTConfig(vocab_size=41, context_length=12, d_model=8, n_layer=1, n_head=2)),
                  tokens, log=None)
    with pytest.raises(ValueError, match="context"):
        Distiller(student, GPT(GPTConfig(vocab_size=40, context_length=8, d_model=8, n_layer=1, n_head=2)),
                  tokens, log=None)
    with pytest.raises(ValueError, match="needs a teacher"):
        Distiller(student, None, tokens, alpha=0.5, log=None)
    with pytest.raises(ValueError, match="same model"):
        Distiller(student, student, tokens, log=None)
    with pytest.raises(ValueError, match="alpha"):
        Distiller(student, GPT(CONFIG), tokens, alpha=2.0, log=None)
    with pytest.raises(ValueError, match="temperature"):
        Distiller(student, GPT(CONFIG), tokens, temperature=0.0, log=None)


# ----------------------------------------------------------------------------------------------
# The training loop


def short_config(steps: int = 6, seed: int = 0) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=4, learning_rate=3e-3, min_learning_rate=3e-4,
                       warmup_steps=2, eval_interval=3, eval_batches=2, log_interval=3, seed=seed)


@pytest.mark.parametrize("with_teacher", [False, True])
def test_distiller_alpha_zero_equals_trainer_bit_for_bit(with_teacher):
    tokens = token_stream()
    config = GPTConfig(vocab_size=40, context_length=12, d_model=8, n_layer=1, n_head=2, dropout=0.1)
    plain = GPT(config, rng=np.random.default_rng(0))
    distilled = GPT(config, rng=np.random.default_rng(0))
    teacher = sharp_teacher() if with_teacher else None
    plain_history = Trainer(plain, tokens, tokens, short_config(), log=None).train()
    distiller = Distiller(distilled, teacher, tokens, tokens, short_config(), temperature=2.0, alpha=0.0,
                          log=None)
    history = distiller.train()
    assert history.train_loss == plain_history.train_loss and history.val_loss == plain_history.val_loss
    for (name, a), (_, b) in zip(plain.named_parameters(), distilled.named_parameters()):
        assert a.data.tobytes() == b.data.tobytes(), name
    assert all(math.isnan(v) for v in distiller.soft_loss) and distiller.hard_loss == history.train_loss
    assert distiller.teacher_seconds == 0.0


def test_short_distillation_run_decreases_the_kl():
    tokens = token_stream()
    teacher = sharp_teacher()
    student = GPT(SMALL, rng=np.random.default_rng(1))
    before = estimate_kl(student, teacher, tokens, batch_size=8, num_batches=3)
    config = TrainConfig(steps=40, batch_size=8, learning_rate=1e-2, min_learning_rate=1e-3,
                         warmup_steps=4, eval_interval=20, eval_batches=2, log_interval=20)
    distiller = Distiller(student, teacher, tokens, tokens, config, temperature=2.0, alpha=1.0, log=None)
    distiller.train()
    after = estimate_kl(student, teacher, tokens, batch_size=8, num_batches=3)
    assert after < 0.5 * before, (before, after)
    soft = distiller.soft_loss
    assert len(soft) == 40 and np.mean(soft[-5:]) < 0.5 * np.mean(soft[:5])
    assert all(math.isnan(v) for v in distiller.hard_loss)   # alpha = 1: no label term


def test_distiller_leaves_the_teacher_untouched():
    tokens = token_stream()
    teacher = sharp_teacher()
    teacher.train()                  # whatever mode it comes in, it scores in eval mode ...
    before = {name: array.copy() for name, array in teacher.state_dict().items()}
    distiller = Distiller(GPT(SMALL, rng=np.random.default_rng(1)), teacher, tokens, tokens, short_config(),
                          alpha=0.5, log=None)
    distiller.train()
    assert teacher.training          # ... and goes back to it
    assert all(p.grad is None for p in teacher.parameters())
    for name, array in teacher.state_dict().items():
        assert np.array_equal(array, before[name]), name
    assert len(distiller.soft_loss) == len(distiller.hard_loss) == 6
    assert not any(math.isnan(v) for v in distiller.soft_loss + distiller.hard_loss)
    expected = [0.5 * s + 0.5 * h for s, h in zip(distiller.soft_loss, distiller.hard_loss)]
    np.testing.assert_allclose(distiller.history.train_loss, expected, rtol=1e-5)
    assert distiller.teacher_seconds > 0.0


def test_teacher_logits_are_deterministic_despite_dropout():
    teacher = GPT(GPTConfig(vocab_size=40, context_length=12, d_model=16, n_layer=1, n_head=2, dropout=0.5),
                  rng=np.random.default_rng(0))
    inputs = token_stream(24).reshape(2, 12).astype(np.int64)
    assert np.array_equal(teacher_logits(teacher, inputs), teacher_logits(teacher, inputs))


def test_distiller_resumes_exactly_from_a_checkpoint(tmp_path):
    tokens = token_stream()
    teacher = sharp_teacher()

    def distiller() -> Distiller:
        return Distiller(GPT(SMALL, rng=np.random.default_rng(1)), teacher, tokens, tokens, short_config(),
                         alpha=0.5, log=None)

    straight = distiller()
    straight.train()
    first = distiller()
    first.train(steps=3)
    first.save(tmp_path / "student.safetensors")
    resumed = distiller()
    resumed.load(tmp_path / "student.safetensors")
    resumed.train()
    for (name, a), (_, b) in zip(straight.student.named_parameters(), resumed.student.named_parameters()):
        assert np.array_equal(a.data, b.data), name


def test_estimate_kl_is_zero_against_itself_and_checks_vocabularies():
    tokens = token_stream()
    model = GPT(SMALL, rng=np.random.default_rng(0))
    twin = GPT(SMALL, rng=np.random.default_rng(0))
    assert estimate_kl(model, twin, tokens, batch_size=4, num_batches=2) == 0.0
    assert estimate_kl(model, sharp_teacher(), tokens, batch_size=4, num_batches=2) > 0.1
    with pytest.raises(ValueError, match="vocabulary"):
        estimate_kl(model, GPT(GPTConfig(vocab_size=41, context_length=12, d_model=8, n_layer=1, n_head=2)),
                    tokens, batch_size=4, num_batches=2)
