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
