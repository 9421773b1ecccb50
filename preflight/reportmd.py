"""report.md: header, ``Run started:``, ``## Title`` sections, the summary table and
``Total wall clock time:``. The ``report`` fact; unavailable for eras without a report (Era D)."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.facts import FactUnavailable

MAX_REPORT_BYTES = 8 << 20
SECTION_RE = re.compile(r"^## (.+?)\s*$")
RUN_STARTED_RE = re.compile(r"^Run started: (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})")
WALL_RE = re.compile(r"^Total wall clock time: (.*)$")


@dataclass
class Report:
    path: str | None  # None: no report.md found
    searched: list[str] = field(default_factory=list)
    error: str | None = None
    title: str | None = None
    run_started: str | None = None
    sections: dict[str, int] = field(default_factory=dict)  # title -> line
    summary_line: int | None = None
    table_header: str | None = None
    table_header_line: int | None = None
    columns: list[str] = field(default_factory=list)
    rows: dict[str, dict[str, str]] = field(default_factory=dict)  # metric -> column -> cell
    row_lines: dict[str, int] = field(default_factory=dict)
    wall_clock: str | None = None
    wall_clock_line: int | None = None
    lines: int = 0
    profile: Any = None

    @property
    def exists(self) -> bool:
        return self.path is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sections": list(self.sections),
            "columns": self.columns,
            "wall_clock": self.wall_clock,
            "run_started": self.run_started,
            "error": self.error,
        }


def parse_report(path: str | Path) -> Report:
    rep = Report(path=str(path))
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_REPORT_BYTES + 1)
    except OSError as exc:
        rep.error = f"cannot read: {exc.strerror or exc}"
        return rep
    if len(raw) > MAX_REPORT_BYTES:
        rep.error = f"larger than {MAX_REPORT_BYTES} bytes: not a nanochat report"
        raw = raw[:MAX_REPORT_BYTES]
    text = raw.decode("utf-8", "replace")
    in_table = False
    for no, line in enumerate(text.splitlines(), 1):
        rep.lines = no
        s = line.rstrip()
        if no == 1 or rep.title is None and s.startswith("# "):
            if s.startswith("# "):
                rep.title = s
        m = RUN_STARTED_RE.match(s)
        if m:
            rep.run_started = m.group(1)
            continue
        m = SECTION_RE.match(s)
        if m:
            in_table = False
            title = m.group(1)
            rep.sections.setdefault(title, no)
            if title == "Summary":
                rep.summary_line = no
            continue
        if rep.summary_line and s.startswith("| Metric"):
            rep.table_header, rep.table_header_line = s, no
            rep.columns = [c.strip() for c in s.strip("|").split("|")][1:]
            in_table = True
            continue
        if in_table and s.startswith("|"):
            cells = [c.strip() for c in s.strip("|").split("|")]
            if cells and set(cells[0]) <= {"-"}:
                continue
            metric = cells[0]
            rep.rows[metric] = dict(zip(rep.columns, cells[1:], strict=False))
            rep.row_lines[metric] = no
            continue
        if in_table and not s.startswith("|"):
            in_table = False
        m = WALL_RE.match(s)
        if m:
            rep.wall_clock, rep.wall_clock_line = m.group(1).strip(), no
    return rep


def cell_problem(value: str) -> str | None:
    """'-' is a missing cell (allowed where a stage did not report it); anything else must be a finite number."""
    if value in ("-", ""):
        return None
    try:
        x = float(value)
    except ValueError:
        return f"{value!r} is not a number"
    if not math.isfinite(x):
        return f"{value} is not finite"
    return None


def report_fact(ctx: Any) -> Report:
    from preflight.ckpt import get_profile, resolve_base_dir

    profile = get_profile(ctx)
    spec = profile.data.get("report")
    if not spec:
        raise FactUnavailable(f"profile {profile.name} writes no report.md")
    candidates: list[Path] = []
    found = resolve_base_dir(ctx)
    if found is not None:
        candidates.append(found[0] / spec.get("dir", "report") / spec.get("file", "report.md"))
    candidates.append(Path(ctx.inputs.cwd) / spec.get("file", "report.md"))
    if found is None and not candidates[-1].exists():
        raise FactUnavailable("no base dir and no ./report.md: pass --base-dir")
    for path in candidates:
        if path.is_file():
            rep = parse_report(path)
            if found is None:
                _refuse_later_run(ctx, path, rep)
            rep.searched = [str(c) for c in candidates]
            rep.profile = profile
            return rep
    return Report(path=None, searched=[str(c) for c in candidates], profile=profile)


def _refuse_later_run(ctx: Any, path: Path, rep: Report) -> None:
    """./report.md is a guess (no base dir): it is not the run's when the logs' tracebacks run a checkout elsewhere
    (`report generate` writes it into the job's working directory), or when it was reset after the logs' last dated
    line (its header is written before the run's first phase). Judging these logs' phases by it would be wrong."""
    from preflight.era_evidence import frame_roots, last_log_date

    read = ctx.get("logs", None)  # the logs given and the stderr files read beside them
    logs = [ix.path for ix in read.logs] if read is not None else list(getattr(ctx.inputs, "logs", None) or [])
    roots = frame_roots(logs) if logs else set()
    here = os.path.realpath(ctx.inputs.cwd)
    if roots and here not in {os.path.realpath(r) for r in roots}:  # report generate writes into the job's cwd
        raise FactUnavailable(
            f"./report.md is not these logs' run's: they ran a checkout at {sorted(roots)[0]}: pass --base-dir"
        )
    last = last_log_date(logs) if logs and rep.run_started else None
    if last and rep.run_started[:10] > last:
        raise FactUnavailable(
            f"./report.md is a later run's (started {rep.run_started}; these logs end {last}): pass --base-dir"
        )
