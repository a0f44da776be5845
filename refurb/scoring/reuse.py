"""Explainable reuse score of a used robot part, and the disposition it recommends.

The score is a weighted sum of five factor subscores in [0, 1], scaled to 0..100::

    score = 100 * sum_k w_k s_k        (sum_k w_k = 1)

Each factor reports its raw inputs, subscore, weight and contribution ``100 w_k s_k`` (the contributions add up to
the score before caps), so an operator can see why a part got its recommendation. Thresholds map the score to a
:class:`Disposition`; a reviewer's verdict and hard evidence (scrap grade, failed test, vibration zone D) then cap
or override it. There is no external standard for this score: the factors follow refurbishment practice
(``shared/reference/standards.md`` section 7: audit, inspection, functional run-in, certification with a warranty)
and ISO 10816 vibration zones (section 3); the weights and subscore tables below are house policy, documented so
they can be reviewed and tuned.

Subscores
---------
grade
    Inspection grade A 1.0, B 0.7, C 0.4, scrap 0.0; minus 0.1 per inspection finding, floored at 0.
test
    Functional test: failed 0.0; passed with margin m (fraction of the worst distance to the limits, 0 at a
    limit, 1 at nominal) ``0.5 + 0.5 m``; passed without a recorded margin 0.75; a margin without a pass flag counts
    as passed (a margin inside the limits is a pass). Vibration (ISO 10816 zones): A 1.0, B 0.75, C 0.35, D 0.0.
    With both, the worst one counts (the weakest evidence governs).
reliability
    Probability of surviving the warranty period, e.g. from
    :func:`refurb.scoring.reliability.conditional_reliability` at the part's age.
generation
    ``1 - reman_generation / max_generations``, floored at 0: every remanufacturing cycle uses up fatigue life.
economics
    ``1 - reman_cost / new_price``, floored at 0: remanufacturing that costs as much as a new part is worthless.

Missing data (grade, test and vibration, survival probability, cost or price unknown) takes the neutral subscore
0.5, and the factor's ``explanation`` says so: unknown is neither evidence for nor against reuse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DEFAULT_WEIGHTS",
    "FACTOR_NAMES",
    "Disposition",
    "Factor",
    "FactorName",
    "Grade",
    "ReuseInputs",
    "ReuseScore",
    "ReuseScores",
    "ReuseThresholds",
    "ReuseWeights",
    "Verdict",
    "VibrationZone",
    "score_part",
    "score_parts",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]


class Disposition(StrEnum):
    """Where a used part goes, best first."""

    REUSE = "reuse"
    REMANUFACTURE = "remanufacture"
    RECYCLE = "recycle"
    SCRAP = "scrap"


class Grade(StrEnum):
    """Inspection grade of a part."""

    A = "A"
    B = "B"
    C = "C"
    SCRAP = "scrap"


class VibrationZone(StrEnum):
    """ISO 10816 / 20816 vibration severity zone (A new .. D damage likely)."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"


class Verdict(StrEnum):
    """A reviewer's decision on a part, which overrides the computed recommendation."""

    APPROVE_REUSE = "approve_reuse"
    REQUIRE_REMANUFACTURE = "require_remanufacture"
    REQUIRE_REPLACEMENT = "require_replacement"
    RECYCLE = "recycle"
    SCRAP = "scrap"
    QUARANTINE = "quarantine"
    RELEASE = "release"


class FactorName(StrEnum):
    """The five factors of the reuse score, in the order they are reported."""

    GRADE = "grade"
    TEST = "test"
    RELIABILITY = "reliability"
    GENERATION = "generation"
    ECONOMICS = "economics"


FACTOR_NAMES: tuple[FactorName, ...] = tuple(FactorName)

#: Subscore used when a factor's data is missing: unknown is neither evidence for nor against reuse.
NEUTRAL_SUBSCORE = 0.5
#: Grade subscores: A as new, B light wear, C usable after remediation, scrap unusable.
GRADE_SUBSCORES: Mapping[str, float] = MappingProxyType({"A": 1.0, "B": 0.7, "C": 0.4, "scrap": 0.0})
#: Subtracted from the grade subscore per inspection finding (ten findings empty the factor).
FINDING_PENALTY = 0.1
#: ISO 10816 zones: A newly commissioned, B unrestricted long-term, C restricted short-term, D damage likely.
VIBRATION_SUBSCORES: Mapping[str, float] = MappingProxyType({"A": 1.0, "B": 0.75, "C": 0.35, "D": 0.0})
#: Functional test passed but no margin recorded: better than unknown, worse than a pass at nominal.
PASSED_WITHOUT_MARGIN_SUBSCORE = 0.75
#: Highest score of a quarantined part (below any reuse or remanufacture threshold with the defaults).
QUARANTINE_CAP = 25.0
#: Highest score of a part a reviewer sent to recycling.
RECYCLE_CAP = 40.0

