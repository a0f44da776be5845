"""Weibull reliability of parts from right-censored field data, and MTBF / MTTR of refurbished robots.

Two-parameter Weibull (location 0), as summarised in ``shared/reference/standards.md`` section 4::

    R(t)     = exp(-(t / eta)^beta)
    B_p      = eta (-ln(1 - p))^(1 / beta)        (B10: p = 0.1)
    MTTF     = eta Gamma(1 + 1 / beta)
    R(x | T) = R(T + x) / R(T)

Fitting uses maximum likelihood with right censoring through ``scipy.stats.weibull_min.fit`` on
``scipy.stats.CensoredData`` (SciPy >= 1.11); confidence intervals come from the profile likelihood
(Meeker & Escobar, *Statistical Methods for Reliability Data*, 1998, section 8.2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt
from scipy import optimize, special, stats

__all__ = [
    "RepairStats",
    "WeibullFit",
    "b_life",
    "conditional_reliability",
    "fit_weibull",
    "mtbf_mttr",
    "reliability",
]

FloatArray = npt.NDArray[np.float64]
ArrayInput = npt.NDArray[Any] | Sequence[float]

#: Largest number of interval doublings when bracketing a root; beyond it the bound is reported as open.
_MAX_DOUBLINGS = 60


@dataclass(frozen=True)
class WeibullFit:
    """A two-parameter Weibull fitted to right-censored lifetimes.

    Attributes
    ----------
    shape : float
        Shape beta (< 1 infant mortality, ~1 random, > 1 wear-out).
    scale : float
        Scale eta in hours (the age by which 63.2 % have failed).
    b10_h : float
        Age in hours by which 10 % of parts have failed.
    mttf_h : float
        Mean time to failure in hours, ``eta Gamma(1 + 1/beta)``.
    n_failures : int
        Number of observed failures.
    n_censored : int
        Number of right-censored (still running or removed unfailed) units.
    log_likelihood : float
        Log-likelihood at the fitted parameters.
    confidence : float
        Confidence level of the intervals, e.g. 0.95.
    shape_ci : tuple of float
        ``(low, high)`` profile-likelihood interval for beta; ``high`` is ``inf`` if the likelihood never falls
        far enough (too little information).
    scale_ci : tuple of float
        ``(low, high)`` profile-likelihood interval for eta in hours; ``high`` may be ``inf`` for the same reason.
    """

    shape: float
    scale: float
    b10_h: float
    mttf_h: float
    n_failures: int
    n_censored: int
    log_likelihood: float
    confidence: float
    shape_ci: tuple[float, float]
    scale_ci: tuple[float, float]


@dataclass(frozen=True)
class RepairStats:
    """Mean time between failures and mean time to repair over an observation window.

    Attributes
    ----------
    operating_h : float
        Operating (up) hours observed.
    n_failures : int
        Failures in that window.
    n_repairs : int
        Repairs whose durations were given.
    mtbf_h : float or None
        ``operating_h / n_failures``; None when no failure was observed (MTBF is then only known to exceed
        ``operating_h``).
    mttr_h : float or None
        Mean repair duration in hours; None when no repair was recorded.
    availability : float
        ``operating_h / (operating_h + total repair hours)``; equals ``MTBF / (MTBF + MTTR)`` when every failure
        has one repair.
    """

    operating_h: float
    n_failures: int
    n_repairs: int
    mtbf_h: float | None
    mttr_h: float | None
    availability: float


def _times(values: npt.ArrayLike, name: str, *, positive: bool) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of hours, got shape {array.shape}")
    bad = ~np.isfinite(array) | ((array <= 0.0) if positive else (array < 0.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        rule = "> 0" if positive else ">= 0"
        raise ValueError(f"{name}[{i}] must be a finite number of hours {rule}, got {float(array[i])!r}")
    return array


def _check_parameters(shape: float, scale: float) -> None:
    if not (isinstance(shape, int | float) and math.isfinite(shape) and shape > 0):
        raise ValueError(f"shape must be a finite number > 0, got {shape!r}")
    if not (isinstance(scale, int | float) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number of hours > 0, got {scale!r}")


def _log_likelihood(shape: float, log_scale: float, log_failures: FloatArray, log_all: FloatArray) -> float:
    """Return the censored Weibull log-likelihood; ``log_all`` holds failures and censoring times."""
    r = log_failures.size
    with np.errstate(over="ignore"):
        cumulative = float(np.exp(shape * (log_all - log_scale)).sum())
    return r * math.log(shape) - r * shape * log_scale + (shape - 1.0) * float(log_failures.sum()) - cumulative


def _profile_shape(shape: float, log_failures: FloatArray, log_all: FloatArray) -> float:
    """Return max over eta of the log-likelihood at fixed beta (eta has a closed form)."""
    r = log_failures.size
    log_scale = (float(special.logsumexp(shape * log_all)) - math.log(r)) / shape
    return r * math.log(shape) - r * shape * log_scale + (shape - 1.0) * float(log_failures.sum()) - r


def _best_shape(log_scale: float, log_failures: FloatArray, log_all: FloatArray, start: float) -> float:
    """Return the beta maximising the log-likelihood at fixed eta (root of a decreasing score)."""
    r = log_failures.size
    centred_failures = float((log_failures - log_scale).sum())
    centred = log_all - log_scale

    def score(log_shape: float) -> float:
        shape = math.exp(log_shape)
        with np.errstate(over="ignore", invalid="ignore"):
            tail = float(np.nansum(np.exp(shape * centred) * centred))
        return r / shape + centred_failures - tail

    low = high = math.log(start)
    if score(low) > 0:
        for _ in range(_MAX_DOUBLINGS):
            high = low + 1.0
            if score(high) <= 0:
                break
            low = high
        else:
            raise ValueError("the Weibull likelihood has no maximum in shape for this data")
    else:
        for _ in range(_MAX_DOUBLINGS):
            low = high - 1.0
            if score(low) > 0:
                break
            high = low
        else:
            raise ValueError("the Weibull likelihood has no maximum in shape for this data")
    return math.exp(float(optimize.brentq(score, low, high, xtol=1e-12)))


def _profile_bound(profile: Callable[[float], float], log_estimate: float, target: float, direction: float) -> float:
    """Return the parameter where ``profile`` (in log-parameter space) falls to ``target``, searching outwards."""
    step = 0.05
    inner = log_estimate
    for _ in range(_MAX_DOUBLINGS):
        outer = log_estimate + direction * step
        try:
            value = profile(outer)
        except (ValueError, OverflowError, ZeroDivisionError):
            value = -math.inf
        if not math.isfinite(value) or value < target:
            break
        inner = outer
        step *= 2.0
    else:
        return math.inf if direction > 0 else 0.0
    if not math.isfinite(value):
        # Narrow a non-finite outer point down to a finite one so brentq sees a sign change on real numbers.
        for _ in range(_MAX_DOUBLINGS):
            middle = (inner + outer) / 2.0
            try:
                middle_value = profile(middle)
            except (ValueError, OverflowError, ZeroDivisionError):
                middle_value = -math.inf
            if math.isfinite(middle_value):
                if middle_value < target:
                    outer = middle
                    break
                inner = middle
            else:
                outer = middle
        else:
            return math.exp(inner)
    root = optimize.brentq(lambda x: profile(x) - target, min(inner, outer), max(inner, outer), xtol=1e-10)
    return math.exp(float(root))


def fit_weibull(
    failure_times_h: npt.ArrayLike,
    censored_times_h: npt.ArrayLike = (),
    *,
    confidence: float = 0.95,
    min_failures: int = 3,
) -> WeibullFit:
    """Fit a two-parameter Weibull to failure ages with right censoring, with profile-likelihood intervals.

    Parameters
    ----------
    failure_times_h : array_like of float
        Ages in hours at which parts failed (each finite and > 0).
    censored_times_h : array_like of float, optional
        Ages in hours of parts still running or removed without failing (each finite and >= 0). A unit censored
        at age 0 adds nothing to the likelihood but is counted in ``n_censored``.
    confidence : float
        Confidence level of the intervals, in (0, 1).
    min_failures : int
        Refuse to fit with fewer failures than this (an integer >= 2); default 3.

    Returns
    -------
    WeibullFit
        Shape, scale, B10, MTTF, counts, log-likelihood and confidence intervals.

    Raises
    ------
    ValueError
        If a time is negative or not finite, there are fewer than ``min_failures`` failures, all failures share
        one age, or ``confidence`` / ``min_failures`` are out of range.

    Notes
    -----
    Maximum likelihood with ``scipy.stats.weibull_min.fit(CensoredData(uncensored=..., right=...), floc=0)``.
    With r failures at t_i and all units (failed or censored) at t_j, the log-likelihood is::

        l(beta, eta) = r ln beta - r beta ln eta + (beta - 1) sum_i ln t_i - sum_j (t_j / eta)^beta

    Confidence intervals are likelihood-ratio (profile-likelihood) intervals (Meeker & Escobar 1998, 8.2): the
    set of values theta with ``2 (l_hat - l_p(theta)) <= chi2.ppf(confidence, 1)``, where ``l_p`` maximises the
    likelihood over the other parameter. For fixed beta the best eta is closed-form,
    ``eta = (sum_j t_j^beta / r)^(1/beta)``; for fixed eta the best beta is the root of the (decreasing) score
    found with ``scipy.optimize.brentq``. Each bound is bracketed by stepping outwards in log-parameter space and
    solved with ``brentq``. Unlike Wald intervals they are asymmetric and stay positive, which suits the small,
    heavily censored samples of a remanufacturing center. An upper bound is ``inf`` when the likelihood never
    falls far enough, which happens with very few failures among many censored units.

    B10 = ``eta (-ln 0.9)^(1/beta)`` and MTTF = ``eta Gamma(1 + 1/beta)`` (standards.md section 4).

    Examples
    --------
    The lecture data set used by SciPy's own tests (censored ages in the second list):

    >>> fit = fit_weibull([3, 5, 8, 15, 22, 23, 29, 32, 35, 40, 26, 28, 21], [6, 10, 11, 20, 27, 33, 24])
    >>> round(fit.shape, 2), round(fit.scale, 1), fit.n_failures, fit.n_censored
    (2.15, 29.0, 13, 7)
    >>> fit.shape_ci[0] < fit.shape < fit.shape_ci[1]
    True
    """
    if not (isinstance(confidence, int | float) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if isinstance(min_failures, bool) or not isinstance(min_failures, int) or min_failures < 2:
        raise ValueError(f"min_failures must be an integer >= 2, got {min_failures!r}")
    failures = _times(failure_times_h, "failure_times_h", positive=True)
    censored = _times(censored_times_h, "censored_times_h", positive=False)
    if failures.size < min_failures:
        raise ValueError(f"need at least {min_failures} failures to fit a Weibull, got {failures.size}")
    if np.unique(failures).size < 2:
        raise ValueError("failure_times_h must contain at least two distinct ages to fit a Weibull shape")

    running = censored[censored > 0.0]  # zero-age censoring contributes exp(0) = 1 to the likelihood
    data = stats.CensoredData(uncensored=failures, right=running)
    shape_raw, _, scale_raw = stats.weibull_min.fit(data, floc=0)
    shape, scale = float(shape_raw), float(scale_raw)

    log_failures = np.log(failures)
    log_all = np.log(np.concatenate([failures, running]))
    log_likelihood = _log_likelihood(shape, math.log(scale), log_failures, log_all)
    # SciPy's optimiser stops within its tolerance of the optimum; the profile is never below the true maximum.
    best = max(log_likelihood, _profile_shape(shape, log_failures, log_all))
    target = best - float(stats.chi2.ppf(confidence, 1)) / 2.0

    def shape_profile(log_shape: float) -> float:
        return _profile_shape(math.exp(log_shape), log_failures, log_all)

    def scale_profile(log_scale: float) -> float:
        best_shape = _best_shape(log_scale, log_failures, log_all, shape)
        return _log_likelihood(best_shape, log_scale, log_failures, log_all)

    shape_ci = (
        _profile_bound(shape_profile, math.log(shape), target, -1.0),
        _profile_bound(shape_profile, math.log(shape), target, 1.0),
    )
    scale_ci = (
        _profile_bound(scale_profile, math.log(scale), target, -1.0),
        _profile_bound(scale_profile, math.log(scale), target, 1.0),
    )
    return WeibullFit(
        shape=shape,
        scale=scale,
        b10_h=scale * (-math.log(0.9)) ** (1.0 / shape),
        mttf_h=scale * math.gamma(1.0 + 1.0 / shape),
        n_failures=int(failures.size),
        n_censored=int(censored.size),
        log_likelihood=log_likelihood,
        confidence=float(confidence),
        shape_ci=shape_ci,
        scale_ci=scale_ci,
    )


def _ages(values: float | ArrayInput, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    bad = ~(np.isfinite(array) & (array >= 0.0))
    if bad.any():
        where = f"{name}[{int(np.flatnonzero(bad.ravel())[0])}]" if array.ndim else name
        first = float(array.ravel()[bad.ravel()][0])
        raise ValueError(f"{where} must be a finite number of hours >= 0, got {first!r}")
    return array


def _out(array: FloatArray, scalar: bool) -> float | FloatArray:
    return float(array) if scalar else array


@overload
def reliability(t_h: float, shape: float, scale: float) -> float: ...
@overload
def reliability(t_h: ArrayInput, shape: float, scale: float) -> FloatArray: ...
def reliability(t_h: float | ArrayInput, shape: float, scale: float) -> float | FloatArray:
    """Compute the Weibull survival probability R(t) at one or many ages.

    Parameters
    ----------
    t_h : float or array_like of float
        Age(s) in hours, each finite and >= 0.
    shape : float
        Weibull shape beta (> 0).
    scale : float
        Weibull scale eta in hours (> 0).

    Returns
    -------
    float or ndarray
        ``R(t) = exp(-(t / eta)^beta)``; a float for a scalar age, else an array of the same shape.

    Raises
    ------
    ValueError
        If an age is negative or not finite, or shape / scale is not a finite positive number.

    Notes
    -----
    Two-parameter Weibull survival function (standards.md section 4).

    Examples
    --------
    >>> round(reliability(28.99, 2.149, 28.99), 6)  # at t = eta, R = exp(-1)
    0.367879
    >>> np.round(reliability(np.array([0.0, 10.0]), 2.0, 10.0), 6).tolist()
    [1.0, 0.367879]
    """
    _check_parameters(shape, scale)
    ages = _ages(t_h, "t_h")
    return _out(np.exp(-((ages / scale) ** shape)), ages.ndim == 0)


@overload
def conditional_reliability(age_h: float, mission_h: float, shape: float, scale: float) -> float: ...
@overload
def conditional_reliability(
    age_h: ArrayInput, mission_h: float | ArrayInput, shape: float, scale: float
) -> FloatArray: ...
@overload
def conditional_reliability(age_h: float, mission_h: ArrayInput, shape: float, scale: float) -> FloatArray: ...
def conditional_reliability(
    age_h: float | ArrayInput, mission_h: float | ArrayInput, shape: float, scale: float
) -> float | FloatArray:
    """Compute the probability that a part of age T survives a further mission of x hours.

    Parameters
    ----------
    age_h : float or array_like of float
        Age(s) T already run, in hours (>= 0).
    mission_h : float or array_like of float
        Further operating time x, in hours (>= 0), e.g. the warranty period in operating hours. Broadcast
        against ``age_h``.
    shape : float
        Weibull shape beta (> 0).
    scale : float
        Weibull scale eta in hours (> 0).

    Returns
    -------
    float or ndarray
        ``R(x | T) = R(T + x) / R(T) = exp((T / eta)^beta - ((T + x) / eta)^beta)``.

    Raises
    ------
    ValueError
        If an age or mission is negative or not finite, or shape / scale is not a finite positive number.

    Notes
    -----
    Conditional reliability of the two-parameter Weibull (standards.md section 4), computed in log space so that
    old parts (R(T) underflowing to 0) still get a finite answer.

    Examples
    --------
    >>> round(conditional_reliability(20.0, 10.0, 2.14937895, 28.99635357), 4)
    0.5348
    >>> np.round(conditional_reliability(np.array([0.0, 20.0]), 10.0, 1.0, 10.0), 6).tolist()  # memoryless
    [0.367879, 0.367879]
    """
    _check_parameters(shape, scale)
    ages = _ages(age_h, "age_h")
    missions = _ages(mission_h, "mission_h")
    log_survival = (ages / scale) ** shape - ((ages + missions) / scale) ** shape
    return _out(np.exp(log_survival), ages.ndim == 0 and missions.ndim == 0)


@overload
def b_life(p: float, shape: float, scale: float) -> float: ...
@overload
def b_life(p: ArrayInput, shape: float, scale: float) -> FloatArray: ...
def b_life(p: float | ArrayInput, shape: float, scale: float) -> float | FloatArray:
    """Compute the B_p life: the age by which a fraction p of parts has failed.

    Parameters
    ----------
    p : float or array_like of float
        Fraction failed, each in (0, 1); 0.1 gives B10.
    shape : float
        Weibull shape beta (> 0).
    scale : float
        Weibull scale eta in hours (> 0).

    Returns
    -------
    float or ndarray
        ``B_p = eta (-ln(1 - p))^(1 / beta)`` in hours.

    Raises
    ------
    ValueError
        If p is outside (0, 1) or shape / scale is not a finite positive number.

    Notes
    -----
    Weibull quantile (standards.md section 4: ``B10 = eta (-ln 0.9)^(1/beta)``).

    Examples
    --------
    >>> round(b_life(0.1, 2.14937895, 28.99635357), 3)
    10.178
    >>> np.round(b_life(np.array([0.1, 0.5]), 1.0, 100.0), 4).tolist()
    [10.5361, 69.3147]
    """
    _check_parameters(shape, scale)
    fractions = np.asarray(p, dtype=np.float64)
    bad = ~((fractions > 0.0) & (fractions < 1.0))
    if bad.any():
        where = f"p[{int(np.flatnonzero(bad.ravel())[0])}]" if fractions.ndim else "p"
        first = float(fractions.ravel()[bad.ravel()][0])
        raise ValueError(f"{where} must be in (0, 1), got {first!r}")
    return _out(scale * (-np.log1p(-fractions)) ** (1.0 / shape), fractions.ndim == 0)


def mtbf_mttr(operating_h: float, repair_times_h: npt.ArrayLike, *, n_failures: int | None = None) -> RepairStats:
    """Compute MTBF, MTTR and availability of a (refurbished) robot over an observation window.

    Parameters
    ----------
    operating_h : float
        Operating (up) hours in the window, finite and > 0 (downtime excluded).
    repair_times_h : array_like of float
        Duration in hours of each repair (each finite and >= 0); may be empty.
    n_failures : int, optional
        Failures in the window (>= 0); defaults to the number of repairs.

    Returns
    -------
    RepairStats
        ``mtbf_h`` (None without failures), ``mttr_h`` (None without repairs) and ``availability``.

    Raises
    ------
    ValueError
        If ``operating_h`` is not a finite positive number, a repair time is negative or not finite, or
        ``n_failures`` is not a non-negative integer.

    Notes
    -----
    Definitions as in IEC 60050-192 (dependability vocabulary) for a repairable item observed over a window::

        MTBF = operating hours / number of failures
        MTTR = sum(repair durations) / number of repairs
        A    = operating hours / (operating hours + sum(repair durations))

    With one repair per failure, A equals the inherent availability ``MTBF / (MTBF + MTTR)``.

    Examples
    --------
    >>> stats_ = mtbf_mttr(2000.0, [4.0, 6.0])
    >>> stats_.mtbf_h, stats_.mttr_h, round(stats_.availability, 6)
    (1000.0, 5.0, 0.995025)
    """
    if not (isinstance(operating_h, int | float) and math.isfinite(operating_h) and operating_h > 0):
        raise ValueError(f"operating_h must be a finite number of hours > 0, got {operating_h!r}")
    repairs = _times(repair_times_h, "repair_times_h", positive=False)
    if n_failures is None:
        failures = int(repairs.size)
    elif isinstance(n_failures, bool) or not isinstance(n_failures, int | np.integer) or n_failures < 0:
        raise ValueError(f"n_failures must be an integer >= 0, got {n_failures!r}")
    else:
        failures = int(n_failures)
    repair_total = float(repairs.sum())
    return RepairStats(
        operating_h=float(operating_h),
        n_failures=failures,
        n_repairs=int(repairs.size),
        mtbf_h=float(operating_h) / failures if failures else None,
        mttr_h=repair_total / repairs.size if repairs.size else None,
        availability=float(operating_h) / (float(operating_h) + repair_total),
    )
