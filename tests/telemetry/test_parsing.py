"""Tests for the pure MQTT/import parser: every payload form, every rejection reason, and fuzzing."""

from __future__ import annotations

import ast
import json
import math
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from refurb.telemetry import parsing
from refurb.telemetry.parsing import (
    MIN_TS_MS,
    WAVEFORM_HEADER_BYTES,
    ConnectionState,
    MessageKind,
    ParseLimits,
    ParseResult,
    QuarantineReason,
    encode_waveform_binary,
    parse_import_csv,
    parse_import_json,
    parse_import_rows,
    parse_message,
)

NOW_MS = 1_714_550_400_000  # 2024-05-01T08:00:00Z
TELEMETRY = "refurb/v1/robots/R1/telemetry"
GATEWAY = "v1/gateway/telemetry"
WAVEFORM = "refurb/v1/robots/R1/waveform/j3_accel"
POSES = "refurb/v1/robots/R1/poses"
STATUS = "refurb/v1/robots/R1/status"
ALL_TOPICS = (TELEMETRY, GATEWAY, WAVEFORM, POSES, STATUS)


def parse(topic: str, payload: bytes | str | object, **kwargs: object) -> ParseResult:
    raw = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    return parse_message(topic, raw, received_at_ms=NOW_MS, **kwargs)  # type: ignore[arg-type]


def accepted(topic: str, payload: bytes | str | object, **kwargs: object) -> ParseResult:
    result = parse(topic, payload, **kwargs)
    assert result.rejection is None, result.rejection
    assert result.ok
    return result


def reason_of(topic: str, payload: bytes | str | object, **kwargs: object) -> QuarantineReason:
    result = parse(topic, payload, **kwargs)
    assert result.rejection is not None, f"expected a rejection, got {result}"
    assert not result.ok
    assert result.record_count == 0
    assert result.rejection.detail.isascii()
    return result.rejection.reason


def pose(**overrides: object) -> dict[str, object]:
    message: dict[str, object] = {
        "pose": "P1",
        "cycle": 3,
        "commanded": {"x": 500.0, "y": 0.0, "z": 400.0},
        "attained": {"x": 500.12, "y": 0.05, "z": 399.91},
    }
    message.update(overrides)
    return message


def waveform(**overrides: object) -> dict[str, object]:
    message: dict[str, object] = {"t0": NOW_MS - 1000, "rate_hz": 25_600.0, "unit": "m/s2", "values": [0.0, 1.5, -2]}
    message.update(overrides)
    return message


# ---------------------------------------------------------------------------------------------------------------
# telemetry forms


def test_plain_form_uses_receive_time_and_separates_numbers_from_text() -> None:
    result = accepted(TELEMETRY, {"temp_c": 41.5, "current_a": 3, "estop": False, "mode": "AUTO", "seq": 7})

    assert result.kind is MessageKind.TELEMETRY
    assert result.serials == ("R1",)
    by_key = {sample.key: sample for sample in result.scalars}
    assert set(by_key) == {"temp_c", "current_a", "estop", "mode"}  # seq is metadata, not a key
    assert all(sample.ts_ms == NOW_MS and sample.seq == 7 and sample.serial == "R1" for sample in result.scalars)
    assert (by_key["temp_c"].value, by_key["temp_c"].text) == (41.5, None)
    assert isinstance(by_key["current_a"].value, float)
    assert (by_key["estop"].value, by_key["estop"].text) == (0.0, None)
    assert (by_key["mode"].value, by_key["mode"].text) == (None, "AUTO")


def test_plain_form_reads_reserved_ts_as_device_time() -> None:
    result = accepted(TELEMETRY, {"ts": NOW_MS - 5_000, "temp_c": 40.0})
    assert [(s.key, s.ts_ms) for s in result.scalars] == [("temp_c", NOW_MS - 5_000)]


def test_ts_values_form_with_top_level_seq() -> None:
    result = accepted(TELEMETRY, {"ts": NOW_MS - 60_000, "seq": 12, "values": {"temp_c": 40.0, "on": True}})
    assert [(s.key, s.ts_ms, s.value, s.seq) for s in result.scalars] == [
        ("temp_c", NOW_MS - 60_000, 40.0, 12),
        ("on", NOW_MS - 60_000, 1.0, 12),
    ]


def test_array_mixing_both_forms_keeps_each_elements_seq_and_time() -> None:
    result = accepted(
        TELEMETRY,
        [
            {"ts": NOW_MS - 2000, "values": {"a": 1}, "seq": 1},
            {"ts": NOW_MS - 1000, "values": {"a": 2}, "seq": 2},
            {"b": 3},
        ],
    )
    assert [(s.key, s.ts_ms, s.value, s.seq) for s in result.scalars] == [
        ("a", NOW_MS - 2000, 1.0, 1),
        ("a", NOW_MS - 1000, 2.0, 2),
        ("b", NOW_MS, 3.0, None),
    ]


def test_matching_identity_fields_are_accepted_and_not_stored() -> None:
    result = accepted(TELEMETRY, {"serial": "R1", "robot": "R1", "temp_c": 1.0})
    assert [s.key for s in result.scalars] == ["temp_c"]
    result = accepted(TELEMETRY, {"ts": NOW_MS, "values": {"serial": "R1", "temp_c": 1.0}})
    assert [s.key for s in result.scalars] == ["temp_c"]


def test_float_timestamp_with_whole_milliseconds_is_accepted() -> None:
    result = accepted(TELEMETRY, {"ts": float(NOW_MS), "values": {"a": 1}})
    assert result.scalars[0].ts_ms == NOW_MS
    assert isinstance(result.scalars[0].ts_ms, int)


def test_key_and_text_limits_are_inclusive() -> None:
    key = "k" * 64
    result = accepted(TELEMETRY, {key: "x" * 64, "a.b-c_D9": 0})
    assert [s.key for s in result.scalars] == [key, "a.b-c_D9"]


