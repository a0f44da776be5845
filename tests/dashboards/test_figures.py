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


def test_time_series_can_keep_epoch_milliseconds() -> None:
    fig = figures.time_series({"J1": ([0, 1000], [40.0, 41.0])}, title="T", epoch_ms=True)
    assert list(fig.data[0].x) == [0, 1000]
    assert fig.layout.xaxis.type == "date"


def test_iso9283_pose_scatter_shows_ap_rp_barycentres_and_circles() -> None:
    fig = figures.iso9283_pose_scatter({"P1": ([0.1, 0.3], [0.0, 0.2]), "P2": ([-0.1, -0.1], [0.05, 0.05])},
                                       figures_mm={"P1": (0.2236, 0.3), "P2": (0.1118, 0.0)},
                                       limits_mm=(0.5, 0.05))
    names = [t.name for t in fig.data if t.showlegend is not False]
    assert names == ["P1 · AP 0.224 · RP 0.300 mm", "P2 · AP 0.112 · RP 0.000 mm", "commanded"]
    barycentre = next(t for t in fig.data if t.legendgroup == "P1" and t.mode == "markers" and len(t.x) == 1)
    assert (barycentre.x[0], barycentre.y[0]) == pytest.approx((0.2, 0.1))
    circle = next(t for t in fig.data if t.legendgroup == "P1" and t.mode == "lines")
    radii = [math.hypot(x - 0.2, y - 0.1) for x, y in zip(circle.x, circle.y, strict=True)]
    assert radii == pytest.approx([0.3] * len(radii))
    assert not any(t.legendgroup == "P2" and t.mode == "lines" for t in fig.data)  # RP 0: no circle
    assert "AP 0.224 mm (P1, limit 0.5)" in fig.layout.title.text
    assert "RP 0.300 mm (P1, limit 0.05)" in fig.layout.title.text
    assert fig.layout.yaxis.scaleanchor == "x"
    with pytest.raises(ValueError, match=r"figures_mm\['P9'\]"):
        figures.iso9283_pose_scatter({"P1": ([0.0], [0.0])}, figures_mm={"P9": (0.1, 0.1)})
    with pytest.raises(ValueError, match="RP must be a finite number"):
        figures.iso9283_pose_scatter({"P1": ([0.0], [0.0])}, figures_mm={"P1": (0.1, math.nan)})
    with pytest.raises(ValueError, match=r"deviations_mm\['P1'\] dy"):
        figures.iso9283_pose_scatter({"P1": ([0.0, 1.0], [0.0])})


def test_bearing_spectrum_marks_defect_frequencies_and_harmonics() -> None:
    freqs = [float(f) for f in range(0, 5001, 5)]
    psd = [1e-5] * len(freqs)
    env_f = [float(f) for f in range(1, 401)]
    env = [1e-6] * len(env_f)
    markers = {"FTF": 9.9, "BSF": 58.8, "BPFO": 89.6, "BPFI": 135.4}
    fig = figures.bearing_spectrum(freqs, psd, envelope=(env_f, env), markers=markers, harmonics_of=["BPFO"],
                                   band_hz=(1024.0, 4096.0), title="J3")
    assert [t.name for t in fig.data] == ["envelope", "PSD"]
    assert (fig.data[0].xaxis, fig.data[1].xaxis) == ("x", "x2")
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert [s.x0 for s in lines] == pytest.approx([9.9, 58.8, 89.6, 2 * 89.6, 3 * 89.6, 135.4])
    assert {s.xref for s in lines} == {"x"}  # the markers sit on the envelope spectrum
    band = next(s for s in fig.layout.shapes if s.type == "rect")
    assert (band.x0, band.x1, band.xref) == (1024.0, 4096.0, "x2")
    texts = [a.text for a in fig.layout.annotations]
    assert "BPFO 89.6 Hz" in texts
    assert "BPFI 135.4 Hz" in texts
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.yaxis2.type == "log"
    assert list(fig.layout.xaxis.range) == [0, 400.0]
    single = figures.bearing_spectrum([1.0, 2.0], [1.0, 2.0], markers={"BPFO": 1.5})
    assert len(single.data) == 1
    assert single.layout.shapes[0].x0 == 1.5
    with pytest.raises(ValueError, match=r"markers\['BPFI'\]"):
        figures.bearing_spectrum([1.0], [1.0], markers={"BPFI": 0.0})
    with pytest.raises(ValueError, match="harmonics_of names 'BPFI'"):
        figures.bearing_spectrum([1.0], [1.0], markers={"BPFO": 2.0}, harmonics_of=["BPFI"])
    with pytest.raises(ValueError, match="envelope psd"):
        figures.bearing_spectrum([1.0], [1.0], envelope=([1.0, 2.0], [1.0]))
    with pytest.raises(ValueError, match="band_hz"):
        figures.bearing_spectrum([1.0], [1.0], band_hz=(10.0, 5.0))
