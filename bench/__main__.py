"""Run every benchmark module (``python -m bench [name ...]``), each in its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    modules = sorted(p.stem for p in here.glob("bench_*.py"))
    chosen = [m for m in modules if not argv or any(a in m for a in argv)]
    if not chosen:
        print(f"no benchmark matches {argv}; have: {', '.join(modules)}")
        return 2
    failed = 0
    for name in chosen:
        print(f"=== {name} ===", flush=True)
        failed += subprocess.call([sys.executable, "-m", f"bench.{name}"]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
