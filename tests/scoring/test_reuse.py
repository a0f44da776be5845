"""Explainable reuse score: factors, thresholds, verdict rules, validation and the vectorised twin."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from refurb.scoring.reuse import (
    DEFAULT_WEIGHTS,
    FACTOR_NAMES,
    Disposition,
    Factor,
    FactorName,
    Grade,
    ReuseInputs,
    ReuseScore,
    ReuseThresholds,
    ReuseWeights,
    Verdict,
    VibrationZone,
    score_part,
    score_parts,
)

GOOD = {
    "grade": "A",
    "test_passed": True,
    "test_margin": 1.0,
    "vibration_zone": "A",
    "survival_probability": 1.0,
    "reman_cost": 0.0,
    "new_price": 1000.0,
}
#: All weight on reliability: the score is 100 * survival_probability, handy for threshold edges.
ONLY_RELIABILITY = ReuseWeights(grade=0.0, test=0.0, reliability=1.0, generation=0.0, economics=0.0)


def factor(result: ReuseScore, name: FactorName) -> Factor:
    return next(f for f in result.factors if f.name == name)


def subscore(name: FactorName, **inputs: Any) -> float:
    return factor(score_part(ReuseInputs(**inputs)), name).subscore


# ---- the score and its explanation --------------------------------------------------------------------------------


def test_worked_example_and_contributions_sum_to_the_score() -> None:
    part = ReuseInputs(
        grade="B",
        test_passed=True,
        test_margin=0.6,
        vibration_zone="B",
        survival_probability=0.9,
        reman_cost=300.0,
        new_price=1000.0,
    )
    result = score_part(part)
    # 25*0.7 + 25*min(0.5 + 0.5*0.6, 0.75) + 20*0.9 + 10*(1 - 0/3) + 20*(1 - 0.3)
    assert_allclose([f.contribution for f in result.factors], [17.5, 18.75, 18.0, 10.0, 14.0])
    assert_allclose(result.score, 78.25)
    assert_allclose(sum(f.contribution for f in result.factors), result.raw_score, rtol=0, atol=1e-12)
    assert result.recommendation is Disposition.REUSE
    assert (result.capped, result.hold, result.reasons) == (False, False, ())
    assert tuple(f.name for f in result.factors) == FACTOR_NAMES
    for f in result.factors:
        assert_allclose(f.contribution, 100 * f.weight * f.subscore)
        assert not f.missing
        assert f.explanation
    assert factor(result, FactorName.GRADE).value == "grade=B, findings=0"
    assert "worst evidence" in factor(result, FactorName.TEST).explanation


def test_a_part_with_no_data_is_neutral_and_goes_to_remanufacture() -> None:
    result = score_part(ReuseInputs())
    # 25*0.5 + 25*0.5 + 20*0.5 + 10*1 + 20*0.5
    assert_allclose(result.score, 55.0)
    assert result.recommendation is Disposition.REMANUFACTURE
    missing = {f.name for f in result.factors if f.missing}
    assert missing == {FactorName.GRADE, FactorName.TEST, FactorName.RELIABILITY, FactorName.ECONOMICS}
    for f in result.factors:
        if f.missing:
            assert f.subscore == 0.5
            assert "neutral 0.5" in f.explanation


def test_perfect_part_scores_100() -> None:
    result = score_part(ReuseInputs(**GOOD))
    assert_allclose(result.score, 100.0)
    assert result.recommendation is Disposition.REUSE


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"grade": "A"}, 1.0),
        ({"grade": "B"}, 0.7),
        ({"grade": "C"}, 0.4),
        ({"grade": "scrap"}, 0.0),
        ({"grade": Grade.B}, 0.7),
        ({"grade": "A", "finding_count": 3}, 0.7),
        ({"grade": "C", "finding_count": 12}, 0.0),
        ({"finding_count": 2}, 0.3),
    ],
)
def test_grade_factor(inputs: dict[str, Any], expected: float) -> None:
    assert_allclose(subscore(FactorName.GRADE, **inputs), expected)


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"test_passed": False, "test_margin": 0.9}, 0.0),
        ({"test_passed": True, "test_margin": 0.6}, 0.8),
        ({"test_passed": True, "test_margin": 0.0}, 0.5),
        ({"test_passed": True}, 0.75),
        ({"test_margin": 0.2}, 0.6),
        ({"vibration_zone": "C"}, 0.35),
        ({"vibration_zone": VibrationZone.D}, 0.0),
        ({"test_passed": True, "test_margin": 1.0, "vibration_zone": "B"}, 0.75),
        ({"test_passed": True, "test_margin": 0.2, "vibration_zone": "A"}, 0.6),
        ({}, 0.5),
    ],
)
def test_test_factor(inputs: dict[str, Any], expected: float) -> None:
    assert_allclose(subscore(FactorName.TEST, **inputs), expected)


def test_reliability_factor() -> None:
    assert_allclose(subscore(FactorName.RELIABILITY, survival_probability=0.83), 0.83)
    assert_allclose(subscore(FactorName.RELIABILITY, survival_probability=0.0), 0.0)
    assert factor(score_part(ReuseInputs()), FactorName.RELIABILITY).missing


@pytest.mark.parametrize(
    ("generation", "limit", "expected"),
    [(0, 3, 1.0), (1, 3, 2 / 3), (3, 3, 0.0), (5, 3, 0.0), (1, 4, 0.75)],
)
def test_generation_factor(generation: int, limit: int, expected: float) -> None:
    result = score_part(ReuseInputs(reman_generation=generation, max_generations=limit))
    generation_factor = factor(result, FactorName.GENERATION)
    assert_allclose(generation_factor.subscore, expected)
    assert generation_factor.value == f"{generation}/{limit}"


@pytest.mark.parametrize(
    ("cost", "price", "expected", "missing"),
    [(300.0, 1000.0, 0.7, False), (0.0, 50.0, 1.0, False), (1200.0, 1000.0, 0.0, False), (300.0, None, 0.5, True)],
)
def test_economics_factor(cost: float, price: float | None, expected: float, missing: bool) -> None:
    result = factor(score_part(ReuseInputs(reman_cost=cost, new_price=price)), FactorName.ECONOMICS)
    assert_allclose(result.subscore, expected)
    assert result.missing is missing


# ---- thresholds -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("probability", "expected"),
    [
        (1.0, Disposition.REUSE),
        (0.75, Disposition.REUSE),
        (0.7499, Disposition.REMANUFACTURE),
        (0.5, Disposition.REMANUFACTURE),
        (0.4999, Disposition.RECYCLE),
        (0.25, Disposition.RECYCLE),
        (0.2499, Disposition.SCRAP),
        (0.0, Disposition.SCRAP),
    ],
)
def test_default_thresholds(probability: float, expected: Disposition) -> None:
    result = score_part(ReuseInputs(survival_probability=probability), weights=ONLY_RELIABILITY)
    assert_allclose(result.score, 100 * probability)
    assert result.recommendation is expected


def test_custom_thresholds() -> None:
    thresholds = ReuseThresholds(reuse=90.0, remanufacture=60.0, recycle=10.0)
    part = ReuseInputs(survival_probability=0.8)
    assert score_part(part, ONLY_RELIABILITY, thresholds).recommendation is Disposition.REMANUFACTURE
    assert score_part(part, ONLY_RELIABILITY).recommendation is Disposition.REUSE
    assert thresholds.classify(9.99) is Disposition.SCRAP


# ---- verdicts and hard evidence -----------------------------------------------------------------------------------


def test_quarantine_holds_caps_at_25_and_never_reuses() -> None:
    result = score_part(ReuseInputs(**GOOD, verdict="quarantine"))
    assert (result.hold, result.capped) == (True, True)
    assert_allclose([result.raw_score, result.score], [100.0, 25.0])
    assert result.recommendation is Disposition.RECYCLE
    assert "quarantine" in result.reasons[0]
    # with lenient thresholds the capped score would reach reuse: still remanufacture at best
    lenient = ReuseThresholds(reuse=20.0, remanufacture=10.0, recycle=5.0)
    assert score_part(ReuseInputs(**GOOD, verdict="quarantine"), thresholds=lenient).recommendation is (
        Disposition.REMANUFACTURE
    )
    # a low score stays as it is
    low = score_part(ReuseInputs(survival_probability=0.1, verdict="quarantine"), weights=ONLY_RELIABILITY)
    assert low.score == low.raw_score == 10.0
    assert low.recommendation is Disposition.SCRAP


def test_scrap_verdict() -> None:
    result = score_part(ReuseInputs(**GOOD, verdict=Verdict.SCRAP))
    assert (result.score, result.recommendation, result.capped, result.hold) == (0.0, Disposition.SCRAP, True, False)


def test_recycle_verdict_caps_at_40() -> None:
    result = score_part(ReuseInputs(**GOOD, verdict="recycle"))
    assert (result.score, result.recommendation, result.capped) == (40.0, Disposition.RECYCLE, True)
    # below the cap the score is kept, and recycle wins over scrap
    low = score_part(ReuseInputs(survival_probability=0.1, verdict="recycle"), weights=ONLY_RELIABILITY)
    assert_allclose(low.score, 10.0)
    assert low.recommendation is Disposition.RECYCLE
    assert low.capped is False


@pytest.mark.parametrize("verdict", ["require_remanufacture", "require_replacement"])
def test_require_verdicts_allow_remanufacture_at_best(verdict: str) -> None:
    good = score_part(ReuseInputs(**GOOD, verdict=verdict))
    assert (good.score, good.recommendation, good.capped) == (100.0, Disposition.REMANUFACTURE, True)
    assert verdict in good.reasons[0]
    low = score_part(ReuseInputs(grade="C", test_passed=False, verdict=verdict))
    assert low.recommendation is Disposition.RECYCLE
    assert low.capped is False


def test_approve_reuse_overrides_the_score_but_not_a_scrap_grade() -> None:
    result = score_part(ReuseInputs(grade="C", test_passed=False, verdict="approve_reuse"))
    assert result.recommendation is Disposition.REUSE
    assert (result.capped, result.hold) == (False, False)
    assert result.reasons == ("verdict approve_reuse: reuse",)
    scrapped = score_part(ReuseInputs(**{**GOOD, "grade": "scrap"}, verdict="approve_reuse"))
    assert (scrapped.score, scrapped.recommendation) == (0.0, Disposition.SCRAP)


def test_release_and_no_verdict_change_nothing() -> None:
    plain = score_part(ReuseInputs(**GOOD))
    released = score_part(ReuseInputs(**GOOD, verdict="release"))
    assert (released.score, released.recommendation, released.hold) == (plain.score, plain.recommendation, False)


def test_scrap_grade() -> None:
    result = score_part(ReuseInputs(**{**GOOD, "grade": "scrap"}))
    # raw = 25*0 + 25 + 20 + 10 + 20 = 75 would be reuse
    assert_allclose(result.raw_score, 75.0)
    assert (result.score, result.recommendation, result.capped) == (0.0, Disposition.SCRAP, True)
    to_recycling = score_part(ReuseInputs(grade="scrap", verdict="recycle"))
    assert (to_recycling.score, to_recycling.recommendation) == (0.0, Disposition.RECYCLE)
    held = score_part(ReuseInputs(grade="scrap", verdict="quarantine"))
    assert (held.score, held.recommendation, held.hold) == (0.0, Disposition.SCRAP, True)


@pytest.mark.parametrize(
    ("evidence", "reason"),
    [({"test_passed": False}, "functional test failed"), ({"vibration_zone": "D"}, "vibration zone D")],
)
def test_failed_test_or_zone_d_allow_remanufacture_at_best(evidence: dict[str, Any], reason: str) -> None:
    result = score_part(ReuseInputs(**{**GOOD, **evidence}))
    assert_allclose(result.score, 75.0)  # the score alone would reach reuse
    assert result.recommendation is Disposition.REMANUFACTURE
    assert result.capped is True
    assert reason in result.reasons[0]
    # a reviewer may still approve it
    approved = score_part(ReuseInputs(**{**GOOD, **evidence}, verdict="approve_reuse"))
    assert approved.recommendation is Disposition.REUSE


# ---- validation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"grade": "D"}, "grade must be one of ['A', 'B', 'C', 'scrap'] or None, got 'D'"),
        ({"vibration_zone": "E"}, "vibration_zone must be one of ['A', 'B', 'C', 'D'] or None, got 'E'"),
        ({"verdict": "maybe"}, "verdict must be one of ['approve_reuse',"),
        ({"finding_count": -1}, "finding_count must be an integer >= 0, got -1"),
        ({"finding_count": 1.5}, "finding_count must be an integer >= 0, got 1.5"),
        ({"finding_count": True}, "finding_count must be an integer >= 0, got True"),
        ({"test_margin": 1.2}, "test_margin must be in [0, 1] or None, got 1.2"),
        ({"test_margin": float("nan")}, "test_margin must be in [0, 1] or None, got nan"),
        ({"survival_probability": -0.1}, "survival_probability must be in [0, 1] or None, got -0.1"),
        ({"test_passed": 1}, "test_passed must be True, False or None, got 1"),
        ({"reman_generation": -1}, "reman_generation must be an integer >= 0, got -1"),
        ({"max_generations": 0}, "max_generations must be an integer >= 1, got 0"),
        ({"reman_cost": -5.0}, "reman_cost must be a finite number >= 0 or None, got -5.0"),
        ({"new_price": 0.0}, "new_price must be a finite number > 0 or None, got 0.0"),
    ],
)
def test_inputs_validation(inputs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ReuseInputs(**inputs)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"grade": 0.5}, "weights must sum to 1, got 1.25"),
        ({"grade": -0.05, "test": 0.55}, "weights.grade must be a finite number >= 0, got -0.05"),
        ({"economics": float("nan")}, "weights.economics must be a finite number >= 0, got nan"),
    ],
)
def test_weights_validation(weights: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ReuseWeights(**weights)


def test_default_weights_sum_to_one() -> None:
    assert_allclose(sum(ReuseWeights().as_tuple()), 1.0)


@pytest.mark.parametrize(
    "thresholds",
    [
        {"reuse": 50.0, "remanufacture": 50.0},
        {"recycle": 0.0},
        {"reuse": 101.0},
        {"recycle": 60.0},
    ],
)
def test_thresholds_validation(thresholds: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=re.escape("thresholds must satisfy 0 < recycle < remanufacture < reuse")):
        ReuseThresholds(**thresholds)


def test_score_part_checks_argument_types() -> None:
    with pytest.raises(ValueError, match="^inputs must be a ReuseInputs"):
        score_part({"grade": "A"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^weights must be a ReuseWeights"):
        score_part(ReuseInputs(), weights=(0.2,) * 5)  # type: ignore[arg-type]


# ---- the vectorised twin ------------------------------------------------------------------------------------------


def _columns(parts: list[ReuseInputs]) -> dict[str, list[Any]]:
    return {f.name: [getattr(p, f.name) for p in parts] for f in dataclasses.fields(ReuseInputs)}


def _assert_same(parts: list[ReuseInputs], weights: ReuseWeights = DEFAULT_WEIGHTS) -> None:
    many = score_parts(**_columns(parts), weights=weights)
    singles = [score_part(p, weights) for p in parts]
    assert_array_equal(many.raw_score, [s.raw_score for s in singles])
    assert_array_equal(many.score, [s.score for s in singles])
    assert_array_equal(many.recommendation, [str(s.recommendation) for s in singles])
    assert_array_equal(many.capped, [s.capped for s in singles])
    assert_array_equal(many.hold, [s.hold for s in singles])
    assert_array_equal(many.subscores, [[f.subscore for f in s.factors] for s in singles])
    assert_array_equal(many.contributions, [[f.contribution for f in s.factors] for s in singles])


VARIED = [
    ReuseInputs(),
    ReuseInputs(**GOOD),
    ReuseInputs(grade="B", test_passed=True, test_margin=0.6, vibration_zone="B", survival_probability=0.9),
    ReuseInputs(grade="C", finding_count=4, test_passed=False, reman_generation=2, reman_cost=900.0, new_price=1e3),
    ReuseInputs(grade="scrap", verdict="recycle"),
    ReuseInputs(grade="scrap", verdict="quarantine"),
    ReuseInputs(**GOOD, verdict="quarantine"),
    ReuseInputs(**GOOD, verdict="scrap"),
    ReuseInputs(**GOOD, verdict="recycle"),
    ReuseInputs(**GOOD, verdict="require_remanufacture"),
    ReuseInputs(**GOOD, verdict="require_replacement"),
    ReuseInputs(grade="C", test_passed=False, verdict="approve_reuse"),
    ReuseInputs(**GOOD, verdict="release"),
    ReuseInputs(**{**GOOD, "vibration_zone": "D"}),
    ReuseInputs(**{**GOOD, "test_passed": False}),
    ReuseInputs(test_margin=0.3, vibration_zone="C", reman_generation=7, max_generations=5),
    ReuseInputs(test_passed=True, survival_probability=0.75, reman_cost=100.0),
]


def test_score_parts_matches_score_part_on_a_varied_set() -> None:
    _assert_same(VARIED)
    _assert_same(VARIED, ONLY_RELIABILITY)


def test_score_parts_accepts_numpy_columns_with_nan_for_missing() -> None:
    many = score_parts(
        grade=np.array(["A", "B", "C"]),
        finding_count=np.array([0, 1, 2]),
        test_margin=np.array([np.nan, 0.5, 1.0]),
        test_passed=np.array([1.0, np.nan, 0.0]),
        survival_probability=np.array([0.9, np.nan, 0.2]),
        reman_cost=np.array([100.0, np.nan, 50.0]),
        new_price=1000.0,
    )
    singles = [
        score_part(ReuseInputs(grade="A", test_passed=True, survival_probability=0.9, reman_cost=100.0, new_price=1e3)),
        score_part(ReuseInputs(grade="B", finding_count=1, test_margin=0.5, new_price=1e3)),
        score_part(
            ReuseInputs(
                grade="C",
                finding_count=2,
                test_margin=1.0,
                test_passed=False,
                survival_probability=0.2,
                reman_cost=50.0,
                new_price=1e3,
            )
        ),
    ]
    assert_array_equal(many.score, [s.score for s in singles])
    assert_array_equal(many.recommendation, [str(s.recommendation) for s in singles])


grades = st.sampled_from([None, *Grade])
zones = st.sampled_from([None, *VibrationZone])
verdicts = st.sampled_from([None, *Verdict])
fractions = st.one_of(st.none(), st.floats(0, 1), st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]))
money = st.one_of(st.none(), st.floats(0, 1e5), st.sampled_from([0.0, 250.0, 500.0]))
prices = st.one_of(st.none(), st.floats(1e-3, 1e5), st.sampled_from([1000.0]))
parts = st.builds(
    ReuseInputs,
    grade=grades,
    finding_count=st.integers(0, 12),
    test_margin=fractions,
    test_passed=st.sampled_from([None, True, False]),
    vibration_zone=zones,
    survival_probability=fractions,
    reman_generation=st.integers(0, 6),
    max_generations=st.integers(1, 5),
    reman_cost=money,
    new_price=prices,
    verdict=verdicts,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(parts, min_size=1, max_size=30))
def test_score_parts_matches_score_part_property(sample: list[ReuseInputs]) -> None:
    _assert_same(sample)


def test_score_parts_scores_100k_parts() -> None:
    rng = np.random.default_rng(5)
    n = 100_000
    grade_labels = np.array(["A", "B", "C", "scrap", None], dtype=object)
    many = score_parts(
        grade=grade_labels[rng.integers(0, 5, n)],
        finding_count=rng.integers(0, 5, n),
        test_margin=np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
        test_passed=rng.random(n) < 0.9,
        survival_probability=rng.random(n),
        reman_generation=rng.integers(0, 4, n),
        reman_cost=rng.uniform(0, 1500, n),
        new_price=1000.0,
    )
    assert many.score.shape == many.recommendation.shape == (n,)
    assert set(np.unique(many.recommendation)) <= {str(d) for d in Disposition}
    assert_allclose(many.contributions.sum(axis=1), many.raw_score, atol=1e-9)
    assert np.all((many.score >= 0) & (many.score <= 100))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"grade": ["A", "x"]}, "grade[1] must be one of ['A', 'B', 'C', 'scrap'] or None, got 'x'"),
        ({"verdict": ["scrap", 3]}, "verdict[1] must be one of"),
        ({"grade": ["A", "B"], "test_margin": [0.1, 0.2, 0.3]}, "test_margin has 3 rows but other columns have 2"),
        ({"test_margin": [0.1, 1.2]}, "test_margin[1] must be in [0, 1], None or NaN, got 1.2"),
        ({"survival_probability": [-0.5]}, "survival_probability[0] must be in [0, 1], None or NaN, got -0.5"),
        ({"test_passed": [1.0, 2.0]}, "test_passed[1] must be True, False or None, got 2.0"),
        ({"finding_count": [0, -1]}, "finding_count[1] must be an integer >= 0, got -1"),
        ({"finding_count": [0.5]}, "finding_count must hold integers"),
        ({"max_generations": [3, 0]}, "max_generations[1] must be an integer >= 1, got 0"),
        ({"reman_cost": [10.0, -1.0]}, "reman_cost[1] must be finite and >= 0, got -1.0"),
        ({"new_price": [0.0]}, "new_price[0] must be finite and > 0, got 0.0"),
        ({"grade": [["A"]]}, "grade must be a scalar or 1-D"),
    ],
)
def test_score_parts_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        score_parts(**kwargs)
