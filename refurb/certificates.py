"""Remanufacturing certificates as PDF (fpdf2): a plain document in, PDF bytes out.

The document is built by the parts/telemetry services (identity, test results with limits, parts with their
remanufacturing history and hash-chain heads); this module only lays it out, so the printed page and the PDF say the
same thing. Core PDF fonts cover Latin-1; other characters are replaced, and the HTML certificate shows them.
"""

from __future__ import annotations

from typing import Any

from fpdf import FPDF


def _latin1(text: Any) -> str:
    return str("" if text is None else text).encode("latin-1", "replace").decode("latin-1")


class _Doc(FPDF):
    def __init__(self, title: str, footer: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._title, self._footer = title, footer
        self.set_auto_page_break(auto=True, margin=18)
        self.set_margins(15, 15, 15)

    def header(self) -> None:
        self.set_font("Helvetica", "B", 15)
        self.cell(0, 9, _latin1(self._title), new_x="LMARGIN", new_y="NEXT")
        self.set_draw_color(20, 33, 61)
        self.line(15, self.get_y(), 195, self.get_y())
        self.ln(3)

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font("Helvetica", "", 7)
        self.cell(0, 5, _latin1(f"{self._footer}   page {self.page_no()}/{{nb}}"), align="C")


def _section(pdf: _Doc, title: str) -> None:
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, _latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)


def _table(pdf: _Doc, header: list[str], rows: list[list[Any]], widths: list[float]) -> None:
    pdf.set_font("Helvetica", "B", 8)
    for h, w in zip(header, widths, strict=True):
        pdf.cell(w, 6, _latin1(h), border="B")
    pdf.ln()
    pdf.set_font("Helvetica", "", 8)
    for row in rows:
        for value, w in zip(row, widths, strict=True):
            pdf.cell(w, 5.5, _latin1(value)[: int(w * 0.62)], border=0)
        pdf.ln()


