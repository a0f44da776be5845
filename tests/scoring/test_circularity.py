"""Material Circularity Indicator against standards.md section 1 and hand-computed cases."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from refurb.scoring.circularity import Component, company_mci, mci, mci_many

# ---- the five vectors of standards.md section 1 -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("component", "lifetime_ratio", "expected"),
    [
        pytest.param(Component(mass_kg=10.0), 1.0, 0.1, id="fully-linear-is-0.1-not-0"),
        pytest.param(Component(mass_kg=10.0), 2.0, 0.55, id="twice-the-lifetime"),
        pytest.param(Component(mass_kg=10.0), 0.5, 0.0, id="half-the-lifetime-clamped"),
        pytest.param(Component(mass_kg=10.0, reused_input=1.0, reused_collection=1.0), 1.0, 1.0, id="all-reused"),
        pytest.param(
            Component(
                mass_kg=10.0,
                recycled_input=1.0,
                recycled_collection=1.0,
                collection_recycling_efficiency=1.0,
                feedstock_recycling_efficiency=1.0,
            ),
            1.0,
            1.0,
            id="all-recycled-perfectly",
        ),
    ],
)
def test_standard_vectors(component: Component, lifetime_ratio: float, expected: float) -> None:
    assert_allclose(mci([component], lifetime_ratio=lifetime_ratio).MCI, expected, rtol=0, atol=1e-12)


def test_fully_linear_flows() -> None:
    result = mci([Component(mass_kg=10.0)])
    assert_allclose([result.V, result.W0, result.WC, result.WF, result.W], [10.0, 10.0, 0.0, 0.0, 10.0])
    assert_allclose([result.LFI, result.X, result.mass_kg], [1.0, 1.0, 10.0])


def test_half_lifetime_is_clamped_from_minus_0_8() -> None:
    result = mci([Component(mass_kg=10.0)], lifetime_ratio=0.5)
    assert_allclose(1.0 - result.LFI * 0.9 / result.X, -0.8)
    assert result.MCI == 0.0


# ---- hand-computed cases ------------------------------------------------------------------------------------------


def test_imperfect_feedstock_recycling_keeps_the_wf_term() -> None:
    # M=10, F_R=0.5, C_R=0.5, E_C=1, E_F=0.5:
    # V = 10*0.5 = 5; W0 = 10*0.5 = 5; WC = 0; WF = 10*0.5*0.5/0.5 = 5; W = 5 + (5+0)/2 = 7.5
    # LFI = (5 + 7.5) / (20 + (5-0)/2) = 12.5/22.5 = 5/9; MCI = 1 - 0.9*5/9 = 0.5
    result = mci(
        [Component(mass_kg=10.0, recycled_input=0.5, recycled_collection=0.5, feedstock_recycling_efficiency=0.5)]
    )
    assert_allclose([result.V, result.W0, result.WC, result.WF, result.W], [5.0, 5.0, 0.0, 5.0, 7.5])
    assert_allclose(result.LFI, 5.0 / 9.0)
    assert_allclose(result.MCI, 0.5)
    # Dropping the (W_F - W_C)/2 term (a pitfall in public implementations) would give 1 - 0.9*12.5/20 = 0.4375.
    assert not np.isclose(result.MCI, 0.4375)


def test_multi_material_sums_flows_before_the_lfi() -> None:
    # item 1: M=6, F_R=1, C_R=1, E_C=0.5, E_F=0.5 -> V=0, W0=0, WC=6*0.5*1=3, WF=6*0.5*1/0.5=6
    # item 2: M=4, linear -> V=4, W0=4, WC=0, WF=0
    # totals: M=10, V=4, W0=4, WC=3, WF=6, W = 4 + (6+3)/2 = 8.5
    # LFI = (4 + 8.5) / (20 + (6-3)/2) = 12.5/21.5; MCI = 1 - 0.9*12.5/21.5 = 10.25/21.5
    recycled = Component(
        mass_kg=6.0,
        recycled_input=1.0,
        recycled_collection=1.0,
        collection_recycling_efficiency=0.5,
        feedstock_recycling_efficiency=0.5,
    )
    linear = Component(mass_kg=4.0)
    result = mci([recycled, linear])
    assert_allclose([result.mass_kg, result.V, result.W0, result.WC, result.WF, result.W], [10, 4, 4, 3, 6, 8.5])
    assert_allclose(result.LFI, 12.5 / 21.5)
    assert_allclose(result.MCI, 10.25 / 21.5)
    # Not the mass-weighted mean of the per-item MCIs (0.6*0.7 + 0.4*0.1 = 0.46).
    assert_allclose(mci([recycled]).MCI, 0.7)
    assert not np.isclose(result.MCI, 0.46)


def test_utility_combines_lifetime_and_intensity() -> None:
    # Linear product, L = 1.5 L_av, U = 2 U_av: X = 3, F(X) = 0.3, MCI = 1 - 1*0.3 = 0.7 (not 1 - LFI/X = 0.667)
    result = mci([Component(mass_kg=3.0)], lifetime_ratio=1.5, intensity_ratio=2.0)
    assert_allclose([result.X, result.MCI], [3.0, 0.7])


def test_company_mci_is_the_weighted_mean() -> None:
    # (0.5*2 + 0.8*1 + 0.1*1) / (2 + 1 + 1) = 1.9/4
    assert_allclose(company_mci([0.5, 0.8, 0.1], [2.0, 1.0, 1.0]), 0.475)
    assert_allclose(company_mci(np.array([0.3, 0.9]), np.array([0.0, 5.0])), 0.9)


def test_sums_within_tolerance_are_accepted_and_clamped() -> None:
    result = mci([Component(mass_kg=1.0, recycled_input=0.7, reused_input=0.3 + 5e-10, reused_collection=1.0)])
    assert result.V == 0.0
    assert 0.0 <= result.MCI <= 1.0


# ---- validation ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("components", "message"),
    [
        ([], "components must contain at least one Component, got none"),
        ([Component(mass_kg=0.0)], "components[0].mass_kg must be a finite number > 0, got 0.0"),
        ([Component(mass_kg=float("nan"))], "components[0].mass_kg must be a finite number > 0"),
        (
            [Component(mass_kg=1.0), Component(mass_kg=1.0), Component(mass_kg=1.0, recycled_input=1.5)],
            "components[2].recycled_input must be in [0, 1], got 1.5",
        ),
        ([Component(mass_kg=1.0, reused_collection=-0.1)], "components[0].reused_collection must be in [0, 1]"),
        (
            [Component(mass_kg=1.0, recycled_input=0.6, reused_input=0.6)],
            "components[0].recycled_input + components[0].reused_input must be <= 1",
        ),
        (
            [Component(mass_kg=1.0, recycled_collection=0.5, reused_collection=0.6)],
            "components[0].recycled_collection + components[0].reused_collection must be <= 1",
        ),
        (
            [Component(mass_kg=1.0, feedstock_recycling_efficiency=0.0)],
            "components[0].feedstock_recycling_efficiency must be in (0, 1], got 0.0",
        ),
        (
            [Component(mass_kg=1.0, collection_recycling_efficiency=1.2)],
            "components[0].collection_recycling_efficiency must be in (0, 1]",
        ),
    ],
)
def test_mci_rejects_bad_components(components: list[Component], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        mci(components)


@pytest.mark.parametrize("name", ["lifetime_ratio", "intensity_ratio"])
@pytest.mark.parametrize("value", [0.0, -1.0, float("inf"), float("nan")])
def test_mci_rejects_bad_ratios(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be a finite number > 0"):
        mci([Component(mass_kg=1.0)], **{name: value})


def test_mci_rejects_a_bare_component() -> None:
    with pytest.raises(ValueError, match="^components must be a sequence of Component"):
        mci(Component(mass_kg=1.0))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mcis", "weights", "message"),
    [
        ([], [], "product_mcis must be a non-empty 1-D array"),
        ([0.5, 0.5], [1.0], "weights must have the same shape as product_mcis"),
        ([0.5, 1.2], [1.0, 1.0], "product_mcis[1] must be in [0, 1], got 1.2"),
        ([0.5, 0.2], [1.0, -1.0], "weights[1] must be a finite number >= 0, got -1.0"),
        ([0.5, 0.2], [0.0, 0.0], "weights must have a positive sum"),
    ],
)
def test_company_mci_validation(mcis: list[float], weights: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        company_mci(mcis, weights)


# ---- vectorised -----------------------------------------------------------------------------------------------------


def _random_rows(rng: np.random.Generator, n: int) -> dict[str, npt.NDArray[np.float64]]:
    f_r = rng.uniform(0, 1, n)
    f_u = rng.uniform(0, 1, n) * (1 - f_r)
    c_r = rng.uniform(0, 1, n)
    c_u = rng.uniform(0, 1, n) * (1 - c_r)
    return {
        "mass_kg": rng.uniform(0.1, 50, n),
        "recycled_input": f_r,
        "reused_input": f_u,
        "recycled_collection": c_r,
        "reused_collection": c_u,
        "collection_recycling_efficiency": rng.uniform(0.3, 1, n),
        "feedstock_recycling_efficiency": rng.uniform(0.3, 1, n),
    }


def test_mci_many_equals_mci_per_group() -> None:
    rng = np.random.default_rng(7)
    n, n_groups = 400, 23
    rows = _random_rows(rng, n)
    group = rng.integers(0, n_groups, n)
    group[:n_groups] = np.arange(n_groups)  # every group has a row
    lifetime = rng.uniform(0.5, 3, n_groups)
    intensity = rng.uniform(0.5, 2, n_groups)
    fractions = {k: v for k, v in rows.items() if k != "mass_kg"}
    result = mci_many(rows["mass_kg"], group=group, lifetime_ratio=lifetime, intensity_ratio=intensity, **fractions)
    for g in range(n_groups):
        members = np.flatnonzero(group == g)
        components = [Component(**{k: float(v[i]) for k, v in rows.items()}) for i in members]
        expected = mci(components, lifetime_ratio=float(lifetime[g]), intensity_ratio=float(intensity[g]))
        for field in dataclasses.fields(expected):
            assert_allclose(getattr(result, field.name)[g], getattr(expected, field.name), rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.01, 1e3),
            st.floats(0, 1),
            st.floats(0, 1),
            st.floats(0, 1),
            st.floats(0, 1),
            st.floats(0.01, 1),
            st.floats(0.01, 1),
        ),
        min_size=1,
        max_size=12,
    ),
    st.floats(0.1, 10),
)
def test_mci_many_matches_mci_property(
    rows: list[tuple[float, float, float, float, float, float, float]], lifetime: float
) -> None:
    components = [
        Component(
            mass_kg=m,
            recycled_input=fr,
            reused_input=fu * (1 - fr),
            recycled_collection=cr,
            reused_collection=cu * (1 - cr),
            collection_recycling_efficiency=ec,
            feedstock_recycling_efficiency=ef,
        )
        for m, fr, fu, cr, cu, ec, ef in rows
    ]
    expected = mci(components, lifetime_ratio=lifetime)
    result = mci_many(
        [c.mass_kg for c in components],
        recycled_input=[c.recycled_input for c in components],
        reused_input=[c.reused_input for c in components],
        recycled_collection=[c.recycled_collection for c in components],
        reused_collection=[c.reused_collection for c in components],
        collection_recycling_efficiency=[c.collection_recycling_efficiency for c in components],
        feedstock_recycling_efficiency=[c.feedstock_recycling_efficiency for c in components],
        lifetime_ratio=lifetime,
    )
    assert_allclose(result.MCI, [expected.MCI], rtol=1e-9, atol=1e-12)
    assert_allclose(result.LFI, [expected.LFI], rtol=1e-9, atol=1e-12)


def test_mci_many_standard_vectors_and_empty_groups() -> None:
    result = mci_many(
        [10.0, 10.0, 10.0],
        reused_input=[0.0, 1.0, 0.0],
        reused_collection=[0.0, 1.0, 0.0],
        group=[0, 1, 3],
        n_groups=5,
        lifetime_ratio=[1.0, 1.0, 1.0, 2.0, 1.0],
    )
    assert_allclose(result.MCI, [0.1, 1.0, np.nan, 0.55, np.nan])
    assert_allclose(result.mass_kg, [10.0, 10.0, 0.0, 10.0, 0.0])


def test_mci_many_handles_100k_rows() -> None:
    rng = np.random.default_rng(1)
    rows = _random_rows(rng, 100_000)
    group = rng.integers(0, 2_000, 100_000)
    fractions = {k: v for k, v in rows.items() if k != "mass_kg"}
    result = mci_many(rows["mass_kg"], group=group, **fractions)
    assert result.MCI.shape == (2_000,)
    assert np.all((result.MCI >= 0) & (result.MCI <= 1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mass_kg": []}, "mass_kg must be a non-empty 1-D array"),
        ({"mass_kg": [1.0, -2.0]}, "mass_kg[1] must be a finite number > 0, got -2.0"),
        ({"mass_kg": [1.0, 1.0], "recycled_input": [0.2, 1.5]}, "recycled_input[1] must be in [0, 1], got 1.5"),
        ({"mass_kg": [1.0, 1.0], "reused_input": [0.2, 0.3, 0.1]}, "reused_input must be a scalar or have shape (2,)"),
        (
            {"mass_kg": [1.0], "recycled_input": 0.7, "reused_input": 0.7},
            "recycled_input + reused_input[0] must be <= 1",
        ),
        (
            {"mass_kg": [1.0], "feedstock_recycling_efficiency": 0.0},
            "feedstock_recycling_efficiency[0] must be in (0, 1]",
        ),
        ({"mass_kg": [1.0, 1.0], "group": [0, -1]}, "group[1] must be >= 0, got -1"),
        ({"mass_kg": [1.0, 1.0], "group": [0.0, 1.0]}, "group must hold integer group codes"),
        ({"mass_kg": [1.0, 1.0], "group": [0, 3], "n_groups": 2}, "n_groups must be an integer >= max(group) + 1 = 4"),
        ({"mass_kg": [1.0, 1.0], "group": [0, 1], "lifetime_ratio": [1.0]}, "lifetime_ratio must be a scalar or have"),
        ({"mass_kg": [1.0], "intensity_ratio": 0.0}, "intensity_ratio[0] must be a finite number > 0"),
    ],
)
def test_mci_many_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        mci_many(**kwargs)  # type: ignore[arg-type]


# ---- house rule 4: the scoring package is pure ----------------------------------------------------------------------


def test_scoring_package_imports_only_stdlib_numpy_and_scipy() -> None:
    import ast
    import sys
    from pathlib import Path

    import refurb.scoring

    allowed = set(sys.stdlib_module_names) | {"__future__", "numpy", "scipy", "refurb"}
    package = Path(refurb.scoring.__file__).parent
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
                if name.startswith("refurb"):
                    assert name.startswith("refurb.scoring"), f"{path.name} imports {name}"
