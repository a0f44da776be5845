// Scan station: a keyboard-wedge scanner types the code and Enter into the focused field; each scan shows the
// record and the allowed next steps as big buttons; one more tap records the step. The field keeps the focus.
(function () {
  const $ = (id) => document.getElementById(id);
  const code = $("code"), msg = $("message"), card = $("card"), log = $("log"), station = $("station");
  const PRIMARY = ["received", "inspected", "cleaned", "repaired", "tested", "certified", "shipped"];
  let last = null;  // {code, result}
  let awaitingTarget = false;  // after "installed": the next scan names the robot or parent part
  station.value = localStorage.getItem("refurb.station") || "";
  station.addEventListener("change", () => localStorage.setItem("refurb.station", station.value));

  function say(text, kind) { msg.textContent = text; msg.className = kind || "muted"; }
  function refocus() { code.value = ""; code.focus(); }
  function addLog(text) {
    const li = document.createElement("li"); li.textContent = new Date().toLocaleTimeString() + "  " + text;
    log.prepend(li); while (log.children.length > 30) log.lastChild.remove();
  }
  function field(dl, k, v) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v === null || v === undefined || v === "" ? "—" : v;
    dl.append(dt, dd);
  }
  function showCard(res) {
    const r = res.record, dl = $("card-fields"); dl.replaceChildren();
    $("grade-picker").hidden = true;
    if (res.kind === "part") {
      $("card-title").textContent = "Part " + r.serial;
      field(dl, "Part type", r.part_number + " · " + (r.part_type_name || ""));
      field(dl, "Status", r.status + (r.quarantined ? " · QUARANTINED" : ""));
      field(dl, "Grade", r.grade); field(dl, "Station", r.station);
      field(dl, "Installed in", r.installed_robot_id ? "robot #" + r.installed_robot_id :
            (r.parent_part_id ? "part #" + r.parent_part_id : "not installed"));
      field(dl, "Installations so far", r.genealogy.installations);
      field(dl, "Reman generation", r.reman_count); field(dl, "Operating hours", r.operating_hours);
      field(dl, "Events", r.event_count);
      $("card-link").href = "/parts/" + res.id;
    } else if (res.kind === "robot") {
      $("card-title").textContent = "Robot " + r.serial;
      field(dl, "Model", r.model); field(dl, "Status", r.status); field(dl, "Parts installed", r.parts_installed);
      $("card-link").href = "/robots/" + res.id;
    } else {
      $("card-title").textContent = "Part type " + r.part_number;
      field(dl, "Name", r.name); field(dl, "Category", r.category); field(dl, "GTIN", r.gtin);
      $("card-link").href = "/docs";
    }
    if (res.gs1) field(dl, "GS1", Object.entries(res.gs1).map(([k, v]) => "(" + k + ") " + v).join("  "));
    const acts = $("card-actions"); acts.replaceChildren();
    if (window.REFURB_MAY_RECORD && res.kind === "part") {
      for (const a of res.next_actions) {
        const b = document.createElement("button"); b.type = "button"; b.textContent = a.replace("_", " ");
        b.dataset.action = a; if (PRIMARY.includes(a)) b.className = "primary";
        b.addEventListener("click", () => act(a)); acts.append(b);
      }
    }
    card.hidden = false;
  }
  async function post(body) {
    const r = await fetch("/api/v1/scan", {method: "POST", headers: {"Content-Type": "application/json"},
                                            body: JSON.stringify(body), credentials: "same-origin"});
    let data = null; try { data = await r.json(); } catch (e) { data = {detail: r.statusText}; }
    return {status: r.status, data};
  }
  function explain(status, data) {
    const d = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
    if (status === 404) return "Unknown code: " + d;
    if (status === 422) return "Cannot read this code: " + d;
    if (status === 409) return "Not allowed now: " + d;
    if (status === 401) return "Your session ended: log in again.";
    return "Error " + status + ": " + d;
  }
  async function scan(text) {
    say("Looking up…");
    const {status, data} = await post({code: text});
    if (awaitingTarget && last) {
      awaitingTarget = false;
      if (status === 200 && (data.kind === "robot" || (data.kind === "part" && data.id !== last.result.id))) {
        return act("installed", data.kind === "robot" ? {robot_id: data.id} : {parent_part_id: data.id});
      }
      say("Install cancelled: scan a robot or another part as the target.", "alert"); refocus(); return;
    }
    if (status === 200) { last = {code: text, result: data}; showCard(data); say("Found " + data.kind + ".", "notice");
                          addLog(data.kind + " " + (data.record.serial || data.record.part_number)); }
    else { card.hidden = true; last = null; say(explain(status, data), "alert"); addLog("✗ " + text); }
    refocus();
  }
  async function act(action, extra) {
    if (!last) return;
    if (action === "installed" && !extra) {
      awaitingTarget = true; say("Now scan the robot or the part to install it into."); refocus(); return;
    }
    if (action === "inspected" && !(extra && extra.grade)) {
      $("grade-picker").hidden = false; say("Pick the grade."); return;
    }
    const body = {code: last.code, action: Object.assign({type: action}, extra || {})};
    if (station.value) body.action.station = station.value;
    if (action === "tested") body.action.passed = confirm("Did the part pass its test? OK = pass, Cancel = fail");
    if (action === "dispositioned") {
      const d = prompt("Disposition: reuse, remanufacture, recycle or scrap", "reuse"); if (!d) return;
      body.action.disposition = d.trim();
    }
    const {status, data} = await post(body);
    if (status === 200) { last.result = data; showCard(data); say("Recorded: " + action + ".", "notice");
                          addLog(action + " → " + data.record.serial); }
    else { say(explain(status, data), "alert"); }
    refocus();
  }
  document.querySelectorAll("#grade-picker button").forEach((b) =>
    b.addEventListener("click", () => act("inspected", {grade: b.dataset.grade})));
  $("scan-form").addEventListener("submit", (e) => {
    e.preventDefault(); const text = code.value; if (text.trim()) scan(text); else refocus();
  });
  // keep the scanner's target focused unless the user is typing in another field
  document.addEventListener("click", (e) => {
    if (!["INPUT", "SELECT", "TEXTAREA", "BUTTON"].includes(e.target.tagName)) code.focus();
  });
  if ("BarcodeDetector" in window) {
    const cam = $("camera"); cam.hidden = false;
    cam.addEventListener("click", async () => {
      const video = $("video"); video.hidden = false;
      const stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}});
      video.srcObject = stream; await video.play();
      const det = new BarcodeDetector({formats: ["qr_code", "data_matrix", "code_128", "ean_13", "ean_8"]});
      const tick = async () => {
        const found = await det.detect(video).catch(() => []);
        if (found.length) { stream.getTracks().forEach((t) => t.stop()); video.hidden = true;
                            scan(found[0].rawValue); return; }
        requestAnimationFrame(tick);
      };
      tick();
    });
  }
})();
