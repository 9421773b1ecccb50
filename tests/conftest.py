"""Shared pytest setup: tests/ on sys.path (for `import factories`), and a CLI runner."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from clirun import run_cli  # noqa: E402  (tests/ is on sys.path from here on)


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
        self.slowest: tuple[float, str] = (0.0, "")  # (seconds, reader) of the slowest hostile case
        self.largest: tuple[float, str] = (0.0, "")  # (peak RSS in MB, reader)

    def measure(self, reader: str, proc) -> None:
        wall, rss = getattr(proc, "wall_s", None), getattr(proc, "peak_rss_mb", None)
        if wall is not None and wall > self.slowest[0]:
            self.slowest = (wall, reader)
        if rss is not None and rss > self.largest[0]:
            self.largest = (rss, reader)

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
    if TALLY.slowest[1] or TALLY.largest[1]:
        tr.write_line(
            f"slowest case: {TALLY.slowest[0]:.1f} s ({TALLY.slowest[1]}); "
            f"largest peak RSS: {TALLY.largest[0]:.0f} MB ({TALLY.largest[1]})"
        )