_RANK: Mapping[Disposition, int] = MappingProxyType(
    {Disposition.SCRAP: 0, Disposition.RECYCLE: 1, Disposition.REMANUFACTURE: 2, Disposition.REUSE: 3}
)
_BY_RANK: tuple[Disposition, ...] = (
    Disposition.SCRAP,
    Disposition.RECYCLE,
    Disposition.REMANUFACTURE,
    Disposition.REUSE,
)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


def _is_integer(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


@dataclass(frozen=True)
class ReuseWeights:
    """Weights of the five factors; each >= 0, summing to 1.

    Defaults: ``grade`` 0.25 and ``test`` 0.25 are direct observations of this very part, so together they make
    half the score; ``reliability`` 0.20 is a fleet-model estimate (Weibull) rather than an observation;
    ``economics`` 0.20 decides whether remanufacturing is worth doing at all; ``generation`` 0.10 is a weaker proxy
    for accumulated fatigue that the other factors partly already see.
    """

    grade: float = 0.25
    test: float = 0.25
    reliability: float = 0.20
    generation: float = 0.10
    economics: float = 0.20

    def __post_init__(self) -> None:
        for name in FACTOR_NAMES:
            value = getattr(self, name)
            if not (_is_number(value) and math.isfinite(value) and value >= 0):
                raise ValueError(f"weights.{name} must be a finite number >= 0, got {value!r}")
        total = math.fsum(self.as_tuple())
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"weights must sum to 1, got {total!r}")

    def as_tuple(self) -> tuple[float, float, float, float, float]:
        """Return the weights in :data:`FACTOR_NAMES` order."""
        return (self.grade, self.test, self.reliability, self.generation, self.economics)


@dataclass(frozen=True)
class ReuseThresholds:
    """Lowest score (0..100) for each disposition; below ``recycle`` a part is scrapped.

    Defaults split the scale into quarters: reuse >= 75, remanufacture >= 50, recycle >= 25, else scrap. With the
    default weights a grade-B part that passed its test with some margin, has a 90 % chance of surviving the
    warranty and is cheap to refurbish lands just above 75; a part with no data at all scores 55 and goes to
    remanufacture, where it will be inspected.
    """

    reuse: float = 75.0
    remanufacture: float = 50.0
    recycle: float = 25.0

    def __post_init__(self) -> None:
        for name in ("reuse", "remanufacture", "recycle"):
            value = getattr(self, name)
            if not (_is_number(value) and math.isfinite(value)):
                raise ValueError(f"thresholds.{name} must be a finite number, got {value!r}")
        if not 0.0 < self.recycle < self.remanufacture < self.reuse <= 100.0:
            raise ValueError(
                "thresholds must satisfy 0 < recycle < remanufacture < reuse <= 100, got "
                f"recycle={self.recycle!r}, remanufacture={self.remanufacture!r}, reuse={self.reuse!r}"
            )

    def classify(self, score: float) -> Disposition:
        """Return the disposition a score reaches."""
        if score >= self.reuse:
            return Disposition.REUSE
        if score >= self.remanufacture:
            return Disposition.REMANUFACTURE
        if score >= self.recycle:
            return Disposition.RECYCLE
        return Disposition.SCRAP


DEFAULT_WEIGHTS = ReuseWeights()
DEFAULT_THRESHOLDS = ReuseThresholds()


