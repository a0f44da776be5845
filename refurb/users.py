"""Routes for accounts: who am I, users and organisations (managers and admins)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from refurb import auth
from refurb.auth import CurrentUser, ManagerUser, Role
from refurb.db import SessionDep
from refurb.errors import ForbiddenError

router = APIRouter(tags=["users"])


@router.get("/users/me", response_model=auth.UserPublic)
def read_me(user: CurrentUser) -> auth.User:
    return user


@router.get("/users", response_model=auth.UsersPublic)
def list_users(session: SessionDep, _: ManagerUser, role: Role | None = None,
               offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=500)) -> auth.UsersPublic:
    users, count = auth.list_users(session, role=role, offset=offset, limit=limit)
    return auth.UsersPublic(data=[auth.UserPublic.model_validate(u) for u in users], count=count)


@router.post("/users", response_model=auth.UserCreated, status_code=201)
def create_user(data: auth.UserCreate, session: SessionDep, caller: ManagerUser) -> auth.UserCreated:
    if data.role == Role.ADMIN and caller.role != Role.ADMIN:
        raise ForbiddenError("only an admin may create another admin")
    user, token = auth.create_user(session, data)
    return auth.UserCreated(**auth.UserPublic.model_validate(user).model_dump(), token=token)


@router.get("/organisations", response_model=list[auth.OrganisationPublic])
def list_organisations(session: SessionDep, user: CurrentUser) -> list[auth.Organisation]:
    orgs = auth.list_organisations(session)
    scope = auth.customer_org_scope(user)
    return [o for o in orgs if scope is None or o.id == scope]


@router.post("/organisations", response_model=auth.OrganisationPublic, status_code=201)
def create_organisation(data: auth.OrganisationCreate, session: SessionDep, _: ManagerUser) -> auth.Organisation:
    return auth.get_or_create_organisation(session, name=data.name)
