"""The MQTT ingest worker (``refurb ingest``, also inside ``refurb serve``): at-least-once delivery from the broker
becomes exactly-once storage.

Two threads:

* the **network thread** runs paho's network loop by hand (``loop_read`` / ``loop_write`` / ``loop_misc`` around
  one ``select``), so it alone touches the socket. Its ``on_message`` parses (pure
  :func:`refurb.telemetry.parsing.parse_message`), appends to the in-memory queue and returns; it never blocks and
  never raises. It also sends the acknowledgements the writer hands back, connects with backoff and jitter, and
  resubscribes on every connect.
* the **writer thread** takes batches (``ingest_batch_size`` messages, or whatever arrived within
  ``ingest_flush_interval_s``, or sooner when the stream goes quiet), stores them with insert-or-ignore and the
  worker's counters in one transaction, commits, and only then passes the batch's message ids back for PUBACK, in
  arrival order. A database error means no ack: the batch is kept and retried with backoff (no busy loop).

Bounded memory without ever blocking ``on_message``: with MQTT v5 the worker announces ``Receive Maximum =
ingest_queue_max_messages``, so the broker never has more unacknowledged messages out to us than the queue may
hold; acks are what open the window again. On top of that (and as the only bound with MQTT 3.1.1 brokers such as
the embedded one) the network thread stops *reading the socket* while the queue holds more than
``ingest_queue_max_messages`` messages or ``ingest_queue_max_bytes`` payload bytes; TCP flow control then holds
the broker back. Nothing is dropped.

The MQTT packet id (``mid``) belongs to one connection: acks are sent only for messages received on the current
connection. After a reconnect the broker redelivers what was not acknowledged, and insert-or-ignore turns the
redelivery into counted duplicates. SIGTERM: stop reading, commit and ack what is in hand, disconnect (the broker
keeps the session), exit within ``STOP_TIMEOUT_S``.
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import logging
import os
import random
import select
import signal
import socket
import ssl
import struct
import threading
import time
import traceback
from dataclasses import dataclass
from types import FrameType
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlmodel import Session

from refurb.config import Settings
from refurb.db import utcnow
from refurb.telemetry import service
from refurb.telemetry.parsing import ParseLimits, ParseResult, QuarantineReason, Rejection, parse_message

log = logging.getLogger(__name__)

DEFAULT_TOPICS: Final = ("refurb/v1/robots/#", "v1/gateway/telemetry")
IDLE_FLUSH_S: Final = 0.02
"""Commit early when no message arrived for this long (a quiet stream is stored at once)."""
HEARTBEAT_S: Final = 5.0
"""An idle worker persists its counters this often (so stats show it alive with an empty queue)."""
KEEPALIVE_S: Final = 30
CONNECT_TIMEOUT_S: Final = 5.0
CONNACK_TIMEOUT_S: Final = 10.0
RECONNECT_MIN_S: Final = 0.5
RECONNECT_MAX_S: Final = 30.0
DB_RETRY_MIN_S: Final = 0.5
DB_RETRY_MAX_S: Final = 30.0
STOP_TIMEOUT_S: Final = 8.0
"""SIGTERM to exit, at most (the promise is 10 s)."""
SELECT_TIMEOUT_S: Final = 1.0
READ_BURST: Final = 256
PUBACK: Final = 0x40
_PUBACK: Final = struct.Struct("!BBH")
TRANSIENT_DB_ERRORS: Final = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError,
                              sa_exc.TimeoutError)


class _BufferedSocket:
    """paho's TCP socket with a user-space buffer each way.

    paho reads a packet with three ``recv`` calls (type byte, length bytes, body) and writes each PUBACK with its
    own ``send``; at tens of thousands of messages per second those system calls are a large share of the work.
    Reads here fetch up to 256 KiB at once and serve paho's small reads from memory; writes are gathered and
    sent once per turn of the network loop (``flush``), and on ``close`` (paho closes right after queueing
    DISCONNECT, which must still leave, with the last PUBACKs before it).
    """

    READ_BYTES: Final = 256 * 1024

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._rbuf = b""
        self._rpos = 0
        self._wbuf = bytearray()

    def fileno(self) -> int:
        return self.sock.fileno()

    def buffered(self) -> int:
        """Return how many received bytes paho has not read yet."""
        return len(self._rbuf) - self._rpos

    def recv(self, n: int) -> bytes:
        pos = self._rpos
        if pos >= len(self._rbuf):
            data = self.sock.recv(max(n, self.READ_BYTES))  # BlockingIOError and b"" (EOF) go to paho as they are
            if len(data) <= n:
                self._rbuf, self._rpos = b"", 0
                return data
            self._rbuf, pos = data, 0
        end = min(pos + n, len(self._rbuf))
        self._rpos = end
        return self._rbuf[pos:end]

    def send(self, data: bytes | bytearray | memoryview) -> int:
        self._wbuf += data
        return len(data)

    def wants_write(self) -> bool:
        return bool(self._wbuf)

    def flush(self) -> None:
        """Send what the socket takes now; a broken connection drops the rest (paho notices it on the next read)."""
        try:
            while self._wbuf:
                sent = self.sock.send(self._wbuf)
                del self._wbuf[:sent]
        except BlockingIOError:
            pass
        except OSError:
            self._wbuf.clear()

    def close(self) -> None:
        try:
            if self._wbuf:
                self.sock.settimeout(1.0)
                self.sock.sendall(self._wbuf)
        except OSError:
            pass
        finally:
            self._wbuf.clear()
            self.sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class _Client(mqtt.Client):
    """paho's client with the buffered socket on plain TCP connections (TLS and websockets are left as they are)."""

    def _create_socket(self) -> Any:
        sock = super()._create_socket()
        return _BufferedSocket(sock) if type(sock) is socket.socket else sock

    def _handle_publish(self) -> Any:
        """paho's PUBLISH handling for the packet ingest gets nearly always, without what it never uses.

        For a QoS 1 PUBLISH without MQTT 5 properties, build the message and call ``on_message`` directly: paho would
        build a ``Properties`` object for every MQTT 5 PUBLISH (a fifth of its per-message time, measured) and match
        the topic against per-topic callbacks refurb never registers. Every other packet (QoS 0/2, properties, topic
        aliases, no ``on_message``) goes to paho's own code.
        """
        header = self._in_packet["command"]
        packet = self._in_packet["packet"]
        on_message = self._on_message
        if (header & 0x06) != 0x02 or not self._manual_ack or on_message is None or len(packet) < 4:
            return super()._handle_publish()
        topic_end = 2 + ((packet[0] << 8) | packet[1])
        body = topic_end + 2
        if topic_end == 2 or len(packet) < body:
            return super()._handle_publish()
        if self._protocol == mqtt.MQTTv5:
            if len(packet) <= body or packet[body] != 0:  # property length 0: no properties
                return super()._handle_publish()
            body += 1
        message = mqtt.MQTTMessage(mid=(packet[topic_end] << 8) | packet[topic_end + 1],
                                   topic=bytes(packet[2:topic_end]))
        message.dup = bool(header & 0x08)
        message.qos = 1
        message.retain = bool(header & 0x01)
        message.payload = bytes(packet[body:])
        message.timestamp = time.monotonic()
        on_message(self, self._userdata, message)  # IngestWorker.on_message never raises
        return mqtt.MQTT_ERR_SUCCESS

    def ack_many(self, mids: list[int]) -> None:
        """Acknowledge QoS 1 messages in this order: the bytes of ``ack(mid, 1)`` for each, queued as one write.

        A PUBACK with reason "success" is the same four bytes in MQTT 3.1.1 and 5 (0x40, 0x02, packet id).
        """
        if mids:
            self._packet_queue(PUBACK, b"".join(_PUBACK.pack(0x40, 2, mid) for mid in mids), 0, 0)


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where and how to reach the broker, from ``REFURB_MQTT_URL``."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    protocol: int = mqtt.MQTTv5


