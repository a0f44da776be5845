"""Turn raw MQTT messages and import files from robots under test into validated records (pure module).

This module imports only the standard library and numpy. It never touches the database or the broker: the MQTT
``on_message`` callback calls :func:`parse_message`, which returns a :class:`ParseResult` holding either records or a
:class:`Rejection` and never raises because of anything in the topic or the payload (house rule 6).

MQTT contract (topic -> payload -> records)
-------------------------------------------
``refurb/v1/robots/{serial}/telemetry`` -> :class:`ScalarSample`
    ThingsBoard-compatible. One message is an object in one of two forms, or a JSON array of them:

    * plain form ``{"temp_c": 41.5, "state": "RUN", "seq": 7}``: every field is a telemetry key, stamped with the
      receive time; the reserved fields ``ts`` (device time, integer ms since the epoch), ``seq``, ``serial`` and
      ``robot`` are read as metadata, never stored as keys;
    * timestamped form ``{"ts": 1714550400000, "values": {"temp_c": 41.5}, "seq": 7}``: ``seq``, ``serial`` and
      ``robot`` sit at the top level next to ``ts`` and ``values``; any other top-level field is rejected. Without
      ``ts`` the receive time is used. Inside ``values`` a ``serial``/``robot`` entry is checked like a top-level
      one and not stored; ``ts``, ``seq`` and ``values`` there are rejected (``bad_key``).

    ``seq`` is an optional integer in ``[0, 2**63 - 1]`` per message object (per array element); every sample of that
    object carries it, and the caller's gap detector uses it. Keys are 1-64 characters of ``[A-Za-z0-9_.-]`` and never
    a reserved name. Values are finite numbers (stored in ``value``), booleans (stored as ``value`` 1.0 / 0.0) or
    printable strings of at most 64 characters (stored in ``text``). ``null``, arrays and objects are rejected.
``v1/gateway/telemetry`` -> :class:`ScalarSample`
    ThingsBoard gateway form ``{"<serial>": [{"ts": ..., "values": {...}}, ...], ...}``; each element follows the
    telemetry rules above (a single object instead of the array is accepted too).
``refurb/v1/robots/{serial}/waveform/{channel}`` -> :class:`WaveformBlock`
    JSON ``{"t0": <ms>, "rate_hz": 25600.0, "unit": "m/s2", "values": [...]}`` or the binary form below.
``refurb/v1/robots/{serial}/poses`` -> :class:`PoseSample`
    ``{"ts"?: <ms>, "pose": "P1", "cycle": 3, "commanded": {"x", "y", "z"}, "attained": {"x", "y", "z"},
    "orientation"?: {"commanded": {"a", "b", "c"}, "attained": {"a", "b", "c"}}}`` or an array of them; positions
    in mm, orientation angles in degrees.
``refurb/v1/robots/{serial}/status`` -> :class:`StatusUpdate`
    ``online`` / ``offline`` as plain text (case and surrounding white space ignored), a JSON string, or
    ``{"state": "online", "ts"?: <ms>}``.

Any JSON object may name its robot in a ``serial`` or ``robot`` field; if that differs from the topic's (or the
gateway key's) serial the message is rejected with ``identity_mismatch``.

Binary waveform block (all little-endian, no padding, 22-byte fixed header)::

    offset  size  type     field
    0       4     bytes    magic b"RFW1"
    4       1     uint8    version (1)
    5       8     float64  rate_hz (finite, > 0)
    13      8     int64    t0_ms, epoch milliseconds of the first sample
    21      1     uint8    unit_len (1..16)
    22      n     ASCII    unit, printable, no spaces (e.g. b"m/s2")
    22+n    4*k   float32  k sample values (k >= 1, finite)

Policies
--------
* A message is accepted or rejected whole: one bad sample rejects its message, so quarantine holds complete
  messages and a redelivery is judged the same way.
* Timestamp window: a device time (``ts``, ``t0``) must lie in
  ``[ParseLimits.min_ts_ms, received_at_ms + ParseLimits.max_future_skew_ms]``, by default from
  2000-01-01T00:00:00Z to 5 minutes after the receive time. Outside it the message is rejected with
  ``timestamp_out_of_window`` (a clock reset to 1970, seconds sent instead of milliseconds, a clock an hour ahead);
  the caller keeps ``received_at_ms`` on the quarantine row. Old timestamps are otherwise accepted: historical
  back-fill and out-of-order delivery are legitimate.
* Size: payloads over ``max_payload_bytes`` (256 KiB) are rejected as ``oversize`` before decoding; binary waveform
  blocks may use up to ``max_waveform_binary_bytes`` (8 MiB) and ``max_waveform_values`` (1,000,000) values.
* Numbers: ``NaN``/``Infinity`` tokens (which Python's json accepts), float overflow such as ``1e400`` and integers
  beyond the float64 range are ``non_finite``. Integer literals longer than Python's 4300-digit limit are
  ``non_finite`` too; nothing makes the parser crash.
* Whether a robot exists is not decided here (the database knows robots): :attr:`ParseResult.serials` names the
  robots a message concerns so the caller can check them and quarantine with ``unknown_robot``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "GATEWAY_TELEMETRY_TOPIC",
    "MAX_DETAIL_CHARS",
    "MIN_TS_MS",
    "ROBOT_TOPIC_PREFIX",
    "WAVEFORM_HEADER_BYTES",
    "WAVEFORM_MAGIC",
    "WAVEFORM_VERSION",
    "ConnectionState",
    "ImportResult",
    "MessageKind",
    "ParseLimits",
    "ParseResult",
    "PoseSample",
    "QuarantineReason",
    "Rejection",
    "RowRejection",
    "ScalarSample",
    "StatusUpdate",
    "WaveformBlock",
    "encode_waveform_binary",
    "parse_import_csv",
    "parse_import_json",
    "parse_import_rows",
    "parse_message",
]

ROBOT_TOPIC_PREFIX: Final = "refurb/v1/robots/"
GATEWAY_TELEMETRY_TOPIC: Final = "v1/gateway/telemetry"
MIN_TS_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z
WAVEFORM_MAGIC: Final = b"RFW1"
WAVEFORM_VERSION: Final = 1
_WAVEFORM_HEADER: Final = struct.Struct("<4sBdqB")
WAVEFORM_HEADER_BYTES: Final = _WAVEFORM_HEADER.size  # 22
MAX_DETAIL_CHARS: Final = 300
_MAX_UNIT_CHARS: Final = 16
_INT64_MAX: Final = 2**63 - 1
_INT64_MIN: Final = -(2**63)
_MAX_CYCLE: Final = 2**31 - 1
_KEY_RE: Final = re.compile(r"[A-Za-z0-9_.\-]+")
_UNIT_RE: Final = re.compile(r"[\x21-\x7e]+")
_SERIAL_FORBIDDEN_RE: Final = re.compile(r"[+#/\s]")
# Metadata names a telemetry object may carry; never stored as telemetry keys.
_RESERVED_KEYS: Final = frozenset({"ts", "seq", "serial", "robot", "values"})
_IDENTITY_KEYS: Final = ("serial", "robot")
_TS_VALUES_FIELDS: Final = frozenset({"ts", "values", "seq", "serial", "robot"})
_WAVEFORM_FIELDS: Final = frozenset({"t0", "rate_hz", "unit", "values", "serial", "robot"})
_WAVEFORM_REQUIRED: Final = ("t0", "rate_hz", "unit", "values")
_POSE_FIELDS: Final = frozenset({"ts", "pose", "cycle", "commanded", "attained", "orientation", "serial", "robot"})
_STATUS_FIELDS: Final = frozenset({"state", "ts", "serial", "robot"})
_IMPORT_COLUMNS: Final = ("serial", "key", "ts", "value")
_IMPORT_FIELDS: Final = frozenset({*_IMPORT_COLUMNS, "seq"})


class QuarantineReason(StrEnum):
    """Why a message or import row was not stored; one quarantine counter per member."""

    MALFORMED_JSON = "malformed_json"
    """Not UTF-8, not JSON, or nested too deeply."""
    MALFORMED_BINARY = "malformed_binary"
    """A binary waveform block with a bad header, version or length."""
    MALFORMED_CSV = "malformed_csv"
    """An import file that is not CSV with the columns serial, key, ts, value."""
    NON_FINITE = "non_finite"
    """NaN, Infinity, or a number outside the float64 (values) / float32 (waveforms) range."""
    WRONG_TYPE = "wrong_type"
    """A field is missing, unexpected, of the wrong type or outside its allowed range."""
    BAD_KEY = "bad_key"
    """A telemetry key, waveform channel or pose id is empty, too long, reserved or has characters outside
    ``[A-Za-z0-9_.-]``."""
    OVERSIZE = "oversize"
    """Payload bytes, samples per message, waveform values or import rows over the limit."""
    UNKNOWN_TOPIC = "unknown_topic"
    """The topic is not part of the contract."""
    BAD_SERIAL = "bad_serial"
    """A robot serial is empty, too long, or contains ``+``, ``#``, ``/``, white space or control characters."""
    IDENTITY_MISMATCH = "identity_mismatch"
    """The payload names a different robot than the topic (or the gateway key)."""
    TIMESTAMP_OUT_OF_WINDOW = "timestamp_out_of_window"
    """A device time before 2000-01-01 or too far ahead of the receive time."""
    EMPTY = "empty"
    """Nothing to store: an empty payload, array or object."""
    UNKNOWN_ROBOT = "unknown_robot"
    """Never produced here: for the caller, which checks :attr:`ParseResult.serials` against the database."""
    PARSER_ERROR = "parser_error"
    """Safety net: an unexpected exception inside the parser (a bug; tests assert it never happens)."""


