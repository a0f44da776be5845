"""Scaling out: two ingest workers in one MQTT v5 shared-subscription group split the stream, and every sample is
stored exactly once (the natural-identity keys make the split safe)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from tests.telemetry.conftest import (
    UNLIMITED_QUEUE,
    Publisher,
    private_mosquitto,
    running_worker,
    telemetry,
    unique,
    wait_for,
)
from tests.telemetry.test_ingest import now_ms, robots, sample_count


def test_two_workers_in_a_shared_group_split_the_stream(ingest_engine: Engine, tmp_path: Path) -> None:
    [(rid, serial)] = robots(ingest_engine)
    t = now_ms() - 10_000_000
    messages = [telemetry(serial, {"ts": t + i * 100, "values": {"v": i}}) for i in range(4_000)]
    group = unique("grp")
    with private_mosquitto(tmp_path / "mq", *UNLIMITED_QUEUE) as url, \
            running_worker(ingest_engine, url, [serial], mqtt_shared_group=group) as first, \
            running_worker(ingest_engine, url, [serial], mqtt_shared_group=group) as second:
        assert all(topic.startswith(f"$share/{group}/") for topic in first.topics)
        publisher = Publisher(url)
        try:
            assert publisher.publish(messages) == len(messages)
        finally:
            publisher.close()
        assert wait_for(lambda: first.acked + second.acked >= len(messages), 60)
        split = (first.stats()["received"], second.stats()["received"])
    assert sum(split) == len(messages)  # each message went to exactly one worker of the group
    assert min(split) > 0  # and both took part
    assert sample_count(ingest_engine, rid) == len(messages)