def render_pdf(doc: dict[str, Any]) -> bytes:
    """Lay out a certificate document (see ``parts.service.certificate``) as an A4 PDF."""
    pdf = _Doc(doc["title"], doc.get("footer", "refurb remanufacturing certificate"))
    pdf.alias_nb_pages()
    pdf.add_page()
    pdf.set_font("Helvetica", "", 9)
    for key, value in doc.get("identity", {}).items():
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(48, 5.5, _latin1(key))
        pdf.set_font("Helvetica", "", 9)
        pdf.cell(0, 5.5, _latin1(value), new_x="LMARGIN", new_y="NEXT")
    verdict = doc.get("verdict")
    if verdict:
        pdf.ln(2)
        pdf.set_font("Helvetica", "B", 12)
        pdf.set_text_color(26, 127, 55) if verdict.get("ok") else pdf.set_text_color(198, 40, 40)
        pdf.cell(0, 8, _latin1(verdict["text"]), new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    if doc.get("checks"):
        _section(pdf, "Test results and limits")
        _table(pdf, ["Check", "Measured", "Limit", "Result"],
               [[c["name"], c.get("measured"), c.get("limit"), "pass" if c.get("passed") else "FAIL"]
                for c in doc["checks"]], [80, 35, 35, 30])
    if doc.get("parts"):
        _section(pdf, "Parts and their remanufacturing history")
        _table(pdf, ["Serial", "Part", "Position", "Grade", "Reman gen.", "Chain head"],
               [[p["serial"], p["part_number"], p.get("position") or "", p.get("grade") or "", p.get("reman_count", 0),
                 (p.get("chain_head") or "")[:16] + "..."] for p in doc["parts"]], [38, 34, 18, 14, 18, 58])
    if doc.get("events"):
        _section(pdf, "Remanufacturing record")
        _table(pdf, ["#", "When (UTC)", "Step", "By", "Station"],
               [[e["seq"], e["occurred_at"], e["type"], e["actor"], e.get("station") or ""] for e in doc["events"]],
               [10, 45, 40, 40, 45])
    _section(pdf, "Tamper evidence")
    pdf.multi_cell(0, 5, _latin1(doc.get("chain_text", "")))
    return bytes(pdf.output())


# --- documents -------------------------------------------------------------------------------------------------


def record_digest(heads: list[tuple[str, str | None]]) -> str:
    """SHA-256 over the sorted ``serial:head`` lines of a robot's parts: one value that pins every part's chain."""
    import hashlib

    text = "\n".join(f"{serial}:{head or ''}" for serial, head in sorted(heads))
    return hashlib.sha256(text.encode()).hexdigest()


def _part_row(session: Any, part: Any, position: str | None = None) -> dict[str, Any]:
    from refurb.parts import service as parts_service

    pt = parts_service.get_part_type(session, part.part_type_id)
    return {"id": part.id, "serial": part.serial, "part_number": pt.part_number, "name": pt.name,
            "position": position, "grade": part.grade, "status": part.status, "reman_count": part.reman_count,
            "operating_hours": part.operating_hours, "chain_head": part.chain_head, "events": part.event_count,
            "valid": parts_service.verify_chain(session, part).valid}


def _flatten(nodes: list[dict[str, Any]]) -> list[tuple[int, str | None]]:
    out: list[tuple[int, str | None]] = []
    for n in nodes:
        out.append((n["part_id"], n.get("position")))
        out.extend(_flatten(n.get("children", [])))
    return out


def robot_certificate(session: Any, robot: Any, *, viewer: Any) -> dict[str, Any]:
    """The certificate of a rebuilt robot: identity, its latest certification run's checks and limits, its parts
    with their remanufacturing history and chain heads, and one digest over all the chains."""
    from refurb.auth import Organisation
    from refurb.parts import service as parts_service
    from refurb.telemetry import runs_service
    from refurb.telemetry.runs import RunState, TestKind

    runs, _ = runs_service.list_runs(session, viewer=viewer, robot_id=robot.id, limit=50)
    finished = [r for r in runs if r.state in (RunState.PASSED, RunState.FAILED)]
    cert_runs = [r for r in finished if r.kind == TestKind.CERTIFICATION] or finished
    run = cert_runs[0] if cert_runs else None
    checks = [{"name": c.name, "measured": None if c.measured is None else round(c.measured, 4),
               "limit": f"{c.comparison} {c.limit:g} {c.unit}".strip(), "passed": c.passed,
               "explanation": c.explanation} for c in (runs_service.run_checks(session, run) if run else [])]
    tree = parts_service.robot_parts_at(session, robot)
    parts = []
    for part_id, position in _flatten(tree):
        parts.append(_part_row(session, parts_service.get_part(session, part_id), position))
    digest = record_digest([(p["serial"], p["chain_head"]) for p in parts])
    owner = session.get(Organisation, robot.owner_org_id) if robot.owner_org_id else None
    passed = run is not None and run.state == RunState.PASSED
    all_valid = all(p["valid"] for p in parts)
    if run is None:
        verdict = {"ok": False, "text": "NOT CERTIFIED: no finished test run"}
    elif not passed:
        verdict = {"ok": False, "text": f"NOT CERTIFIED: test run #{run.id} failed {run.checks_failed} check(s)"}
    elif not all_valid:
        verdict = {"ok": False, "text": "NOT CERTIFIED: a part's record fails its hash-chain check"}
    else:
        verdict = {"ok": True, "text": f"CERTIFIED: test run #{run.id} passed all {run.checks_total} checks"}
    reused_mass = sum(parts_service.get_part_type(session, parts_service.get_part(session, p["id"]).part_type_id)
                      .mass_kg for p in parts if p["reman_count"] or p["events"] > 1)
    return {
        "kind": "robot", "id": robot.id,
        "title": f"Remanufacturing certificate - robot {robot.serial}",
        "identity": {"Robot serial": robot.serial, "Model": robot.model, "Manufacturer": robot.manufacturer or "-",
                     "Owner": owner.name if owner else "-", "Status": str(robot.status),
                     "Test run": f"#{run.id} ({run.kind}, attempt {run.attempt}), finished "
                                 f"{run.finished_at:%Y-%m-%d %H:%M} UTC" if run and run.finished_at else "-",
                     "Parts": str(len(parts)), "Reused part mass": f"{reused_mass:.1f} kg"},
        "verdict": verdict, "checks": checks, "parts": parts, "digest": digest,
        "chain_text": (f"Record digest SHA-256 {digest} over {len(parts)} part chains (serial:head lines, sorted). "
                       "Each part's events are hash-chained (SHA-256 over RFC 8785 canonical JSON); "
                       "verify any part at /api/v1/parts/{id}/verify."),
        "footer": f"refurb remanufacturing certificate - robot {robot.serial}",
    }


def part_certificate(session: Any, part: Any) -> dict[str, Any]:
    """The certificate of one remanufactured part: identity, its tests with limits, its record and chain head."""
    from refurb.parts import service as parts_service

    row = _part_row(session, part)
    events = parts_service.list_events(session, part)
    tests = [e for e in events if e.type == "tested"]
    checks = []
    for t in tests[-1:]:
        for r in t.details.get("results", []):
            checks.append({"name": r.get("name") or r.get("check"), "measured": r.get("measured"),
                           "limit": r.get("limit"), "passed": r.get("passed")})
    report = parts_service.verify_chain(session, part)
    certified = str(part.status) in ("certified", "shipped") and report.valid
    verdict = ({"ok": True, "text": "CERTIFIED remanufactured part"} if certified else
               {"ok": False, "text": f"NOT CERTIFIED (status {part.status})"})
    return {
        "kind": "part", "id": part.id,
        "title": f"Remanufacturing certificate - part {part.serial}",
        "identity": {"Serial": part.serial, "Part": f"{row['part_number']} {row['name']}",
                     "Grade": part.grade or "-", "Remanufacturing generation": str(part.reman_count),
                     "Operating hours": f"{part.operating_hours:.1f}", "Status": str(part.status)},
        "verdict": verdict, "checks": checks, "parts": [],
        "events": [{"seq": e.seq, "occurred_at": f"{e.occurred_at:%Y-%m-%d %H:%M}", "type": str(e.type),
                    "actor": e.actor, "station": e.station} for e in events],
        "chain_text": (f"Chain head {part.chain_head or '-'} over {report.events} events; verification: "
                       f"{'valid' if report.valid else 'BROKEN at event ' + str(report.first_broken)}. "
                       "SHA-256 over RFC 8785 canonical JSON of each event and the previous hash."),
        "footer": f"refurb remanufacturing certificate - part {part.serial}",
    }
