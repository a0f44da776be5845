"""Server-rendered pages (mounted by create_app)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

HOME = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>refurb</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 48rem; margin: 2rem auto">
<h1>refurb</h1><p>Robot remanufacturing center tracker.</p>
<ul><li><a href="/docs">API documentation (OpenAPI)</a></li>
<li>Scan station: <code>POST /api/v1/scan</code> with a Bearer token (login page coming with the web app)</li></ul>
</body></html>"""


def mount(app: FastAPI) -> None:
    """Add the pages to the app."""

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        return HOME
