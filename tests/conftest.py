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


def run_cli(
    tool: str,
    *args: str,
    cwd: Path | None = None,
    env: dict | None = None,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run `preflight`/`postflight` as a user would (a subprocess of this interpreter)."""
    full_env = dict(os.environ)
    full_env.pop("PREFLIGHT_DEBUG", None)
    full_env["NO_COLOR"] = "1"
    if env:
        full_env.update(env)
    code = f"import sys; sys.argv[0] = {tool!r}; from preflight.cli import {tool}_main; {tool}_main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


@pytest.fixture
def cli():
    return run_cli


# -- reliability tally: what malformed inputs and faults the suite tried --------------------
class Tally:
    """Counts per reader of malformed inputs tried and faults injected, plus the bad outcomes.

    Tests call ``tally.tried("parquet", n)``, ``tally.fault("sigkill")``; the bad-outcome
    counters (tracebacks, executed payloads, modified user files) are incremented by the
    tests' own checks, which also fail the test, so the summary shows them as zero only if
    the suite is green.
    """

    def __init__(self) -> None:
        self.inputs: dict[str, int] = {}
        self.faults: dict[str, int] = {}
        self.bad = {"tracebacks": 0, "executed payloads": 0, "modified user files": 0}

    def tried(self, reader: str, n: int = 1) -> None:
        self.inputs[reader] = self.inputs.get(reader, 0) + n

    def fault(self, kind: str, n: int = 1) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + n

    def outcome(self, kind: str, n: int = 1) -> None:
        self.bad[kind] = self.bad.get(kind, 0) + n


TALLY = Tally()


@pytest.fixture(scope="session")
def tally() -> Tally:
    return TALLY


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    if not TALLY.inputs and not TALLY.faults:
        return
    tr = terminalreporter
    tr.section("reliability summary")
    for reader, n in sorted(TALLY.inputs.items()):
        tr.write_line(f"malformed inputs tried  {reader:24} {n:6d}")
    for kind, n in sorted(TALLY.faults.items()):
        tr.write_line(f"faults injected         {kind:24} {n:6d}")
    tr.write_line(
        f"total: {sum(TALLY.inputs.values())} malformed inputs, {sum(TALLY.faults.values())} faults; "
        + ", ".join(f"{k}: {v}" for k, v in TALLY.bad.items())
    )