def test_gateway_form_names_every_robot() -> None:
    result = accepted(
        GATEWAY,
        {
            "R2": [{"ts": NOW_MS - 10, "values": {"temp_c": 40.0}}, {"ts": NOW_MS - 5, "values": {"temp_c": 41.0}}],
            "R1": [{"ts": NOW_MS, "values": {"mode": "RUN"}, "seq": 4}],
            "R3": {"ts": NOW_MS, "values": {"x": 1}},
        },
    )
    assert result.kind is MessageKind.GATEWAY_TELEMETRY
    assert result.serials == ("R1", "R2", "R3")
    assert [(s.serial, s.key, s.ts_ms) for s in result.scalars] == [
        ("R2", "temp_c", NOW_MS - 10),
        ("R2", "temp_c", NOW_MS - 5),
        ("R1", "mode", NOW_MS),
        ("R3", "x", NOW_MS),
    ]
    assert result.scalars[2].seq == 4


# ---------------------------------------------------------------------------------------------------------------
# waveforms


def test_waveform_json_block() -> None:
    result = accepted(WAVEFORM, waveform())
    (block,) = result.waveforms
    assert (block.serial, block.channel, block.t0_ms, block.rate_hz, block.unit) == (
        "R1",
        "j3_accel",
        NOW_MS - 1000,
        25_600.0,
        "m/s2",
    )
    assert block.values.dtype == np.float32
    assert_array_equal(block.values, np.array([0.0, 1.5, -2.0], dtype=np.float32))
    assert not block.values.flags.writeable
    assert block.duration_s == pytest.approx(3 / 25_600.0)


def test_waveform_binary_round_trip() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(0, 3, 10_000).astype(np.float32)
    blob = encode_waveform_binary(NOW_MS - 500, 51_200.0, "m/s2", values)

    assert blob[:4] == b"RFW1"
    assert blob[4] == 1
    assert struct.unpack_from("<d", blob, 5)[0] == 51_200.0
    assert struct.unpack_from("<q", blob, 13)[0] == NOW_MS - 500
    assert blob[21] == 4
    assert blob[22:26] == b"m/s2"
    assert len(blob) == WAVEFORM_HEADER_BYTES + 4 + 4 * values.size

    (block,) = accepted(WAVEFORM, blob).waveforms
    assert (block.t0_ms, block.rate_hz, block.unit, block.channel) == (NOW_MS - 500, 51_200.0, "m/s2", "j3_accel")
    assert_array_equal(block.values, values)
    assert not block.values.flags.writeable


@pytest.mark.parametrize("wrap", [bytearray, memoryview])
def test_binary_waveform_from_other_buffers_is_copied(wrap: type) -> None:
    buffer = bytearray(encode_waveform_binary(NOW_MS, 100.0, "A", [1.0, 2.0]))
    result = parse_message(WAVEFORM, wrap(buffer), received_at_ms=NOW_MS)
    buffer[-4:] = struct.pack("<f", 99.0)  # the caller reusing its buffer must not change the block
    assert result.waveforms[0].values.tolist() == [1.0, 2.0]


def test_binary_waveform_may_exceed_the_json_payload_limit() -> None:
    values = np.zeros(200_000, dtype=np.float32)  # 800 kB > 256 KiB
    blob = encode_waveform_binary(NOW_MS, 25_600.0, "m/s2", values)
    assert len(blob) > ParseLimits().max_payload_bytes
    assert accepted(WAVEFORM, blob).waveforms[0].values.size == 200_000
    big_json = json.dumps(waveform(values=[0.0] * 100_000)).encode()
    assert reason_of(WAVEFORM, big_json) is QuarantineReason.OVERSIZE


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"t0_ms": 1.5}, TypeError),
        ({"t0_ms": 2**63}, ValueError),
        ({"rate_hz": 0.0}, ValueError),
        ({"rate_hz": math.nan}, ValueError),
        ({"unit": ""}, ValueError),
        ({"unit": "m s"}, ValueError),
        ({"unit": "x" * 17}, ValueError),
        ({"values": []}, ValueError),
        ({"values": [[1.0]]}, ValueError),
        ({"values": [1.0, math.inf]}, ValueError),
        ({"values": [1e39]}, ValueError),  # overflows float32
    ],
)
def test_encode_waveform_binary_validates(kwargs: dict[str, object], error: type[Exception]) -> None:
    arguments: dict[str, object] = {"t0_ms": NOW_MS, "rate_hz": 100.0, "unit": "g", "values": [1.0]}
    arguments.update(kwargs)
    with pytest.raises(error):
        encode_waveform_binary(**arguments)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# poses and status


def test_pose_single_and_array_with_orientation() -> None:
    (single,) = accepted(POSES, pose(ts=NOW_MS - 100)).poses
    assert single.serial == "R1"
    assert single.pose == "P1"
    assert single.cycle == 3
    assert single.ts_ms == NOW_MS - 100
    assert single.commanded_xyz_mm == (500.0, 0.0, 400.0)
    assert single.attained_xyz_mm == (500.12, 0.05, 399.91)
    assert single.commanded_abc_deg is None

    orientation = {"commanded": {"a": 0, "b": 90, "c": 0}, "attained": {"a": 0.01, "b": 89.98, "c": 0}}
    result = accepted(POSES, [pose(), pose(pose="P2", cycle=4, orientation=orientation)])
    assert [(p.pose, p.cycle, p.ts_ms) for p in result.poses] == [("P1", 3, NOW_MS), ("P2", 4, NOW_MS)]
    assert result.poses[1].commanded_abc_deg == (0.0, 90.0, 0.0)
    assert result.poses[1].attained_abc_deg == (0.01, 89.98, 0.0)


