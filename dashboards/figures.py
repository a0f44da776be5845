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
    fig.update_xaxes(type="category")  # periods are labels ("2026-11"), not instants
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
                y_title: str = "", limits: Mapping[str, float] | None = None, epoch_ms: bool = False) -> go.Figure:
    """Lines of (ts_ms, values) per key, with optional horizontal limit lines (name -> value).

    With ``epoch_ms`` the x values stay epoch milliseconds on a date axis (shown in UTC): half the JSON of ISO
    strings, and live points can be appended as they arrive (``Plotly.extendTraces`` with millisecond times).

    >>> time_series({"j1": ([0, 1000], [40.0, 41.0])}, title="T", epoch_ms=True).data[0].x
    (0, 1000)
    """
    fig = go.Figure()
    for key, (ts, values) in series.items():
        _same_length(f"series[{key!r}] values", values, len(ts))
        x = [int(t) for t in ts] if epoch_ms else [_ms_to_iso(t) for t in ts]
        fig.add_trace(go.Scattergl(x=x, y=list(values), mode="lines", name=key))
    for name, value in (limits or {}).items():
        fig.add_hline(y=value, line_dash="dot", line_color="#c62828", annotation_text=name)
    fig.update_layout(LAYOUT, title=title, yaxis_title=y_title, xaxis_title="time (UTC)")
    if epoch_ms:
        fig.update_xaxes(type="date")
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


# --- robot on the test bench ---------------------------------------------------------------------------------------

POSE_COLORS = ("#0b6bcb", "#c62828", "#1a7f37", "#7b3fb5", "#b7791f", "#0e8a8a", "#d6336c", "#5b6675")


