// Robot on the test bench: figures come from the server as JSON (dashboards/figures.py); live samples arrive as
// server-sent events from /robots/{id}/live and are appended with Plotly.extendTraces. Status events refresh the
// connectivity, the alarms and the running test; the run buttons call the JSON API.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const data = JSON.parse($("robot-data").textContent);
  // no mode bar: on a tablet it covers the legends; drag zooms, a double tap resets
  const CONFIG = {responsive: true, displaylogo: false, displayModeBar: false};
  let run = data.run;  // the run the page shows (running, or the latest)

  // --- small helpers -------------------------------------------------------------------------------------------
  const utc = (iso) => iso ? String(iso).replace("T", " ").slice(0, 16) + " UTC" : "—";
  const plotTime = (ms) => new Date(ms).toISOString().replace("Z", "");  // UTC wall time, as on the date axes
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "className") node.className = v; else if (v !== null && v !== undefined) node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? "" : String(c)));
    return node;
  }
  function badge(text, kind) { return el("span", {className: "badge " + (kind || "")}, text); }
  const STATE_KIND = {passed: "ok", failed: "bad", aborted: "warn", running: "running"};
  function fmt(v, digits) {
    if (v === null || v === undefined) return "—";
    return String(Number(Number(v).toPrecision(digits || 4)));
  }
  function say(text, kind) { const m = $("run-msg"); m.textContent = text; m.className = (kind || "muted") + " small"; }
  function explain(status, body) {
    const d = body && body.detail !== undefined ? body.detail : body;
    const text = typeof d === "string" ? d : JSON.stringify(d);
    if (status === 401) return "Your session ended: log in again.";
    if (status === 403) return "Not allowed: " + text;
    if (status === 409) return "Not possible now: " + text;
    return "Error " + status + ": " + text;
  }
  async function api(method, url, body) {
    const r = await fetch(url, {method, credentials: "same-origin", headers: {"Content-Type": "application/json",
                                                                                "Accept": "application/json"},
                                body: body === undefined ? undefined : JSON.stringify(body)});
    let payload = null;
    try { payload = await r.json(); } catch (e) { payload = {detail: r.statusText}; }
    return {status: r.status, ok: r.ok, body: payload};
  }

  // --- figures -------------------------------------------------------------------------------------------------
  // the server sends the plotly template once; every figure gets it back before drawing
  const withTemplate = (fig) => Object.assign({}, fig.layout, {template: data.template});
  for (const c of data.charts) Plotly.newPlot(c.id, c.figure.data, withTemplate(c.figure), CONFIG);
  if (data.poses.figure && $("pose-chart")) {
    Plotly.newPlot("pose-chart", data.poses.figure.data, withTemplate(data.poses.figure), CONFIG);
  }

  function showSpectrum(joint) {
    const s = data.spectra.find((x) => x.joint === joint);
    document.querySelectorAll("#spectrum-tabs button").forEach((b) =>
      b.setAttribute("aria-pressed", String(b.dataset.joint === joint)));
    const chart = $("spectrum-chart"), info = $("spectrum-info"), notes = $("spectrum-notes");
    info.replaceChildren(); notes.replaceChildren();
    if (s.figure) {
      chart.hidden = false;
      Plotly.react(chart, s.figure.data, withTemplate(s.figure), CONFIG);
    } else {
      chart.hidden = true;
    }
    const kv = (k, v) => info.append(el("dt", {}, k), el("dd", {}, v));
    if (s.t0) kv("Capture", utc(s.t0) + " · " + s.duration_s + " s at " + fmt(s.rate_hz, 5) + " Hz");
    if (s.shaft_hz) kv("Shaft speed", fmt(s.shaft_hz, 4) + " Hz (" + fmt(s.shaft_hz * 60, 4) + " rpm)");
    const m = s.markers || {};
    if (Object.keys(m).length) {
      kv("Defect frequencies", Object.entries(m).sort((a, b) => a[1] - b[1])
        .map(([k, v]) => k + " " + v.toFixed(1) + " Hz").join(" · "));
    }
    if (s.bearing) {
      kv("Bearing", s.bearing.n_elements + " elements, d " + s.bearing.ball_d_mm + " mm, D " + s.bearing.pitch_d_mm +
         " mm" + (s.bearing.part_type ? " (" + s.bearing.part_type + ")" : ""));
    }
    if (s.velocity_mm_s !== undefined) {
      kv("Velocity RMS 10–1000 Hz", fmt(s.velocity_mm_s, 3) + " mm/s · ISO 10816 zone " + s.zone);
    }
    for (const name of ["BPFO", "BPFI"].filter((n) => s.defects && s.defects[n])) {
      const d = s.defects[name];
      kv(name + " line", el("span", {}, d.fundamental_db === null ? "—" : "+" + fmt(d.fundamental_db, 3) + " dB over background ",
         badge(d.detected ? "defect pattern" : "clear", d.detected ? "bad" : "ok")));
    }
    for (const n of s.notes || []) notes.append(el("li", {}, n));
  }
  const suspect = (s) => Object.values(s.defects || {}).some((d) => d.detected);
  document.querySelectorAll("#spectrum-tabs button").forEach((b) => {
    b.addEventListener("click", () => showSpectrum(b.dataset.joint));
    const s = data.spectra.find((x) => x.joint === b.dataset.joint);
    if (s && suspect(s)) { b.classList.add("suspect"); b.title = "bearing defect pattern in the latest capture"; }
  });
  if (data.spectra.length) {
    const first = data.spectra.find(suspect) || data.spectra.find((s) => s.figure && Object.keys(s.markers).length) ||
                  data.spectra.find((s) => s.figure) || data.spectra[0];
    showSpectrum(first.joint);
  }

  // --- alarms --------------------------------------------------------------------------------------------------
  function renderAlarms(alarms) {
    const table = $("alarms"), count = $("alarm-count");
    const active = alarms.filter((a) => a.active);
    count.textContent = active.length ? active.length + " active" : "none active";
    count.className = "right badge " + (active.some((a) => a.severity === "critical") ? "bad" :
                                        active.length ? "warn" : "ok");
    const rows = [el("tr", {}, el("th", {}, "Alarm"), el("th", {className: "num"}, "Value / peak"),
                     el("th", {}, "Raised · state"))];
    const sorted = active.concat(alarms.filter((a) => !a.active));
    for (const a of sorted) {
      const kind = a.severity === "critical" ? "bad" : a.severity === "warning" ? "warn" : "";
      rows.push(el("tr", {title: a.message || ""},
        el("td", {}, el("span", {className: "mono"}, a.key), " ", badge(a.severity, kind)),
        el("td", {className: "num"}, fmt(a.value, 4) + " / " + fmt(a.peak_value, 4)),
        el("td", {className: "small"}, utc(a.raised_at), el("br"),
           a.active ? badge("active", "bad") : "cleared " + utc(a.cleared_at))));
    }
    if (!alarms.length) rows.push(el("tr", {}, el("td", {colspan: "3", className: "muted"}, "No alarms on this robot.")));
    table.replaceChildren(...rows);
  }
  renderAlarms(data.alarms);

  // --- the test run --------------------------------------------------------------------------------------------
  function renderRun(r) {
    run = r;
    const state = $("run-state");
    if (state) state.replaceChildren(badge(r.state, STATE_KIND[r.state]));
    const table = $("run-checks");
    if (table) {
      const rows = [];
      if (r.checks && r.checks.length) {
        rows.push(el("tr", {}, el("th", {}, "Check"), el("th", {className: "num"}, "Measured"),
                     el("th", {className: "num"}, "Limit"), el("th", {}, "Result")));
        for (const c of r.checks) {
          rows.push(el("tr", {title: c.explanation},
            el("td", {}, c.name),
            el("td", {className: "num"}, fmt(c.measured, 4) + " " + c.unit),
            el("td", {className: "num"}, c.comparison + " " + fmt(c.limit, 4) + " " + c.unit),
            el("td", {}, badge(c.passed ? "pass" : "fail", c.passed ? "ok" : "bad"))));
        }
      } else {
        rows.push(el("tr", {}, el("th", {}, "Check"), el("th", {}, "Joints"), el("th", {}, "Result")));
        for (const c of data.planned) {
          rows.push(el("tr", {}, el("td", {}, c.type), el("td", {}, c.joints.length ? c.joints.join(" ") : "robot"),
                       el("td", {}, badge(r.state === "running" ? "pending" : "not judged", "pending"))));
        }
      }
      table.replaceChildren(...rows);
    }
    const running = r.state === "running";
    if ($("run-actions")) $("run-actions").hidden = !running;
    if ($("start-form")) $("start-form").hidden = running;
    const hist = document.querySelector('#run-history tr[data-run="' + r.id + '"] td:last-child');
    if (hist) hist.replaceChildren(badge(r.state, STATE_KIND[r.state]));
  }

  async function refreshRun(id) {
    const res = await api("GET", "/api/v1/test-runs/" + id);
    if (res.ok) renderRun(res.body);
  }

  if ($("finish-run")) {
    $("finish-run").addEventListener("click", async (e) => {
      if (!run) return;
      e.target.disabled = true;
      say("Judging run #" + run.id + "'s data… (a 16-hour run takes a few seconds)");
      const res = await api("POST", "/api/v1/test-runs/" + run.id + "/finish", {});
      e.target.disabled = false;
      if (!res.ok) { say(explain(res.status, res.body), "alert"); return; }
      renderRun(res.body);
      const failed = res.body.checks.filter((c) => !c.passed).length;
      say("Run #" + res.body.id + " " + res.body.state + ": " + (res.body.checks.length - failed) + " of " +
          res.body.checks.length + " checks passed.", res.body.state === "passed" ? "notice" : "alert");
    });
    $("abort-run").addEventListener("click", async () => {
      if (!run) return;
      const reason = window.prompt("Abort run #" + run.id + "? Give a reason (no verdict will be recorded).", "");
      if (reason === null) return;
      const res = await api("POST", "/api/v1/test-runs/" + run.id + "/abort", {reason});
      if (!res.ok) { say(explain(res.status, res.body), "alert"); return; }
      renderRun(res.body);
      say("Run #" + res.body.id + " aborted.", "notice");
    });
  }
  if ($("start-form")) {
    $("start-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const form = e.target, body = {robot_id: data.robot_id, template_id: Number(form.template_id.value)};
      if (form.window_start.value) body.window_start = new Date(form.window_start.value).toISOString();
      $("start-run").disabled = true;
      const res = await api("POST", "/api/v1/test-runs", body);
      $("start-run").disabled = false;
      if (!res.ok) { say(explain(res.status, res.body), "alert"); return; }
      say("Run #" + res.body.id + " started.", "notice");
      window.location.reload();  // a new data window: charts, poses and spectra follow it
    });
  }

  // --- status: connectivity, robot status, alarms, runs --------------------------------------------------------
  function applyStatus(s) {
    $("robot-status").textContent = s.robot_status;
    const conn = s.connectivity || {};
    const cs = $("conn-state");
    cs.textContent = conn.state || "unknown";
    cs.className = "badge " + (conn.state === "online" ? "ok" : conn.state === "offline" ? "bad" : "");
    if ($("conn-text")) $("conn-text").textContent = conn.state || "unknown";
    $("last-seen").textContent = "last seen " + utc(conn.last_seen_at);
    renderAlarms(s.alarms || []);
    if (run) {
      const now = (s.runs || []).find((r) => r.id === run.id);
      if (now && now.state !== run.state) refreshRun(run.id);  // finished elsewhere: show its verdicts
    }
  }

  // --- live samples --------------------------------------------------------------------------------------------
  const traceOf = {};  // key -> [div id, trace index]
  for (const c of data.charts) c.keys.forEach((k, i) => { traceOf[k] = [c.id, i]; });
  const liveState = $("live-state");
  function live(text, kind) { liveState.textContent = text; liveState.className = "live " + (kind || ""); }
  let newest = 0;
  // Follow mode keeps the last few minutes in view as samples arrive; zooming or "Whole window" leaves it.
  let follow = data.live.open, relayouting = false, latestX = data.live.since;
  const rangeButtons = document.querySelectorAll("#chart-range button");
  function applyRange() {
    rangeButtons.forEach((b) => b.setAttribute("aria-pressed", String((b.dataset.range === "recent") === follow)));
    const update = follow ? {"xaxis.range": [plotTime(latestX - data.live.recent_ms), plotTime(latestX + 5000)]}
                          : {"xaxis.autorange": true};
    relayouting = true;
    Promise.all(data.charts.map((c) => Plotly.relayout(c.id, update))).finally(() => { relayouting = false; });
  }
  rangeButtons.forEach((b) => b.addEventListener("click", () => { follow = b.dataset.range === "recent"; applyRange(); }));
  for (const c of data.charts) {
    $(c.id).on("plotly_relayout", (ev) => {
      if (relayouting || !ev) return;
      if (Object.keys(ev).some((k) => k.startsWith("xaxis."))) {
        follow = false;
        rangeButtons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.range !== "recent")));
      }
    });
  }
  applyRange();
  const url = data.live.url + "?keys=" + encodeURIComponent(data.live.keys.join(",")) + "&since=" + data.live.since;
  const source = new EventSource(url);
  source.onopen = () => live("live", "on");
  source.onerror = () => live(source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…", "err");
  source.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    const updates = {};
    for (const [key, s] of Object.entries(msg.series || {})) {
      const target = traceOf[key];
      if (!target || !s.ts.length) continue;
      const u = updates[target[0]] || (updates[target[0]] = {x: [], y: [], idx: []});
      u.x.push(s.ts); u.y.push(s.v); u.idx.push(target[1]);
      newest = Math.max(newest, s.ts[s.ts.length - 1]);
    }
    for (const [id, u] of Object.entries(updates)) {
      Plotly.extendTraces(id, {x: u.x, y: u.y}, u.idx, data.live.max_points);
      const empty = $(id + "-empty"); if (empty) empty.hidden = true;
    }
    if (newest) {
      $("live-last").textContent = "latest sample " + new Date(newest).toISOString().slice(11, 19) + " UTC";
      if (newest > latestX) { latestX = newest; if (follow) applyRange(); }
    }
    live("live", "on");
  };
  source.addEventListener("status", (e) => applyStatus(JSON.parse(e.data)));
  source.addEventListener("gone", (e) => { source.close(); live(JSON.parse(e.data).detail, "err"); });
  window.addEventListener("pagehide", () => source.close());
})();
