"""The ingest worker without a broker: a fake paho client shows acks leave in arrival order and only after the
commit (R6), never for another connection's messages, nor while the database is down (no busy loop); refused
messages are isolated; the callback never raises; flow-control settings reach the CONNECT packet."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from refurb.telemetry import ingest, service
from refurb.telemetry.models import QuarantinedMessage, Sample
from tests.factories import make_robot
from tests.telemetry.conftest import ingest_settings


class FakeClient:
    """Records acks; at each ack, checks in a separate connection that the message is already committed."""

    def __init__(self, engine: Engine, committed: dict[int, Any]) -> None:
        self.engine = engine
        self.committed = committed  # mid -> callable(session) -> bool
        self.acks: list[int] = []
        self.acked_before_commit: list[int] = []

    def ack_many(self, mids: list[int]) -> None:
        for mid in mids:
            with Session(self.engine) as s:
                if not self.committed[mid](s):
                    self.acked_before_commit.append(mid)
            self.acks.append(mid)


def message(mid: int, topic: str, payload: str | bytes, qos: int = 1) -> mqtt.MQTTMessage:
    m = mqtt.MQTTMessage(mid=mid, topic=topic.encode())
    m.payload = payload.encode() if isinstance(payload, str) else payload
    m.qos = qos
    return m


def make_worker(engine: Engine, **settings: Any) -> ingest.IngestWorker:
    worker = ingest.IngestWorker(ingest_settings("mqtt://127.0.0.1:1", **settings), engine, client_id="fake")
    worker._gen, worker._connected = 1, True
    return worker


def sample_exists(key: str, ts: int) -> Any:
    return lambda s: s.execute(select(func.count()).select_from(Sample)
                               .where(Sample.key == key, Sample.ts_ms == ts)).scalar_one() == 1


def quarantined(fragment: bytes) -> Any:
    return lambda s: any(fragment in p for p in s.execute(select(QuarantinedMessage.payload)).scalars())


def count_samples(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.execute(select(func.count()).select_from(Sample)).scalar_one())


def test_r6_acks_leave_in_arrival_order_and_only_after_commit(ingest_engine: Engine) -> None:
    with Session(ingest_engine) as s:
        make_robot(s, serial="R-ACK")
    now = int(time.time() * 1000)
    committed: dict[int, Any] = {}
    msgs = []
    for mid in range(1, 31):
        if mid == 7:
            payload = b'{"ts": %d, "values": {"v": NaN}}' % now
            committed[mid] = quarantined(b"NaN")
            msgs.append(message(mid, "refurb/v1/robots/R-ACK/telemetry", payload))
        elif mid == 19:
            committed[mid] = quarantined(b'"ghost"')
            msgs.append(message(mid, "refurb/v1/robots/R-GHOST/telemetry", '{"ghost": 1}'))
        else:
            committed[mid] = sample_exists("v", now - mid)
            msgs.append(message(mid, "refurb/v1/robots/R-ACK/telemetry",
                                json.dumps({"ts": now - mid, "values": {"v": mid}})))
    worker = make_worker(ingest_engine, ingest_batch_size=12)
    fake = worker.client = FakeClient(ingest_engine, committed)  # type: ignore[assignment]
    # the broker redelivers with other mids after a reconnect; mids also wrap: order is arrival, not mid
    arrival = [msgs[i] for i in (list(range(15, 30)) + list(range(0, 15)))]
    for m in arrival:
        worker.on_message(None, None, m)
    worker._drain_acks()
    assert fake.acks == []  # nothing committed yet, nothing acknowledged
    while worker._queue:
        batch = worker.next_batch()
        assert batch
        assert len(batch) <= 12
        assert worker.commit(batch)
        worker._drain_acks()  # the previous batch's acks are out before this one's are released
        worker.release_acks(batch)
    worker._drain_acks()
    assert fake.acks == [m.mid for m in arrival]
    assert fake.acked_before_commit == []
    assert worker.counters()["quarantined"] == {"non_finite": 1, "unknown_robot": 1}
    assert (worker.acked, worker.received, worker.batches) == (30, 30, 3)


def test_acks_for_an_earlier_connection_are_never_sent(ingest_engine: Engine) -> None:
    with Session(ingest_engine) as s:
        make_robot(s, serial="R-GEN")
    worker = make_worker(ingest_engine)
    fake = worker.client = FakeClient(ingest_engine, {})  # type: ignore[assignment]
    now = int(time.time() * 1000)
    for mid in (1, 2, 3):
        worker.on_message(None, None, message(mid, "refurb/v1/robots/R-GEN/telemetry",
                                              json.dumps({"ts": now - mid, "values": {"v": 1}})))
    batch = worker.next_batch()
    assert batch is not None
    assert worker.commit(batch)
    worker._gen += 1  # the connection dropped and came back: these mids now mean other messages
    worker.release_acks(batch)
    worker._drain_acks()
    assert fake.acks == []
    assert worker.stale_acks_skipped == 3
    assert count_samples(ingest_engine) == 3  # committed anyway; the redelivery will count as duplicates


def test_a_resumed_session_drops_queued_messages_it_will_redeliver(ingest_engine: Engine) -> None:
    worker = make_worker(ingest_engine)
    for mid in range(5):
        worker.on_message(None, None, message(mid + 1, "refurb/v1/robots/R-X/telemetry", '{"v": 1}'))
    flags = mqtt.ConnectFlags(session_present=False)
    worker.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)  # subscribe() just queues while disconnected
    worker._on_connect(worker.client, None, flags, mqtt.ReasonCode(mqtt.PacketTypes.CONNACK, "Success"), None)
    assert len(worker._queue) == 5  # no session: these are the only copies, keep them
    worker._on_connect(worker.client, None, mqtt.ConnectFlags(session_present=True),
                       mqtt.ReasonCode(mqtt.PacketTypes.CONNACK, "Success"), None)
    assert len(worker._queue) == 0
    assert worker._queue_bytes == 0
    assert worker.redelivery_dropped == 5


def test_database_outage_means_no_ack_and_a_backoff(ingest_engine: Engine, monkeypatch: pytest.MonkeyPatch
                                                    ) -> None:
    with Session(ingest_engine) as s:
        make_robot(s, serial="R-DOWN")
    worker = make_worker(ingest_engine)
    fake = worker.client = FakeClient(ingest_engine, {1: sample_exists("v", 1_000_000_000_000)})  # type: ignore
    worker.on_message(None, None, message(1, "refurb/v1/robots/R-DOWN/telemetry",
                                          '{"ts": 1000000000000, "values": {"v": 1}}'))
    real_store = service.store_messages
    failures = iter(range(3))
    delays: list[float] = []

    def flaky_store(*args: Any, **kwargs: Any) -> Any:
        if next(failures, None) is not None:
            raise sa_exc.OperationalError("INSERT", {}, Exception("database is down"))
        return real_store(*args, **kwargs)

    def recording_backoff(attempt: int, low: float, high: float, rng: Any = None) -> float:
        delay = ingest.backoff_delay.__wrapped__(attempt, low, high, rng)  # type: ignore[attr-defined]
        delays.append(delay)
        return 0.01

    recording_backoff.__wrapped__ = ingest.backoff_delay  # type: ignore[attr-defined]
    monkeypatch.setattr(service, "store_messages", flaky_store)
    monkeypatch.setattr(ingest, "backoff_delay", recording_backoff)
    batch = worker.next_batch()
    assert batch is not None
    assert worker.commit(batch)
    assert worker.db_errors == 3
    assert fake.acks == []  # released only now, after the commit
    worker.release_acks(batch)
    worker._drain_acks()
    assert fake.acks == [1]
    assert fake.acked_before_commit == []
    # exponential with jitter: each ceiling doubles (0.5, 1, 2 s), each delay in [ceiling / 2, ceiling]
    assert [0.25 <= delays[0] <= 0.5, 0.5 <= delays[1] <= 1.0, 1.0 <= delays[2] <= 2.0] == [True] * 3


def test_outage_at_shutdown_gives_up_without_acking(ingest_engine: Engine, monkeypatch: pytest.MonkeyPatch
                                                    ) -> None:
    worker = make_worker(ingest_engine)
    worker.on_message(None, None, message(1, "refurb/v1/robots/R-X/telemetry", '{"v": 1}'))

    def down(*args: Any, **kwargs: Any) -> Any:
        raise sa_exc.OperationalError("INSERT", {}, Exception("database is down"))

    monkeypatch.setattr(service, "store_messages", down)
    worker._abandon.set()
    batch = worker.next_batch()
    assert batch is not None
    assert worker.commit(batch) is False


def test_a_message_the_database_refuses_is_isolated_and_quarantined(ingest_engine: Engine,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with Session(ingest_engine) as s:
        make_robot(s, serial="R-REF")
    worker = make_worker(ingest_engine)
    now = int(time.time() * 1000)
    for mid in range(1, 9):
        worker.on_message(None, None, message(mid, "refurb/v1/robots/R-REF/telemetry",
                                              json.dumps({"ts": now - mid, "values": {"v": mid}})))
    real_store = service.store_messages

    def picky_store(session: Session, messages: Any, **kwargs: Any) -> Any:
        if any(b'"v": 5' in m.payload for m in messages):
            raise sa_exc.IntegrityError("INSERT", {}, Exception("value refused"))
        return real_store(session, messages, **kwargs)

    monkeypatch.setattr(service, "store_messages", picky_store)
    batch = worker.next_batch()
    assert batch is not None
    assert len(batch) == 8
    assert worker.commit(batch)
    assert count_samples(ingest_engine) == 7
    assert worker.counters()["quarantined"] == {service.STORAGE_ERROR: 1}


def test_on_message_never_raises(ingest_engine: Engine) -> None:
    worker = make_worker(ingest_engine)

    class Broken:
        mid, qos = 5, 1

        @property
        def payload(self) -> bytes:
            raise RuntimeError("corrupt message object")

    worker.on_message(None, None, Broken())  # type: ignore[arg-type]
    bad_topic = mqtt.MQTTMessage(mid=6, topic=b"refurb/v1/robots/\xff\xfe/telemetry")
    bad_topic.payload, bad_topic.qos = b"{\"v\": 1}", 1
    worker.on_message(None, None, bad_topic)
    assert worker.received == 2
    assert worker.callback_errors == 1
    batch = worker.next_batch()
    assert batch is not None
    assert worker.commit(batch)
    # the broker never delivers a topic that is not UTF-8; if one came, its serial would match no robot
    assert worker.counters()["quarantined"] == {"parser_error": 1, "unknown_robot": 1}


def test_flow_control_bounds_the_queue(ingest_engine: Engine) -> None:
    worker = make_worker(ingest_engine, ingest_queue_max_messages=10, ingest_queue_max_bytes=10_000)
    props = worker._connect_properties()
    assert props is not None
    assert (props.ReceiveMaximum, props.SessionExpiryInterval) == (10, 300)
    for mid in range(9):
        worker.on_message(None, None, message(mid + 1, "refurb/v1/robots/R/telemetry", '{"v": 1}'))
    assert not worker._over_budget()
    worker.on_message(None, None, message(10, "refurb/v1/robots/R/telemetry", '{"v": 1}'))
    assert worker._over_budget()  # the network thread stops reading the socket until the writer catches up
    worker.next_batch()
    assert not worker._over_budget()
    worker.on_message(None, None, message(11, "refurb/v1/robots/R/waveform/x", b"x" * 10_000))
    assert worker._over_budget()


def test_ack_many_writes_exactly_what_ack_would() -> None:
    for protocol in (mqtt.MQTTv311, mqtt.MQTTv5):
        written = []
        for use_many in (False, True):
            a, b = socket.socketpair()
            client = ingest._Client(mqtt.CallbackAPIVersion.VERSION2, client_id="x", protocol=protocol,
                                    manual_ack=True)
            client._sock = ingest._BufferedSocket(a)
            mids = [1, 65535, 300, 7]
            if use_many:
                client.ack_many(mids)
            else:
                for mid in mids:
                    client.ack(mid, 1)
            client.loop_write()
            client._sock.flush()
            written.append(b.recv(1024))
            a.close()
            b.close()
        assert written[0] == written[1] == b"".join(bytes([0x40, 2, m >> 8, m & 0xFF]) for m in mids)


def test_the_publish_fast_path_builds_the_message_paho_would() -> None:
    """Feed real PUBLISH packets (QoS 0/1, with and without MQTT 5 properties) to both paths and compare."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    def publish_packet(protocol: int, qos: int, with_props: bool) -> tuple[int, bytes]:
        sender = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="p", protocol=protocol)
        a, b = socket.socketpair()
        sender._sock = a
        sender._state = mqtt._ConnectionState.MQTT_CS_CONNECTED
        props = None
        if with_props:
            props = Properties(PacketTypes.PUBLISH)
            props.ContentType = "application/json"
        sender.publish("refurb/v1/robots/R-1/telemetry", b'{"v": 1}', qos=qos, retain=True, properties=props)
        raw = b.recv(4096)
        a.close()
        b.close()
        length_bytes = 1 if raw[1] < 128 else 2
        return raw[0], raw[1 + length_bytes:]

    for protocol in (mqtt.MQTTv311, mqtt.MQTTv5):
        for qos in (0, 1):
            for with_props in ((False, True) if protocol == mqtt.MQTTv5 else (False,)):
                header, body = publish_packet(protocol, qos, with_props)
                seen = []
                for fast in (True, False):
                    client = ingest._Client(mqtt.CallbackAPIVersion.VERSION2, client_id="c", protocol=protocol,
                                            manual_ack=True)
                    client.on_message = lambda c, u, m, _seen=seen: _seen.append(
                        (m.mid, m.topic, m.payload, m.qos, m.retain, m.dup))
                    client._in_packet = {"command": header, "packet": body}
                    handle = client._handle_publish if fast else super(ingest._Client, client)._handle_publish
                    assert handle() == mqtt.MQTT_ERR_SUCCESS
                assert seen[0] == seen[1], (protocol, qos, with_props)
                assert seen[0][1:4] == ("refurb/v1/robots/R-1/telemetry", b'{"v": 1}', qos)


