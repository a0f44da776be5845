"""Alembic migrations of the refurb schema (``refurb db upgrade``)."""