class MessageKind(StrEnum):
    """Which part of the MQTT contract a topic belongs to."""

    TELEMETRY = "telemetry"
    GATEWAY_TELEMETRY = "gateway_telemetry"
    WAVEFORM = "waveform"
    POSES = "poses"
    STATUS = "status"


class ConnectionState(StrEnum):
    """A robot's connectivity as published on its status topic."""

    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Size and time limits applied by the parser; every field is a positive integer.

    ``max_future_skew_ms`` bounds how far a device time may run ahead of the receive time; ``min_ts_ms`` is the
    earliest device time accepted (2000-01-01T00:00:00Z).
    """

    max_payload_bytes: int = 256 * 1024
    max_waveform_binary_bytes: int = 8 * 1024 * 1024
    max_waveform_values: int = 1_000_000
    max_samples_per_message: int = 10_000
    max_future_skew_ms: int = 5 * 60 * 1000
    min_ts_ms: int = MIN_TS_MS
    max_serial_chars: int = 64
    max_key_chars: int = 64
    max_text_chars: int = 64
    max_import_rows: int = 1_000_000

    def __post_init__(self) -> None:
        for limit in fields(self):
            name = limit.name
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"ParseLimits.{name} must be an int, got {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"ParseLimits.{name} must be > 0, got {value}")


@dataclass(frozen=True, slots=True)
class ScalarSample:
    """One telemetry value; identity (serial, key, ts_ms). Exactly one of ``value`` and ``text`` is set."""

    serial: str
    key: str
    ts_ms: int
    value: float | None
    text: str | None
    seq: int | None


@dataclass(frozen=True, slots=True, eq=False)
class WaveformBlock:
    """A block of equally spaced samples; identity (serial, channel, t0_ms).

    ``values`` is a read-only 1-D float32 array; sample ``i`` was taken at ``t0_ms + 1000 * i / rate_hz``.
    Compared by identity (arrays have no single truth value).
    """

    serial: str
    channel: str
    t0_ms: int
    rate_hz: float
    unit: str
    values: npt.NDArray[np.float32]

    @property
    def duration_s(self) -> float:
        """Return the time the block spans, ``len(values) / rate_hz``."""
        return len(self.values) / self.rate_hz


@dataclass(frozen=True, slots=True)
class PoseSample:
    """One attained pose of an ISO 9283 cycle: positions in mm, optional orientation (a, b, c) in degrees."""

    serial: str
    pose: str
    cycle: int
    ts_ms: int
    commanded_xyz_mm: tuple[float, float, float]
    attained_xyz_mm: tuple[float, float, float]
    commanded_abc_deg: tuple[float, float, float] | None = None
    attained_abc_deg: tuple[float, float, float] | None = None


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A robot went online or offline (``ts_ms`` is the device time if given, else the receive time)."""

    serial: str
    state: ConnectionState
    ts_ms: int


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a whole message (or an import file) was refused; ``detail`` is ASCII, at most ``MAX_DETAIL_CHARS``."""

    reason: QuarantineReason
    detail: str


@dataclass(frozen=True, slots=True)
class ParseResult:
    """Outcome of :func:`parse_message`: records, or a rejection with no records.

    ``serials`` names the robots concerned (sorted, unique) so the caller can check they exist; on a rejection it
    holds the topic's serial when that serial itself was valid, else it is empty.
    """

    topic: str
    kind: MessageKind | None
    received_at_ms: int
    serials: tuple[str, ...] = ()
    scalars: tuple[ScalarSample, ...] = ()
    waveforms: tuple[WaveformBlock, ...] = ()
    poses: tuple[PoseSample, ...] = ()
    statuses: tuple[StatusUpdate, ...] = ()
    rejection: Rejection | None = None

    @property
    def ok(self) -> bool:
        """Return True when the message was accepted."""
        return self.rejection is None

    @property
    def record_count(self) -> int:
        """Return how many records the message produced (waveform blocks count once)."""
        return len(self.scalars) + len(self.waveforms) + len(self.poses) + len(self.statuses)


@dataclass(frozen=True, slots=True)
class RowRejection:
    """An import row that was refused; ``row_number`` is the CSV line number or the 1-based JSON array position."""

    row_number: int
    reason: QuarantineReason
    detail: str


@dataclass(frozen=True, slots=True)
class ImportResult:
    """Outcome of an import: accepted samples, refused rows, or a file-level rejection (then nothing else)."""

    samples: tuple[ScalarSample, ...] = ()
    rejected_rows: tuple[RowRejection, ...] = ()
    serials: tuple[str, ...] = ()
    rejection: Rejection | None = None

    @property
    def ok(self) -> bool:
        """Return True when the file as a whole could be read (some rows may still be rejected)."""
        return self.rejection is None


class _Reject(Exception):
    """Internal: carries a rejection out of nested validation to the one place that builds the result."""

    def __init__(self, reason: QuarantineReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail if len(detail) <= MAX_DETAIL_CHARS else detail[: MAX_DETAIL_CHARS - 3] + "..."


class _NonFiniteToken:
    """Internal sentinel the import JSON decoder puts where the text said NaN or Infinity."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token


