"""The broker side of telemetry: an embedded MQTT broker for development and demos, and the Mosquitto password
file and ACL that give each robot its own credentials and topics.

The embedded broker (amqtt, MQTT 3.1.1, in memory, bound to 127.0.0.1) runs inside ``refurb serve`` when
``REFURB_MQTT_URL`` is unset. It keeps no messages across a restart and does not redeliver to a reconnecting
persistent session, so production uses Mosquitto (or EMQX/HiveMQ) with the files written here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import secrets
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

PBKDF2_ITERATIONS: Final = 1000
"""Iterations of the ``$7$`` hashes written here (Mosquitto reads the count from each hash; its own tool uses 101)."""
SALT_BYTES: Final = 12
HASH_BYTES: Final = 64
INGEST_USER: Final = "refurb-ingest"
ROBOT_TOPIC_ROOT: Final = "refurb/v1/robots"
GATEWAY_TOPIC: Final = "v1/gateway/telemetry"


# --- Mosquitto credentials ------------------------------------------------------------------------------------------


def mosquitto_password_hash(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """Hash a password the way ``mosquitto_passwd`` does (Mosquitto 2.x ``sha512-pbkdf2``).

    The format is ``$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512(password, salt, iterations, 64)>``.
    """
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, HASH_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_mosquitto_password(password: str, stored: str) -> bool:
    """Check a password against a ``$7$`` hash in constant time."""
    try:
        _, kind, iterations, salt_b64, digest_b64 = stored.split("$")
        if kind != "7":
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, int(iterations), len(expected))
    return hmac.compare_digest(digest, expected)


def password_file_text(entries: Iterable[tuple[str, str]]) -> str:
    """Return a Mosquitto password file: one ``username:hash`` line per entry."""
    lines = []
    for user, pw_hash in entries:
        if ":" in user or any(c.isspace() for c in user):
            raise ValueError(f"MQTT username {user!r} cannot contain ':' or white space")
        lines.append(f"{user}:{pw_hash}")
    return "\n".join(lines) + "\n"


def acl_text(robot_serials: Iterable[str], *, ingest_user: str = INGEST_USER, shared_group: str | None = None
             ) -> str:
    """Return a Mosquitto ACL: the ingest user reads everything refurb ingests; each robot writes only its topics.

    A robot may publish to ``refurb/v1/robots/<its serial>/#`` (telemetry, waveforms, poses, its status will) and
    nothing else; it cannot subscribe. Gateways publishing ``v1/gateway/telemetry`` need a line added by hand.
    """
    lines = ["# written by `refurb mqtt acl`; each robot may publish only under its own serial",
             f"user {ingest_user}", f"topic read {ROBOT_TOPIC_ROOT}/#", f"topic read {GATEWAY_TOPIC}"]
    if shared_group:
        lines += [f"topic read $share/{shared_group}/{ROBOT_TOPIC_ROOT}/#",
                  f"topic read $share/{shared_group}/{GATEWAY_TOPIC}"]
    for serial in robot_serials:
        if any(c in serial for c in "+#/") or any(c.isspace() for c in serial):
            raise ValueError(f"robot serial {serial!r} cannot be used in an MQTT topic")
        lines += ["", f"user {serial}", f"topic write {ROBOT_TOPIC_ROOT}/{serial}/#"]
    return "\n".join(lines) + "\n"


def write_mosquitto_files(out_dir: Path, robots: list[tuple[str, str]], *, ingest_user: str = INGEST_USER,
                          ingest_password: str | None = None, shared_group: str | None = None
                          ) -> dict[str, Any]:
    """Write ``passwd``, ``acl`` and a ``refurb.conf`` snippet to ``out_dir``.

    Returns the paths and, when no ingest password was given, the one generated for the ingest user (printed once
    by the CLI; put it in ``REFURB_MQTT_URL``).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    generated = None
    if ingest_password is None:
        ingest_password = generated = secrets.token_urlsafe(24)
    entries = [(ingest_user, mosquitto_password_hash(ingest_password)), *robots]
    passwd = out_dir / "passwd"
    acl = out_dir / "acl"
    conf = out_dir / "refurb.conf"
    fd = os.open(passwd, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password_file_text(entries))
    acl.write_text(acl_text([serial for serial, _ in robots], ingest_user=ingest_user, shared_group=shared_group),
                   encoding="utf-8")
    conf.write_text(
        "# include from mosquitto.conf (or copy): robots authenticate, each publishes only its own topics\n"
        "per_listener_settings false\n"
        "allow_anonymous false\n"
        f"password_file {passwd.resolve()}\n"
        f"acl_file {acl.resolve()}\n"
        "# refurb acknowledges after its commit: let the ingest session queue and keep in flight enough messages\n"
        "max_queued_messages 0\n"
        "max_inflight_messages 0\n"
        "persistence true\n", encoding="utf-8")
    return {"passwd": passwd, "acl": acl, "conf": conf, "robots": len(robots), "ingest_user": ingest_user,
            "generated_ingest_password": generated}


# --- embedded broker ------------------------------------------------------------------------------------------------


class EmbeddedBroker:
    """An amqtt broker running on its own event loop thread (``start()`` / ``stop()``)."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None

    @property
    def url(self) -> str:
        """Return the URL clients use to reach this broker (amqtt speaks MQTT 3.1.1 only)."""
        return f"mqtt://{self.host}:{self.port}?protocol=3.1.1"

    def start(self, timeout_s: float = 10.0) -> EmbeddedBroker:
        """Start the broker and wait until it listens; raise RuntimeError if it cannot."""
        from amqtt.broker import Broker

        for name in ("amqtt", "transitions"):
            if logging.getLogger(name).level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.WARNING)
        config = {"listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
                  "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}}
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)

            async def boot() -> None:
                self._broker = Broker(config, loop=loop)
                await self._broker.start()

            try:
                loop.run_until_complete(boot())
            except BaseException as exc:  # noqa: BLE001 - reported to the caller of start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="refurb-embedded-broker", daemon=True)
        self._thread.start()
        if not ready.wait(timeout_s) or failure:
            reason = repr(failure[0]) if failure else "timed out"
            raise RuntimeError(f"embedded MQTT broker on {self.host}:{self.port} did not start: {reason}")
        log.info("embedded MQTT broker listening on %s", self.url)
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Shut the broker down and end its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), loop).result(timeout_s)
        except Exception as exc:  # noqa: BLE001 - shutting down anyway
            log.warning("embedded MQTT broker shutdown: %r", exc)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout_s)
        self._loop = self._thread = None
