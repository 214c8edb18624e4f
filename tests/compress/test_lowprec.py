"""bfloat16 and float16 emulation: bfloat16 rounding against known bit patterns (and PyTorch when
it is installed), the formats' range and precision against NumPy's, overflow and underflow."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from tinygrad_llm import GPT, GPTConfig
from tinygrad_llm.compress import lowprec
from tinygrad_llm.model.state import bfloat16_to_float32
from tinygrad_llm.compress.lowprec import (FORMATS, float32_to_bfloat16_bits, range_report, round_parameters_, round_to,
                                  round_to_bfloat16, round_to_float16)


def bits32(value: float) -> int:
    return int(np.array(value, dtype=np.float32).view(np.uint32))


def from_bits32(bits: int) -> np.float32:
    return np.array(bits, dtype=np.uint32).view(np.float32)


def test_docstring_examples_run():
    result = doctest.testmod(lowprec)
    assert result.attempted >= 1 and result.failed == 0


@pytest.mark.parametrize("float32_bits, bfloat16_bits, why", [
    (0x3F800000, 0x3F80, "1.0 is exact"),
    (0xC0000000, 0xC000, "-2.0 is exact"),
    (0x3F807FFF, 0x3F80, "below half a step: down"),
    (0x3F808000, 0x3F80, "a tie with an even kept half: stays"),
    (0x3F818000, 0x3F82, "a tie with an odd kept half: up to even"),
    (0x3F808001, 0x3F81, "above half a step: up"),
    (0x3FFF8000, 0x4000, "the carry ripples into the exponent"),
    (0x7F7FFFFF, 0x7F80, "the largest float32 rounds to inf"),
    (0x7F800000, 0x7F80, "inf stays inf"),
    (0xFF800000, 0xFF80, "-inf stays -inf"),
    (0x80000000, 0x8000, "-0 keeps its sign"),
    (0x00000001, 0x0000, "the smallest subnormal rounds to zero"),
    (0x00018000, 0x0002, "a subnormal tie rounds to even"),
    (0x3DCCCCCD, 0x3DCD, "0.1"),
])
def test_bfloat16_rounding_of_known_bit_patterns(float32_bits, bfloat16_bits, why):
    assert int(float32_to_bfloat16_bits(from_bits32(float32_bits)[None])[0]) == bfloat16_bits, why


def test_nan_stays_nan_even_when_only_low_bits_are_set():
    nans = np.array([0x7F800001, 0xFFC00000, 0x7FFFFFFF], dtype=np.uint32).view(np.float32)
    bits = float32_to_bfloat16_bits(nans)
    assert np.all(np.isnan(bfloat16_to_float32(bits)))
    assert [int(b) >> 15 for b in bits] == [0, 1, 0]   # the sign is kept


def test_bfloat16_keeps_the_upper_half_and_relative_error_below_half_epsilon():
    x = np.random.default_rng(0).normal(0, 1, 10_000).astype(np.float32) * np.float32(10.0) ** \
        np.random.default_rng(1).integers(-30, 30, 10_000).astype(np.float32)
    y = round_to_bfloat16(x)
    assert np.all(y.view(np.uint32) & 0xFFFF == 0)
    assert np.all(np.abs(y - x) <= np.abs(x) * 2.0 ** -8)
    np.testing.assert_array_equal(round_to_bfloat16(y), y)     # rounding twice changes nothing


def test_bfloat16_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(0, 1, 5000), rng.normal(0, 1, 5000) * 1e30, rng.normal(0, 1e-38, 1000),
                        [3.4e38, -3.4e38, 0.0, -0.0, np.inf, -np.inf]]).astype(np.float32)
    ties = (rng.integers(0, 2 ** 32, 2000, dtype=np.uint64).astype(np.uint32) & 0xFFFF0000) | 0x8000
    x = np.concatenate([x, ties.view(np.float32)[np.isfinite(ties.view(np.float32))]])
    expected = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(float32_to_bfloat16_bits(x), expected)


def test_float16_rounding_overflows_and_underflows_like_hardware():
    x = np.array([65504, 65519, 65520, 70000, -1e6, 6e-8, 2.9e-8, 1e-8, 0.1], dtype=np.float32)
    y = round_to_float16(x)
    assert y[0] == 65504 and y[1] == 65504                       # below half a step above the max
    assert np.isposinf(y[2]) and np.isposinf(y[3]) and np.isneginf(y[4])
    assert y[5] == np.float32(2.0 ** -24) and y[6] == 0 and y[7] == 0
    assert y[8] == np.float32(np.float16(0.1))


@pytest.mark.parametrize("name, numpy_type", [("float16", np.float16), ("float32", np.float32)])
def test_format_properties_agree_with_numpy(name, numpy_type):
    fmt, info = FORMATS[name], np.finfo(numpy_type)
    assert fmt.bits == info.bits
    assert fmt.max_finite == float(info.max)
    assert fmt.min_normal == float(info.tiny)
    assert fmt.min_subnormal == float(info.smallest_subnormal)
    assert fmt.epsilon == float(info.eps)


def test_bfloat16_format_is_float32_range_with_7_mantissa_bits():
    bf16, f32 = FORMATS["bfloat16"], FORMATS["float32"]
    assert bf16.min_normal == f32.min_normal and bf16.epsilon == 2.0 ** -7
    assert bf16.max_finite == float(bfloat16_to_float32(np.array([0x7F7F], dtype=np.uint16))[0])
    assert round(bf16.decimal_digits, 1) == 2.4 and round(FORMATS["float16"].decimal_digits, 1) == 3.3


def test_range_report_counts_overflow_and_underflow():
    x = np.array([1e5, 2e5, 1e-9, 0.0, 1.0, 3.0], dtype=np.float32)
    report = range_report(x, "float16")
    assert report["overflow"] == pytest.approx(2 / 6) and report["underflow"] == pytest.approx(1 / 6)
    assert report["max_relative_error"] == 0.0                 # 1 and 3 are exact
    assert range_report(x, "bfloat16")["overflow"] == 0 and range_report(x, "bfloat16")["underflow"] == 0
    assert range_report(x, "float32") == {"overflow": 0.0, "underflow": 0.0, "max_relative_error": 0.0}


def test_round_parameters_of_a_model():
    config = GPTConfig(vocab_size=20, context_length=8, d_model=8, n_layer=1, n_head=2)
    model = GPT(config, rng=np.random.default_rng(0))
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    assert round_parameters_(model, "bfloat16") == model.num_parameters()
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p.data, round_to_bfloat16(before[name]))
    with pytest.raises(TypeError, match="float32 models"):
        round_parameters_(GPT(config, dtype=np.float64), "float16")
    model.blocks[0].mlp.up.weight.data[0, 0] = 1e6
    with pytest.raises(OverflowError, match="overflows float16"):
        round_parameters_(model, "float16")


def test_input_errors_are_clear():
    with pytest.raises(TypeError, match="takes float32 values"):
        float32_to_bfloat16_bits(np.ones(2))
    with pytest.raises(TypeError, match="takes float32 values"):
        round_to_float16(np.ones(2, dtype=np.float16))
    with pytest.raises(ValueError, match="unknown float format 'fp8'"):
        round_to(np.ones(2, dtype=np.float32), "fp8")
