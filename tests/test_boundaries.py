"""House rules that code review alone would miss: pure modules stay pure, routers stay thin."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PURE_MODULES = ["refurb.scoring.circularity", "refurb.scoring.reliability", "refurb.scoring.reuse",
                "refurb.telemetry.parsing", "refurb.telemetry.analysis", "refurb.consulting.sla",
                "dashboards.figures"]
FORBIDDEN = ("sqlmodel", "sqlalchemy", "fastapi", "starlette", "paho")


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_framework(module: str) -> None:
    code = (f"import sys, importlib; importlib.import_module({module!r}); "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _thin_files() -> list[Path]:
    names = ("pages.py", "cli.py", "web.py", "users.py")
    thin = [p for p in (ROOT / "refurb").rglob("*.py") if p.name in names or p.name.endswith("router.py")]
    return sorted(thin) + sorted((ROOT / "dashboards").glob("pages.py"))


@pytest.mark.parametrize("path", _thin_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_routers_pages_and_cli_do_no_queries(path: Path) -> None:
    tree = ast.parse(path.read_text())
    calls = [node.func.attr for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr in ("exec", "execute", "commit")]
    names = [node.func.id for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "select"]
    assert calls + names == [], f"{path.name} runs queries itself; move them into a service"
