"""Center dashboards: pure figure builders and thin page routes."""
