"""What every benchmark shares: the result row, timing with repeats, peak RSS of a child, machine facts."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence


@dataclass
class Row:
    """One line of the results table: our figure next to a baseline measured in the same run."""

    what: str
    ours: float
    unit: str
    baseline: float | None = None
    baseline_what: str = ""
    target: str = ""
    meets: bool | None = None  # None: no target, or not judged here
    spread: str = ""  # "min-max" of the repeats
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0) or self.ours == 0:
            return None
        return self.ours / self.baseline


@dataclass
class Sample:
    median: float
    low: float
    high: float
    values: list[float]

    @property
    def spread(self) -> str:
        return f"{self.low:.3g}–{self.high:.3g}"


def repeat(fn: Callable[[], float | None], n: int, warmup: int = 1) -> Sample:
    """Run ``fn`` n times (after warm-ups); it returns seconds, or None to time it here."""
    for _ in range(warmup):
        fn()
    values = []
    for _ in range(n):
        start = time.perf_counter()
        out = fn()
        values.append(out if isinstance(out, float) else time.perf_counter() - start)
    return Sample(statistics.median(values), min(values), max(values), values)


def run_child(cmd: Sequence[str], *, cwd: str | None = None, env: dict | None = None,
              stdin=subprocess.DEVNULL) -> tuple[float, int, int]:
    """Run a command; return (wall seconds, peak RSS in bytes of that child, exit code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=stdin)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss * 1024, proc.returncode


def cli(tool: str, *args: str) -> list[str]:
    """The CLI through this interpreter (no pyenv/conda shim in the measurement)."""
    return [sys.executable, "-c", f"import sys; sys.argv[0]={tool!r}; from preflight.cli import {tool}_main; {tool}_main()",
            *args]


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import importlib.metadata as md

        info["torch"] = md.version("torch")
    except Exception:
        info["torch"] = "not installed"
    return info
