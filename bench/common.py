"""What every benchmark shares: the result row, timing with repeats, peak RSS of a child, machine facts."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# Measure what users get: bytecode cached after the first run. Some sandboxes export
# PYTHONDONTWRITEBYTECODE=1, which would recompile every module of every child on every start.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


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


# A small launcher forks and execs the command and reports its wall time and peak RSS. Measuring
# from this process directly is wrong: a child spawned by a large process (this one, once torch is
# imported) inherits its parent's RSS high-water mark across exec (vfork/fork + exec keep
# signal->maxrss), so every child would read at least this process's peak.
_LAUNCHER = """
import os, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(out, "w") as fh:
    fh.write(f"{wall} {usage.ru_maxrss * 1024} {os.waitstatus_to_exitcode(status)}")
"""


def run_child(
    cmd: Sequence[str], *, cwd: str | None = None, env: dict | None = None, stdin=subprocess.DEVNULL
) -> tuple[float, int, int]:
    """Run a command; return (wall seconds, peak RSS in bytes of that command alone, exit code)."""
    import tempfile

    fd, out = tempfile.mkstemp(prefix="run_child_")
    os.close(fd)
    try:
        proc = subprocess.run(
            [sys.executable, "-S", "-c", _LAUNCHER, out, *cmd],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=stdin,
        )
        text = open(out).read().split()
        if len(text) != 3:
            raise RuntimeError(f"launcher failed (exit {proc.returncode}) for {cmd[0]}")
        return float(text[0]), int(text[1]), int(text[2])
    finally:
        os.unlink(out)


def cli(tool: str, *args: str) -> list[str]:
    """The CLI through this interpreter (no pyenv/conda shim in the measurement)."""
    return [
        sys.executable,
        "-c",
        f"import sys; sys.argv[0]={tool!r}; from preflight.cli import {tool}_main; {tool}_main()",
        *args,
    ]


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
