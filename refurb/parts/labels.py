"""Printable part labels: a QR code carrying a GS1 Digital Link (or refurb's own URL) with the serial and part
number printed beneath (GS1 Digital Link standard 1.2; QR per ISO/IEC 18004 via segno)."""

from __future__ import annotations

import io
import re
from html import escape
from urllib.parse import quote

import segno

# AI (21) serials: up to 20 characters of GS1 AI encodable character set 82 (GS1 General Specifications 7.11).
_AI21 = re.compile(r"^[!%-?A-Z_a-z\"]{1,20}$")


def label_content(*, part_id: int, serial: str, gtin: str | None, public_base_url: str, digital_link_base: str) -> str:
    """Return what the label's QR code carries: a Digital Link when the part type has a GTIN, else our URL."""
    if gtin and _AI21.match(serial):
        return f"{digital_link_base.rstrip('/')}/01/{gtin}/21/{quote(serial, safe='')}"
    return f"{public_base_url.rstrip('/')}/parts/{part_id}"


def label_svg(*, content: str, serial: str, part_number: str, name: str = "") -> str:
    """Render a 62 mm-wide label: QR on the left, serial, part number and name on the right."""
    qr = segno.make(content, error="m", micro=False)
    buf = io.BytesIO()
    qr.save(buf, kind="svg", scale=4, border=2, xmldecl=False, svgns=True, nl=False)
    qr_svg = buf.getvalue().decode()
    width_px, height_px = qr.symbol_size(scale=4, border=2)
    text_x = width_px + 12
    total_w = text_x + 260
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{max(height_px, 90)}" '
        f'viewBox="0 0 {total_w} {max(height_px, 90)}" role="img" aria-label="label {escape(serial)}">'
        f'<rect width="100%" height="100%" fill="#fff"/>'
        f'<g>{qr_svg}</g>'
        f'<text x="{text_x}" y="28" font-family="monospace" font-size="18" font-weight="bold">{escape(serial)}</text>'
        f'<text x="{text_x}" y="52" font-family="sans-serif" font-size="14">{escape(part_number)}</text>'
        f'<text x="{text_x}" y="72" font-family="sans-serif" font-size="11">{escape(name[:40])}</text>'
        "</svg>"
    )
