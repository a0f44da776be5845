"""Figure builders on plain data: the right traces, values and validation errors."""

from __future__ import annotations

import math

import pytest

from dashboards import figures


def test_stacked_counts() -> None:
    fig = figures.stacked_counts(["2026-01", "2026-02"], {"reuse": [3, 4], "scrap": [1, 0]}, title="Cores")
    assert [t.name for t in fig.data] == ["reuse", "scrap"]
    assert list(fig.data[0].y) == [3, 4]
    assert fig.data[0].marker.color == figures.PALETTE["reuse"]
    with pytest.raises(ValueError, match=r"series\['scrap'\] has 1 values but 2"):
        figures.stacked_counts(["a", "b"], {"scrap": [1]}, title="x")


def test_sankey_nodes_and_links() -> None:
    fig = figures.disposition_sankey([("intake", "grade A", 5), ("grade A", "reuse", 4), ("grade A", "scrap", 1)])
    s = fig.data[0]
    assert list(s.node.label) == ["intake", "grade A", "reuse", "scrap"]
    assert list(s.link.source) == [0, 1, 1]
    assert list(s.link.target) == [1, 2, 3]
    assert list(s.link.value) == [5, 4, 1]
    with pytest.raises(ValueError, match=r"flows\[0\]"):
        figures.disposition_sankey([("a", "b", -1)])


def test_rates_are_checked_and_formatted() -> None:
    fig = figures.grouped_rates(["motor"], {"by count": [0.5], "by mass": [None]}, title="Salvage")
    assert fig.layout.yaxis.tickformat == ".0%"
    with pytest.raises(ValueError, match="must be in"):
        figures.grouped_rates(["motor"], {"by count": [1.5]}, title="x")


def test_reference_line() -> None:
    fig = figures.bars_with_reference(["R1", "R2"], [0.4, 0.7], reference=0.55, reference_name="center",
                                      title="MCI")
    assert fig.layout.shapes[0].y0 == 0.55
    assert "center 0.55" in fig.layout.annotations[0].text
    with pytest.raises(ValueError, match=r"values\[1\]"):
        figures.bars_with_reference(["a", "b"], [0.1, math.nan], reference=None, reference_name="", title="x")


def test_weibull_curve_passes_through_the_formula() -> None:
    fig = figures.weibull_plot(shape=2.0, scale=100.0, failures_h=[50.0], censored_h=[80.0])
    curve, fails, cens = fig.data
    i = list(curve.x).index(100.0) if 100.0 in list(curve.x) else None
    assert fails.y[0] == pytest.approx(math.exp(-0.25))
    assert cens.y[0] == pytest.approx(math.exp(-0.64))
    assert curve.y[0] == 1.0
    assert i is None or curve.y[i] == pytest.approx(math.exp(-1))
    with pytest.raises(ValueError, match="shape"):
        figures.weibull_plot(shape=0, scale=1, failures_h=[])


def test_spectrum_markers_and_time_series() -> None:
    fig = figures.spectrum([1.0, 2.0, 3.0], [1e-3, 2e-3, 1e-4], markers={"BPFO": 2.0})
    assert fig.layout.shapes[0].x0 == 2.0
    assert fig.layout.yaxis.type == "log"
    with pytest.raises(ValueError, match="BPFO"):
        figures.spectrum([1.0], [1.0], markers={"BPFO": -1})
    ts = figures.time_series({"j1_temp": ([0, 1000], [40.0, 41.0])}, title="T", limits={"max": 80.0})
    assert ts.data[0].x[1] == "1970-01-01T00:00:01+00:00"
    assert ts.layout.shapes[0].y0 == 80.0


def test_pose_scatter() -> None:
    fig = figures.pose_scatter({"P1": ([0.01, -0.02], [0.0, 0.03])})
    assert [t.name for t in fig.data] == ["P1", "commanded"]
    with pytest.raises(ValueError, match="dy"):
        figures.pose_scatter({"P1": ([0.0], [])})