@dataclass(frozen=True)
class ReuseInputs:
    """Everything known about one part that bears on its reuse.

    Attributes
    ----------
    grade : str or None
        Inspection grade ``'A'``, ``'B'``, ``'C'`` or ``'scrap'`` (see :class:`Grade`); None if not inspected.
    finding_count : int
        Number of inspection findings (>= 0).
    test_margin : float or None
        Worst margin to the test limits as a fraction in [0, 1] (0 at a limit, 1 at nominal); None if untested.
    test_passed : bool or None
        Functional test result; None if untested.
    vibration_zone : str or None
        ISO 10816 zone ``'A'`` .. ``'D'`` (see :class:`VibrationZone`); None if not measured.
    survival_probability : float or None
        Probability in [0, 1] of surviving the warranty period; None if no reliability model applies.
    reman_generation : int
        Times the part has already been remanufactured (>= 0).
    max_generations : int
        Remanufacturing cycles the part family allows (>= 1); default 3, set it per part family.
    reman_cost : float or None
        Cost to remanufacture (>= 0), in the same currency as ``new_price``; None if not quoted.
    new_price : float or None
        Price of a new part (> 0); None if unknown.
    verdict : str or None
        Reviewer's verdict (see :class:`Verdict`); None if not reviewed.
    """

    grade: str | None = None
    finding_count: int = 0
    test_margin: float | None = None
    test_passed: bool | None = None
    vibration_zone: str | None = None
    survival_probability: float | None = None
    reman_generation: int = 0
    max_generations: int = 3
    reman_cost: float | None = None
    new_price: float | None = None
    verdict: str | None = None

    def __post_init__(self) -> None:
        for name, allowed in (
            ("grade", tuple(Grade)),
            ("vibration_zone", tuple(VibrationZone)),
            ("verdict", tuple(Verdict)),
        ):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and value in allowed):
                raise ValueError(f"{name} must be one of {[str(a) for a in allowed]} or None, got {value!r}")
        if not (_is_integer(self.finding_count) and self.finding_count >= 0):
            raise ValueError(f"finding_count must be an integer >= 0, got {self.finding_count!r}")
        for name in ("test_margin", "survival_probability"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be in [0, 1] or None, got {value!r}")
        if self.test_passed is not None and not isinstance(self.test_passed, bool | np.bool_):
            raise ValueError(f"test_passed must be True, False or None, got {self.test_passed!r}")
        if not (_is_integer(self.reman_generation) and self.reman_generation >= 0):
            raise ValueError(f"reman_generation must be an integer >= 0, got {self.reman_generation!r}")
        if not (_is_integer(self.max_generations) and self.max_generations >= 1):
            raise ValueError(f"max_generations must be an integer >= 1, got {self.max_generations!r}")
        if self.reman_cost is not None and not (
            _is_number(self.reman_cost) and math.isfinite(self.reman_cost) and self.reman_cost >= 0
        ):
            raise ValueError(f"reman_cost must be a finite number >= 0 or None, got {self.reman_cost!r}")
        if self.new_price is not None and not (
            _is_number(self.new_price) and math.isfinite(self.new_price) and self.new_price > 0
        ):
            raise ValueError(f"new_price must be a finite number > 0 or None, got {self.new_price!r}")


@dataclass(frozen=True)
class Factor:
    """One factor of a reuse score, with enough detail to explain it.

    Attributes
    ----------
    name : FactorName
        Which factor.
    value : str
        The raw inputs the factor used, as shown to an operator (e.g. ``"grade=B, findings=2"``).
    subscore : float
        Subscore in [0, 1].
    weight : float
        The factor's weight.
    contribution : float
        Points added to the score, ``100 * weight * subscore``.
    missing : bool
        True when data was missing and the neutral subscore 0.5 was used.
    explanation : str
        How the subscore was reached, in words.
    """

    name: FactorName
    value: str
    subscore: float
    weight: float
    contribution: float
    missing: bool
    explanation: str


@dataclass(frozen=True)
class ReuseScore:
    """The reuse score of one part and the disposition it recommends.

    Attributes
    ----------
    score : float
        Final score 0..100, after caps.
    raw_score : float
        Sum of the factor contributions, before caps.
    recommendation : Disposition
        Recommended disposition after the threshold, evidence and verdict rules.
    capped : bool
        True when a rule lowered the score or the recommendation below what the thresholds gave.
    hold : bool
        True when the part is quarantined: do not act on the recommendation until the hold is lifted.
    factors : tuple of Factor
        The five factors in :data:`FACTOR_NAMES` order.
    reasons : tuple of str
        The rules that changed the outcome, in words; empty when the thresholds alone decided.
    """

    score: float
    raw_score: float
    recommendation: Disposition
    capped: bool
    hold: bool
    factors: tuple[Factor, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class ReuseScores:
    """Reuse scores of many parts from :func:`score_parts`; arrays have one row per part.

    Attributes
    ----------
    score : ndarray of float, shape (n,)
        Final scores 0..100.
    raw_score : ndarray of float, shape (n,)
        Scores before caps (row sums of ``contributions``).
    recommendation : ndarray of str, shape (n,)
        :class:`Disposition` values (``'reuse'``, ``'remanufacture'``, ``'recycle'``, ``'scrap'``).
    capped : ndarray of bool, shape (n,)
        As :attr:`ReuseScore.capped`.
    hold : ndarray of bool, shape (n,)
        As :attr:`ReuseScore.hold`.
    subscores : ndarray of float, shape (n, 5)
        Subscores, columns in :data:`FACTOR_NAMES` order.
    contributions : ndarray of float, shape (n, 5)
        Contributions ``100 * weight * subscore``, columns in :data:`FACTOR_NAMES` order.
    """

    score: FloatArray
    raw_score: FloatArray
    recommendation: npt.NDArray[np.str_]
    capped: BoolArray
    hold: BoolArray
    subscores: FloatArray
    contributions: FloatArray


def _grade_factor(inputs: ReuseInputs) -> tuple[float, bool, str, str]:
    value = f"grade={inputs.grade}, findings={inputs.finding_count}"
    if inputs.grade is None:
        base, missing = NEUTRAL_SUBSCORE, True
        explanation = f"grade not recorded: neutral {NEUTRAL_SUBSCORE}"
    else:
        base, missing = GRADE_SUBSCORES[inputs.grade], False
        explanation = f"grade {inputs.grade}: {base}"
    subscore = max(0.0, base - FINDING_PENALTY * inputs.finding_count)
    if inputs.finding_count:
        explanation += f", minus {FINDING_PENALTY} for each of {inputs.finding_count} findings (floor 0)"
    return subscore, missing, value, explanation


def _test_factor(inputs: ReuseInputs) -> tuple[float, bool, str, str]:
    value = f"passed={inputs.test_passed}, margin={inputs.test_margin}, vibration_zone={inputs.vibration_zone}"
    parts: list[str] = []
    functional: float | None
    if inputs.test_passed is not None and not inputs.test_passed:
        functional = 0.0
        parts.append("functional test failed: 0.0")
    elif inputs.test_margin is not None:
        functional = 0.5 + 0.5 * inputs.test_margin
        word = "passed" if inputs.test_passed else "within limits (counts as passed)"
        parts.append(f"functional test {word} with margin {inputs.test_margin}: 0.5 + 0.5 x margin = {functional}")
    elif inputs.test_passed:
        functional = PASSED_WITHOUT_MARGIN_SUBSCORE
        parts.append(f"functional test passed, margin not recorded: {functional}")
    else:
        functional = None
    vibration = None if inputs.vibration_zone is None else VIBRATION_SUBSCORES[inputs.vibration_zone]
    if vibration is not None:
        parts.append(f"vibration zone {inputs.vibration_zone}: {vibration}")
    if functional is None and vibration is None:
        return NEUTRAL_SUBSCORE, True, value, f"not tested and vibration not measured: neutral {NEUTRAL_SUBSCORE}"
    if functional is not None and vibration is not None:
        return min(functional, vibration), False, value, "; ".join(parts) + "; the worst evidence counts"
    known = functional if functional is not None else vibration
    assert known is not None
    return known, False, value, "; ".join(parts)


def _reliability_factor(inputs: ReuseInputs) -> tuple[float, bool, str, str]:
    p = inputs.survival_probability
    if p is None:
        return NEUTRAL_SUBSCORE, True, "None", f"no survival estimate: neutral {NEUTRAL_SUBSCORE}"
    return float(p), False, f"{p}", f"probability of surviving the warranty period: {p}"


def _generation_factor(inputs: ReuseInputs) -> tuple[float, bool, str, str]:
    generation, limit = inputs.reman_generation, inputs.max_generations
    subscore = max(0.0, 1.0 - generation / limit)
    explanation = f"remanufactured {generation} of {limit} allowed times: 1 - {generation}/{limit}"
    if generation >= limit:
        explanation += " (at or past the limit: 0)"
    return subscore, False, f"{generation}/{limit}", explanation


def _economics_factor(inputs: ReuseInputs) -> tuple[float, bool, str, str]:
    cost, price = inputs.reman_cost, inputs.new_price
    value = f"reman_cost={cost}, new_price={price}"
    if cost is None or price is None:
        return NEUTRAL_SUBSCORE, True, value, f"remanufacturing cost or new price unknown: neutral {NEUTRAL_SUBSCORE}"
    ratio = cost / price
    subscore = max(0.0, 1.0 - ratio)
    return subscore, False, value, f"remanufacturing costs {ratio:.0%} of a new part: 1 - {ratio:.3g} (floor 0)"


def score_part(
    inputs: ReuseInputs,
    weights: ReuseWeights = DEFAULT_WEIGHTS,
    thresholds: ReuseThresholds = DEFAULT_THRESHOLDS,
) -> ReuseScore:
    """Score one part for reuse and recommend a disposition, with an explanation per factor.

    Parameters
    ----------
    inputs : ReuseInputs
        What is known about the part (validated when it is built).
    weights : ReuseWeights
        Factor weights; defaults documented on :class:`ReuseWeights`.
    thresholds : ReuseThresholds
        Score thresholds; defaults documented on :class:`ReuseThresholds`.

    Returns
    -------
    ReuseScore
        Score, recommendation, cap and hold flags, the five factors and the reasons for any override.

    Raises
    ------
    ValueError
        If ``inputs``, ``weights`` or ``thresholds`` is not of its expected type.

    Notes
    -----
    ``raw_score = sum_k 100 w_k s_k`` over the factors in :data:`FACTOR_NAMES` order (subscores in the module
    docstring); the thresholds map it to a disposition. Then the first matching rule applies:

    1. verdict ``scrap``: score 0, scrap.
    2. grade ``scrap``: score 0, scrap (recycle if the verdict is ``recycle``: scrap-grade material can still be
       recycled); a ``quarantine`` verdict still sets the hold.
    3. verdict ``quarantine``: hold; score capped at 25; the disposition follows the capped score but is never
       reuse (remanufacture at best) — a held part must not be reused until a reviewer releases it.
    4. verdict ``recycle``: score capped at 40, recycle.
    5. verdict ``approve_reuse``: reuse (the reviewer's approval overrides the evidence rule below).
    6. verdict ``require_remanufacture`` or ``require_replacement`` (the robot gets another part; the removed one may
       still be remanufactured), or a failed functional test, or vibration zone D (damage likely, ISO 10816):
       remanufacture at best.

    ``release`` and no verdict change nothing. House policy, not an external standard.

    Examples
    --------
    >>> part = ReuseInputs(grade="B", test_passed=True, test_margin=0.6, vibration_zone="B",
    ...                    survival_probability=0.9, reman_cost=300.0, new_price=1000.0)
    >>> result = score_part(part)
    >>> round(result.score, 2), str(result.recommendation), result.capped
    (78.25, 'reuse', False)
    >>> [(str(f.name), round(f.contribution, 2)) for f in result.factors]
    [('grade', 17.5), ('test', 18.75), ('reliability', 18.0), ('generation', 10.0), ('economics', 14.0)]
    >>> held = score_part(ReuseInputs(grade="A", verdict="quarantine"))
    >>> held.score, str(held.recommendation), held.hold
    (25.0, 'recycle', True)
    """
    if not isinstance(inputs, ReuseInputs):
        raise ValueError(f"inputs must be a ReuseInputs, got {type(inputs).__name__}")
    if not isinstance(weights, ReuseWeights):
        raise ValueError(f"weights must be a ReuseWeights, got {type(weights).__name__}")
    if not isinstance(thresholds, ReuseThresholds):
        raise ValueError(f"thresholds must be a ReuseThresholds, got {type(thresholds).__name__}")

    factors: list[Factor] = []
    raw = 0.0
    for name, weight, compute in zip(
        FACTOR_NAMES,
        weights.as_tuple(),
        (_grade_factor, _test_factor, _reliability_factor, _generation_factor, _economics_factor),
        strict=True,
    ):
        subscore, missing, value, explanation = compute(inputs)
        contribution = 100.0 * weight * subscore
        raw += contribution
        factors.append(Factor(name, value, subscore, weight, contribution, missing, explanation))

    from_thresholds = thresholds.classify(raw)
    score, recommendation, hold = raw, from_thresholds, False
    reasons: list[str] = []
    verdict = inputs.verdict
    if verdict == Verdict.SCRAP:
        score, recommendation = 0.0, Disposition.SCRAP
        reasons.append("verdict scrap: score 0, scrap")
    elif inputs.grade == Grade.SCRAP:
        score = 0.0
        hold = verdict == Verdict.QUARANTINE
        if verdict == Verdict.RECYCLE:
            recommendation = Disposition.RECYCLE
            reasons.append("grade scrap: score 0; verdict recycle: recycle the material")
        else:
            recommendation = Disposition.SCRAP
            reasons.append("grade scrap: score 0, scrap")
        if hold:
            reasons.append("verdict quarantine: on hold")
    elif verdict == Verdict.QUARANTINE:
        hold = True
        score = min(raw, QUARANTINE_CAP)
        recommendation = thresholds.classify(score)
        if recommendation == Disposition.REUSE:
            recommendation = Disposition.REMANUFACTURE
        reasons.append(f"verdict quarantine: on hold, score capped at {QUARANTINE_CAP:g}, never reuse")
    elif verdict == Verdict.RECYCLE:
        score, recommendation = min(raw, RECYCLE_CAP), Disposition.RECYCLE
        reasons.append(f"verdict recycle: score capped at {RECYCLE_CAP:g}, recycle")
    elif verdict == Verdict.APPROVE_REUSE:
        recommendation = Disposition.REUSE
        if from_thresholds != Disposition.REUSE:
            reasons.append("verdict approve_reuse: reuse")
    else:
        why = []
        if verdict in (Verdict.REQUIRE_REMANUFACTURE, Verdict.REQUIRE_REPLACEMENT):
            why.append(f"verdict {verdict}")
        if inputs.test_passed is not None and not inputs.test_passed:
            why.append("functional test failed")
        if inputs.vibration_zone == VibrationZone.D:
            why.append("vibration zone D")
        if why and recommendation == Disposition.REUSE:
            recommendation = Disposition.REMANUFACTURE
            reasons.append(", ".join(why) + ": remanufacture at best")
    capped = score < raw or _RANK[recommendation] < _RANK[from_thresholds]
    return ReuseScore(
        score=score,
        raw_score=raw,
        recommendation=recommendation,
        capped=capped,
        hold=hold,
        factors=tuple(factors),
        reasons=tuple(reasons),
    )


def _rows(value: npt.ArrayLike | None, name: str, n: int, dtype: Any) -> npt.NDArray[Any]:
    array = np.asarray(value, dtype=dtype)
    if array.ndim == 0:
        return np.full(n, array.item(), dtype=dtype)
    if array.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {array.shape}")
    return array


def _raise_first(bad: BoolArray, values: npt.NDArray[Any], name: str, rule: str) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        value = values[i].item() if isinstance(values[i], np.generic) else values[i]
        raise ValueError(f"{name}[{i}] must be {rule}, got {value!r}")


def _categorical(value: object, name: str, allowed: tuple[str, ...], n: int) -> IntArray:
    """Return codes (index into ``allowed``, -1 for None) of a column of labels."""
    labels = _rows(np.asarray(value, dtype=object), name, n, object)
    codes = np.full(n, -1, dtype=np.intp)
    for code, label in enumerate(allowed):
        codes[(labels == label).astype(bool)] = code
    missing = np.equal(labels, np.array(None, dtype=object)).astype(bool)
    _raise_first((codes < 0) & ~missing, labels, name, f"one of {[str(label) for label in allowed]} or None")
    return codes


def _fractions(value: npt.ArrayLike | None, name: str, n: int) -> FloatArray:
    """Return a float column where None / NaN mean missing and known values lie in [0, 1]."""
    array = _rows(value, name, n, np.float64)
    _raise_first(~np.isnan(array) & ~((array >= 0.0) & (array <= 1.0)), array, name, "in [0, 1], None or NaN")
    return array


def _integers(value: npt.ArrayLike, name: str, n: int, minimum: int) -> IntArray:
    raw = np.asarray(value)
    if raw.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {raw.dtype}")
    array = _rows(raw, name, n, np.intp)
    _raise_first(array < minimum, array, name, f"an integer >= {minimum}")
    return array


def score_parts(
    *,
    grade: object = None,
    finding_count: npt.ArrayLike = 0,
    test_margin: npt.ArrayLike | None = None,
    test_passed: npt.ArrayLike | None = None,
    vibration_zone: object = None,
    survival_probability: npt.ArrayLike | None = None,
    reman_generation: npt.ArrayLike = 0,
    max_generations: npt.ArrayLike = 3,
    reman_cost: npt.ArrayLike | None = None,
    new_price: npt.ArrayLike | None = None,
    verdict: object = None,
    weights: ReuseWeights = DEFAULT_WEIGHTS,
    thresholds: ReuseThresholds = DEFAULT_THRESHOLDS,
) -> ReuseScores:
    """Score many parts for reuse at once; the same rules as :func:`score_part`, vectorised with numpy.

    Parameters
    ----------
    grade, vibration_zone, verdict : array_like of str or None
        Labels as in :class:`ReuseInputs`, None for missing (object or str arrays).
    finding_count, reman_generation, max_generations : array_like of int
        Integer columns as in :class:`ReuseInputs`.
    test_margin, survival_probability : array_like of float
        Fractions in [0, 1]; None or NaN for missing.
    test_passed : array_like of bool
        True / False, with None or NaN for untested (e.g. ``[True, None, False]`` or ``[1.0, nan, 0.0]``).
    reman_cost, new_price : array_like of float
        Cost (>= 0) and new price (> 0); None or NaN for unknown.
    weights : ReuseWeights
        Factor weights.
    thresholds : ReuseThresholds
        Score thresholds.

    Each column is a scalar (applied to every part) or has shape (n,). If every column is a scalar, one part is
    scored.

    Returns
    -------
    ReuseScores
        Per-part score, raw score, recommendation, capped and hold flags, subscores and contributions.

    Raises
    ------
    ValueError
        If shapes disagree or a value is out of range; the message names the parameter and the first bad row,
        e.g. ``test_margin[3] must be in [0, 1], None or NaN, got 1.2``.

    Notes
    -----
    Same formulas, neutral subscores, caps and rule order as :func:`score_part` (see its notes and the module
    docstring), computed column-wise with the same floating-point operations in the same order, so scores and
    recommendations agree exactly with :func:`score_part`. About 100 000 parts score in tens of milliseconds.

    Examples
    --------
    >>> scores = score_parts(grade=["A", "C", None, "B"], test_passed=[True, False, None, True],
    ...                      verdict=[None, None, None, "quarantine"], reman_cost=300.0, new_price=1000.0)
    >>> np.round(scores.score, 2).tolist()
    [77.75, 44.0, 59.0, 25.0]
    >>> scores.recommendation.tolist(), scores.hold.tolist()
    (['reuse', 'recycle', 'remanufacture', 'recycle'], [False, False, False, True])
    """
    if not isinstance(weights, ReuseWeights):
        raise ValueError(f"weights must be a ReuseWeights, got {type(weights).__name__}")
    if not isinstance(thresholds, ReuseThresholds):
        raise ValueError(f"thresholds must be a ReuseThresholds, got {type(thresholds).__name__}")
    columns: dict[str, Any] = {
        "grade": grade,
        "finding_count": finding_count,
        "test_margin": test_margin,
        "test_passed": test_passed,
        "vibration_zone": vibration_zone,
        "survival_probability": survival_probability,
        "reman_generation": reman_generation,
        "max_generations": max_generations,
        "reman_cost": reman_cost,
        "new_price": new_price,
        "verdict": verdict,
    }
    n = 1
    for name, value in columns.items():
        shape = np.shape(value)
        if len(shape) > 1:
            raise ValueError(f"{name} must be a scalar or 1-D, got shape {shape}")
        if shape and shape[0] != 1:
            if n != 1 and shape[0] != n:
                raise ValueError(f"{name} has {shape[0]} rows but other columns have {n}")
            n = shape[0]

    grades = _categorical(grade, "grade", tuple(Grade), n)
    zones = _categorical(vibration_zone, "vibration_zone", tuple(VibrationZone), n)
    verdicts = _categorical(verdict, "verdict", tuple(Verdict), n)
    findings = _integers(finding_count, "finding_count", n, 0)
    generations = _integers(reman_generation, "reman_generation", n, 0)
    limits = _integers(max_generations, "max_generations", n, 1)
    margins = _fractions(test_margin, "test_margin", n)
    survival = _fractions(survival_probability, "survival_probability", n)
    passed = _rows(test_passed, "test_passed", n, np.float64)
    _raise_first(~np.isnan(passed) & (passed != 0.0) & (passed != 1.0), passed, "test_passed", "True, False or None")
    costs = _rows(reman_cost, "reman_cost", n, np.float64)
    _raise_first(~np.isnan(costs) & ~(np.isfinite(costs) & (costs >= 0.0)), costs, "reman_cost", "finite and >= 0")
    prices = _rows(new_price, "new_price", n, np.float64)
    _raise_first(~np.isnan(prices) & ~(np.isfinite(prices) & (prices > 0.0)), prices, "new_price", "finite and > 0")

    # grade: table lookup (neutral when missing) minus the finding penalty
    grade_table = np.array([GRADE_SUBSCORES[g] for g in Grade] + [NEUTRAL_SUBSCORE])
    grade_score = np.maximum(0.0, grade_table[grades] - FINDING_PENALTY * findings)

    # test: functional result and vibration zone, the worst of the known ones
    failed = passed == 0.0
    has_margin = ~np.isnan(margins)
    functional = np.where(
        failed,
        0.0,
        np.where(
            has_margin,
            0.5 + 0.5 * np.nan_to_num(margins),
            np.where(passed == 1.0, PASSED_WITHOUT_MARGIN_SUBSCORE, np.nan),
        ),
    )
    vibration_table = np.array([VIBRATION_SUBSCORES[z] for z in VibrationZone] + [np.nan])
    vibration = vibration_table[zones]
    test_score = np.where(
        np.isnan(functional),
        np.where(np.isnan(vibration), NEUTRAL_SUBSCORE, vibration),
        np.where(np.isnan(vibration), functional, np.minimum(functional, vibration)),
    )

    reliability_score = np.where(np.isnan(survival), NEUTRAL_SUBSCORE, survival)
    generation_score = np.maximum(0.0, 1.0 - generations / limits)
    priced = ~np.isnan(costs) & ~np.isnan(prices)
    ratio = np.divide(costs, prices, out=np.zeros(n), where=priced)
    economics_score = np.where(priced, np.maximum(0.0, 1.0 - ratio), NEUTRAL_SUBSCORE)

    subscores = np.column_stack([grade_score, test_score, reliability_score, generation_score, economics_score])
    contributions = np.empty_like(subscores)
    raw = np.zeros(n)
    for k, weight in enumerate(weights.as_tuple()):
        contributions[:, k] = 100.0 * weight * subscores[:, k]
        raw = raw + contributions[:, k]

    def classify(values: FloatArray) -> IntArray:
        return (
            (values >= thresholds.recycle).astype(np.intp)
            + (values >= thresholds.remanufacture)
            + (values >= thresholds.reuse)
        )

    def is_verdict(which: Verdict) -> BoolArray:
        return np.asarray(verdicts == tuple(Verdict).index(which), dtype=np.bool_)

    reuse_rank, reman_rank = _RANK[Disposition.REUSE], _RANK[Disposition.REMANUFACTURE]
    from_thresholds = classify(raw)
    score = raw.copy()
    rank = from_thresholds.copy()
    hold = np.zeros(n, dtype=bool)
    undecided = np.ones(n, dtype=bool)

    rule = is_verdict(Verdict.SCRAP)
    score[rule], rank[rule] = 0.0, _RANK[Disposition.SCRAP]
    undecided &= ~rule

    rule = undecided & (grades == tuple(Grade).index(Grade.SCRAP))
    score[rule] = 0.0
    rank[rule] = np.where(is_verdict(Verdict.RECYCLE)[rule], _RANK[Disposition.RECYCLE], _RANK[Disposition.SCRAP])
    hold[rule] = is_verdict(Verdict.QUARANTINE)[rule]
    undecided &= ~rule

    rule = undecided & is_verdict(Verdict.QUARANTINE)
    hold[rule] = True
    score[rule] = np.minimum(raw[rule], QUARANTINE_CAP)
    rank[rule] = np.minimum(classify(score[rule]), reman_rank)
    undecided &= ~rule

    rule = undecided & is_verdict(Verdict.RECYCLE)
    score[rule], rank[rule] = np.minimum(raw[rule], RECYCLE_CAP), _RANK[Disposition.RECYCLE]
    undecided &= ~rule

    rule = undecided & is_verdict(Verdict.APPROVE_REUSE)
    rank[rule] = reuse_rank
    undecided &= ~rule

    rule = undecided & (
        is_verdict(Verdict.REQUIRE_REMANUFACTURE)
        | is_verdict(Verdict.REQUIRE_REPLACEMENT)
        | failed
        | (zones == tuple(VibrationZone).index(VibrationZone.D))
    )
    rank[rule] = np.minimum(rank[rule], reman_rank)

    names = np.array([str(d) for d in _BY_RANK])
    return ReuseScores(
        score=score,
        raw_score=raw,
        recommendation=names[rank],
        capped=(score < raw) | (rank < from_thresholds),
        hold=hold,
        subscores=subscores,
        contributions=contributions,
    )
