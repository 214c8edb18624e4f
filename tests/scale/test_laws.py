"""Scaling-law fits (tinygrad_llm.scale.laws): known laws are recovered, bad input is refused."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from tinygrad_llm.scale import laws
from tinygrad_llm.scale.compute import LossLaw
from tinygrad_llm.scale.laws import (PowerLaw, bootstrap, fit_loss_surface, fit_power_law, interval,
                                     pareto_frontier)


def test_docstring_examples_run():
    result = doctest.testmod(laws)
    assert result.attempted >= 2 and result.failed == 0


def test_an_exact_power_law_with_a_floor_is_recovered():
    x = np.geomspace(1e3, 1e7, 9)
    law = fit_power_law(x, 1.7 + 40.0 * x ** -0.35)
    assert law.E == pytest.approx(1.7, abs=2e-3)
    assert law.alpha == pytest.approx(0.35, rel=5e-3)
    assert law.A == pytest.approx(40.0, rel=3e-2)
    assert law.rmse_log < 1e-4


def test_a_pure_power_law_is_one_straight_line_in_log_space():
    x = np.geomspace(10, 1e5, 6)
    law = fit_power_law(x, 8.0 * x ** -0.076, irreducible=False)
    assert law.E == 0 and law.alpha == pytest.approx(0.076, rel=1e-9) and law.A == pytest.approx(8.0, rel=1e-9)


def test_noisy_measurements_give_exponents_near_the_truth_and_intervals_that_mostly_cover_it():
    x = np.repeat(np.geomspace(1e4, 1e7, 8), 3)
    covered = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        y = (2.0 + 30.0 * x ** -0.3) * np.exp(rng.normal(0, 0.003, x.size))
        law = fit_power_law(x, y, grid=50)
        assert law.alpha == pytest.approx(0.3, abs=0.03)
        fits = bootstrap(lambda a, b: fit_power_law(a, b, grid=50), (x, y), samples=40, rng=rng)
        low, high = interval([f.alpha for f in fits], 0.9)
        assert low <= law.alpha <= high
        covered += low < 0.3 < high
    assert covered >= 6, f"a 90 % interval covered the true exponent in {covered} of 10 data sets"


def test_chinchilla_constants_are_recovered_from_their_own_surface():
    truth = LossLaw(E=1.8, A=300.0, B=500.0, alpha=0.4, beta=0.3)
    n, d = np.meshgrid(np.geomspace(1e5, 1e8, 5), np.geomspace(1e7, 1e10, 4))
    fit = fit_loss_surface(n.ravel(), d.ravel(), truth.loss(n.ravel(), d.ravel()))
    assert fit.law.alpha == pytest.approx(0.4, abs=0.01) and fit.law.beta == pytest.approx(0.3, abs=0.01)
    assert fit.law.E == pytest.approx(1.8, abs=0.01) and fit.rmse < 1e-3


def test_the_frontier_keeps_only_runs_no_cheaper_run_beats():
    assert pareto_frontier([3, 1, 2, 2], [1.0, 3.0, 2.5, 2.0]).tolist() == [1, 3, 0]
    assert pareto_frontier([1.0], [2.0]).tolist() == [0]


@pytest.mark.parametrize("x, y, match", [
    ([1, 2, 3], [3.0, 2.0, 1.5], "at least 4"),
    ([1, 2, 3, 4], [3.0, 2.0, 1.5], "one length"),
    ([1, 2, 0, 4], [3.0, 2.0, 1.5, 1.2], "positive"),
    ([1, 2, 3, 4], [3.0, np.nan, 1.5, 1.2], "finite"),
    ([2, 2, 2, 2], [3.0, 2.0, 1.5, 1.2], "two different sizes"),
    ([[1, 2], [3, 4]], [[3.0, 2.0], [1.5, 1.2]], "1-D"),
])
def test_a_power_law_fit_refuses_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        fit_power_law(x, y)


def test_bad_arguments_are_refused_with_their_names():
    with pytest.raises(ValueError, match="at least 6"):
        fit_loss_surface([1, 2, 3], [1, 2, 3], [3.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="level"):
        interval([1.0, 2.0], 1.0)
    with pytest.raises(ValueError, match="two finite"):
        interval([1.0], 0.9)
    with pytest.raises(ValueError, match="one length"):
        bootstrap(fit_power_law, ([1, 2], [1.0]), samples=3, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="too few distinct"):
        bootstrap(fit_power_law, ([5, 5, 5, 5], [4.0, 3.0, 2.5, 2.2]), samples=3, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="positive sizes"):
        PowerLaw(1.0, 1.0, 0.5)([0.0])
