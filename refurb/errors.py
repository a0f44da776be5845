"""One error hierarchy: services raise these, one handler turns them into JSON ``{"detail": ...}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.exc import IntegrityError


class RefurbError(Exception):
    """Base of every error a service raises on purpose."""

    status_code = 400

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"detail": self.message, **self.extra}


class NotFoundError(RefurbError):
    status_code = 404


class ConflictError(RefurbError):
    status_code = 409


class ForbiddenError(RefurbError):
    status_code = 403


class UnauthorizedError(RefurbError):
    status_code = 401


class ValidationError(RefurbError):
    status_code = 422


class TooManyRequestsError(RefurbError):
    status_code = 429


class IllegalTransitionError(ConflictError):
    """A state machine refused a step: names the current state and what is allowed next."""

    def __init__(self, *, subject: str, current: str, attempted: str, allowed: list[str], reason: str = "") -> None:
        why = f" ({reason})" if reason else ""
        allowed_text = ", ".join(allowed) if allowed else "none"
        super().__init__(
            f"cannot {attempted} {subject} in state '{current}'{why}; allowed next: {allowed_text}",
            extra={"current_state": current, "attempted": attempted, "allowed": allowed},
        )


def install_error_handlers(app: FastAPI) -> None:
    """Register the one handler for RefurbError (and its subclasses)."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RefurbError)
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, UnauthorizedError) else None
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)

    async def handle_model_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PydanticValidationError)
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors(include_url=False, include_input=False)]
        return JSONResponse({"detail": errors}, status_code=422)

    async def handle_integrity(_: Request, exc: Exception) -> JSONResponse:
        # A unique or foreign-key constraint refused a write a service did not foresee: a conflict, never a 500.
        return JSONResponse({"detail": "the change conflicts with stored data (a unique or reference constraint)"},
                            status_code=409)

    async def handle_request_validation(_: Request, exc: Exception) -> JSONResponse:
        # Like FastAPI's own handler, but without echoing the input back: an echoed NaN or Infinity cannot be
        # encoded as JSON and would turn a clear 422 into a 500.
        assert isinstance(exc, RequestValidationError)
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    app.add_exception_handler(RequestValidationError, handle_request_validation)
    app.add_exception_handler(RefurbError, handle)
    app.add_exception_handler(PydanticValidationError, handle_model_error)
    app.add_exception_handler(IntegrityError, handle_integrity)
