"""Server-rendered pages: layout, login/logout with a session cookie, static files and the local plotly.js."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from refurb import __version__, auth
from refurb.db import SessionDep
from refurb.errors import RefurbError

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["version"] = __version__

# Where each role lands after login.
START_PAGE = {
    auth.Role.TECHNICIAN: "/scan",
    auth.Role.CONSULTANT: "/tickets",
    auth.Role.MANAGER: "/dashboard",
    auth.Role.ADMIN: "/dashboard",
    auth.Role.CUSTOMER: "/tickets",
}


class LoginRequired(Exception):
    """Raised by page dependencies; turned into a redirect to /login."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class PageForbidden(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def optional_page_user(request: Request, session: SessionDep) -> auth.User | None:
    """The user behind the session cookie, or None."""
    token = request.cookies.get(auth.SESSION_COOKIE)
    return auth.user_for_token(session, token) if token else None


def page_user(request: Request, session: SessionDep) -> auth.User:
    """Page dependency: the logged-in user, or a redirect to the login page."""
    user = optional_page_user(request, session)
    if user is None:
        raise LoginRequired(str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""))
    # A plain copy for the layout: error pages render after the session has rolled back and expired the row.
    request.state.user = auth.UserPublic.model_validate(user)
    return user


PageUser = Annotated[auth.User, Depends(page_user)]


def require_page_roles(*roles: auth.Role) -> Any:
    """Page dependency allowing only these roles (a 403 page otherwise)."""

    def check(user: PageUser) -> auth.User:
        if user.role not in roles:
            raise PageForbidden(f"Your role ({user.role}) cannot open this page.")
        return user

    return Depends(check)


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with the common context (user, navigation)."""
    user = getattr(request.state, "user", None)
    return templates.TemplateResponse(request, name, {"user": user, "nav": _nav(user), **context},
                                      status_code=status_code)


def _nav(user: auth.UserPublic | None) -> list[tuple[str, str]]:
    if user is None:
        return []
    items = []
    if user.role in (auth.Role.TECHNICIAN, auth.Role.MANAGER, auth.Role.ADMIN, auth.Role.CONSULTANT):
        items.append(("/scan", "Scan"))
    items.append(("/robots", "Robots"))
    items.append(("/tickets", "Tickets"))
    if user.role != auth.Role.CUSTOMER:
        items.append(("/dashboard", "Dashboard"))
    items.append(("/docs", "API"))
    return items


class LoginLimiter:
    """Allow at most N login attempts per minute per (client, username): 429 past that."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.attempts: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def hit(self, key: tuple[str, str]) -> bool:
        now = time.monotonic()
        window = self.attempts[key]
        while window and now - window[0] > 60:
            window.popleft()
        window.append(now)
        return len(window) <= self.per_minute


router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: Annotated[auth.User | None, Depends(optional_page_user)]) -> Response:
    if user is not None:
        return RedirectResponse(START_PAGE.get(auth.Role(user.role), "/scan"), status_code=303)
    return render(request, "login.html", next="/", error=None)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", next=next, error=None)


@router.post("/login")
def login(request: Request, session: SessionDep, username: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = "", token: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/") -> Response:
    limiter: LoginLimiter = request.app.state.login_limiter
    client = request.client.host if request.client else "?"
    if not limiter.hit((client, username or "token")):
        return render(request, "login.html", status_code=429, next=next,
                      error="Too many login attempts. Wait a minute and try again.")
    user = None
    if token.strip():
        user = auth.user_for_token(session, token.strip())
        session_token = token.strip() if user else None
    elif username:
        user = auth.authenticate_password(session, username=username.strip(), password=password)
        session_token = auth.issue_token(session, user=user, name="web session") if user else None
    if user is None or session_token is None:
        return render(request, "login.html", status_code=401, next=next,
                      error="Unknown user name or password, or an invalid token.")
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    if target in ("/", "/login"):
        target = START_PAGE.get(auth.Role(user.role), "/scan")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(auth.SESSION_COOKIE, session_token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", max_age=12 * 3600)
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep) -> Response:
    token = request.cookies.get(auth.SESSION_COOKIE)
    if token:
        auth.revoke_token(session, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE)
    return response


@router.get("/favicon.ico")
def favicon() -> RedirectResponse:
    return RedirectResponse("/static/favicon.svg", status_code=301)


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@router.get("/static/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    """plotly.js from the installed plotly package: served locally, shop floors may be offline."""
    return FileResponse(_plotly_js(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})


def mount(app: FastAPI) -> None:
    """Add pages, static files and the page error handlers to the app."""
    app.state.login_limiter = LoginLimiter(app.state.settings.login_attempts_per_minute)

    async def to_login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(f"/login?next={quote(exc.next_url)}", status_code=303)

    async def forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageForbidden)
        return render(request, "error.html", status_code=403, title="Not allowed", message=exc.message)

    json_handler = app.exception_handlers[RefurbError]

    async def refurb_error(request: Request, exc: Exception) -> Response:
        # API callers get JSON; people on a page get the same message as a page.
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
            return await json_handler(request, exc)
        assert isinstance(exc, RefurbError)
        return render(request, "error.html", status_code=exc.status_code, title=f"Error {exc.status_code}",
                      message=exc.message)

    app.add_exception_handler(RefurbError, refurb_error)
    app.add_exception_handler(LoginRequired, to_login)
    app.add_exception_handler(PageForbidden, forbidden)
    app.include_router(router)
    from refurb.parts import pages as parts_pages

    app.include_router(parts_pages.router)
    from dashboards import pages as dashboard_pages

    app.include_router(dashboard_pages.router)
    from refurb.telemetry import pages as telemetry_pages

    app.include_router(telemetry_pages.router)
    from refurb.consulting import pages as consulting_pages

    app.include_router(consulting_pages.router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
