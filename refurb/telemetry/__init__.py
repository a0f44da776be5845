"""Telemetry domain: MQTT ingest from robots under test, test runs and their verdicts."""
