"""Weibull fitting with right censoring against standards.md section 4, and MTBF / MTTR."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import optimize, stats

from refurb.scoring.reliability import (
    WeibullFit,
    b_life,
    conditional_reliability,
    fit_weibull,
    mtbf_mttr,
    reliability,
)

# Lecture data used by SciPy's own tests; * = still running (right-censored).
RAW = "3,5,6*,8,10*,11*,15,20*,22,23,27*,29,32,35,40,26,28,33*,21,24*".split(",")
FAILURES_H = [float(t) for t in RAW if not t.endswith("*")]
CENSORED_H = [float(t[:-1]) for t in RAW if t.endswith("*")]


@pytest.fixture(scope="module")
def fit() -> WeibullFit:
    return fit_weibull(FAILURES_H, CENSORED_H)


def test_published_vector(fit: WeibullFit) -> None:
    assert_allclose([fit.shape, fit.scale], [2.149, 28.99], rtol=1e-3)
    assert_allclose(fit.b10_h, 10.1775, rtol=1e-4)
    assert_allclose(fit.mttf_h, 25.6794, rtol=1e-4)
    assert_allclose(conditional_reliability(20.0, 10.0, fit.shape, fit.scale), 0.534827, rtol=1e-4)
    assert (fit.n_failures, fit.n_censored) == (13, 7)
    assert fit.confidence == 0.95


def test_log_likelihood_matches_scipy(fit: WeibullFit) -> None:
    expected = (
        stats.weibull_min.logpdf(FAILURES_H, fit.shape, scale=fit.scale).sum()
        + stats.weibull_min.logsf(CENSORED_H, fit.shape, scale=fit.scale).sum()
    )
    assert_allclose(fit.log_likelihood, expected, rtol=1e-10)


def test_intervals_contain_the_estimate(fit: WeibullFit) -> None:
    assert fit.shape_ci[0] < fit.shape < fit.shape_ci[1]
    assert fit.scale_ci[0] < fit.scale < fit.scale_ci[1]
    # likelihood-ratio intervals are asymmetric: longer on the high side for both parameters here
    assert fit.shape_ci[1] - fit.shape > fit.shape - fit.shape_ci[0]


def _brute_profile_interval(which: str, grid: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    failures, censored = np.array(FAILURES_H), np.array(CENSORED_H)

    def loglik(shape: float, scale: float) -> float:
        return float(
            stats.weibull_min.logpdf(failures, shape, scale=scale).sum()
            + stats.weibull_min.logsf(censored, shape, scale=scale).sum()
        )

    def best_over_scale(shape: float) -> float:
        return float(-optimize.minimize_scalar(lambda s: -loglik(shape, s), bounds=(5, 200), method="bounded").fun)

    def best_over_shape(scale: float) -> float:
        return float(-optimize.minimize_scalar(lambda b: -loglik(b, scale), bounds=(0.1, 20), method="bounded").fun)

    profile = [best_over_scale(x) if which == "shape" else best_over_shape(x) for x in grid]
    values = np.array(profile)
    inside = grid[values >= values.max() - stats.chi2.ppf(confidence, 1) / 2]
    return float(inside.min()), float(inside.max())


def test_intervals_agree_with_a_brute_force_profile(fit: WeibullFit) -> None:
    shape_grid = np.linspace(1.0, 4.0, 601)  # step 0.005
    scale_grid = np.linspace(18.0, 50.0, 641)  # step 0.05
    assert_allclose(fit.shape_ci, _brute_profile_interval("shape", shape_grid), atol=0.006)
    assert_allclose(fit.scale_ci, _brute_profile_interval("scale", scale_grid), atol=0.06)


def test_intervals_widen_with_fewer_data(fit: WeibullFit) -> None:
    small = fit_weibull([3.0, 5.0, 8.0, 15.0, 22.0, 23.0], [6.0, 10.0, 11.0, 20.0])
    assert small.shape_ci[1] - small.shape_ci[0] > fit.shape_ci[1] - fit.shape_ci[0]
    assert small.scale_ci[1] - small.scale_ci[0] > fit.scale_ci[1] - fit.scale_ci[0]
    assert small.shape_ci[0] < small.shape < small.shape_ci[1]


def test_intervals_narrow_with_lower_confidence(fit: WeibullFit) -> None:
    narrow = fit_weibull(FAILURES_H, CENSORED_H, confidence=0.8)
    assert fit.shape_ci[0] < narrow.shape_ci[0] < narrow.shape < narrow.shape_ci[1] < fit.shape_ci[1]
    assert fit.scale_ci[0] < narrow.scale_ci[0] < narrow.scale < narrow.scale_ci[1] < fit.scale_ci[1]


def test_recovers_parameters_from_a_large_censored_sample() -> None:
    rng = np.random.default_rng(3)
    lifetimes = 5_000.0 * rng.weibull(1.8, 3_000)
    stop = rng.uniform(0, 12_000, 3_000)  # parts removed unfailed at a random age
    result = fit_weibull(lifetimes[lifetimes <= stop], stop[lifetimes > stop])
    assert result.shape_ci[0] < 1.8 < result.shape_ci[1]
    assert result.scale_ci[0] < 5_000.0 < result.scale_ci[1]
    assert_allclose([result.shape, result.scale], [1.8, 5_000.0], rtol=0.08)


def test_heavy_censoring_may_leave_an_open_upper_bound() -> None:
    result = fit_weibull([5.0, 10.0, 12.0], [50.0] * 30)
    assert result.shape_ci[0] < result.shape < result.shape_ci[1]
    assert result.scale_ci[0] < result.scale < result.scale_ci[1]
    assert result.scale_ci[1] > 10 * result.scale  # hardly any information about the scale


def test_zero_age_censoring_is_counted_but_harmless(fit: WeibullFit) -> None:
    result = fit_weibull(FAILURES_H, [*CENSORED_H, 0.0])
    assert result.n_censored == 8
    assert_allclose([result.shape, result.scale], [fit.shape, fit.scale], rtol=1e-6)


@pytest.mark.parametrize(
    ("failures", "censored", "kwargs", "message"),
    [
        ([10.0], [5.0, 7.0], {}, "need at least 3 failures to fit a Weibull, got 1"),
        ([10.0, 12.0, 13.0], [], {"min_failures": 5}, "need at least 5 failures to fit a Weibull, got 3"),
        ([10.0, -1.0, 13.0], [], {}, "failure_times_h[1] must be a finite number of hours > 0, got -1.0"),
        ([10.0, 0.0, 13.0], [], {}, "failure_times_h[1] must be a finite number of hours > 0, got 0.0"),
        ([10.0, 11.0, 13.0], [4.0, math.inf], {}, "censored_times_h[1] must be a finite number of hours >= 0"),
        ([10.0, 11.0, math.nan], [], {}, "failure_times_h[2] must be a finite number of hours > 0, got nan"),
        ([10.0, 10.0, 10.0], [], {}, "failure_times_h must contain at least two distinct ages"),
        ([10.0, 11.0, 13.0], [], {"confidence": 1.0}, "confidence must be in (0, 1), got 1.0"),
        ([10.0, 11.0, 13.0], [], {"min_failures": 1}, "min_failures must be an integer >= 2, got 1"),
        ([[10.0, 11.0, 13.0]], [], {}, "failure_times_h must be a 1-D array of hours"),
    ],
)
def test_fit_weibull_validation(
    failures: list[float], censored: list[float], kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        fit_weibull(failures, censored, **kwargs)  # type: ignore[arg-type]


def test_reliability_functions_are_vectorised() -> None:
    ages = np.array([0.0, 5.0, 10.0, 20.0])
    survival = reliability(ages, 2.0, 10.0)
    assert isinstance(survival, np.ndarray)
    assert_allclose(survival, np.exp(-((ages / 10.0) ** 2)))
    assert isinstance(reliability(5.0, 2.0, 10.0), float)
    assert_allclose(reliability(5.0, 2.0, 10.0), math.exp(-0.25))

    conditional = conditional_reliability(ages, 8.0, 2.0, 10.0)
    assert_allclose(conditional, reliability(ages + 8.0, 2.0, 10.0) / survival)
    assert_allclose(
        conditional_reliability(3.0, np.array([1.0, 2.0]), 2.0, 10.0), np.exp(0.09 - np.array([0.16, 0.25]))
    )
    assert isinstance(conditional_reliability(3.0, 2.0, 2.0, 10.0), float)

    assert_allclose(b_life(np.array([0.1, 0.5]), 2.0, 10.0), 10.0 * (-np.log([0.9, 0.5])) ** 0.5)
    assert_allclose(reliability(b_life(0.1, 2.0, 10.0), 2.0, 10.0), 0.9)


def test_conditional_reliability_of_very_old_parts_stays_finite() -> None:
    # R(T) underflows to 0 at T = 40 eta with beta = 3, yet R(x | T) is well defined.
    value = conditional_reliability(400.0, 0.01, 3.0, 10.0)
    assert_allclose(value, math.exp(40.0**3 - 40.001**3), rtol=1e-6)


def test_wear_out_makes_old_parts_less_reliable() -> None:
    ages = np.linspace(0, 50, 11)
    conditional = conditional_reliability(ages, 10.0, 2.149, 28.99)
    assert np.all(np.diff(conditional) < 0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: reliability(-1.0, 2.0, 10.0), "t_h must be a finite number of hours >= 0, got -1.0"),
        (lambda: reliability(np.array([1.0, np.nan]), 2.0, 10.0), "t_h[1] must be a finite number of hours >= 0"),
        (lambda: reliability(1.0, 0.0, 10.0), "shape must be a finite number > 0, got 0.0"),
        (lambda: reliability(1.0, 2.0, -10.0), "scale must be a finite number of hours > 0, got -10.0"),
        (lambda: conditional_reliability([1.0, -2.0], 1.0, 2.0, 10.0), "age_h[1] must be a finite number of hours"),
        (lambda: conditional_reliability(1.0, -1.0, 2.0, 10.0), "mission_h must be a finite number of hours >= 0"),
        (lambda: b_life(1.0, 2.0, 10.0), "p must be in (0, 1), got 1.0"),
        (lambda: b_life(np.array([0.1, 0.0]), 2.0, 10.0), "p[1] must be in (0, 1), got 0.0"),
    ],
)
def test_reliability_validation(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_mtbf_mttr() -> None:
    result = mtbf_mttr(2_000.0, [4.0, 6.0])
    assert (result.mtbf_h, result.mttr_h, result.n_failures, result.n_repairs) == (1_000.0, 5.0, 2, 2)
    assert_allclose(result.availability, 1_000.0 / (1_000.0 + 5.0))

    more_failures = mtbf_mttr(2_000.0, [4.0, 6.0], n_failures=4)  # two failures fixed without a recorded duration
    assert more_failures.mtbf_h == 500.0
    assert more_failures.mttr_h == 5.0

    no_failures = mtbf_mttr(500.0, [])
    assert (no_failures.mtbf_h, no_failures.mttr_h, no_failures.availability) == (None, None, 1.0)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((0.0, [1.0]), {}, "operating_h must be a finite number of hours > 0, got 0.0"),
        ((math.inf, [1.0]), {}, "operating_h must be a finite number of hours > 0"),
        ((100.0, [1.0, -2.0]), {}, "repair_times_h[1] must be a finite number of hours >= 0, got -2.0"),
        ((100.0, [1.0]), {"n_failures": -1}, "n_failures must be an integer >= 0, got -1"),
        ((100.0, [1.0]), {"n_failures": 1.5}, "n_failures must be an integer >= 0, got 1.5"),
    ],
)
def test_mtbf_mttr_validation(args: tuple[float, list[float]], kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        mtbf_mttr(*args, **kwargs)  # type: ignore[arg-type]
