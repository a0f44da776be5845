"""Engine and sessions: ``make_engine(settings)``, a request session that commits once, ``session_scope()``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import DateTime, String, TypeDecorator
from sqlmodel import Session, create_engine

from refurb.config import Settings


def utcnow() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Store timezone-aware datetimes as UTC; always hand back aware UTC (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC time is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EnumText(TypeDecorator[StrEnum]):
    """Store a StrEnum as its plain text value (no database enum types: adding a value needs no migration)."""

    impl = String(40)
    cache_ok = True

    def __init__(self, enum_cls: type[StrEnum], length: int = 40) -> None:
        super().__init__(length)
        self.enum_cls = enum_cls

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else self.enum_cls(value).value

    def process_result_value(self, value: Any, dialect: Any) -> StrEnum | None:
        return None if value is None else self.enum_cls(value)


def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    try:
        cur.execute("PRAGMA journal_mode=WAL")
    except Exception:  # noqa: BLE001 - in-memory databases have no WAL; nothing to do
        pass
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


def make_engine(settings: Settings | None = None, *, url: str | None = None, **kwargs: Any) -> Engine:
    """Create the engine for the configured database (SQLite: WAL, foreign keys, full sync)."""
    db_url = url or (settings.database_url if settings else None)
    if not db_url:
        raise ValueError("a database URL is required")
    if db_url.startswith("sqlite"):
        connect_args = {"check_same_thread": False}
        if db_url in ("sqlite://", "sqlite:///:memory:"):
            kwargs.setdefault("poolclass", StaticPool)
        engine = create_engine(db_url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if db_url.startswith("postgresql://"):
        db_url = "postgresql+psycopg://" + db_url.removeprefix("postgresql://")
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(db_url, **kwargs)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """Yield a session that commits once on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def get_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: one session per request, committed once at the end."""
    with session_scope(request.app.state.engine) as session:
        yield session


# scope="function": commit before the response goes out, so a redirected browser never outruns the write.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def count_rows(session: Session, query: Any) -> int:
    """Count the rows a select would return, in the database."""
    from sqlalchemy import func, select

    return int(session.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one())