def test_buffered_socket_serves_small_reads_from_one_recv() -> None:
    a, b = socket.socketpair()
    buffered = ingest._BufferedSocket(a)
    b.sendall(b"\x30\x05hello\x30\x02hi")
    assert [buffered.recv(1), buffered.recv(1), buffered.recv(5)] == [b"\x30", b"\x05", b"hello"]
    assert buffered.buffered() == 4
    assert buffered.recv(100) == b"\x30\x02hi"
    a.setblocking(False)
    with pytest.raises(BlockingIOError):
        buffered.recv(1)
    buffered.send(b"abc")
    buffered.send(b"def")
    assert buffered.wants_write()
    buffered.flush()
    assert b.recv(10) == b"abcdef"
    buffered.send(b"last words")
    buffered.close()  # paho closes right after queueing DISCONNECT: the buffer still leaves
    assert b.recv(20) == b"last words"
    b.close()


def test_mqtt_urls_and_backoff() -> None:
    a = ingest.parse_mqtt_url("mqtt://ingest:p%40ss@broker.local:1884")
    assert (a.host, a.port, a.username, a.password, a.tls, a.protocol) == (
        "broker.local", 1884, "ingest", "p@ss", False, mqtt.MQTTv5)
    b = ingest.parse_mqtt_url("mqtts://broker?protocol=3.1.1")
    assert (b.port, b.tls, b.protocol) == (8883, True, mqtt.MQTTv311)
    with pytest.raises(ValueError, match="MQTT URL"):
        ingest.parse_mqtt_url("http://broker")
    with pytest.raises(ValueError, match="protocol"):
        ingest.parse_mqtt_url("mqtt://broker?protocol=4")
    delays = [ingest.backoff_delay(n, 0.5, 30.0) for n in range(12)]
    assert all(0.25 <= d <= 30.0 for d in delays)
    assert delays[-1] >= 15.0
