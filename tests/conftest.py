"""Shared pytest setup: tests/ on sys.path (for `import factories`), and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


def run_cli(tool: str, *args: str, cwd: Path | None = None, env: dict | None = None,
            timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess:
    """Run `preflight`/`postflight` as a user would (a subprocess of this interpreter)."""
    full_env = dict(os.environ)
    full_env.pop("PREFLIGHT_DEBUG", None)
    full_env["NO_COLOR"] = "1"
    if env:
        full_env.update(env)
    code = f"import sys; sys.argv[0] = {tool!r}; from preflight.cli import {tool}_main; {tool}_main()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout, input=input)


@pytest.fixture
def cli():
    return run_cli
