"""Accounts: organisations, users, roles, hashed API tokens, the CurrentUser dependency and role checks."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import JSON, Column
from sqlmodel import Field, Session, SQLModel, select

from refurb.db import EnumText, SessionDep, UTCDateTime, count_rows, utcnow
from refurb.errors import ConflictError, ForbiddenError, NotFoundError, UnauthorizedError, ValidationError

TOKEN_PREFIX = "rfb_"
SESSION_COOKIE = "refurb_session"


class Role(StrEnum):
    TECHNICIAN = "technician"
    CONSULTANT = "consultant"
    MANAGER = "manager"
    ADMIN = "admin"
    CUSTOMER = "customer"


STAFF_ROLES = frozenset({Role.TECHNICIAN, Role.CONSULTANT, Role.MANAGER, Role.ADMIN})
MANAGING_ROLES = frozenset({Role.MANAGER, Role.ADMIN})


class OrganisationKind(StrEnum):
    CUSTOMER = "customer"
    CENTER = "center"


class Organisation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    kind: OrganisationKind = Field(default=OrganisationKind.CUSTOMER, sa_type=EnumText(OrganisationKind))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OrganisationCreate(SQLModel):
    name: str = Field(min_length=1, max_length=200)


class OrganisationPublic(SQLModel):
    id: int
    name: str
    kind: OrganisationKind


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=100)
    full_name: str = Field(default="", max_length=200)
    role: Role = Field(sa_type=EnumText(Role))
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    specialties: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    password_hash: str | None = Field(default=None, max_length=300)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UserCreate(SQLModel):
    username: str = Field(min_length=1, max_length=100, schema_extra={"pattern": r"^[A-Za-z0-9_.@-]+$"})
    full_name: str = Field(default="", max_length=200)
    role: Role
    organisation: str | None = Field(default=None, max_length=200)
    specialties: list[str] = Field(default_factory=list, max_length=10)
    password: str | None = Field(default=None, min_length=8, max_length=200)


class UserPublic(SQLModel):
    id: int
    username: str
    full_name: str
    role: Role
    organisation_id: int | None
    specialties: list[str]
    active: bool


class UsersPublic(SQLModel):
    data: list[UserPublic]
    count: int


class UserCreated(UserPublic):
    token: str


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    name: str = Field(default="api", max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# --- secrets -------------------------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    """Hash an API token for storage (tokens are 256-bit random, so one SHA-256 round is enough)."""
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    """Hash a password with scrypt and a random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Check a password against its stored scrypt hash in constant time."""
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt_hex, digest_hex = stored.split("$", 2)
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), n=2**14, r=8, p=1)
    return hmac.compare_digest(digest.hex(), digest_hex)


# --- service -------------------------------------------------------------------------------------------------


def get_or_create_organisation(session: Session, *, name: str, kind: OrganisationKind = OrganisationKind.CUSTOMER
                               ) -> Organisation:
    """Return the organisation with this name, creating it if needed."""
    org = session.exec(select(Organisation).where(Organisation.name == name)).first()
    if org is None:
        org = Organisation(name=name, kind=kind)
        session.add(org)
        session.flush()
    return org


def list_organisations(session: Session) -> list[Organisation]:
    """Return all organisations by name."""
    return list(session.exec(select(Organisation).order_by(Organisation.name)))


def issue_token(session: Session, *, user: User, name: str = "api") -> str:
    """Create a new API token for the user and return it (the only time it is visible)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    assert user.id is not None
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), name=name))
    session.flush()
    return token


def create_user(session: Session, data: UserCreate) -> tuple[User, str]:
    """Create a user (customers need an organisation) and return it with its first API token."""
    if session.exec(select(User).where(User.username == data.username)).first():
        raise ConflictError(f"user '{data.username}' already exists")
    if data.role == Role.CUSTOMER and not data.organisation:
        raise ValidationError("a customer user needs an organisation (--org / 'organisation')")
    org_id = None
    if data.organisation:
        kind = OrganisationKind.CUSTOMER if data.role == Role.CUSTOMER else OrganisationKind.CENTER
        org_id = get_or_create_organisation(session, name=data.organisation, kind=kind).id
    user = User(
        username=data.username,
        full_name=data.full_name,
        role=data.role,
        organisation_id=org_id,
        specialties=list(data.specialties),
        password_hash=hash_password(data.password) if data.password else None,
    )
    session.add(user)
    session.flush()
    return user, issue_token(session, user=user)


def list_users(session: Session, *, role: Role | None = None, offset: int = 0, limit: int = 100
               ) -> tuple[list[User], int]:
    """Return a page of users and the total count."""
    query = select(User)
    if role:
        query = query.where(User.role == role)
    users = list(session.exec(query.order_by(User.id).offset(offset).limit(limit)))
    return users, count_rows(session, query)


def get_user(session: Session, user_id: int) -> User:
    """Return one user or raise NotFoundError."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"user {user_id} not found")
    return user


def get_user_by_username(session: Session, username: str) -> User | None:
    """Return the user with this login name, or None."""
    return session.exec(select(User).where(User.username == username)).first()


def user_for_token(session: Session, token: str) -> User | None:
    """Return the active user owning this API token, or None."""
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return user


def authenticate_password(session: Session, *, username: str, password: str) -> User | None:
    """Return the user if the password matches, else None."""
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or not user.active or not verify_password(password, user.password_hash):
        return None
    return user


def revoke_token(session: Session, token: str) -> None:
    """Revoke an API token (used by logout)."""
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)


# --- dependencies --------------------------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="API token from `refurb users create` (sent as Bearer)")


def get_current_user(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """Resolve the caller from a Bearer token or the page session cookie; 401 when missing or wrong."""
    token = credentials.credentials if credentials else request.cookies.get(SESSION_COOKIE)
    if not token:
        raise UnauthorizedError("missing API token: send 'Authorization: Bearer <token>'")
    user = user_for_token(session, token)
    if user is None:
        raise UnauthorizedError("invalid or revoked API token")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_roles(*roles: Role) -> Callable[..., Any]:
    """Build a dependency that lets only the given roles through (403 otherwise)."""
    allowed = frozenset(roles)

    def check(user: CurrentUser) -> User:
        if user.role not in allowed:
            names = ", ".join(sorted(allowed))
            raise ForbiddenError(f"role '{user.role}' may not do this; needs one of: {names}")
        return user

    return check


StaffUser = Annotated[User, Depends(require_roles(*STAFF_ROLES))]
ManagerUser = Annotated[User, Depends(require_roles(*MANAGING_ROLES))]
TechnicianUser = Annotated[User, Depends(require_roles(Role.TECHNICIAN, Role.MANAGER, Role.ADMIN))]


def customer_org_scope(user: User) -> int | None:
    """Return the organisation a user is confined to (customers), or None for center staff."""
    if user.role == Role.CUSTOMER:
        if user.organisation_id is None:
            raise ForbiddenError("customer account has no organisation")
        return user.organisation_id
    return None