def parse_mqtt_url(url: str) -> BrokerAddress:
    """Read ``mqtt[s]://[user[:password]@]host[:port][?protocol=5|3.1.1]`` (tcp:// and ssl:// work too)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
        raise ValueError(f"MQTT URL must look like mqtt://user:password@host:1883, got {url!r}")
    tls = scheme in ("mqtts", "ssl")
    protocol_text = (parse_qs(parts.query).get("protocol") or ["5"])[0]
    protocols = {"5": mqtt.MQTTv5, "5.0": mqtt.MQTTv5, "3.1.1": mqtt.MQTTv311, "311": mqtt.MQTTv311}
    if protocol_text not in protocols:
        raise ValueError(f"MQTT URL protocol must be 5 or 3.1.1, got {protocol_text!r}")
    return BrokerAddress(host=parts.hostname, port=parts.port or (8883 if tls else 1883),
                         username=unquote(parts.username) if parts.username else None,
                         password=unquote(parts.password) if parts.password else None,
                         tls=tls, protocol=protocols[protocol_text])


def backoff_delay(attempt: int, low_s: float, high_s: float, rng: random.Random | None = None) -> float:
    """Return an exponential backoff with jitter: uniform in [d/2, d] with d = min(high, low * 2**attempt)."""
    ceiling = min(high_s, low_s * 2 ** min(attempt, 30))
    return (rng or random).uniform(ceiling / 2, ceiling)


@dataclass(slots=True)
class _Item(service.Message):
    """A received message with what its acknowledgement needs: connection generation, packet id, QoS."""

    gen: int
    mid: int
    qos: int
    size: int


class IngestWorker:
    """Subscribe, store in batches, acknowledge after commit. ``start()``, ``stop()``, ``stats()``."""

    def __init__(self, settings: Settings, engine: Engine, *, mqtt_url: str | None = None,
                 client_id: str | None = None, topics: tuple[str, ...] | list[str] | None = None,
                 worker_id: str | None = None, limits: ParseLimits | None = None) -> None:
        url = mqtt_url or settings.mqtt_url
        if not url:
            raise ValueError("the ingest worker needs an MQTT URL (REFURB_MQTT_URL or the embedded broker's)")
        self.address = parse_mqtt_url(url)
        self.engine = engine
        self.client_id = client_id or settings.mqtt_client_id
        group = settings.mqtt_shared_group
        self.topics = tuple(f"$share/{group}/{t}" if group else t for t in (topics or DEFAULT_TOPICS))
        self.batch_size = settings.ingest_batch_size
        self.flush_interval_s = settings.ingest_flush_interval_s
        self.max_messages = settings.ingest_queue_max_messages
        self.max_bytes = settings.ingest_queue_max_bytes
        self.batch_max_bytes = max(1 << 20, self.max_bytes // 4)
        self.session_expiry_s = settings.mqtt_session_expiry_s
        self.limits = limits or ParseLimits()
        suffix = f"/{socket.gethostname()[:30]}/{os.getpid()}/{os.urandom(3).hex()}"
        self.worker_id = (worker_id or self.client_id[:100 - len(suffix)] + suffix)[:100]
        self.started_at = utcnow()
        self.cache = service.RobotCache()
        self.clock = service.ServerClock()
        self._rng = random.Random()
        # queue between the network thread (append) and the writer (take)
        self._queue: collections.deque[_Item] = collections.deque()
        self._queue_bytes = 0
        self._queue_lock = threading.Lock()
        self._have_items = threading.Event()
        self._writer_idle = True
        # acks from the writer back to the network thread, one list per committed batch, in commit order
        self._acks: collections.deque[list[tuple[int, int, int]]] = collections.deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stop_reading = threading.Event()
        self._abandon = threading.Event()
        self._writer_done = threading.Event()
        self._gen = 0
        self._connected = False
        self._subscribed = threading.Event()
        self._socket_opened_at = 0.0
        self._downgrade = False
        self._threads: list[threading.Thread] = []
        # counters: each is written by one thread only (network: received/acked/reconnects/...; writer: the rest)
        self.received = 0
        self.acked = 0
        self.reconnects = 0
        self.redelivery_dropped = 0
        self.stale_acks_skipped = 0
        self.callback_errors = 0
        self.totals: dict[str, Any] = {}
        service.StoreOutcome().add_to(self.totals)  # every counter present from the start, at zero
        self.batches = 0
        self.db_errors = 0
        self.lag_s = 0.0
        self.client = self._make_client()

    # --- paho client ---------------------------------------------------------------------------------------

    def _make_client(self) -> _Client:
        v5 = self.address.protocol == mqtt.MQTTv5
        kwargs: dict[str, Any] = {} if v5 else {"clean_session": False}
        client = _Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=self.address.protocol,
                         manual_ack=True, reconnect_on_failure=False, **kwargs)
        client.connect_timeout = CONNECT_TIMEOUT_S
        # A persistent session is only kept by brokers for authenticated or named users (amqtt forgets anonymous
        # ones), so always send a username.
        client.username_pw_set(self.address.username or "refurb-ingest", self.address.password)
        if self.address.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self.on_message
        return client

    def _connect_properties(self) -> Properties | None:
        if self.address.protocol != mqtt.MQTTv5:
            return None
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        props.ReceiveMaximum = self.max_messages
        return props

    def _open(self) -> bool:
        """Open the TCP connection and send CONNECT (CONNACK arrives through the loop)."""
        try:
            if self.address.protocol == mqtt.MQTTv5:
                self.client.connect(self.address.host, self.address.port, keepalive=KEEPALIVE_S, clean_start=False,
                                    properties=self._connect_properties())
            else:
                self.client.connect(self.address.host, self.address.port, keepalive=KEEPALIVE_S)
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.warning("cannot reach MQTT broker %s:%s: %s", self.address.host, self.address.port, exc)
            return False
        # paho wakes its own loop thread through a socket pair on every queued packet; this loop needs no wake-up
        # (it writes right after queueing), so drop the pair and save a system call per PUBACK.
        self.client._reset_sockets(sockpair_only=True)
        self._socket_opened_at = time.monotonic()
        return True

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        try:
            if reason_code.is_failure:
                log.error("MQTT broker refused the connection: %s", reason_code)
                if str(reason_code) == "Unsupported protocol version":
                    self._downgrade = True
                return
            self._gen += 1
            self._connected = True
            if self._gen > 1:
                self.reconnects += 1
            if flags.session_present:
                self._drop_redelivered()
            elif self._gen > 1:
                log.warning("the broker kept no session for %s: messages queued while disconnected are lost "
                            "(the gap detector lists missing seq ranges)", self.client_id)
            if self.address.protocol == mqtt.MQTTv5:
                client.subscribe([(t, SubscribeOptions(qos=1)) for t in self.topics])
            else:
                client.subscribe([(t, 1) for t in self.topics])
            log.info("connected to %s:%s as %s (session present: %s)", self.address.host, self.address.port,
                     self.client_id, flags.session_present)
        except Exception:  # noqa: BLE001 - callbacks never raise into paho
            log.exception("on_connect failed")

    def _drop_redelivered(self) -> None:
        """Forget queued messages of an earlier connection: the resumed session redelivers every one of them."""
        with self._queue_lock:
            keep = collections.deque(item for item in self._queue if item.gen == self._gen)
            dropped = len(self._queue) - len(keep)
            self._queue = keep
            self._queue_bytes = sum(item.size for item in keep)
        self.redelivery_dropped += dropped

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        self._connected = False
        self._subscribed.clear()
        if not self._stop_reading.is_set():
            log.warning("disconnected from MQTT broker: %s", reason_code)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any
                      ) -> None:
        failed = [str(rc) for rc in reason_codes if rc.is_failure]
        if failed:
            log.error("subscription refused by the broker (check the ACL): %s", ", ".join(failed))
        else:
            self._subscribed.set()
            log.info("subscribed to %s", ", ".join(self.topics))

    def on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        """Parse and queue one message; never blocks, never raises (house rule 6)."""
        try:
            self._enqueue(msg)
        except Exception:  # noqa: BLE001 - never raise into paho; the unacked message is redelivered
            self.callback_errors += 1
            log.exception("on_message could not queue a message; it stays unacknowledged")

    def _enqueue(self, msg: mqtt.MQTTMessage) -> None:
        received_at_ms = time.time_ns() // 1_000_000
        try:
            payload = msg.payload
            try:
                topic = msg.topic
            except UnicodeDecodeError:
                topic = msg._topic.decode("utf-8", "replace")
            result = parse_message(topic, payload, received_at_ms=received_at_ms, limits=self.limits)
        except Exception as exc:  # noqa: BLE001 - quarantined as a parser error rather than lost or raised
            self.callback_errors += 1
            try:
                payload = bytes(msg.payload)
            except Exception:  # noqa: BLE001 - nothing readable is kept
                payload = b""
            topic = ""
            rejection = Rejection(QuarantineReason.PARSER_ERROR, f"{type(exc).__name__}: {exc}"[:200])
            result = ParseResult(topic="", kind=None, received_at_ms=received_at_ms, rejection=rejection)
        item = _Item(topic, payload, result, self._gen, msg.mid, msg.qos, len(payload))
        with self._queue_lock:
            self._queue.append(item)
            self._queue_bytes += item.size
            depth = len(self._queue)
        self.received += 1
        if depth >= self.batch_size or (depth == 1 and self._writer_idle):
            self._have_items.set()  # never once per message: the writer gathers a batch before it looks again

    # --- network thread ------------------------------------------------------------------------------------

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already awake (the buffer is full of wake-ups) or shutting down

    def _over_budget(self) -> bool:
        return self._connected and (len(self._queue) >= self.max_messages or self._queue_bytes >= self.max_bytes)

    def _drain_acks(self) -> None:
        """Send the PUBACKs the writer released, in order; only for messages of the current connection."""
        while self._acks:
            batch = self._acks.popleft()
            current = self._gen if self._connected else -1
            mids = [mid for gen, mid, qos in batch if gen == current and qos == 1]
            self.client.ack_many(mids)
            self.acked += len(mids)
            self.stale_acks_skipped += len(batch) - len(mids)

    def _io_once(self, *, read: bool, timeout_s: float) -> None:
        client = self.client
        sock = client.socket()
        reading = read and sock is not None and not self._over_budget()
        buffered = isinstance(sock, _BufferedSocket)
        pending = reading and buffered and sock.buffered() > 0  # type: ignore[union-attr]
        rlist: list[Any] = [self._wake_r, sock] if reading else [self._wake_r]
        wants_write = sock is not None and (client.want_write() or (buffered and sock.wants_write()))  # type: ignore
        try:
            readable, _, _ = select.select(rlist, [sock] if wants_write else [], [], 0 if pending else timeout_s)
        except (OSError, ValueError):
            readable = []
        if self._wake_r in readable:
            try:
                self._wake_r.recv(65536)
            except (BlockingIOError, OSError):
                pass
        self._drain_acks()
        if reading and (pending or sock in readable):
            for _ in range(READ_BURST):  # the buffered socket often holds many packets: read them without select
                if client.socket() is not sock or client.loop_read() != mqtt.MQTT_ERR_SUCCESS:
                    break
                if not buffered or sock.buffered() == 0 or self._over_budget():  # type: ignore[union-attr]
                    break
        sock = client.socket()
        if sock is not None:
            if client.want_write():
                client.loop_write()
            if isinstance(sock, _BufferedSocket):
                sock.flush()
            client.loop_misc()

    def _network_loop(self) -> None:
        attempt = 0
        try:
            while not self._stop_reading.is_set():
                if self.client.socket() is None:
                    self._connected = False
                    if self._downgrade and self.address.protocol == mqtt.MQTTv5:
                        log.warning("the broker does not speak MQTT 5: falling back to 3.1.1 (no Receive Maximum; "
                                    "the worker bounds its queue by pausing reads)")
                        self.address = dataclasses.replace(self.address, protocol=mqtt.MQTTv311)
                        self.client = self._make_client()
                    if not self._open():
                        self._stop_reading.wait(backoff_delay(attempt, RECONNECT_MIN_S, RECONNECT_MAX_S, self._rng))
                        attempt += 1
                        continue
                if self._connected:
                    attempt = 0
                elif time.monotonic() - self._socket_opened_at > CONNACK_TIMEOUT_S:
                    log.warning("no CONNACK within %.0f s; reconnecting", CONNACK_TIMEOUT_S)
                    self._downgrade = self._gen == 0  # a 3.1.1-only broker may just ignore an MQTT 5 CONNECT
                    self.client.disconnect()
                    self._stop_reading.wait(backoff_delay(attempt, RECONNECT_MIN_S, RECONNECT_MAX_S, self._rng))
                    attempt += 1
                    continue
                self._io_once(read=True, timeout_s=SELECT_TIMEOUT_S)
            # stopping: keep sending the acks of what the writer still commits, then leave cleanly
            while not self._abandon.is_set() and (not self._writer_done.is_set() or self._acks):
                if self.client.socket() is None:
                    self._drain_acks()  # no connection: these acks are stale, the broker redelivers
                    self._writer_done.wait(0.05)
                    continue
                self._io_once(read=False, timeout_s=0.05)
            self._drain_acks()
            self._disconnect()
        except Exception:  # noqa: BLE001 - log and end the thread; stop() still returns
            log.exception("MQTT network loop failed")
            self._abandon.set()

    def _disconnect(self) -> None:
        client = self.client
        if client.socket() is None:
            return
        deadline = time.monotonic() + 1.0
        while client.want_write() and client.socket() is not None and time.monotonic() < deadline:
            client.loop_write()
            if client.want_write():
                time.sleep(0.01)
        if client.socket() is not None:
            client.disconnect()  # sends DISCONNECT and closes; the broker keeps the session (expiry > 0)
        while client.socket() is not None and time.monotonic() < deadline:
            client.loop_write()
            if client.socket() is not None:
                time.sleep(0.01)

    # --- writer thread -------------------------------------------------------------------------------------

    def _take(self, n: int, byte_budget: int) -> tuple[list[_Item], int]:
        items: list[_Item] = []
        size = 0
        with self._queue_lock:
            queue = self._queue
            while queue and len(items) < n and size < byte_budget:
                item = queue.popleft()
                items.append(item)
                size += item.size
            self._queue_bytes -= size
        return items, size

    def next_batch(self) -> list[_Item] | None:
        """Return the next batch to store: [] on an idle tick, None when stopping and drained."""
        if not self._queue:
            if self._stop_reading.is_set():
                return None
            self._writer_idle = True
            if not self._queue:  # checked again after raising the flag, so a first message cannot slip by
                self._have_items.wait(HEARTBEAT_S)
            self._writer_idle = False
            self._have_items.clear()
            if not self._queue:
                return []
        deadline = time.monotonic() + self.flush_interval_s
        batch, size = self._take(self.batch_size, self.batch_max_bytes)
        while len(batch) < self.batch_size and size < self.batch_max_bytes and not self._stop_reading.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            before = len(batch)
            self._have_items.wait(min(remaining, IDLE_FLUSH_S))  # set only when a full batch is waiting
            self._have_items.clear()
            more, more_size = self._take(self.batch_size - len(batch), self.batch_max_bytes - size)
            batch += more
            size += more_size
            if len(batch) == before:
                break  # the stream went quiet: store now rather than at the deadline
        return batch

    def counters(self, *, extra: service.StoreOutcome | None = None, batch: list[_Item] | None = None,
                 stopped: bool = False) -> dict[str, Any]:
        """Return the counters as persisted (with ``extra`` added when it is about to be committed)."""
        totals = {"quarantined": dict(self.totals["quarantined"]),
                  **{k: v for k, v in self.totals.items() if k != "quarantined"}}
        if extra is not None:
            extra.add_to(totals)
        now_ms = time.time_ns() // 1_000_000
        lag_s = (now_ms - batch[0].result.received_at_ms) / 1000 if batch else 0.0
        totals.update({
            "received": self.received, "acked": self.acked, "reconnects": self.reconnects,
            "redelivery_dropped": self.redelivery_dropped, "stale_acks_skipped": self.stale_acks_skipped,
            "callback_errors": self.callback_errors, "batches": self.batches + (1 if extra is not None else 0),
            "db_errors": self.db_errors, "queue_depth": len(self._queue), "queue_bytes": self._queue_bytes,
            "lag_s": round(max(lag_s, 0.0), 3), "connected": self._connected, "client_id": self.client_id,
            "pid": os.getpid(), "stopped": stopped,
        })
        return totals

    def stats(self) -> dict[str, Any]:
        """Return this worker's live counters (in memory)."""
        return {"worker_id": self.worker_id, **self.counters()}

    def _store(self, batch: list[_Item]) -> None:
        with Session(self.engine, expire_on_commit=False) as session:
            outcome = service.store_messages(session, batch, cache=self.cache,
                                             clock=self.clock)
            counters = self.counters(extra=outcome, batch=batch)
            service.save_counters(session, worker_id=self.worker_id, counters=counters, started_at=self.started_at)
            session.commit()
        outcome.add_to(self.totals)
        self.batches += 1
        self.lag_s = counters["lag_s"]

    def _store_refused(self, item: _Item, exc: BaseException) -> None:
        """Quarantine a message the database refused even on its own (it is never retried forever)."""
        detail = f"{type(exc).__name__}: {exc}"[:400]
        log.error("database refused a message on %s; quarantined: %s", item.topic, detail)
        with Session(self.engine, expire_on_commit=False) as session:
            counts, repeats = service.quarantine(session, [(item, service.STORAGE_ERROR, detail)])
            outcome = service.StoreOutcome(duplicates=repeats, quarantined=counts)
            service.save_counters(session, worker_id=self.worker_id,
                                  counters=self.counters(extra=outcome, batch=[item]), started_at=self.started_at)
            session.commit()
        outcome.add_to(self.totals)
        self.batches += 1

    def commit(self, batch: list[_Item]) -> bool:
        """Store a batch, retrying transient database errors with backoff; False only if abandoned on stop.

        A batch the database refuses for another reason is split in halves until the refused message is alone;
        that one is quarantined as ``storage_error`` so it cannot block the stream.
        """
        attempt = 0
        refused: BaseException | None = None
        while True:
            try:
                if refused is None:
                    self._store(batch)
                else:
                    self._store_refused(batch[0], refused)
                return True
            except TRANSIENT_DB_ERRORS as exc:
                self.db_errors += 1
                if self._abandon.is_set():
                    log.error("giving up on %d uncommitted messages at shutdown (they stay unacknowledged and the "
                              "broker redelivers them)", len(batch))
                    return False
                delay = backoff_delay(attempt, DB_RETRY_MIN_S, DB_RETRY_MAX_S, self._rng)
                if attempt % 10 == 0:
                    log.warning("database unavailable (%s); %d messages kept unacknowledged, retrying in %.1f s",
                                str(exc).splitlines()[0][:200], len(batch), delay)
                attempt += 1
                self._abandon.wait(delay)
            except Exception as exc:  # noqa: BLE001 - a message the database refuses must not block the stream
                self.db_errors += 1
                if refused is not None:
                    log.critical("could not even quarantine a message on %s (%s); it is acknowledged unstored",
                                 batch[0].topic, exc)
                    return True
                if len(batch) == 1:
                    refused = exc
                    log.debug("isolated a refused message:\n%s", traceback.format_exc())
                    continue
                half = len(batch) // 2
                return self.commit(batch[:half]) and self.commit(batch[half:])

    def release_acks(self, batch: list[_Item]) -> None:
        """Hand a committed batch's message ids to the network thread for PUBACK, in arrival order."""
        # QoS 0 needs no ack; QoS 2 cannot arrive on a QoS 1 subscription (delivered QoS = min of both)
        acks = [(item.gen, item.mid, item.qos) for item in batch if item.qos == 1]
        if acks:
            self._acks.append(acks)
            self._wake()

    def _heartbeat(self, *, stopped: bool = False) -> None:
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                service.save_counters(session, worker_id=self.worker_id, counters=self.counters(stopped=stopped),
                                      started_at=self.started_at)
                session.commit()
        except Exception as exc:  # noqa: BLE001 - counters are best effort between batches
            log.debug("could not persist ingest counters: %s", exc)

    def _writer_loop(self) -> None:
        last_persist = time.monotonic()
        try:
            while True:
                batch = self.next_batch()
                if batch is None:
                    break
                if batch:
                    started = time.perf_counter()
                    if not self.commit(batch):
                        break
                    self.release_acks(batch)
                    log.debug("committed %d messages in %.1f ms (queue %d)", len(batch),
                              (time.perf_counter() - started) * 1000, len(self._queue))
                    last_persist = time.monotonic()
                elif time.monotonic() - last_persist >= HEARTBEAT_S:
                    self._heartbeat()
                    last_persist = time.monotonic()
            if not self._abandon.is_set():
                self._heartbeat(stopped=True)
        except Exception:  # noqa: BLE001 - log; messages stay unacknowledged and are redelivered
            log.exception("ingest writer failed")
        finally:
            self._writer_done.set()
            self._wake()

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> IngestWorker:
        """Start the network and writer threads."""
        if self._threads:
            return self
        # The cyclic GC's full collections walk every tracked object, ~100,000 of them from the imported libraries
        # alone, several times a second at full flow: move what exists now out of its reach (it lives for the
        # process anyway). Measured: a tenth of the ingest time went to those walks (docs/benchmarks.md).
        gc.freeze()
        self._heartbeat()
        self._threads = [threading.Thread(target=self._network_loop, name="refurb-ingest-mqtt", daemon=True),
                         threading.Thread(target=self._writer_loop, name="refurb-ingest-writer", daemon=True)]
        for thread in self._threads:
            thread.start()
        log.info("ingest worker %s started (broker %s:%s, topics %s)", self.worker_id, self.address.host,
                 self.address.port, ", ".join(self.topics))
        return self

    def wait_subscribed(self, timeout_s: float) -> bool:
        """Wait until the broker confirmed the subscriptions of the current connection."""
        return self._subscribed.wait(timeout_s)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop reading, commit and acknowledge what is in hand, disconnect; return within ``timeout_s``."""
        if not self._threads:
            return
        deadline = time.monotonic() + timeout_s
        self._stop_reading.set()
        self._have_items.set()
        self._wake()
        net, writer = self._threads
        writer.join(max(0.1, deadline - time.monotonic() - 1.5))
        if writer.is_alive():
            self._abandon.set()  # the database is not coming back in time: leave the rest unacknowledged
            writer.join(0.5)
        net.join(max(0.1, deadline - time.monotonic()))
        if net.is_alive():
            self._abandon.set()
            net.join(0.5)
        self._threads = []
        for sock in (self._wake_r, self._wake_w):
            sock.close()
        log.info("ingest worker %s stopped: %s", self.worker_id,
                 {k: v for k, v in self.counters().items() if k in ("received", "stored", "duplicates", "acked")})

    def run_until_signalled(self) -> None:
        """Run until SIGTERM or SIGINT, then stop cleanly (``refurb ingest``)."""
        stop = threading.Event()

        def handle(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not stop.wait(1.0):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def start_services(settings: Settings, engine: Engine) -> list[Any]:
    """Start the ingest worker for ``refurb serve`` (and the embedded broker when REFURB_MQTT_URL is unset).

    Returns the started services in start order; each has ``stop()``. A broker that cannot start is logged and the
    web app runs without ingest.
    """
    from refurb.telemetry.broker import EmbeddedBroker

    services: list[Any] = []
    url = settings.mqtt_url
    if url is None:
        try:
            embedded = EmbeddedBroker(settings.embedded_mqtt_port).start()
        except RuntimeError as exc:
            log.error("telemetry ingest disabled: %s", exc)
            return services
        services.append(embedded)
        url = embedded.url
    services.append(IngestWorker(settings, engine, mqtt_url=url).start())
    return services