@pytest.mark.parametrize(
    ("payload", "state", "ts_ms"),
    [
        (b"online", ConnectionState.ONLINE, NOW_MS),
        (b" OFFLINE\n", ConnectionState.OFFLINE, NOW_MS),
        (b'"online"', ConnectionState.ONLINE, NOW_MS),
        (b'{"state": "offline"}', ConnectionState.OFFLINE, NOW_MS),
        (f'{{"state": "online", "ts": {NOW_MS - 9}, "serial": "R1"}}'.encode(), ConnectionState.ONLINE, NOW_MS - 9),
    ],
)
def test_status_forms(payload: bytes, state: ConnectionState, ts_ms: int) -> None:
    result = accepted(STATUS, payload)
    assert result.kind is MessageKind.STATUS
    assert [(s.serial, s.state, s.ts_ms) for s in result.statuses] == [("R1", state, ts_ms)]


# ---------------------------------------------------------------------------------------------------------------
# every rejection reason

BIG = 10**400
REJECTIONS: list[tuple[str, str, bytes | object, QuarantineReason]] = [
    # malformed_json
    ("truncated", TELEMETRY, b'{"a": 1', QuarantineReason.MALFORMED_JSON),
    ("not utf-8", TELEMETRY, b'{"a": "\xff"}', QuarantineReason.MALFORMED_JSON),
    ("utf-8 bom", TELEMETRY, b'\xef\xbb\xbf{"a": 1}', QuarantineReason.MALFORMED_JSON),
    ("deep nesting", TELEMETRY, b"[" * 100_000, QuarantineReason.MALFORMED_JSON),
    ("trailing garbage", POSES, b"{}x", QuarantineReason.MALFORMED_JSON),
    ("bad status json", STATUS, b'{"state": ', QuarantineReason.MALFORMED_JSON),
    ("waveform json garbage", WAVEFORM, b"RFW", QuarantineReason.MALFORMED_JSON),
    # malformed_binary
    ("short header", WAVEFORM, b"RFW1\x01\x00", QuarantineReason.MALFORMED_BINARY),
    (
        "bad version",
        WAVEFORM,
        struct.pack("<4sBdqB", b"RFW1", 2, 100.0, NOW_MS, 1) + b"g" + b"\x00" * 4,
        QuarantineReason.MALFORMED_BINARY,
    ),
    (
        "unit runs past the end",
        WAVEFORM,
        struct.pack("<4sBdqB", b"RFW1", 1, 100.0, NOW_MS, 40) + b"g",
        QuarantineReason.MALFORMED_BINARY,
    ),
    (
        "body not float32s",
        WAVEFORM,
        struct.pack("<4sBdqB", b"RFW1", 1, 100.0, NOW_MS, 1) + b"g" + b"\x00" * 6,
        QuarantineReason.MALFORMED_BINARY,
    ),
    (
        "unit not ascii",
        WAVEFORM,
        struct.pack("<4sBdqB", b"RFW1", 1, 100.0, NOW_MS, 2) + "µ".encode() + b"\x00" * 4,
        QuarantineReason.MALFORMED_BINARY,
    ),
    # non_finite
    ("NaN", TELEMETRY, b'{"a": NaN}', QuarantineReason.NON_FINITE),
    ("Infinity", TELEMETRY, b'{"ts": 1714550400000, "values": {"a": Infinity}}', QuarantineReason.NON_FINITE),
    ("-Infinity", GATEWAY, b'{"R1": [{"ts": 1714550400000, "values": {"a": -Infinity}}]}', QuarantineReason.NON_FINITE),
    ("float overflow", TELEMETRY, b'{"a": 1e400}', QuarantineReason.NON_FINITE),
    ("int beyond float64", TELEMETRY, f'{{"a": {BIG}}}'.encode(), QuarantineReason.NON_FINITE),
    ("int over 4300 digits", TELEMETRY, b'{"a": ' + b"9" * 5000 + b"}", QuarantineReason.NON_FINITE),
    (
        "NaN in waveform",
        WAVEFORM,
        b'{"t0": 1714550400000, "rate_hz": 1, "unit": "g", "values": [1, NaN]}',
        QuarantineReason.NON_FINITE,
    ),
    ("waveform beyond float32", WAVEFORM, waveform(values=[1.0, 1e39]), QuarantineReason.NON_FINITE),
    (
        "waveform int beyond float64",
        WAVEFORM,
        f'{{"t0": {NOW_MS}, "rate_hz": 1, "unit": "g", "values": [{BIG}]}}'.encode(),
        QuarantineReason.NON_FINITE,
    ),
    (
        "binary NaN sample",
        WAVEFORM,
        struct.pack("<4sBdqB", b"RFW1", 1, 100.0, NOW_MS, 1) + b"g" + struct.pack("<2f", 1, math.nan),
        QuarantineReason.NON_FINITE,
    ),
    (
        "binary NaN rate",
        WAVEFORM,
        struct.pack("<4sBdqB", b"RFW1", 1, math.nan, NOW_MS, 1) + b"g" + b"\x00" * 4,
        QuarantineReason.NON_FINITE,
    ),
    (
        "pose NaN",
        POSES,
        b'{"pose": "P1", "cycle": 1, "commanded": {"x": NaN, "y": 0, "z": 0}, "attained": {"x": 0, "y": 0, "z": 0}}',
        QuarantineReason.NON_FINITE,
    ),
    ("NaN ts", TELEMETRY, b'{"ts": NaN, "values": {"a": 1}}', QuarantineReason.NON_FINITE),
    # wrong_type
    ("null value", TELEMETRY, {"a": None}, QuarantineReason.WRONG_TYPE),
    ("array value", TELEMETRY, {"a": [1, 2]}, QuarantineReason.WRONG_TYPE),
    ("object value", TELEMETRY, {"a": {"b": 1}}, QuarantineReason.WRONG_TYPE),
    ("long text", TELEMETRY, {"a": "x" * 65}, QuarantineReason.WRONG_TYPE),
    ("control char text", TELEMETRY, {"a": "ok\x00"}, QuarantineReason.WRONG_TYPE),
    ("lone surrogate text", TELEMETRY, b'{"a": "\\ud800"}', QuarantineReason.WRONG_TYPE),
    ("top-level number", TELEMETRY, 42, QuarantineReason.WRONG_TYPE),
    ("array of numbers", TELEMETRY, [1, 2], QuarantineReason.WRONG_TYPE),
    ("values not object", TELEMETRY, {"ts": NOW_MS, "values": [1]}, QuarantineReason.WRONG_TYPE),
    ("extra field next to values", TELEMETRY, {"ts": NOW_MS, "values": {"a": 1}, "b": 2}, QuarantineReason.WRONG_TYPE),
    ("string ts", TELEMETRY, {"ts": "2024-05-01", "values": {"a": 1}}, QuarantineReason.WRONG_TYPE),
    ("fractional ts", TELEMETRY, {"ts": NOW_MS + 0.5, "values": {"a": 1}}, QuarantineReason.WRONG_TYPE),
    ("bool ts", TELEMETRY, {"ts": True, "values": {"a": 1}}, QuarantineReason.WRONG_TYPE),
    ("float seq", TELEMETRY, {"a": 1, "seq": 1.0}, QuarantineReason.WRONG_TYPE),
    ("negative seq", TELEMETRY, {"a": 1, "seq": -1}, QuarantineReason.WRONG_TYPE),
    ("huge seq", TELEMETRY, {"a": 1, "seq": 2**63}, QuarantineReason.WRONG_TYPE),
    ("serial field not string", TELEMETRY, {"a": 1, "serial": 5}, QuarantineReason.WRONG_TYPE),
    ("gateway not object", GATEWAY, [1], QuarantineReason.WRONG_TYPE),
    ("gateway entry not array", GATEWAY, {"R1": 5}, QuarantineReason.WRONG_TYPE),
    ("waveform missing unit", WAVEFORM, {"t0": NOW_MS, "rate_hz": 1.0, "values": [1.0]}, QuarantineReason.WRONG_TYPE),
    ("waveform extra field", WAVEFORM, waveform(gain=2), QuarantineReason.WRONG_TYPE),
    ("waveform zero rate", WAVEFORM, waveform(rate_hz=0), QuarantineReason.WRONG_TYPE),
    ("waveform negative rate", WAVEFORM, waveform(rate_hz=-5.0), QuarantineReason.WRONG_TYPE),
    ("waveform bool sample", WAVEFORM, waveform(values=[1.0, True]), QuarantineReason.WRONG_TYPE),
    ("waveform string sample", WAVEFORM, waveform(values=["1.0"]), QuarantineReason.WRONG_TYPE),
    ("waveform values not array", WAVEFORM, waveform(values={"a": 1}), QuarantineReason.WRONG_TYPE),
    ("waveform unit with space", WAVEFORM, waveform(unit="m s"), QuarantineReason.WRONG_TYPE),
    (
        "binary unit empty",
        WAVEFORM,
        struct.pack("<4sBdqB", b"RFW1", 1, 100.0, NOW_MS, 0) + b"\x00" * 4,
        QuarantineReason.WRONG_TYPE,
    ),
    (
        "binary zero rate",
        WAVEFORM,
        struct.pack("<4sBdqB", b"RFW1", 1, 0.0, NOW_MS, 1) + b"g" + b"\x00" * 4,
        QuarantineReason.WRONG_TYPE,
    ),
    (
        "pose missing attained",
        POSES,
        {"pose": "P1", "cycle": 1, "commanded": {"x": 0, "y": 0, "z": 0}},
        QuarantineReason.WRONG_TYPE,
    ),
    ("pose negative cycle", POSES, pose(cycle=-1), QuarantineReason.WRONG_TYPE),
    ("pose bool cycle", POSES, pose(cycle=True), QuarantineReason.WRONG_TYPE),
    ("pose missing z", POSES, pose(attained={"x": 1, "y": 2}), QuarantineReason.WRONG_TYPE),
    ("pose string coordinate", POSES, pose(attained={"x": "1", "y": 2, "z": 3}), QuarantineReason.WRONG_TYPE),
    ("pose extra field", POSES, pose(speed=1), QuarantineReason.WRONG_TYPE),
    ("pose id not string", POSES, pose(pose=1), QuarantineReason.WRONG_TYPE),
    ("orientation not object", POSES, pose(orientation=[0, 0, 0]), QuarantineReason.WRONG_TYPE),
    ("status word", STATUS, b"maybe", QuarantineReason.WRONG_TYPE),
    ("status number", STATUS, b"1", QuarantineReason.WRONG_TYPE),
    ("status json number", STATUS, b'"1"', QuarantineReason.WRONG_TYPE),
    ("status missing state", STATUS, {"ts": NOW_MS}, QuarantineReason.WRONG_TYPE),
    ("status bad state", STATUS, {"state": "sleeping"}, QuarantineReason.WRONG_TYPE),
    # bad_key
    ("key with space", TELEMETRY, {"temp c": 1}, QuarantineReason.BAD_KEY),
    ("empty key", TELEMETRY, {"": 1}, QuarantineReason.BAD_KEY),
    ("key too long", TELEMETRY, {"k" * 65: 1}, QuarantineReason.BAD_KEY),
    ("non-ascii key", TELEMETRY, {"température": 1}, QuarantineReason.BAD_KEY),
    ("reserved key in values", TELEMETRY, {"ts": NOW_MS, "values": {"seq": 1}}, QuarantineReason.BAD_KEY),
    ("bad channel", "refurb/v1/robots/R1/waveform/j3 accel", waveform(), QuarantineReason.BAD_KEY),
    ("empty channel", "refurb/v1/robots/R1/waveform/", waveform(), QuarantineReason.BAD_KEY),
    ("bad pose id", POSES, pose(pose="P 1"), QuarantineReason.BAD_KEY),
    # oversize
    ("payload over 256 KiB", TELEMETRY, b'{"a": "' + b"x" * (256 * 1024) + b'"}', QuarantineReason.OVERSIZE),
    ("too many samples", TELEMETRY, {f"k{i}": i for i in range(10_001)}, QuarantineReason.OVERSIZE),
    ("too many poses", POSES, [pose()] * 10_001, QuarantineReason.OVERSIZE),
    # unknown_topic
    ("other suffix", "refurb/v1/robots/R1/events", {"a": 1}, QuarantineReason.UNKNOWN_TOPIC),
    ("foreign topic", "v1/devices/me/telemetry", {"a": 1}, QuarantineReason.UNKNOWN_TOPIC),
    ("no serial level", "refurb/v1/robots/telemetry", {"a": 1}, QuarantineReason.UNKNOWN_TOPIC),
    ("channel with slash", "refurb/v1/robots/R1/waveform/a/b", waveform(), QuarantineReason.UNKNOWN_TOPIC),
    ("empty topic", "", {"a": 1}, QuarantineReason.UNKNOWN_TOPIC),
    # bad_serial
    ("plus serial", "refurb/v1/robots/+/telemetry", {"a": 1}, QuarantineReason.BAD_SERIAL),
    ("hash serial", "refurb/v1/robots/R#1/telemetry", {"a": 1}, QuarantineReason.BAD_SERIAL),
    ("slash serial", "refurb/v1/robots/R/1/telemetry", {"a": 1}, QuarantineReason.BAD_SERIAL),
    ("empty serial", "refurb/v1/robots//status", b"online", QuarantineReason.BAD_SERIAL),
    ("long serial", "refurb/v1/robots/" + "R" * 65 + "/telemetry", {"a": 1}, QuarantineReason.BAD_SERIAL),
    ("space serial", "refurb/v1/robots/R 1/poses", pose(), QuarantineReason.BAD_SERIAL),
    ("control char serial", "refurb/v1/robots/R\x001/telemetry", {"a": 1}, QuarantineReason.BAD_SERIAL),
    ("gateway plus serial", GATEWAY, {"R+1": [{"ts": NOW_MS, "values": {"a": 1}}]}, QuarantineReason.BAD_SERIAL),
    ("gateway empty serial", GATEWAY, {"": [{"ts": NOW_MS, "values": {"a": 1}}]}, QuarantineReason.BAD_SERIAL),
    # identity_mismatch
    ("serial field", TELEMETRY, {"a": 1, "serial": "R2"}, QuarantineReason.IDENTITY_MISMATCH),
    ("robot field", TELEMETRY, {"ts": NOW_MS, "values": {"a": 1}, "robot": "R2"}, QuarantineReason.IDENTITY_MISMATCH),
    (
        "serial inside values",
        TELEMETRY,
        {"ts": NOW_MS, "values": {"a": 1, "serial": "R2"}},
        QuarantineReason.IDENTITY_MISMATCH,
    ),
    ("array element", TELEMETRY, [{"a": 1}, {"b": 2, "robot": "R9"}], QuarantineReason.IDENTITY_MISMATCH),
    (
        "gateway element",
        GATEWAY,
        {"R1": [{"ts": NOW_MS, "values": {"a": 1}, "serial": "R2"}]},
        QuarantineReason.IDENTITY_MISMATCH,
    ),
    ("waveform", WAVEFORM, waveform(serial="R2"), QuarantineReason.IDENTITY_MISMATCH),
    ("pose", POSES, pose(robot="R2"), QuarantineReason.IDENTITY_MISMATCH),
    ("status", STATUS, {"state": "online", "serial": "R2"}, QuarantineReason.IDENTITY_MISMATCH),
    # timestamp_out_of_window
    ("1970", TELEMETRY, {"ts": 0, "values": {"a": 1}}, QuarantineReason.TIMESTAMP_OUT_OF_WINDOW),
    ("seconds not ms", TELEMETRY, {"ts": NOW_MS // 1000, "values": {"a": 1}}, QuarantineReason.TIMESTAMP_OUT_OF_WINDOW),
    ("1999", TELEMETRY, {"ts": MIN_TS_MS - 1, "values": {"a": 1}}, QuarantineReason.TIMESTAMP_OUT_OF_WINDOW),
    (
        "one hour ahead",
        TELEMETRY,
        {"ts": NOW_MS + 3_600_000, "values": {"a": 1}},
        QuarantineReason.TIMESTAMP_OUT_OF_WINDOW,
    ),
    (
        "just over the skew",
        TELEMETRY,
        {"ts": NOW_MS + 300_001, "values": {"a": 1}},
        QuarantineReason.TIMESTAMP_OUT_OF_WINDOW,
    ),
    ("huge ts", TELEMETRY, {"ts": 10**30, "values": {"a": 1}}, QuarantineReason.TIMESTAMP_OUT_OF_WINDOW),
    ("huge negative ts", TELEMETRY, {"ts": -(10**300), "values": {"a": 1}}, QuarantineReason.TIMESTAMP_OUT_OF_WINDOW),
    ("plain form ts", TELEMETRY, {"ts": 0, "a": 1}, QuarantineReason.TIMESTAMP_OUT_OF_WINDOW),
    ("waveform t0", WAVEFORM, waveform(t0=NOW_MS + 3_600_000), QuarantineReason.TIMESTAMP_OUT_OF_WINDOW),
    (
        "binary t0 1970",
        WAVEFORM,
        struct.pack("<4sBdqB", b"RFW1", 1, 100.0, 0, 1) + b"g" + b"\x00" * 4,
        QuarantineReason.TIMESTAMP_OUT_OF_WINDOW,
    ),
    (
        "binary t0 int64 min",
        WAVEFORM,
        struct.pack("<4sBdqB", b"RFW1", 1, 100.0, -(2**63), 1) + b"g" + b"\x00" * 4,
        QuarantineReason.TIMESTAMP_OUT_OF_WINDOW,
    ),
    ("pose ts", POSES, pose(ts=1), QuarantineReason.TIMESTAMP_OUT_OF_WINDOW),
    ("status ts", STATUS, {"state": "online", "ts": NOW_MS * 2}, QuarantineReason.TIMESTAMP_OUT_OF_WINDOW),
    # empty
    ("no bytes", TELEMETRY, b"", QuarantineReason.EMPTY),
    ("white space", TELEMETRY, b" \n\t", QuarantineReason.EMPTY),
    ("empty array", TELEMETRY, [], QuarantineReason.EMPTY),
    ("empty object", TELEMETRY, {}, QuarantineReason.EMPTY),
    ("only metadata", TELEMETRY, {"seq": 3, "serial": "R1"}, QuarantineReason.EMPTY),
    ("empty values", TELEMETRY, {"ts": NOW_MS, "values": {}}, QuarantineReason.EMPTY),
    ("empty gateway", GATEWAY, {}, QuarantineReason.EMPTY),
    ("gateway without values", GATEWAY, {"R1": []}, QuarantineReason.EMPTY),
    ("waveform no values", WAVEFORM, waveform(values=[]), QuarantineReason.EMPTY),
    ("binary no values", WAVEFORM, struct.pack("<4sBdqB", b"RFW1", 1, 100.0, NOW_MS, 1) + b"g", QuarantineReason.EMPTY),
    ("empty pose array", POSES, [], QuarantineReason.EMPTY),
    ("cleared retained status", STATUS, b"", QuarantineReason.EMPTY),
]


@pytest.mark.parametrize(
    ("topic", "payload", "reason"), [case[1:] for case in REJECTIONS], ids=[case[0] for case in REJECTIONS]
)
def test_rejections(topic: str, payload: bytes | object, reason: QuarantineReason) -> None:
    assert reason_of(topic, payload) is reason


def test_every_reason_the_parser_produces_is_covered() -> None:
    covered = {case[3] for case in REJECTIONS}
    produced_elsewhere = {QuarantineReason.MALFORMED_CSV, QuarantineReason.UNKNOWN_ROBOT, QuarantineReason.PARSER_ERROR}
    assert covered == set(QuarantineReason) - produced_elsewhere


def test_rejection_keeps_the_topic_serial_for_the_quarantine_row() -> None:
    result = parse(TELEMETRY, {"ts": NOW_MS + 3_600_000, "values": {"a": 1}})  # R11: clock an hour ahead
    assert result.serials == ("R1",)
    assert result.kind is MessageKind.TELEMETRY
    assert result.received_at_ms == NOW_MS
    assert "ahead" in result.rejection.detail  # type: ignore[union-attr]
    assert parse("refurb/v1/robots/+/telemetry", {"a": 1}).serials == ()


def test_one_bad_sample_rejects_the_whole_message() -> None:
    assert reason_of(TELEMETRY, [{"a": 1}, {"b": None}]) is QuarantineReason.WRONG_TYPE


def test_timestamp_window_bounds_are_inclusive_and_configurable() -> None:
    assert accepted(TELEMETRY, {"ts": MIN_TS_MS, "values": {"a": 1}}).scalars[0].ts_ms == MIN_TS_MS
    assert accepted(TELEMETRY, {"ts": NOW_MS + 300_000, "values": {"a": 1}}).ok
    tight = ParseLimits(max_future_skew_ms=1_000)
    assert reason_of(TELEMETRY, {"ts": NOW_MS + 1_001, "values": {"a": 1}}, limits=tight) is (
        QuarantineReason.TIMESTAMP_OUT_OF_WINDOW
    )


def test_limits_are_configurable() -> None:
    limits = ParseLimits(max_payload_bytes=64, max_waveform_binary_bytes=100, max_waveform_values=2)
    assert reason_of(TELEMETRY, {"a": "x" * 60}, limits=limits) is QuarantineReason.OVERSIZE
    blob = encode_waveform_binary(NOW_MS, 100.0, "g", [1.0, 2.0, 3.0])
    assert reason_of(WAVEFORM, blob, limits=limits) is QuarantineReason.OVERSIZE
    blob = encode_waveform_binary(NOW_MS, 100.0, "g", np.zeros(30))
    assert reason_of(WAVEFORM, blob, limits=limits) is QuarantineReason.OVERSIZE
    assert reason_of(WAVEFORM, waveform(values=[1, 2, 3]), limits=ParseLimits(max_waveform_values=2)) is (
        QuarantineReason.OVERSIZE
    )
    assert reason_of(TELEMETRY, {"a": 1, "b": 2}, limits=ParseLimits(max_samples_per_message=1)) is (
        QuarantineReason.OVERSIZE
    )


def test_payload_that_is_not_bytes_is_wrong_type() -> None:
    result = parse_message(TELEMETRY, '{"a": 1}', received_at_ms=NOW_MS)  # type: ignore[arg-type]
    assert result.rejection is not None
    assert result.rejection.reason is QuarantineReason.WRONG_TYPE
    result = parse_message(42, b'{"a": 1}', received_at_ms=NOW_MS)  # type: ignore[arg-type]
    assert result.rejection is not None
    assert result.rejection.reason is QuarantineReason.UNKNOWN_TOPIC


def test_caller_bugs_raise() -> None:
    with pytest.raises(TypeError, match="received_at_ms"):
        parse_message(TELEMETRY, b"{}", received_at_ms=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="limits"):
        parse_message(TELEMETRY, b"{}", received_at_ms=NOW_MS, limits={})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_payload_bytes"):
        ParseLimits(max_payload_bytes=0)
    with pytest.raises(TypeError, match="max_key_chars"):
        ParseLimits(max_key_chars=1.5)  # type: ignore[arg-type]


def test_details_never_carry_unbounded_or_non_ascii_text() -> None:
    wordy = {"ts": NOW_MS, "values": {"a": 1}} | {f"extra_{'é' * 40}_{i}": 1 for i in range(6)}
    for payload in ({"a": "é" * 70}, {"ts": -(10**300), "values": {"a": 1}}, {"températureé" * 20: 1}, wordy):
        result = parse(TELEMETRY, payload)
        assert result.rejection is not None
        assert result.rejection.detail.isascii()
        assert len(result.rejection.detail) <= parsing.MAX_DETAIL_CHARS


# ---------------------------------------------------------------------------------------------------------------
# imports


def test_csv_import_types_cells_and_reports_rows_by_line() -> None:
    text = (
        "\ufeffSerial,key,ts,value,seq\n"
        "R1,temp_c,1714550000000,40.5,1\n"
        "R2,mode,2024-05-01T07:59:00+00:00,AUTO,\n"
        "R1,estop,2024-05-01T16:59:00+09:00,true,2\n"
        "\n"
        "R1,temp_c,1714550000000,nan,3\n"
        "R1,temp_c,2024-05-01T07:59:00,1,\n"
        "R1,bad key,1714550000000,1,\n"
        "R1,temp_c,0,1,\n"
        "R1,temp_c\n"
        "R1,temp_c,1714550000000,,\n"
    )
    result = parse_import_csv(text.encode(), received_at_ms=NOW_MS)
    assert result.ok
    assert [(s.serial, s.key, s.ts_ms, s.value, s.text, s.seq) for s in result.samples] == [
        ("R1", "temp_c", 1_714_550_000_000, 40.5, None, 1),
        ("R2", "mode", NOW_MS - 60_000, None, "AUTO", None),
        ("R1", "estop", NOW_MS - 60_000, 1.0, None, 2),
    ]
    assert result.serials == ("R1", "R2")
    assert [(r.row_number, r.reason) for r in result.rejected_rows] == [
        (6, QuarantineReason.NON_FINITE),
        (7, QuarantineReason.WRONG_TYPE),  # naive ISO time: ambiguous zone
        (8, QuarantineReason.BAD_KEY),
        (9, QuarantineReason.TIMESTAMP_OUT_OF_WINDOW),
        (10, QuarantineReason.MALFORMED_CSV),
        (11, QuarantineReason.WRONG_TYPE),
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", QuarantineReason.EMPTY),
        ("serial,key,ts,value\n", QuarantineReason.EMPTY),
        ("serial,key,value\nR1,a,1\n", QuarantineReason.MALFORMED_CSV),
        ("serial,key,ts,value,comment\nR1,a,1714550000000,1,x\n", QuarantineReason.MALFORMED_CSV),
        ("serial,key,ts,value,value\n", QuarantineReason.MALFORMED_CSV),
        ('serial,key,ts,value\nR1,a,1714550000000,"' + "x" * 200_000 + '"\n', QuarantineReason.MALFORMED_CSV),
    ],
)
def test_csv_import_file_rejections(text: str, reason: QuarantineReason) -> None:
    result = parse_import_csv(text, received_at_ms=NOW_MS)
    assert not result.ok
    assert result.samples == ()
    assert result.rejection is not None
    assert result.rejection.reason is reason


def test_csv_import_rejects_undecodable_bytes() -> None:
    result = parse_import_csv(b"serial,key,ts,value\n\xff\n", received_at_ms=NOW_MS)
    assert result.rejection is not None
    assert result.rejection.reason is QuarantineReason.MALFORMED_CSV


def test_json_import_judges_rows_one_by_one() -> None:
    data = (
        b'[{"serial": "R1", "key": "temp_c", "ts": 1714550000000, "value": 40.0, "seq": 5},'
        b' {"serial": "R1", "key": "temp_c", "ts": 1714550000001, "value": Infinity},'
        b' {"serial": "R1", "key": "temp_c", "ts": 1714550000002, "value": 1, "extra": 1},'
        b' {"serial": "R/1", "key": "temp_c", "ts": 1714550000003, "value": 1},'
        b' {"serial": "R1", "key": "temp_c", "ts": 1714550000004},'
        b" 7,"
        b' {"serial": "R1", "key": "temp_c", "ts": 1714550000005, "value": "1.5"}]'
    )
    result = parse_import_json(data, received_at_ms=NOW_MS)
    assert [(s.ts_ms, s.value, s.text, s.seq) for s in result.samples] == [
        (1_714_550_000_000, 40.0, None, 5),
        (1_714_550_000_005, None, "1.5", None),  # JSON is typed: a string stays text
    ]
    assert [(r.row_number, r.reason) for r in result.rejected_rows] == [
        (2, QuarantineReason.NON_FINITE),
        (3, QuarantineReason.WRONG_TYPE),
        (4, QuarantineReason.BAD_SERIAL),
        (5, QuarantineReason.WRONG_TYPE),
        (6, QuarantineReason.WRONG_TYPE),
    ]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{", QuarantineReason.MALFORMED_JSON),
        (b'{"serial": "R1"}', QuarantineReason.WRONG_TYPE),
        (b"[]", QuarantineReason.EMPTY),
        (b"", QuarantineReason.EMPTY),
    ],
)
def test_json_import_file_rejections(payload: bytes, reason: QuarantineReason) -> None:
    result = parse_import_json(payload, received_at_ms=NOW_MS)
    assert result.rejection is not None
    assert result.rejection.reason is reason


