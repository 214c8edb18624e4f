"""The arithmetic of scale against published figures: FLOPs, PF/s-days, Chinchilla, ZeRO memory."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from tinygrad_llm import GPTConfig
from tinygrad_llm.scale import compute, sharding
from tinygrad_llm.scale.compute import (PETAFLOP_S_DAY, LossLaw, fit_loss_law, petaflop_s_days,
                                        rule_of_thumb_optimal, training_flops)
from tinygrad_llm.scale.memory import parameter_counts
from tinygrad_llm.scale.sharding import communication_values, rank_memory, ring_values


@pytest.mark.parametrize("module", [compute, sharding], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module)
    assert result.attempted >= 1 and result.failed == 0


def test_one_billion_parameters_take_4_gb_in_fp32_and_16_gb_to_train_with_adam():
    fp32 = rank_memory(1_000_000_000, precision="fp32")
    assert fp32.weights == 4e9 and fp32.total == 16e9


def test_gpt3_training_compute_matches_the_paper():
    # GPT-3 paper, table D.1: 175B parameters on 300B tokens, 3.14e23 FLOPs, 3,640 PF/s-days
    flops = training_flops(175e9, 300e9)
    assert flops == pytest.approx(3.14e23, rel=5e-3)
    assert petaflop_s_days(flops) == pytest.approx(3640, rel=5e-3)
    assert PETAFLOP_S_DAY == 8.64e19


def test_the_attention_term_is_added_per_token():
    config = GPTConfig.gpt2("124M")
    n = parameter_counts(config)["total"]
    extra = training_flops(n, 1000, config) - training_flops(n, 1000)
    assert extra == pytest.approx(6 * 12 * 1024 * 768 * 1000)


def test_zero_paper_memory_per_gpu_for_7_5b_on_64_gpus():
    # ZeRO paper, figure 1: 120 GB without ZeRO, 31.4 / 16.6 / 1.9 GB with stages 1 / 2 / 3
    expected = {0: 120.0, 1: 31.4, 2: 16.6, 3: 1.9}
    for stage, gb in expected.items():
        assert rank_memory(7_500_000_000, 64, stage).total / 1e9 == pytest.approx(gb, abs=0.05)


def test_each_stage_shards_one_more_part_and_one_rank_changes_nothing():
    psi = 1000
    for stage in sharding.STAGES:
        assert rank_memory(psi, 1, stage) == rank_memory(psi, 1, 0)
    m = [rank_memory(psi, 4, s) for s in sharding.STAGES]
    assert m[1].optimizer == m[0].optimizer / 4 and m[1].gradients == m[0].gradients
    assert m[2].gradients == m[0].gradients / 4 and m[2].weights == m[0].weights
    assert m[3].weights == m[0].weights / 4


def test_communication_is_two_psi_then_three_psi_for_stage_3():
    assert [communication_values(10, s) for s in sharding.STAGES] == [20, 20, 20, 30]
    assert ring_values(10, 2) == 10 and ring_values(10, 1) == 0


def test_chinchilla_optimum_is_the_minimum_along_the_iso_flop_curve():
    law, budget = LossLaw(), 1e21
    n_opt, d_opt = law.compute_optimal(budget)
    assert 6 * n_opt * d_opt == pytest.approx(budget)
    ns = n_opt * np.geomspace(0.5, 2.0, 41)
    losses = law.loss(ns, budget / (6 * ns))
    assert np.argmin(losses) == 20


def test_the_rule_of_thumb_gives_20_tokens_per_parameter():
    n, d = rule_of_thumb_optimal(5.76e23)
    assert d / n == pytest.approx(20) and 6 * n * d == pytest.approx(5.76e23)
    # GPT-3 trained 175B parameters on 300B tokens: under 2 tokens per parameter, far from 20
    n_gpt3, _ = rule_of_thumb_optimal(training_flops(175e9, 300e9))
    assert n_gpt3 < 175e9 / 3


def test_fit_recovers_known_constants_from_noisy_measurements():
    truth = LossLaw(E=1.8, A=300.0, B=500.0, alpha=0.32, beta=0.36)
    rng = np.random.default_rng(0)
    n = np.repeat(np.geomspace(1e5, 1e7, 6), 3)
    d = np.tile(np.geomspace(1e6, 1e8, 3), 6)
    fit = fit_loss_law(n, d, truth.loss(n, d) + rng.normal(0.0, 0.002, n.size))
    assert fit.law.alpha == pytest.approx(truth.alpha, abs=0.02)
    assert fit.law.beta == pytest.approx(truth.beta, abs=0.02)
    assert fit.rmse < 0.004 and all(np.isfinite(v) and v >= 0 for v in fit.stderr.values())
    # a held-out larger run is predicted within 1 %
    assert fit.law.loss(3e7, 3e8) == pytest.approx(truth.loss(3e7, 3e8), rel=0.01)


@pytest.mark.parametrize("call, error, fragment", [
    (lambda: rank_memory(0), ValueError, "n_parameters"),
    (lambda: rank_memory(10, ranks=0), ValueError, "ranks"),
    (lambda: rank_memory(10, stage=4), ValueError, "stage"),
    (lambda: rank_memory(10, precision="fp8"), ValueError, "precision"),
    (lambda: training_flops(float("nan"), 1.0), ValueError, "n_parameters"),
    (lambda: LossLaw().compute_optimal(-1.0), ValueError, "flops"),
    (lambda: fit_loss_law([1.0] * 3, [1.0] * 3, [1.0] * 3), ValueError, "at least 6"),
    (lambda: fit_loss_law([1.0] * 6, [1.0] * 5, [1.0] * 6), ValueError, "one length"),
])
def test_bad_arguments_are_refused_by_name(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call()
