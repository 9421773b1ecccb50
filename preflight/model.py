"""The result types every check, runner and reporter share.

Kept free of heavy imports: the CLI imports this on its start-up path.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from preflight.redact import redact


class Severity(str, enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "error": 2}[self.value]

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        if isinstance(value, Severity):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            raise ValueError(f"unknown severity {value!r} (expected info, warning or error)") from None


class Status(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"
    ERROR = "error"


@dataclass(frozen=True)
class Location:
    """Where a finding points: a file and line, either optional."""

    path: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.path and self.line:
            return f"{self.path}:{self.line}"
        return self.path or ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.path is not None:
            out["path"] = self.path
        if self.line is not None:
            out["line"] = self.line
        return out


@dataclass
class Finding:
    """One problem a check found. Checks fill message/location/fix; the runner fills code/name/severity."""

    message: str
    path: str | None = None
    line: int | None = None
    fix: str | None = None
    severity: Severity | None = None  # None: the check's (possibly re-graded) severity
    code: str = ""
    name: str = ""
    # Machine-readable extras (phase, numbers); reporters may show them, JSON carries them.
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # findings quote scripts and logs; a key printed there must not travel on into CI logs
        self.message = redact(self.message)
        if self.fix:
            self.fix = redact(self.fix)

    @property
    def location(self) -> Location:
        return Location(self.path, self.line)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "name": self.name,
            "severity": (self.severity or Severity.ERROR).value,
            "message": self.message,
            "location": self.location.to_json(),
            "fix": self.fix,
        }
        if self.data:
            out["data"] = self.data
        return out


@dataclass
class CheckResult:
    """One check's outcome: status, findings, duration, and the reason when it skipped or erred."""

    code: str
    name: str
    stage: str
    status: Status
    severity: Severity
    duration_ms: float
    findings: list[Finding] = field(default_factory=list)
    reason: str | None = None  # why skipped / error message
    family: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "name": self.name,
            "status": self.status.value,
            "severity": self.severity.value,
            "duration_ms": round(self.duration_ms, 3),
            "findings": [f.to_json() for f in self.findings],
        }
        if self.reason:
            out["reason"] = self.reason
        return out


def status_for(findings: list[Finding]) -> Status:
    worst = max((f.severity.rank for f in findings if f.severity), default=-1)
    if worst >= Severity.ERROR.rank:
        return Status.FAIL
    if worst == Severity.WARNING.rank:
        return Status.WARN
    return Status.PASS


@dataclass
class RunResult:
    """Every check's outcome of one run, plus the sections that describe the run (plan, profile, phases ...)."""

    stage: str
    checks: list[CheckResult]
    fail_on: Severity = Severity.ERROR
    # Extra top-level sections (plan, profile, phases, resume, job) contributed by the run.
    extras: dict[str, Any] = field(default_factory=dict)
    # What only the human formats show (plan rows); never serialized.
    display: dict[str, Any] = field(default_factory=dict)

    @property
    def findings(self) -> list[Finding]:
        return [f for c in self.checks for f in c.findings]

    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.severity and f.severity.rank >= self.fail_on.rank]

    @property
    def internal_errors(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status is Status.ERROR]

    def incomplete_phases(self) -> list[str]:
        """Postflight: the expected phases the run did not finish (a job still running is not judged)."""
        phases = self.extras.get("phases") or []
        return [str(p.get("name", "?")) for p in phases if phase_not_done(p) and p.get("status") != "running"]

    @property
    def verdict(self) -> str:
        """One word for the whole run: 'fail' if anything at/above the threshold, or (postflight) a phase it
        should have finished is not done however clean its logs; else 'warn'/'pass'."""
        if self.failing() or self.incomplete_phases():
            return "fail"
        if self.findings and any(f.severity is not Severity.INFO for f in self.findings):
            return "warn"
        if self.internal_errors:
            return "warn"
        return "pass"

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for c in self.checks:
            out[c.status.value] += 1
        return out


def phase_not_done(phase: Any) -> bool:
    """A phase of the report's ``phases`` the run was expected to finish and did not: not one outside the logs
    (before_logs), which the resume plan takes as done."""
    return (
        isinstance(phase, dict)
        and bool(phase.get("expected", True))
        and phase.get("status") != "done"
        and not phase.get("before_logs")
    )