def test_import_row_limit() -> None:
    rows = [{"serial": "R1", "key": "a", "ts": NOW_MS, "value": 1}] * 3
    result = parse_import_rows(rows, received_at_ms=NOW_MS, limits=ParseLimits(max_import_rows=2))
    assert result.rejection is not None
    assert result.rejection.reason is QuarantineReason.OVERSIZE
    assert parse_import_rows(rows, received_at_ms=NOW_MS).samples[0].value == 1.0


def test_import_survives_a_failing_iterator() -> None:
    def rows() -> Iterator[dict[str, object]]:
        yield {"serial": "R1", "key": "a", "ts": NOW_MS, "value": 1}
        raise OSError("disk gone")

    result = parse_import_rows(rows(), received_at_ms=NOW_MS)
    assert result.rejection is not None
    assert result.rejection.reason is QuarantineReason.PARSER_ERROR


# ---------------------------------------------------------------------------------------------------------------
# properties: nothing in a message makes the parser raise


def assert_well_formed(result: ParseResult, topic: str) -> None:
    assert isinstance(result, ParseResult)
    if result.rejection is None:
        assert result.record_count > 0
        for sample in result.scalars:
            assert (sample.value is None) != (sample.text is None)
            assert sample.value is None or math.isfinite(sample.value)
            assert MIN_TS_MS <= sample.ts_ms <= NOW_MS + ParseLimits().max_future_skew_ms
        for block in result.waveforms:
            assert np.isfinite(block.values).all()
            assert block.rate_hz > 0
    else:
        assert result.record_count == 0
        assert result.rejection.reason is not QuarantineReason.PARSER_ERROR, result.rejection
        assert result.rejection.detail.isascii()


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()
    | st.sampled_from([NOW_MS, MIN_TS_MS, 0, -1, 2**63, 1e308])
    | st.text(max_size=80)
)
field_names = st.sampled_from(
    [
        "ts", "values", "seq", "serial", "robot", "t0", "rate_hz", "unit", "pose", "cycle", "commanded",
        "attained", "orientation", "state", "x", "y", "z", "a", "b", "c", "R1", "temp_c", "mode",
    ]
) | st.text(max_size=12)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(field_names, children, max_size=8),
    max_leaves=40,
)
topics = (
    st.sampled_from(ALL_TOPICS)
    | st.text(max_size=40)
    | st.builds(
        lambda serial, suffix: f"refurb/v1/robots/{serial}/{suffix}",
        st.text(max_size=10),
        st.sampled_from(["telemetry", "poses", "status", "waveform/ch", "waveform/", "x"]),
    )
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=topics, payload=st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(topic: str, payload: bytes) -> None:
    assert_well_formed(parse_message(topic, payload, received_at_ms=NOW_MS), topic)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=st.sampled_from(ALL_TOPICS), header=st.binary(min_size=18, max_size=40), body=st.binary(max_size=64))
