"""Pure figure builders: plain data in, a plotly Figure out (no database, no web framework).

Each builder validates its inputs (ValueError naming the parameter) and returns a ``plotly.graph_objects.Figure``
ready for ``fig.to_json()`` or ``fig.to_html(include_plotlyjs=False)``.

>>> fig = disposition_sankey([("intake", "grade A", 3), ("grade A", "reuse", 3)])
>>> fig.data[0].type
'sankey'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

PALETTE = {"reuse": "#1a7f37", "remanufacture": "#0b6bcb", "recycle": "#b7791f", "scrap": "#c62828",
           "pending": "#8a94a6", "met": "#1a7f37", "breached": "#c62828", "warning": "#b7791f"}
LAYOUT: dict[str, Any] = {"margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "template": "plotly_white",
                          "font": {"family": "system-ui, sans-serif", "size": 12}, "height": 340,
                          "legend": {"orientation": "h", "y": -0.2}}


def _same_length(name: str, values: Sequence[Any], n: int) -> None:
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} values but {n} are needed")


def _finite(name: str, values: Sequence[float]) -> None:
    for i, v in enumerate(values):
        if v is None or not math.isfinite(float(v)):
            raise ValueError(f"{name}[{i}] must be a finite number, got {v!r}")


def stacked_counts(periods: Sequence[str], series: Mapping[str, Sequence[float]], *, title: str,
                   y_title: str = "count") -> go.Figure:
    """Stacked bars per period (e.g. cores received by disposition per month).

    >>> stacked_counts(["2026-01"], {"reuse": [2], "scrap": [1]}, title="t").layout.barmode
    'stack'
    """
    for name, values in series.items():
        _same_length(f"series[{name!r}]", values, len(periods))
        _finite(f"series[{name!r}]", values)
    fig = go.Figure([go.Bar(name=name, x=list(periods), y=list(values), marker_color=PALETTE.get(name))
                     for name, values in series.items()])
    fig.update_layout(LAYOUT, barmode="stack", title=title, yaxis_title=y_title)
    return fig


def disposition_sankey(flows: Sequence[tuple[str, str, float]], *, title: str = "Intake → grade → disposition"
                       ) -> go.Figure:
    """Sankey diagram from (source, target, value) flows; node order follows first appearance."""
    nodes: list[str] = []
    index: dict[str, int] = {}
    for i, (src, dst, value) in enumerate(flows):
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ValueError(f"flows[{i}] value must be a finite number >= 0, got {value!r}")
        for node in (src, dst):
            if node not in index:
                index[node] = len(nodes)
                nodes.append(node)
    colors = [PALETTE.get(n.split(" ")[-1], "#6b7a90") for n in nodes]
    fig = go.Figure(go.Sankey(
        node={"label": nodes, "pad": 18, "thickness": 16, "color": colors},
        link={"source": [index[s] for s, _, _ in flows], "target": [index[t] for _, t, _ in flows],
              "value": [v for _, _, v in flows]}))
    fig.update_layout(LAYOUT, title=title, height=380)
    return fig


def grouped_rates(categories: Sequence[str], series: Mapping[str, Sequence[float | None]], *, title: str,
                  percent: bool = True) -> go.Figure:
    """Grouped bars of rates in [0, 1] per category (e.g. salvage rate by count and by mass per part type)."""
    for name, values in series.items():
        _same_length(f"series[{name!r}]", values, len(categories))
        for i, v in enumerate(values):
            if v is not None and (not math.isfinite(v) or (percent and not 0 <= v <= 1)):
                raise ValueError(f"series[{name!r}][{i}] must be in [0, 1] or None, got {v!r}")
    fig = go.Figure([go.Bar(name=name, x=list(categories), y=list(values)) for name, values in series.items()])
    fig.update_layout(LAYOUT, barmode="group", title=title)
    if percent:
        fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return fig


def bars_with_reference(labels: Sequence[str], values: Sequence[float], *, reference: float | None,
                        reference_name: str, title: str, y_range: tuple[float, float] | None = (0, 1)) -> go.Figure:
    """Bars (e.g. MCI per robot) with a dashed reference line (e.g. the center's MCI)."""
    _same_length("values", values, len(labels))
    _finite("values", values)
    fig = go.Figure(go.Bar(x=list(labels), y=list(values), marker_color="#0b6bcb", name="value"))
    if reference is not None:
        if not math.isfinite(reference):
            raise ValueError(f"reference must be finite, got {reference!r}")
        fig.add_hline(y=reference, line_dash="dash", line_color="#c62828",
                      annotation_text=f"{reference_name} {reference:.2f}", annotation_position="top left")
    fig.update_layout(LAYOUT, title=title, showlegend=False)
    if y_range:
        fig.update_yaxes(range=list(y_range))
    return fig


def weibull_plot(*, shape: float, scale: float, failures_h: Sequence[float], censored_h: Sequence[float] = (),
                 title: str = "Reliability", horizon_h: float | None = None) -> go.Figure:
    """Fitted reliability R(t) = exp(-(t/eta)^beta) with failures (x) and censored units (o) on the time axis."""
    if not (math.isfinite(shape) and shape > 0):
        raise ValueError(f"shape must be > 0, got {shape!r}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be > 0, got {scale!r}")
    _finite("failures_h", failures_h)
    _finite("censored_h", censored_h)
    top = horizon_h or max([*failures_h, *censored_h, scale * 2.5])
    ts = [top * i / 200 for i in range(201)]
    fig = go.Figure(go.Scatter(x=ts, y=[math.exp(-((t / scale) ** shape)) for t in ts], mode="lines",
                               name=f"R(t), β={shape:.2f}, η={scale:,.0f} h", line={"color": "#0b6bcb"}))
    fig.add_trace(go.Scatter(x=list(failures_h), y=[math.exp(-((t / scale) ** shape)) for t in failures_h],
                             mode="markers", name="failures", marker={"symbol": "x", "color": "#c62828", "size": 8}))
    if censored_h:
        fig.add_trace(go.Scatter(x=list(censored_h), y=[math.exp(-((t / scale) ** shape)) for t in censored_h],
                                 mode="markers", name="still running (censored)",
                                 marker={"symbol": "circle-open", "color": "#5b6675", "size": 7}))
    fig.update_layout(LAYOUT, title=title, xaxis_title="operating hours", yaxis_title="R(t)")
    fig.update_yaxes(range=[0, 1.02])
    return fig


def time_series(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, title: str,
                y_title: str = "", limits: Mapping[str, float] | None = None) -> go.Figure:
    """Lines of (ts_ms, values) per key, with optional horizontal limit lines (name -> value)."""
    fig = go.Figure()
    for key, (ts, values) in series.items():
        _same_length(f"series[{key!r}] values", values, len(ts))
        fig.add_trace(go.Scattergl(x=[_ms_to_iso(t) for t in ts], y=list(values), mode="lines", name=key))
    for name, value in (limits or {}).items():
        fig.add_hline(y=value, line_dash="dot", line_color="#c62828", annotation_text=name)
    fig.update_layout(LAYOUT, title=title, yaxis_title=y_title, xaxis_title="time (UTC)")
    return fig


def pose_scatter(poses: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, title: str = "ISO 9283 poses"
                 ) -> go.Figure:
    """Attained positions relative to the commanded pose (dx, dy in mm) per pose id, for repeatability."""
    fig = go.Figure()
    for pose, (dx, dy) in poses.items():
        _same_length(f"poses[{pose!r}] dy", dy, len(dx))
        _finite(f"poses[{pose!r}] dx", dx)
        _finite(f"poses[{pose!r}] dy", dy)
        fig.add_trace(go.Scatter(x=list(dx), y=list(dy), mode="markers", name=pose, marker={"size": 6}))
    fig.add_trace(go.Scatter(x=[0], y=[0], mode="markers", name="commanded",
                             marker={"symbol": "cross", "size": 12, "color": "#000"}))
    fig.update_layout(LAYOUT, title=title, xaxis_title="dx (mm)", yaxis_title="dy (mm)")
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def spectrum(freqs_hz: Sequence[float], psd: Sequence[float], *, markers: Mapping[str, float] | None = None,
             title: str = "Vibration spectrum", log_y: bool = True) -> go.Figure:
    """Power spectral density with vertical markers (e.g. BPFO, BPFI at the shaft speed)."""
    _same_length("psd", psd, len(freqs_hz))
    _finite("freqs_hz", freqs_hz)
    _finite("psd", psd)
    fig = go.Figure(go.Scatter(x=list(freqs_hz), y=list(psd), mode="lines", name="PSD", line={"color": "#0b6bcb"}))
    for name, hz in (markers or {}).items():
        if not math.isfinite(hz) or hz <= 0:
            raise ValueError(f"markers[{name!r}] must be a positive frequency, got {hz!r}")
        fig.add_vline(x=hz, line_dash="dash", line_color="#c62828", annotation_text=name)
    fig.update_layout(LAYOUT, title=title, xaxis_title="frequency (Hz)", yaxis_title="PSD")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def _ms_to_iso(ts_ms: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat()