# ---------------------------------------------------------------------------------------------------------------
# small validators; every message they build is ASCII and bounded, because it lands in a database text column


def _preview(raw: object) -> str:
    """Describe a payload value in at most ~60 ASCII characters."""
    if isinstance(raw, _NonFiniteToken):
        return raw.token
    if isinstance(raw, bool) or raw is None:
        return json.dumps(raw)
    if isinstance(raw, int):
        if abs(raw) >= 10**30:
            return f"an integer of {raw.bit_length()} bits"
        return str(raw)
    if isinstance(raw, float):
        return repr(raw)
    if isinstance(raw, str):
        shown = ascii(raw[:40])
        return shown if len(raw) <= 40 and len(shown) <= 60 else shown[:60] + "..."
    if isinstance(raw, list):
        return f"an array of {len(raw)}"
    if isinstance(raw, dict):
        return f"an object of {len(raw)} fields"
    return f"a {type(raw).__name__}"


def _where(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def _require_number(raw: object, what: str) -> float:
    if isinstance(raw, _NonFiniteToken):
        raise _Reject(QuarantineReason.NON_FINITE, f"{what} is {raw.token}")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _Reject(QuarantineReason.WRONG_TYPE, f"{what} must be a number, got {_preview(raw)}")
    try:
        value = float(raw)
    except OverflowError:
        raise _Reject(QuarantineReason.NON_FINITE, f"{what} is outside the float64 range") from None
    if not math.isfinite(value):
        raise _Reject(QuarantineReason.NON_FINITE, f"{what} is not finite ({_preview(raw)})")
    return value


def _iso(ts_ms: int) -> str:
    try:
        return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    except (OverflowError, ValueError, OSError):
        return "an unrepresentable time"


def _require_ts(raw: object, what: str, received_at_ms: int, limits: ParseLimits) -> int:
    if isinstance(raw, _NonFiniteToken):
        raise _Reject(QuarantineReason.NON_FINITE, f"{what} is {raw.token}")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _Reject(QuarantineReason.WRONG_TYPE, f"{what} must be integer epoch milliseconds, got {_preview(raw)}")
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise _Reject(QuarantineReason.NON_FINITE, f"{what} is not finite")
        if not raw.is_integer():
            raise _Reject(QuarantineReason.WRONG_TYPE, f"{what} must be whole milliseconds, got {raw!r}")
        ts_ms = int(raw)
    else:
        ts_ms = raw
    return _check_window(ts_ms, what, received_at_ms, limits)


def _check_window(ts_ms: int, what: str, received_at_ms: int, limits: ParseLimits) -> int:
    if ts_ms < limits.min_ts_ms:
        raise _Reject(
            QuarantineReason.TIMESTAMP_OUT_OF_WINDOW,
            f"{what} {_preview(ts_ms)} ({_iso(ts_ms)}) is before {_iso(limits.min_ts_ms)}",
        )
    if ts_ms > received_at_ms + limits.max_future_skew_ms:
        ahead = f"{(ts_ms - received_at_ms) / 1000:.0f} s" if ts_ms < 10**30 else "far"
        raise _Reject(
            QuarantineReason.TIMESTAMP_OUT_OF_WINDOW,
            f"{what} {_preview(ts_ms)} is {ahead} ahead of the receive time "
            f"(allowed skew {limits.max_future_skew_ms} ms)",
        )
    return ts_ms


def _require_seq(raw: object, what: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise _Reject(QuarantineReason.WRONG_TYPE, f"{what} must be an integer, got {_preview(raw)}")
    if not 0 <= raw <= _INT64_MAX:
        raise _Reject(QuarantineReason.WRONG_TYPE, f"{what} must be in [0, 2**63 - 1], got {_preview(raw)}")
    return raw


def _check_serial(raw: object, what: str, limits: ParseLimits) -> str:
    if not isinstance(raw, str):
        raise _Reject(QuarantineReason.BAD_SERIAL, f"{what} must be a string, got {_preview(raw)}")
    if not raw:
        raise _Reject(QuarantineReason.BAD_SERIAL, f"{what} is empty")
    if len(raw) > limits.max_serial_chars:
        raise _Reject(QuarantineReason.BAD_SERIAL, f"{what} is longer than {limits.max_serial_chars} characters")
    if _SERIAL_FORBIDDEN_RE.search(raw) or not raw.isprintable():
        raise _Reject(
            QuarantineReason.BAD_SERIAL,
            f"{what} {_preview(raw)} contains '+', '#', '/', white space or a control character",
        )
    return raw


def _check_name(raw: object, what: str, limits: ParseLimits) -> str:
    """Validate a telemetry key, waveform channel or pose id."""
    if not isinstance(raw, str):
        raise _Reject(QuarantineReason.WRONG_TYPE, f"{what} must be a string, got {_preview(raw)}")
    if not raw or len(raw) > limits.max_key_chars or not _KEY_RE.fullmatch(raw):
        raise _Reject(
            QuarantineReason.BAD_KEY,
            f"{what} {_preview(raw)} must be 1-{limits.max_key_chars} characters of [A-Za-z0-9_.-]",
        )
    return raw


def _check_unit(raw: object, what: str) -> str:
    if not isinstance(raw, str):
        raise _Reject(QuarantineReason.WRONG_TYPE, f"{what} must be a string, got {_preview(raw)}")
    if not 1 <= len(raw) <= _MAX_UNIT_CHARS or not _UNIT_RE.fullmatch(raw):
        raise _Reject(
            QuarantineReason.WRONG_TYPE,
            f"{what} {_preview(raw)} must be 1-{_MAX_UNIT_CHARS} printable ASCII characters without spaces",
        )
    return raw


def _check_identity(obj: Mapping[str, object], serial: str, path: str) -> None:
    for field in _IDENTITY_KEYS:
        if field in obj:
            named = obj[field]
            if not isinstance(named, str):
                raise _Reject(
                    QuarantineReason.WRONG_TYPE, f"{_where(path, field)} must be a string, got {_preview(named)}"
                )
            if named != serial:
                raise _Reject(
                    QuarantineReason.IDENTITY_MISMATCH,
                    f"{_where(path, field)} names robot {_preview(named)} but the message is for {_preview(serial)}",
                )


def _reject_fields(obj: Mapping[str, object], allowed: frozenset[str], path: str) -> None:
    extra = [key for key in obj if key not in allowed]
    if extra:
        shown = ", ".join(_preview(key) for key in extra[:5])
        raise _Reject(
            QuarantineReason.WRONG_TYPE,
            f"{path or 'message'} has unexpected field(s) {shown}; allowed: {sorted(allowed)}",
        )


def _state_value(raw: object, what: str, limits: ParseLimits) -> tuple[float | None, str | None]:
    if isinstance(raw, bool):
        return (1.0 if raw else 0.0), None
    if isinstance(raw, str):
        if len(raw) > limits.max_text_chars:
            raise _Reject(QuarantineReason.WRONG_TYPE, f"{what} text is longer than {limits.max_text_chars} characters")
        if not raw.isprintable():
            raise _Reject(QuarantineReason.WRONG_TYPE, f"{what} text {_preview(raw)} has non-printable characters")
        return None, raw
    if isinstance(raw, int | float | _NonFiniteToken):
        return _require_number(raw, what), None
    raise _Reject(QuarantineReason.WRONG_TYPE, f"{what} must be a number, boolean or short string, got {_preview(raw)}")


def _xyz(raw: object, what: str, axes: tuple[str, str, str]) -> tuple[float, float, float]:
    if not isinstance(raw, dict):
        raise _Reject(QuarantineReason.WRONG_TYPE, f"{what} must be an object with {', '.join(axes)}")
    _reject_fields(raw, frozenset(axes), what)
    missing = [axis for axis in axes if axis not in raw]
    if missing:
        raise _Reject(QuarantineReason.WRONG_TYPE, f"{what} is missing {', '.join(missing)}")
    a, b, c = (_require_number(raw[axis], f"{what}.{axis}") for axis in axes)
    return a, b, c


# ---------------------------------------------------------------------------------------------------------------
# decoding


def _raise_non_finite(token: str) -> object:
    raise _Reject(QuarantineReason.NON_FINITE, f"payload contains {token}")


def _decode_text(payload: bytes) -> str:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Reject(
            QuarantineReason.MALFORMED_JSON, f"payload is not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None
    if not text or text.isspace():
        raise _Reject(QuarantineReason.EMPTY, "payload is empty")
    return text


def _load_json(payload: bytes | str, parse_constant: Callable[[str], object] = _raise_non_finite) -> object:
    text = _decode_text(payload) if isinstance(payload, bytes) else payload
    if not text or text.isspace():
        raise _Reject(QuarantineReason.EMPTY, "payload is empty")
    try:
        return json.loads(text, parse_constant=parse_constant)
    except json.JSONDecodeError as exc:
        raise _Reject(
            QuarantineReason.MALFORMED_JSON, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise _Reject(QuarantineReason.MALFORMED_JSON, "JSON is nested too deeply") from None
    except ValueError:
        # Python refuses integer literals over 4300 digits; such a number is far outside float64 anyway.
        raise _Reject(QuarantineReason.NON_FINITE, "payload has an integer literal outside the float64 range") from None


# ---------------------------------------------------------------------------------------------------------------
# per-topic parsers


@dataclass(frozen=True, slots=True)
class _Context:
    received_at_ms: int
    limits: ParseLimits


def _telemetry_item(item: object, serial: str, path: str, ctx: _Context, out: list[ScalarSample]) -> None:
    if not isinstance(item, dict):
        raise _Reject(QuarantineReason.WRONG_TYPE, f"{path or 'message'} must be an object, got {_preview(item)}")
    _check_identity(item, serial, path)
    seq = _require_seq(item["seq"], _where(path, "seq")) if "seq" in item else None
    ts_ms = (
        _require_ts(item["ts"], _where(path, "ts"), ctx.received_at_ms, ctx.limits)
        if "ts" in item
        else ctx.received_at_ms
    )
    if "values" in item:
        values = item["values"]
        if not isinstance(values, dict):
            raise _Reject(
                QuarantineReason.WRONG_TYPE, f"{_where(path, 'values')} must be an object, got {_preview(values)}"
            )
        _reject_fields(item, _TS_VALUES_FIELDS, path)
        _check_identity(values, serial, _where(path, "values"))
        values_path = _where(path, "values")
        pairs: Iterable[tuple[str, object]] = ((key, raw) for key, raw in values.items() if key not in _IDENTITY_KEYS)
    else:
        values_path = path
        pairs = ((key, raw) for key, raw in item.items() if key not in _RESERVED_KEYS)
    limit = ctx.limits.max_samples_per_message
    for key, raw in pairs:
        _check_name(key, "telemetry key", ctx.limits)
        if key in _RESERVED_KEYS:
            raise _Reject(QuarantineReason.BAD_KEY, f"telemetry key {key!r} is reserved; put it at the top level")
        value, text = _state_value(raw, _where(values_path, key), ctx.limits)
        out.append(ScalarSample(serial=serial, key=key, ts_ms=ts_ms, value=value, text=text, seq=seq))
        if len(out) > limit:
            raise _Reject(QuarantineReason.OVERSIZE, f"message has more than {limit} samples")


def _telemetry(doc: object, serial: str, ctx: _Context) -> list[ScalarSample]:
    out: list[ScalarSample] = []
    if isinstance(doc, list):
        if not doc:
            raise _Reject(QuarantineReason.EMPTY, "telemetry array is empty")
        for index, item in enumerate(doc):
            _telemetry_item(item, serial, f"[{index}]", ctx, out)
    else:
        _telemetry_item(doc, serial, "", ctx, out)
    if not out:
        raise _Reject(QuarantineReason.EMPTY, "telemetry message has no values")
    return out


def _gateway(doc: object, ctx: _Context) -> list[ScalarSample]:
    if not isinstance(doc, dict):
        raise _Reject(
            QuarantineReason.WRONG_TYPE,
            f"gateway telemetry must be an object keyed by robot serial, got {_preview(doc)}",
        )
    out: list[ScalarSample] = []
    for serial, items in doc.items():
        _check_serial(serial, "gateway robot serial", ctx.limits)
        entries = [items] if isinstance(items, dict) else items
        if not isinstance(entries, list):
            raise _Reject(
                QuarantineReason.WRONG_TYPE,
                f"gateway entry for {_preview(serial)} must be an array, got {_preview(items)}",
            )
        for index, item in enumerate(entries):
            _telemetry_item(item, serial, f"{_preview(serial)}[{index}]", ctx, out)
    if not out:
        raise _Reject(QuarantineReason.EMPTY, "gateway telemetry has no values")
    return out


def _waveform_json(doc: object, serial: str, channel: str, ctx: _Context) -> WaveformBlock:
    if not isinstance(doc, dict):
        raise _Reject(QuarantineReason.WRONG_TYPE, f"waveform must be an object, got {_preview(doc)}")
    _check_identity(doc, serial, "")
    _reject_fields(doc, _WAVEFORM_FIELDS, "waveform")
    missing = [name for name in _WAVEFORM_REQUIRED if name not in doc]
    if missing:
        raise _Reject(QuarantineReason.WRONG_TYPE, f"waveform is missing {', '.join(missing)}")
    t0_ms = _require_ts(doc["t0"], "t0", ctx.received_at_ms, ctx.limits)
    rate_hz = _require_rate(doc["rate_hz"])
    unit = _check_unit(doc["unit"], "unit")
    raw_values = doc["values"]
    if not isinstance(raw_values, list):
        raise _Reject(QuarantineReason.WRONG_TYPE, f"values must be an array, got {_preview(raw_values)}")
    if not raw_values:
        raise _Reject(QuarantineReason.EMPTY, "waveform has no values")
    if len(raw_values) > ctx.limits.max_waveform_values:
        raise _Reject(QuarantineReason.OVERSIZE, f"waveform has more than {ctx.limits.max_waveform_values} values")
    for index, raw in enumerate(raw_values):
        # exact type test: bool is a subclass of int but is no sample
        if type(raw) is not float and type(raw) is not int:
            if isinstance(raw, _NonFiniteToken):
                raise _Reject(QuarantineReason.NON_FINITE, f"values[{index}] is {raw.token}")
            raise _Reject(QuarantineReason.WRONG_TYPE, f"values[{index}] must be a number, got {_preview(raw)}")
    try:
        wide = np.array(raw_values, dtype=np.float64)
    except OverflowError:
        raise _Reject(QuarantineReason.NON_FINITE, "a waveform value is outside the float64 range") from None
    with np.errstate(over="ignore"):
        values = wide.astype(np.float32)
    _require_finite_array(values)
    values.flags.writeable = False
    return WaveformBlock(serial=serial, channel=channel, t0_ms=t0_ms, rate_hz=rate_hz, unit=unit, values=values)


def _require_rate(raw: object) -> float:
    rate_hz = _require_number(raw, "rate_hz")
    if rate_hz <= 0:
        raise _Reject(QuarantineReason.WRONG_TYPE, f"rate_hz must be > 0, got {rate_hz!r}")
    return rate_hz


def _require_finite_array(values: npt.NDArray[np.float32]) -> None:
    finite = np.isfinite(values)
    if not finite.all():
        index = int(np.argmin(finite))
        raise _Reject(
            QuarantineReason.NON_FINITE, f"values[{index}] is not a finite float32 ({float(values[index])!r})"
        )


def _waveform_binary(payload: bytes, serial: str, channel: str, ctx: _Context) -> WaveformBlock:
    if len(payload) < WAVEFORM_HEADER_BYTES:
        raise _Reject(
            QuarantineReason.MALFORMED_BINARY, f"binary waveform shorter than its {WAVEFORM_HEADER_BYTES}-byte header"
        )
    _magic, version, rate_hz, t0_ms, unit_len = _WAVEFORM_HEADER.unpack_from(payload, 0)
    if version != WAVEFORM_VERSION:
        raise _Reject(QuarantineReason.MALFORMED_BINARY, f"binary waveform version {version} is not {WAVEFORM_VERSION}")
    start = WAVEFORM_HEADER_BYTES + unit_len
    if len(payload) < start:
        raise _Reject(QuarantineReason.MALFORMED_BINARY, "binary waveform ends inside its unit field")
    try:
        unit_text = payload[WAVEFORM_HEADER_BYTES:start].decode("ascii")
    except UnicodeDecodeError:
        raise _Reject(QuarantineReason.MALFORMED_BINARY, "binary waveform unit is not ASCII") from None
    unit = _check_unit(unit_text, "unit")
    body_bytes = len(payload) - start
    if body_bytes == 0:
        raise _Reject(QuarantineReason.EMPTY, "binary waveform has no values")
    if body_bytes % 4:
        raise _Reject(QuarantineReason.MALFORMED_BINARY, f"binary waveform body of {body_bytes} bytes is not float32s")
    count = body_bytes // 4
    if count > ctx.limits.max_waveform_values:
        raise _Reject(QuarantineReason.OVERSIZE, f"waveform has more than {ctx.limits.max_waveform_values} values")
    rate = _require_rate(rate_hz)
    t0 = _check_window(t0_ms, "t0", ctx.received_at_ms, ctx.limits)
    # zero-copy, read-only view of the payload; astype is a no-op on little-endian machines
    values = np.frombuffer(payload, dtype="<f4", count=count, offset=start).astype(np.float32, copy=False)
    _require_finite_array(values)
    values.flags.writeable = False
    return WaveformBlock(serial=serial, channel=channel, t0_ms=t0, rate_hz=rate, unit=unit, values=values)


def _pose_item(item: object, serial: str, path: str, ctx: _Context) -> PoseSample:
    if not isinstance(item, dict):
        raise _Reject(QuarantineReason.WRONG_TYPE, f"{path or 'pose message'} must be an object, got {_preview(item)}")
    _check_identity(item, serial, path)
    _reject_fields(item, _POSE_FIELDS, path)
    for name in ("pose", "cycle", "commanded", "attained"):
        if name not in item:
            raise _Reject(QuarantineReason.WRONG_TYPE, f"{_where(path, 'pose message')} is missing {name}")
    pose = _check_name(item["pose"], _where(path, "pose"), ctx.limits)
    cycle = item["cycle"]
    if isinstance(cycle, bool) or not isinstance(cycle, int) or not 0 <= cycle <= _MAX_CYCLE:
        raise _Reject(
            QuarantineReason.WRONG_TYPE,
            f"{_where(path, 'cycle')} must be an integer in [0, 2**31 - 1], got {_preview(cycle)}",
        )
    ts_ms = (
        _require_ts(item["ts"], _where(path, "ts"), ctx.received_at_ms, ctx.limits)
        if "ts" in item
        else ctx.received_at_ms
    )
    xyz = ("x", "y", "z")
    commanded = _xyz(item["commanded"], _where(path, "commanded"), xyz)
    attained = _xyz(item["attained"], _where(path, "attained"), xyz)
    commanded_abc: tuple[float, float, float] | None = None
    attained_abc: tuple[float, float, float] | None = None
    if "orientation" in item:
        orientation = item["orientation"]
        where = _where(path, "orientation")
        if not isinstance(orientation, dict):
            raise _Reject(QuarantineReason.WRONG_TYPE, f"{where} must be an object with commanded and attained")
        _reject_fields(orientation, frozenset({"commanded", "attained"}), where)
        abc = ("a", "b", "c")
        if "commanded" in orientation:
            commanded_abc = _xyz(orientation["commanded"], f"{where}.commanded", abc)
        if "attained" in orientation:
            attained_abc = _xyz(orientation["attained"], f"{where}.attained", abc)
    return PoseSample(
        serial=serial,
        pose=pose,
        cycle=cycle,
        ts_ms=ts_ms,
        commanded_xyz_mm=commanded,
        attained_xyz_mm=attained,
        commanded_abc_deg=commanded_abc,
        attained_abc_deg=attained_abc,
    )


def _poses(doc: object, serial: str, ctx: _Context) -> list[PoseSample]:
    if not isinstance(doc, list):
        return [_pose_item(doc, serial, "", ctx)]
    if not doc:
        raise _Reject(QuarantineReason.EMPTY, "pose array is empty")
    if len(doc) > ctx.limits.max_samples_per_message:
        raise _Reject(QuarantineReason.OVERSIZE, f"message has more than {ctx.limits.max_samples_per_message} poses")
    return [_pose_item(item, serial, f"[{index}]", ctx) for index, item in enumerate(doc)]


def _status_state(raw: object, what: str) -> ConnectionState:
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in ("online", "offline"):
            return ConnectionState(word)
    raise _Reject(QuarantineReason.WRONG_TYPE, f"{what} must be 'online' or 'offline', got {_preview(raw)}")


def _status(payload: bytes, serial: str, ctx: _Context) -> StatusUpdate:
    text = _decode_text(payload).strip()
    if text[0] not in '{"':
        state = _status_state(text, "status")
        return StatusUpdate(serial=serial, state=state, ts_ms=ctx.received_at_ms)
    doc = _load_json(text)
    if isinstance(doc, str):
        return StatusUpdate(serial=serial, state=_status_state(doc, "status"), ts_ms=ctx.received_at_ms)
    if not isinstance(doc, dict):
        raise _Reject(QuarantineReason.WRONG_TYPE, f"status must be a word or an object, got {_preview(doc)}")
    _check_identity(doc, serial, "")
    _reject_fields(doc, _STATUS_FIELDS, "status")
    if "state" not in doc:
        raise _Reject(QuarantineReason.WRONG_TYPE, "status object is missing state")
    state = _status_state(doc["state"], "state")
    ts_ms = _require_ts(doc["ts"], "ts", ctx.received_at_ms, ctx.limits) if "ts" in doc else ctx.received_at_ms
    return StatusUpdate(serial=serial, state=state, ts_ms=ts_ms)


def _route(topic: str) -> tuple[MessageKind, str, str]:
    """Split a topic into (kind, raw serial, raw channel); the serial is not validated yet."""
    if topic == GATEWAY_TELEMETRY_TOPIC:
        return MessageKind.GATEWAY_TELEMETRY, "", ""
    if topic.startswith(ROBOT_TOPIC_PREFIX):
        rest = topic[len(ROBOT_TOPIC_PREFIX) :]
        for suffix, kind in (
            ("/telemetry", MessageKind.TELEMETRY),
            ("/poses", MessageKind.POSES),
            ("/status", MessageKind.STATUS),
        ):
            if rest.endswith(suffix):
                return kind, rest[: -len(suffix)], ""
        head, separator, channel = rest.rpartition("/waveform/")
        if separator and "/" not in channel:
            return MessageKind.WAVEFORM, head, channel
    raise _Reject(QuarantineReason.UNKNOWN_TOPIC, f"topic {_preview(topic)} is not part of the refurb MQTT contract")


# ---------------------------------------------------------------------------------------------------------------
# public API


def parse_message(
    topic: str,
    payload: bytes,
    *,
    received_at_ms: int,
    limits: ParseLimits = ParseLimits(),  # noqa: B008 - frozen, so one shared default is safe
) -> ParseResult:
    """Parse one MQTT message into records or a rejection, without ever raising for its content.

    Parameters
    ----------
    topic : str
        MQTT topic the message arrived on (see the module docstring for the contract).
    payload : bytes
        Raw payload (``bytearray`` and ``memoryview`` are copied to ``bytes``; anything else is ``wrong_type``).
    received_at_ms : int
        Receive time in epoch milliseconds: the timestamp of server-time samples and the reference for the future-skew
        check ``ts_ms <= received_at_ms + limits.max_future_skew_ms``.
    limits : ParseLimits, optional
        Size and time limits.

    Returns
    -------
    ParseResult
        With records and ``rejection=None``, or with no records and a :class:`Rejection`.

    Raises
    ------
    TypeError
        Only for caller bugs: ``received_at_ms`` not an int or ``limits`` not a :class:`ParseLimits`. Nothing in
        ``topic`` or ``payload`` makes this function raise.

    Notes
    -----
    Implements the refurb MQTT contract (issue 3), whose telemetry forms are those of the ThingsBoard device and
    gateway MQTT APIs. Checks run in the order topic -> serial -> size -> decoding -> content, so the cheapest test
    rejects first.

    Examples
    --------
    >>> now = 1_714_550_400_000
    >>> result = parse_message("refurb/v1/robots/R1/telemetry", b'{"temp_c": 41.5, "seq": 7}', received_at_ms=now)
    >>> result.ok, result.serials
    (True, ('R1',))
    >>> result.scalars[0]
    ScalarSample(serial='R1', key='temp_c', ts_ms=1714550400000, value=41.5, text=None, seq=7)
    >>> parse_message("refurb/v1/robots/R1/telemetry", b'{"temp_c": NaN}', received_at_ms=now).rejection
    Rejection(reason=<QuarantineReason.NON_FINITE: 'non_finite'>, detail='payload contains NaN')
    >>> parse_message("refurb/v1/robots/R1/status", b"offline", received_at_ms=now).statuses[0].state
    <ConnectionState.OFFLINE: 'offline'>
    """
    if isinstance(received_at_ms, bool) or not isinstance(received_at_ms, int):
        raise TypeError(f"received_at_ms must be an int (epoch ms), got {type(received_at_ms).__name__}")
    if not isinstance(limits, ParseLimits):
        raise TypeError(f"limits must be a ParseLimits, got {type(limits).__name__}")
    topic_text = topic if isinstance(topic, str) else ""
    kind: MessageKind | None = None
    serial = ""
    try:
        if not isinstance(topic, str):
            raise _Reject(QuarantineReason.UNKNOWN_TOPIC, f"topic must be a string, got {_preview(topic)}")
        kind, raw_serial, channel = _route(topic)
        if kind is not MessageKind.GATEWAY_TELEMETRY:
            serial = _check_serial(raw_serial, "topic serial", limits)
        if kind is MessageKind.WAVEFORM:
            _check_name(channel, "waveform channel", limits)
        return _parse_payload(topic, kind, serial, channel, payload, _Context(received_at_ms, limits))
    except _Reject as reject:
        rejection = Rejection(reason=reject.reason, detail=reject.detail)
    except Exception as exc:  # noqa: BLE001 - the MQTT callback must never raise (house rule 6)
        rejection = Rejection(
            reason=QuarantineReason.PARSER_ERROR, detail=f"{type(exc).__name__}: {_preview(str(exc))}"
        )
    return ParseResult(
        topic=topic_text,
        kind=kind,
        received_at_ms=received_at_ms,
        serials=(serial,) if serial else (),
        rejection=rejection,
    )


def _parse_payload(
    topic: str, kind: MessageKind, serial: str, channel: str, payload: object, ctx: _Context
) -> ParseResult:
    if isinstance(payload, bytearray | memoryview):
        payload = bytes(payload)
    if not isinstance(payload, bytes):
        raise _Reject(QuarantineReason.WRONG_TYPE, f"payload must be bytes, got {type(payload).__name__}")
    limits = ctx.limits
    binary = kind is MessageKind.WAVEFORM and payload.startswith(WAVEFORM_MAGIC)
    max_bytes = limits.max_waveform_binary_bytes if binary else limits.max_payload_bytes
    if len(payload) > max_bytes:
        raise _Reject(QuarantineReason.OVERSIZE, f"payload of {len(payload)} bytes is over the {max_bytes}-byte limit")
    if not payload:
        raise _Reject(QuarantineReason.EMPTY, "payload is empty")
    received_at_ms = ctx.received_at_ms
    if kind is MessageKind.TELEMETRY:
        scalars = tuple(_telemetry(_load_json(payload), serial, ctx))
        return ParseResult(topic, kind, received_at_ms, serials=(serial,), scalars=scalars)
    if kind is MessageKind.GATEWAY_TELEMETRY:
        scalars = tuple(_gateway(_load_json(payload), ctx))
        serials = tuple(sorted({sample.serial for sample in scalars}))
        return ParseResult(topic, kind, received_at_ms, serials=serials, scalars=scalars)
    if kind is MessageKind.WAVEFORM:
        block = (
            _waveform_binary(payload, serial, channel, ctx)
            if binary
            else _waveform_json(_load_json(payload), serial, channel, ctx)
        )
        return ParseResult(topic, kind, received_at_ms, serials=(serial,), waveforms=(block,))
    if kind is MessageKind.POSES:
        poses = tuple(_poses(_load_json(payload), serial, ctx))
        return ParseResult(topic, kind, received_at_ms, serials=(serial,), poses=poses)
    status = _status(payload, serial, ctx)
    return ParseResult(topic, kind, received_at_ms, serials=(serial,), statuses=(status,))


def encode_waveform_binary(t0_ms: int, rate_hz: float, unit: str, values: npt.ArrayLike) -> bytes:
    """Encode a waveform block in the binary ``RFW1`` form that :func:`parse_message` accepts.

    Parameters
    ----------
    t0_ms : int
        Epoch milliseconds of the first sample (int64).
    rate_hz : float
        Sampling rate, finite and > 0.
    unit : str
        1-16 printable ASCII characters without spaces, e.g. ``"m/s2"``.
    values : array_like
        1-D samples; stored as little-endian float32 and must be finite after that conversion.

    Returns
    -------
    bytes
        ``struct.pack("<4sBdqB", b"RFW1", 1, rate_hz, t0_ms, len(unit)) + unit + float32 LE values``.

    Raises
    ------
    TypeError, ValueError
        On an invalid argument; the message names it.

    Examples
    --------
    >>> blob = encode_waveform_binary(1_714_550_400_000, 25600.0, "m/s2", [0.0, 0.5, -0.5])
    >>> blob[:5], len(blob)
    (b'RFW1\\x01', 38)
    >>> block = parse_message("refurb/v1/robots/R1/waveform/j3_accel", blob,
    ...                       received_at_ms=1_714_550_400_000).waveforms[0]
    >>> block.channel, block.rate_hz, block.unit, block.values.tolist()
    ('j3_accel', 25600.0, 'm/s2', [0.0, 0.5, -0.5])
    """
    if isinstance(t0_ms, bool) or not isinstance(t0_ms, int):
        raise TypeError(f"t0_ms must be an int, got {type(t0_ms).__name__}")
    if not _INT64_MIN <= t0_ms <= _INT64_MAX:
        raise ValueError("t0_ms must fit in an int64")
    if isinstance(rate_hz, bool) or not isinstance(rate_hz, int | float):
        raise TypeError(f"rate_hz must be a number, got {type(rate_hz).__name__}")
    if not math.isfinite(rate_hz) or rate_hz <= 0:
        raise ValueError(f"rate_hz must be finite and > 0, got {rate_hz!r}")
    if not isinstance(unit, str) or not 1 <= len(unit) <= _MAX_UNIT_CHARS or not _UNIT_RE.fullmatch(unit):
        raise ValueError(f"unit must be 1-{_MAX_UNIT_CHARS} printable ASCII characters without spaces, got {unit!r}")
    with np.errstate(over="ignore"):
        array = np.asarray(values, dtype=np.float64).astype("<f4")
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"values must be a non-empty 1-D sequence, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("values must be finite float32 numbers")
    header = _WAVEFORM_HEADER.pack(WAVEFORM_MAGIC, WAVEFORM_VERSION, float(rate_hz), t0_ms, len(unit))
    return header + unit.encode("ascii") + array.tobytes()


# ---------------------------------------------------------------------------------------------------------------
# historical import


def _import_non_finite(token: str) -> object:
    return _NonFiniteToken(token)


def _csv_number(cell: str, what: str) -> int:
    text = cell.strip()
    if re.fullmatch(r"[+-]?\d{1,19}", text):
        return int(text)
    raise _Reject(QuarantineReason.WRONG_TYPE, f"{what} must be an integer, got {_preview(cell)}")


def _csv_ts(cell: str) -> int:
    text = cell.strip()
    if re.fullmatch(r"[+-]?\d{1,19}", text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Reject(
            QuarantineReason.WRONG_TYPE, f"ts must be epoch ms or ISO 8601 with a UTC offset, got {_preview(cell)}"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise _Reject(QuarantineReason.WRONG_TYPE, f"ts {_preview(cell)} has no UTC offset")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _csv_value(cell: str) -> object:
    """Type a CSV value cell: booleans and numbers as in JSON, anything else is text."""
    text = cell.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if not text:
        raise _Reject(QuarantineReason.WRONG_TYPE, "value is empty")
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        # "nan", "inf" and overflowing literals such as 1e400
        return _NonFiniteToken(_preview(cell))
    return number


def _import_row(row: object, csv_cells: bool, ctx: _Context) -> ScalarSample:
    if not isinstance(row, Mapping):
        raise _Reject(QuarantineReason.WRONG_TYPE, f"row must be an object, got {_preview(row)}")
    extra = [key for key in row if key not in _IMPORT_FIELDS]
    if extra:
        shown = ", ".join(_preview(key) for key in extra[:5])
        raise _Reject(QuarantineReason.WRONG_TYPE, f"row has unexpected field(s) {shown}")
    missing = [name for name in _IMPORT_COLUMNS if name not in row]
    if missing:
        raise _Reject(QuarantineReason.WRONG_TYPE, f"row is missing {', '.join(missing)}")
    serial = _check_serial(row["serial"], "serial", ctx.limits)
    key = _check_name(row["key"], "key", ctx.limits)
    if key in _RESERVED_KEYS:
        raise _Reject(QuarantineReason.BAD_KEY, f"key {key!r} is reserved")
    raw_ts, raw_value, raw_seq = row["ts"], row["value"], row.get("seq")
    if csv_cells:  # csv.reader yields only strings
        raw_ts = _csv_ts(str(raw_ts))
        raw_value = _csv_value(str(raw_value))
        raw_seq = _csv_number(raw_seq, "seq") if isinstance(raw_seq, str) and raw_seq.strip() else None
    ts_ms = _require_ts(raw_ts, "ts", ctx.received_at_ms, ctx.limits)
    value, text = _state_value(raw_value, "value", ctx.limits)
    seq = None if raw_seq is None else _require_seq(raw_seq, "seq")
    return ScalarSample(serial=serial, key=key, ts_ms=ts_ms, value=value, text=text, seq=seq)


def _import_rows(rows: Iterable[tuple[int, object]], csv_cells: bool, ctx: _Context) -> ImportResult:
    samples: list[ScalarSample] = []
    rejected: list[RowRejection] = []
    for count, (row_number, row) in enumerate(rows, start=1):
        if count > ctx.limits.max_import_rows:
            return ImportResult(
                rejection=Rejection(
                    QuarantineReason.OVERSIZE, f"import has more than {ctx.limits.max_import_rows} rows"
                )
            )
        if isinstance(row, _Reject):
            rejected.append(RowRejection(row_number=row_number, reason=row.reason, detail=row.detail))
            continue
        try:
            samples.append(_import_row(row, csv_cells, ctx))
        except _Reject as reject:
            rejected.append(RowRejection(row_number=row_number, reason=reject.reason, detail=reject.detail))
    if not samples and not rejected:
        return ImportResult(rejection=Rejection(QuarantineReason.EMPTY, "import has no rows"))
    serials = tuple(sorted({sample.serial for sample in samples}))
    return ImportResult(samples=tuple(samples), rejected_rows=tuple(rejected), serials=serials)


def _check_call(received_at_ms: object, limits: object) -> None:
    if isinstance(received_at_ms, bool) or not isinstance(received_at_ms, int):
        raise TypeError(f"received_at_ms must be an int (epoch ms), got {type(received_at_ms).__name__}")
    if not isinstance(limits, ParseLimits):
        raise TypeError(f"limits must be a ParseLimits, got {type(limits).__name__}")


def parse_import_rows(
    rows: Iterable[Mapping[str, object]],
    *,
    received_at_ms: int,
    limits: ParseLimits = ParseLimits(),  # noqa: B008 - frozen, so one shared default is safe
) -> ImportResult:
    """Validate historical rows ``{"serial", "key", "ts", "value", "seq"?}`` with the MQTT telemetry rules.

    Parameters
    ----------
    rows : iterable of mapping
        Typed rows as JSON would give them: ``ts`` integer epoch ms, ``value`` a finite number, a boolean or a short
        string, ``seq`` an optional integer.
    received_at_ms : int
        Import time in epoch ms; the future-skew check is relative to it.
    limits : ParseLimits, optional
        Size and time limits; more than ``max_import_rows`` rows rejects the whole import as ``oversize``.

    Returns
    -------
    ImportResult
        Accepted samples (in input order; the database deduplicates on (serial, key, ts_ms)), rejected rows with
        their 1-based position and reason, and the serials concerned (the caller checks that the robots exist).

    Notes
    -----
    Unlike a message, an import is judged row by row: one bad row does not reject the file.

    Examples
    --------
    >>> now = 1_714_550_400_000
    >>> result = parse_import_rows(
    ...     [{"serial": "R1", "key": "temp_c", "ts": now - 60_000, "value": 40.0},
    ...      {"serial": "R1", "key": "temp_c", "ts": 0, "value": 41.0}],
    ...     received_at_ms=now)
    >>> len(result.samples), result.rejected_rows[0].row_number, result.rejected_rows[0].reason
    (1, 2, <QuarantineReason.TIMESTAMP_OUT_OF_WINDOW: 'timestamp_out_of_window'>)
    """
    _check_call(received_at_ms, limits)
    ctx = _Context(received_at_ms, limits)
    try:
        return _import_rows(enumerate(rows, start=1), False, ctx)
    except Exception as exc:  # noqa: BLE001 - e.g. a caller's iterator failing; report, never crash the import
        return ImportResult(
            rejection=Rejection(QuarantineReason.PARSER_ERROR, f"{type(exc).__name__}: {_preview(str(exc))}")
        )


def parse_import_json(
    payload: bytes | str,
    *,
    received_at_ms: int,
    limits: ParseLimits = ParseLimits(),  # noqa: B008 - frozen, so one shared default is safe
) -> ImportResult:
    """Parse a JSON import file: an array of row objects as :func:`parse_import_rows` takes them.

    ``NaN``/``Infinity`` reject only their row (``non_finite``); a file that is not a JSON array of objects is rejected
    whole. No byte limit applies here: the HTTP layer bounds the request body.

    Examples
    --------
    >>> data = (b'[{"serial": "R1", "key": "temp_c", "ts": 1714550000000, "value": NaN},'
    ...         b' {"serial": "R1", "key": "mode", "ts": 1714550000000, "value": "AUTO"}]')
    >>> result = parse_import_json(data, received_at_ms=1_714_550_400_000)
    >>> result.samples[0].text, result.rejected_rows[0].reason
    ('AUTO', <QuarantineReason.NON_FINITE: 'non_finite'>)
    """
    _check_call(received_at_ms, limits)
    ctx = _Context(received_at_ms, limits)
    try:
        if isinstance(payload, bytearray | memoryview):
            payload = bytes(payload)
        doc = _load_json(payload, parse_constant=_import_non_finite)
        if not isinstance(doc, list):
            raise _Reject(QuarantineReason.WRONG_TYPE, f"import must be a JSON array of rows, got {_preview(doc)}")
        return _import_rows(enumerate(doc, start=1), False, ctx)
    except _Reject as reject:
        return ImportResult(rejection=Rejection(reject.reason, reject.detail))
    except Exception as exc:  # noqa: BLE001 - never crash an import request
        return ImportResult(
            rejection=Rejection(QuarantineReason.PARSER_ERROR, f"{type(exc).__name__}: {_preview(str(exc))}")
        )


def _csv_rows(
    reader: Iterator[list[str]], line_number: Callable[[], int], header: list[str]
) -> Iterator[tuple[int, object]]:
    width = len(header)
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        if len(cells) != width:
            yield (
                line_number(),
                _Reject(QuarantineReason.MALFORMED_CSV, f"line has {len(cells)} cells, the header {width}"),
            )
        else:
            yield line_number(), dict(zip(header, cells, strict=True))


def parse_import_csv(
    payload: bytes | str,
    *,
    received_at_ms: int,
    limits: ParseLimits = ParseLimits(),  # noqa: B008 - frozen, so one shared default is safe
) -> ImportResult:
    """Parse a CSV import file with a header naming the columns ``serial,key,ts,value`` and optionally ``seq``.

    Cells are typed before the shared validation: ``ts`` is integer epoch ms or ISO 8601 with a UTC offset
    (``2024-05-01T08:00:00Z``); ``value`` is ``true``/``false`` (1.0 / 0.0), a number (``nan``/``inf`` rejected as
    ``non_finite``) or else text; an empty ``seq`` cell means none. Column order is free; other columns reject the
    file. ``row_number`` in rejections is the CSV line number (the header is line 1).

    Examples
    --------
    >>> text = "serial,key,ts,value\\nR1,temp_c,2024-05-01T07:59:00Z,40.5\\nR1,temp_c,1714550000000,nan\\n"
    >>> result = parse_import_csv(text, received_at_ms=1_714_550_400_000)
    >>> result.samples[0].ts_ms, result.samples[0].value, result.rejected_rows[0].row_number
    (1714550340000, 40.5, 3)
    """
    _check_call(received_at_ms, limits)
    ctx = _Context(received_at_ms, limits)
    try:
        if isinstance(payload, str):
            text = payload
        elif isinstance(payload, bytes | bytearray | memoryview):
            try:
                text = bytes(payload).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Reject(
                    QuarantineReason.MALFORMED_CSV, f"CSV is not UTF-8 ({exc.reason} at byte {exc.start})"
                ) from None
        else:
            raise _Reject(QuarantineReason.WRONG_TYPE, f"CSV must be text or bytes, got {type(payload).__name__}")
        reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
        try:
            header = [name.strip().lower() for name in next(reader)]
        except StopIteration:
            raise _Reject(QuarantineReason.EMPTY, "CSV file is empty") from None
        missing = [name for name in _IMPORT_COLUMNS if name not in header]
        unknown = [name for name in header if name not in _IMPORT_FIELDS]
        if missing or unknown or len(set(header)) != len(header):
            raise _Reject(
                QuarantineReason.MALFORMED_CSV,
                f"CSV header {_preview(','.join(header))} must name serial, key, ts, value and optionally seq, "
                "each once",
            )
        return _import_rows(_csv_rows(reader, lambda: reader.line_num, header), True, ctx)
    except _Reject as reject:
        return ImportResult(rejection=Rejection(reject.reason, reject.detail))
    except csv.Error as exc:
        return ImportResult(rejection=Rejection(QuarantineReason.MALFORMED_CSV, f"CSV error: {_preview(str(exc))}"))
    except Exception as exc:  # noqa: BLE001 - never crash an import request
        return ImportResult(
            rejection=Rejection(QuarantineReason.PARSER_ERROR, f"{type(exc).__name__}: {_preview(str(exc))}")
        )