def test_arbitrary_binary_waveforms_never_raise(topic: str, header: bytes, body: bytes) -> None:
    payload = b"RFW1" + header + body
    assert_well_formed(parse_message(WAVEFORM, payload, received_at_ms=NOW_MS), WAVEFORM)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=st.sampled_from(ALL_TOPICS), value=json_values)
def test_arbitrary_json_never_raises(topic: str, value: object) -> None:
    payload = json.dumps(value).encode()  # allow_nan: NaN and Infinity tokens included
    assert_well_formed(parse_message(topic, payload, received_at_ms=NOW_MS), topic)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.dictionaries(st.sampled_from(["serial", "key", "ts", "value", "seq", "x"]), json_values)))
def test_arbitrary_import_rows_never_raise(rows: list[dict[str, object]]) -> None:
    result = parse_import_json(json.dumps(rows), received_at_ms=NOW_MS)
    assert result.rejection is None or result.rejection.reason is not QuarantineReason.PARSER_ERROR
    for text in (json.dumps(rows), ",".join(map(str, rows))):
        csv_result = parse_import_csv("serial,key,ts,value\n" + text, received_at_ms=NOW_MS)
        assert csv_result.rejection is None or csv_result.rejection.reason is not QuarantineReason.PARSER_ERROR


keys = st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True).filter(
    lambda key: key not in {"ts", "seq", "serial", "robot", "values"}
)
state_values = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.booleans()
    | st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "P"]), max_size=64)
)