def iso9283_pose_scatter(deviations_mm: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
                         figures_mm: Mapping[str, tuple[float, float]] | None = None,
                         limits_mm: tuple[float | None, float | None] = (None, None),
                         title: str = "ISO 9283 poses: attained − commanded") -> go.Figure:
    """Attained minus commanded position (dx, dy in mm) of every cycle, per pose, with the pose's barycentre and a
    circle of radius RP around it; AP and RP (ISO 9283, ``figures_mm[pose] = (ap_mm, rp_mm)``) label each pose.

    RP is the radius of a sphere; the circle is its section in the x-y plane through the barycentre. ``limits_mm``
    are the datasheet's (AP, RP) the test judges against, shown in the title with the worst pose of each.

    >>> fig = iso9283_pose_scatter({"P1": ([0.1, 0.3], [0.0, 0.2])}, figures_mm={"P1": (0.22, 0.3)})
    >>> fig.data[0].name
    'P1 · AP 0.220 · RP 0.300 mm'
    """
    figures_mm = figures_mm or {}
    for pose in figures_mm:
        if pose not in deviations_mm:
            raise ValueError(f"figures_mm[{pose!r}] names a pose without deviations")
    for pose, (ap, rp) in figures_mm.items():
        for name, value in (("AP", ap), ("RP", rp)):
            if value is None or not math.isfinite(value) or value < 0:
                raise ValueError(f"figures_mm[{pose!r}] {name} must be a finite number >= 0, got {value!r}")
    for name, limit in zip(("AP", "RP"), limits_mm, strict=True):
        if limit is not None and (not math.isfinite(limit) or limit <= 0):
            raise ValueError(f"limits_mm {name} must be > 0, got {limit!r}")
    fig = go.Figure()
    for i, (pose, (dx, dy)) in enumerate(deviations_mm.items()):
        _same_length(f"deviations_mm[{pose!r}] dy", dy, len(dx))
        _finite(f"deviations_mm[{pose!r}] dx", dx)
        _finite(f"deviations_mm[{pose!r}] dy", dy)
        color = POSE_COLORS[i % len(POSE_COLORS)]
        label = pose
        if pose in figures_mm:
            ap, rp = figures_mm[pose]
            label = f"{pose} · AP {ap:.3f} · RP {rp:.3f} mm"
        fig.add_trace(go.Scatter(x=[float(v) for v in dx], y=[float(v) for v in dy], mode="markers", name=label,
                                 legendgroup=pose, marker={"size": 6, "color": color, "opacity": 0.75},
                                 hovertemplate=f"{pose}<br>dx %{{x:.4f}} mm<br>dy %{{y:.4f}} mm<extra></extra>"))
        if not dx:
            continue
        cx, cy = sum(dx) / len(dx), sum(dy) / len(dy)
        fig.add_trace(go.Scatter(x=[cx], y=[cy], mode="markers", legendgroup=pose, showlegend=False,
                                 marker={"symbol": "x-thin", "size": 12, "color": color, "line": {"width": 2,
                                                                                                  "color": color}},
                                 hovertemplate=f"{pose} barycentre<br>dx %{{x:.4f}} mm<br>dy %{{y:.4f}} mm"
                                               "<extra></extra>"))
        if pose in figures_mm and figures_mm[pose][1] > 0:
            rp = figures_mm[pose][1]
            angles = [2 * math.pi * k / 72 for k in range(73)]
            fig.add_trace(go.Scatter(x=[cx + rp * math.cos(a) for a in angles],
                                     y=[cy + rp * math.sin(a) for a in angles], mode="lines", legendgroup=pose,
                                     showlegend=False, hoverinfo="skip",
                                     line={"color": color, "width": 1, "dash": "dot"}))
    fig.add_trace(go.Scatter(x=[0], y=[0], mode="markers", name="commanded",
                             marker={"symbol": "cross-thin", "size": 16, "line": {"width": 2, "color": "#000"}}))
    if figures_mm:
        worst_ap = max(figures_mm.items(), key=lambda item: item[1][0])
        worst_rp = max(figures_mm.items(), key=lambda item: item[1][1])
        ap_limit, rp_limit = limits_mm
        parts = [f"AP {worst_ap[1][0]:.3f} mm ({worst_ap[0]}" + (f", limit {ap_limit:g})" if ap_limit else ")"),
                 f"RP {worst_rp[1][1]:.3f} mm ({worst_rp[0]}" + (f", limit {rp_limit:g})" if rp_limit else ")")]
        title = f"{title}<br><sub>worst pose: {' · '.join(parts)}</sub>"
    fig.update_layout(LAYOUT, title=title, xaxis_title="dx (mm)", yaxis_title="dy (mm)", height=480,
                      margin={"l": 60, "r": 20, "t": 70, "b": 40},
                      legend={"orientation": "h", "x": 0, "y": -0.2, "yanchor": "top"})
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def bearing_spectrum(freqs_hz: Sequence[float], psd: Sequence[float], *,
                     envelope: tuple[Sequence[float], Sequence[float]] | None = None,
                     markers: Mapping[str, float] | None = None, harmonics_of: Sequence[str] = (),
                     harmonics: int = 3, band_hz: tuple[float, float] | None = None,
                     title: str = "Vibration spectrum", psd_unit: str = "(m/s²)²/Hz") -> go.Figure:
    """Vibration spectra of one capture with the bearing defect frequencies marked.

    With ``envelope`` (frequencies, PSD of the demodulated signal) the figure has two rows: the envelope spectrum,
    where bearing impacts show as lines at their repetition frequency, with a dashed line per marker (e.g. FTF, BPFO,
    BPFI, BSF at the measured shaft speed) and dotted lines at the 2nd..``harmonics``-th harmonic of the markers named
    in ``harmonics_of``; below it the acceleration PSD over the whole band with the demodulation band ``band_hz``
    shaded. Without ``envelope``, one row: the PSD with the markers. Both y axes are logarithmic.

    >>> fig = bearing_spectrum([0.0, 50.0, 100.0], [1e-4, 1e-3, 1e-4], markers={"BPFO": 50.0})
    >>> fig.layout.shapes[0].x0, fig.layout.annotations[0].text
    (50.0, 'BPFO 50.0 Hz')
    """
    _same_length("psd", psd, len(freqs_hz))
    _finite("freqs_hz", freqs_hz)
    _finite("psd", psd)
    markers = dict(markers or {})
    for name, hz in markers.items():
        if hz is None or not math.isfinite(hz) or hz <= 0:
            raise ValueError(f"markers[{name!r}] must be a positive frequency, got {hz!r}")
    for name in harmonics_of:
        if name not in markers:
            raise ValueError(f"harmonics_of names {name!r}, which is not in markers")
    if isinstance(harmonics, bool) or not isinstance(harmonics, int) or harmonics < 1:
        raise ValueError(f"harmonics must be an integer >= 1, got {harmonics!r}")
    if band_hz is not None and not (math.isfinite(band_hz[0]) and math.isfinite(band_hz[1])
                                    and 0 <= band_hz[0] < band_hz[1]):
        raise ValueError(f"band_hz must be (low, high) with 0 <= low < high, got {band_hz!r}")
    if envelope is not None:
        _same_length("envelope psd", envelope[1], len(envelope[0]))
        _finite("envelope freqs", envelope[0])
        _finite("envelope psd", envelope[1])
    # One figure built in one go (shapes and annotations as plain dicts): add_vline on subplots is slow.
    axis = {"showgrid": True, "gridcolor": "#e5e9f0", "zeroline": False}
    psd_trace = {"type": "scatter", "x": list(freqs_hz), "y": list(psd), "mode": "lines", "name": "PSD"}
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    if envelope is not None:
        data = [{"type": "scatter", "x": list(envelope[0]), "y": list(envelope[1]), "mode": "lines",
                 "name": "envelope", "line": {"color": "#0b6bcb", "width": 1.2}, "xaxis": "x", "yaxis": "y"},
                psd_trace | {"line": {"color": "#14213d", "width": 1}, "xaxis": "x2", "yaxis": "y2"}]
        top = max([float(v) for v in envelope[0]] or [1.0])
        layout: dict[str, Any] = {
            "xaxis": axis | {"anchor": "y", "range": [0, top]},
            "yaxis": axis | {"domain": [0.58, 1.0], "type": "log", "exponentformat": "power",
                             "title": {"text": "envelope PSD"}},
            "xaxis2": axis | {"anchor": "y2", "title": {"text": "frequency (Hz)"}},
            "yaxis2": axis | {"domain": [0.0, 0.4], "type": "log", "exponentformat": "power",
                              "title": {"text": psd_unit}},
            "height": 560}
        annotations += [{"text": "<b>Envelope spectrum</b> (demodulated): bearing defect lines", "xref": "paper",
                         "yref": "paper", "x": 0, "y": 1.0, "xanchor": "left", "yanchor": "bottom",
                         "showarrow": False, "font": {"size": 12}},
                        {"text": "<b>Acceleration PSD</b>, whole band", "xref": "paper", "yref": "paper", "x": 0,
                         "y": 0.42, "xanchor": "left", "yanchor": "bottom", "showarrow": False, "font": {"size": 12}}]
        marked, shaded = ("x", "y domain"), ("x2", "y2 domain")
    else:
        data = [psd_trace | {"line": {"color": "#0b6bcb"}}]
        layout = {"xaxis": axis | {"title": {"text": "frequency (Hz)"}},
                  "yaxis": axis | {"type": "log", "exponentformat": "power", "title": {"text": psd_unit}},
                  "height": 340}
        marked = shaded = ("x", "y domain")
    colors = ("#c62828", "#b7791f", "#1a7f37", "#7b3fb5", "#0e8a8a", "#d6336c")
    for i, (name, hz) in enumerate(markers.items()):
        color = colors[i % len(colors)]
        line = {"type": "line", "xref": marked[0], "yref": marked[1], "x0": hz, "x1": hz, "y0": 0, "y1": 1}
        shapes.append(line | {"line": {"color": color, "width": 1.5, "dash": "dash"}})
        annotations.append({"text": f"{name} {hz:.1f} Hz", "xref": marked[0], "yref": marked[1], "x": hz,
                            "y": 1, "xanchor": "left", "yanchor": "top", "yshift": -15 * i, "showarrow": False,
                            "font": {"color": color, "size": 11}, "bgcolor": "rgba(255,255,255,0.8)"})
        if name in harmonics_of:
            shapes += [line | {"x0": h * hz, "x1": h * hz, "opacity": 0.6,
                               "line": {"color": color, "width": 1, "dash": "dot"}} for h in range(2, harmonics + 1)]
    if band_hz is not None:
        shapes.append({"type": "rect", "xref": shaded[0], "yref": shaded[1], "x0": band_hz[0], "x1": band_hz[1],
                       "y0": 0, "y1": 1, "fillcolor": "#0b6bcb", "opacity": 0.07, "line": {"width": 0},
                       "layer": "below"})
        annotations.append({"text": "envelope band", "xref": shaded[0], "yref": shaded[1], "x": band_hz[0], "y": 1,
                            "xanchor": "left", "yanchor": "top", "showarrow": False,
                            "font": {"size": 10, "color": "#0b6bcb"}})
    fig = go.Figure(data=data, layout={**LAYOUT, **layout, "title": {"text": title}, "showlegend": False,
                                       "margin": {"l": 60, "r": 20, "t": 60, "b": 40}, "shapes": shapes,
                                       "annotations": annotations})
    return fig
