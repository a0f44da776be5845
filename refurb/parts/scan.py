"""Scanner input: GS1 element strings (with or without symbology identifier), GS1 Digital Link URLs, refurb's own
label URLs and plain serials, parsed with biip (GS1 General Specifications; standards.md section 5)."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import biip

GS = "\x1d"
# Symbology identifiers whose data is a GS1 element string (ISO/IEC 15424; GS1 General Specifications 5.4.2).
GS1_SYMBOLOGIES = {"]d2", "]C1", "]Q3", "]e0", "]E0", "]E4", "]J1"}
# Plain 2D symbologies whose data may be a URL (a Digital Link or one of our labels).
PLAIN_SYMBOLOGIES = {"]d1", "]Q1", "]C0", "]Q0", "]d0"}
# Spellings of FNC1/GS that keyboard-wedge scanners are commonly configured to send.
GS_ALIASES = ("<GS>", "{GS}", "^]", "\\x1d", "\u241d")
LABEL_PATH = re.compile(r"^/(?:l/)?(parts|robots|part-types)/(\d+)/?$")
MAX_CODE_LENGTH = 512
AI_NAMES = {"01": "gtin", "21": "serial", "10": "batch", "11": "production_date", "17": "expiry_date",
            "240": "additional_id", "8004": "giai", "00": "sscc"}


class ScanError(ValueError):
    """The code is malformed; the message says what is wrong."""


@dataclass(frozen=True)
class ParsedCode:
    """What a scanned code says, before looking anything up."""

    raw: str
    kind: str  # gs1 | digital_link | label | plain
    symbology: str | None = None
    gs1: dict[str, str] = field(default_factory=dict)
    label_kind: str | None = None
    label_id: int | None = None
    text: str | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.kind}
        if self.symbology:
            out["symbology"] = self.symbology
        if self.gs1:
            out["gs1"] = self.gs1
        if self.label_kind:
            out["label"] = {"kind": self.label_kind, "id": self.label_id}
        if self.text is not None:
            out["text"] = self.text
        return out


def normalise(code: str) -> str:
    """Strip what a keyboard wedge adds around a scan and turn GS spellings into ASCII 29."""
    text = code.strip("\r\n\t ")
    for alias in GS_ALIASES:
        text = text.replace(alias, GS)
    return text


def _element_strings(result: Any) -> dict[str, str]:
    message = result.gs1_message or result.gs1_digital_link_uri
    if message is None:
        return {}
    out: dict[str, str] = {}
    for es in message.element_strings:
        if es.gtin_error:
            raise ScanError(f"AI ({es.ai.ai}) {es.value}: {es.gtin_error}")
        if getattr(es, "sscc_error", None):
            raise ScanError(f"AI ({es.ai.ai}) {es.value}: {es.sscc_error}")
        out[es.ai.ai] = es.value
    return out


def _parse_url(raw: str, url: str, symbology: str | None) -> ParsedCode:
    parts = urlsplit(url)
    path = unquote(parts.path)
    m = LABEL_PATH.match(path)
    if m:
        return ParsedCode(raw=raw, kind="label", symbology=symbology, label_kind=m.group(1), label_id=int(m.group(2)))
    try:
        result = biip.parse(url)
    except biip.ParseError as exc:
        raise ScanError(f"not a GS1 Digital Link or refurb label URL: {exc}") from exc
    if result.gs1_digital_link_uri is None:
        raise ScanError(f"not a GS1 Digital Link or refurb label URL: {result.gs1_digital_link_uri_error or url}")
    return ParsedCode(raw=raw, kind="digital_link", symbology=symbology, gs1=_element_strings(result))


def parse_code(code: str) -> ParsedCode:
    """Parse what a scanner typed; raise ScanError with a clear message when it is malformed.

    >>> parse_code("]d2011231231231233310ABC123\\x1d99TESTING").gs1
    {'01': '12312312312333', '10': 'ABC123', '99': 'TESTING'}
    >>> parse_code("SN-0042").kind
    'plain'
    """
    if not isinstance(code, str):
        raise ScanError("code must be a string")
    raw = code
    text = normalise(code)
    if not text:
        raise ScanError("the code is empty")
    if len(text) > MAX_CODE_LENGTH:
        raise ScanError(f"the code is longer than {MAX_CODE_LENGTH} characters")
    symbology = None
    if text.startswith("]") and len(text) >= 3:
        symbology, body = text[:3], text[3:]
        if not body:
            raise ScanError(f"symbology identifier {symbology} carries no data")
    else:
        body = text
    if re.match(r"^https?://", body, re.IGNORECASE):
        return _parse_url(raw, body, symbology)
    if symbology in GS1_SYMBOLOGIES:
        try:
            result = biip.parse(symbology + body)
        except biip.ParseError as exc:
            raise ScanError(f"{symbology} code is not a valid GS1 element string: {exc}") from exc
        if symbology in ("]E0", "]E4"):
            if result.gtin is None:
                raise ScanError(result.gtin_error or f"{body!r} is not a valid EAN/GTIN")
            return ParsedCode(raw=raw, kind="gs1", symbology=symbology, gs1={"01": result.gtin.value.zfill(14)})
        if result.gs1_message is None:
            raise ScanError(f"{symbology} code is not a valid GS1 element string: {result.gs1_message_error}")
        return ParsedCode(raw=raw, kind="gs1", symbology=symbology, gs1=_element_strings(result))
    if symbology is not None and symbology not in PLAIN_SYMBOLOGIES:
        raise ScanError(f"unknown symbology identifier {symbology!r}")
    if any(ch not in string.printable or ch in "\r\n\t\x0b\x0c" for ch in body if ch != GS):
        raise ScanError("the code contains control or non-printable characters")
    # Without a GS1 symbology identifier, a code that is a whole GS1 element string starting with a known AI
    # (e.g. a scanner set to drop the ]d2 prefix) is still read as GS1; anything else is a plain serial.
    if body[:2] in ("01", "00") or body[:4] == "8004" or GS in body:
        try:
            result = biip.parse(body)
        except biip.ParseError:
            result = None
        if result is not None and result.gs1_message is not None:
            try:
                return ParsedCode(raw=raw, kind="gs1", symbology=symbology, gs1=_element_strings(result))
            except ScanError:
                if body.isdigit() or GS in body:
                    raise
        elif GS in body:
            raise ScanError(f"broken GS1 element string: {result.gs1_message_error if result else body!r}")
    if GS in body:
        raise ScanError("a plain serial cannot contain a GS separator")
    return ParsedCode(raw=raw, kind="plain", symbology=symbology, text=body)


def named(gs1: dict[str, str]) -> dict[str, str]:
    """Human names for the AIs refurb uses (for messages and pages)."""
    return {AI_NAMES.get(ai, ai): value for ai, value in gs1.items()}