@settings(max_examples=300, deadline=None)
@given(
    values=st.dictionaries(keys, state_values, min_size=1, max_size=20),
    ts_ms=st.integers(min_value=MIN_TS_MS, max_value=NOW_MS + 300_000),
    seq=st.none() | st.integers(min_value=0, max_value=2**63 - 1),
)
def test_valid_telemetry_round_trips(values: dict[str, object], ts_ms: int, seq: int | None) -> None:
    message: dict[str, object] = {"ts": ts_ms, "values": values}
    if seq is not None:
        message["seq"] = seq
    result = accepted(TELEMETRY, message)
    assert [sample.key for sample in result.scalars] == list(values)
    for sample in result.scalars:
        raw = values[sample.key]
        assert sample.ts_ms == ts_ms
        assert sample.seq == seq
        if isinstance(raw, str):
            assert sample.text == raw
        else:
            assert sample.value == float(raw)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=500),
    rate_hz=st.floats(min_value=1e-3, max_value=1e7),
    t0_ms=st.integers(min_value=MIN_TS_MS, max_value=NOW_MS),
    unit=st.from_regex(r"[\x21-\x7e]{1,16}", fullmatch=True),
)
def test_binary_waveform_round_trip_property(values: list[float], rate_hz: float, t0_ms: int, unit: str) -> None:
    blob = encode_waveform_binary(t0_ms, rate_hz, unit, values)
    (block,) = accepted(WAVEFORM, blob).waveforms
    assert (block.t0_ms, block.rate_hz, block.unit) == (t0_ms, rate_hz, unit)
    assert_array_equal(block.values, np.asarray(values, dtype=np.float32))


# ---------------------------------------------------------------------------------------------------------------
# house rule 4: pure modules import only the standard library, numpy and scipy


@pytest.mark.parametrize("module", ["parsing", "analysis"])
def test_pure_module_imports(module: str) -> None:
    path = Path(parsing.__file__).with_name(f"{module}.py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    outside = roots - set(sys.stdlib_module_names) - {"__future__", "numpy", "scipy"}
    assert not outside, f"{module}.py imports {sorted(outside)}"
