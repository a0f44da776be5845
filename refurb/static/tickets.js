// Ticket queue and ticket view: SLA countdowns ticking every second from the absolute due and warning instants
// the server computed in business time; the colour turns to warning / breached when the clock passes them.
// The close form shows the sub-part picker only for "require replacement".
(function () {
  "use strict";
  const RANK = {ok: 0, warning: 1, breached: 2};
  const BADGE = {ok: "ok", warning: "warn", breached: "bad"};
  const serverNow = document.getElementById("server-now");
  // correct for a browser clock that is off: compare with the server's clock at page load
  const skew = serverNow ? Date.parse(serverNow.dataset.now) - Date.now() : 0;
  const clocks = Array.from(document.querySelectorAll(".sla-clock"));

  function pad(n) { return String(n).padStart(2, "0"); }
  function span(ms) {
    let s = Math.floor(Math.abs(ms) / 1000);
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    return (d ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(s);
  }
  function setLevel(el, level) {
    if (el.dataset.shown === level) return;
    el.dataset.shown = level;
    const badge = el.querySelector(".sla-badge");
    if (badge) { badge.textContent = level; badge.className = "badge sla-badge " + BADGE[level]; }
    const row = el.closest(".sla-row");
    if (row) {
      row.classList.remove("sla-ok", "sla-warning", "sla-breached");
      row.classList.add("sla-" + level);
    }
  }
  function tick() {
    const now = Date.now() + skew;
    for (const el of clocks) {
      let level = el.dataset.level || "ok";
      if (el.dataset.running === "1" && el.dataset.due) {
        const due = Date.parse(el.dataset.due);
        const warn = el.dataset.warn ? Date.parse(el.dataset.warn) : null;
        let live = "ok";
        if (now > due) live = "breached"; else if (warn !== null && now > warn) live = "warning";
        if (RANK[live] > RANK[level]) level = live;  // the fraction used never goes down
        const out = el.querySelector(".countdown");
        if (out) out.textContent = now > due ? "overdue " + span(now - due) : span(due - now);
      }
      setLevel(el, level);
    }
  }
  if (clocks.length) { tick(); setInterval(tick, 1000); }

  for (const sel of document.querySelectorAll("select[data-verdict]")) {
    const row = sel.closest("tr");
    const sub = row ? row.querySelector(".sub-part") : null;
    const update = () => { if (sub) sub.hidden = sel.value !== "require_replacement"; };
    sel.addEventListener("change", update);
    update();
  }

  // a filter change applies at once (the Filter button stays for keyboards and no-JS)
  const filters = document.getElementById("filters");
  if (filters) {
    for (const input of filters.querySelectorAll("select, input[type=radio]")) {
      input.addEventListener("change", () => filters.submit());
    }
  }

  // "New ticket" opens the form (a <details>) and puts the cursor in the title
  const newTicket = document.getElementById("new-ticket");
  function openNew() {
    if (!newTicket) return;
    newTicket.open = true;
    const title = newTicket.querySelector("input[name=title]");
    if (title) title.focus();
  }
  const newLink = document.getElementById("new-ticket-link");
  if (newLink) newLink.addEventListener("click", openNew);
  if (location.hash === "#new-ticket") openNew();

  const error = document.getElementById("error");
  if (error) error.scrollIntoView({block: "center"});
})();
