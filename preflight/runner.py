"""Select checks, run them concurrently with per-check timeouts, apply suppressions and severities."""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preflight.context import Context, FactError
from preflight.facts import FactUnavailable, Skip
from preflight.model import CheckResult, Finding, RunResult, Severity, Status, status_for
from preflight.registry import COSTS, CheckSpec, Registry
from preflight.suppress import Suppression, parse_suppressions, suppression_for

UNUSED_SUPPRESSION = "SB900"
# one crafted input must not flood a report (13 MB of phase-crashed): the worst findings are kept
MAX_FINDINGS_PER_CHECK = 100
# the whole run ends by this many per-check timeouts, whatever the checks do (a stuck check keeps a thread)
RUN_DEADLINE_TIMEOUTS = 4
MAX_TIMEOUT = 3600.0


def valid_timeout(value: Any, default: float = 30.0) -> float:
    """A per-check timeout no value can disable: NaN, infinities, zero and negatives fall back to the default."""
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):
        return default
    if not (0.0 < value <= MAX_TIMEOUT):  # False for NaN too
        return default
    return value


class SelectionError(Exception):
    """A selector names no known check (usage error, exit 2)."""


@dataclass
class Selection:
    """Which checks run: the selectors chosen and ignored."""

    select: list[str]
    ignore: list[str]

    @classmethod
    def from_config(cls, config: Any) -> Selection:
        return cls(
            select=list(config["select"]) + list(config.get("extend-select", [])), ignore=list(config.get("ignore", []))
        )


def _match_len(selector: str, spec: CheckSpec) -> int:
    """How specifically ``selector`` matches ``spec`` (0: no match; ALL matches weakest)."""
    if selector == "ALL":
        return 1
    if selector.lower() == spec.name:
        return 100
    sel = selector.upper()
    if spec.code.startswith(sel):
        return 1 + len(sel)
    return 0


def validate_selectors(registry: Registry, selectors: Iterable[str]) -> None:
    for sel in selectors:
        if sel == "ALL":
            continue
        if not any(_match_len(sel, spec) for spec in registry):
            raise SelectionError(f"selector {sel!r} matches no check (see `preflight list`)")


def is_selected(spec: CheckSpec, selection: Selection) -> bool:
    best_select = max((_match_len(s, spec) for s in selection.select), default=0)
    best_ignore = max((_match_len(s, spec) for s in selection.ignore), default=0)
    return best_select > 0 and best_select > best_ignore


def severity_override(config: Any, spec: CheckSpec) -> Severity | None:
    table = config.get("severity") or {}
    for key in (spec.code, spec.name):
        if key in table:
            return Severity.parse(table[key])
    # prefix entries, most specific first
    for key in sorted(table, key=len, reverse=True):
        if key.isupper() and spec.code.startswith(key):
            return Severity.parse(table[key])
    return None


def _run_one(spec: CheckSpec, ctx: Context) -> tuple[Status, list[Finding], str | None]:
    kwargs: dict[str, Any] = {}
    try:
        for name in spec.requires:
            kwargs[name] = ctx.get(name)
    except FactUnavailable as exc:
        return Status.SKIP, [], exc.reason
    except FactError as exc:
        return Status.ERROR, [], str(exc)
    if spec.wants_ctx:
        kwargs["ctx"] = ctx
    try:
        produced = spec.func(**kwargs)
        findings = list(produced) if produced is not None else []
    except Skip as exc:
        return Status.SKIP, [], exc.reason
    except FactUnavailable as exc:  # an optional fact asked for with ctx.get() and no default
        return Status.SKIP, [], exc.reason
    except FactError as exc:
        return Status.ERROR, [], str(exc)
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" ({Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
        return Status.ERROR, [], f"check crashed: {type(exc).__name__}: {exc}{where}"
    bad = [f for f in findings if not isinstance(f, Finding)]
    if bad:
        return Status.ERROR, [], f"check returned {type(bad[0]).__name__}, expected Finding"
    return Status.PASS, findings, None


class _Task:
    def __init__(self, spec: CheckSpec):
        self.spec = spec
        self.started: float | None = None
        self.done = threading.Event()
        self.outcome: tuple[Status, list[Finding], str | None] | None = None
        self.duration = 0.0
        self.limit = 0.0


def _start_order(tasks: list[_Task]) -> list[_Task]:
    """Costliest first (a tool call, a file load): their waits overlap the cheap checks' work instead of
    trailing it; the registry's order within a cost."""
    return sorted(tasks, key=lambda t: -COSTS.index(t.spec.cost) if t.spec.cost in COSTS else 0)


def run_checks(
    registry: Registry,
    ctx: Context,
    stage: str,
    *,
    selection: Selection | None = None,
    profile: str | None = None,
    deep: bool | None = None,
    timeout: float | None = None,
    jobs: int | None = None,
) -> RunResult:
    config = ctx.config
    selection = selection or Selection.from_config(config)
    validate_selectors(registry, selection.select + selection.ignore)
    deep = bool(config.get("deep")) if deep is None else deep
    timeout = valid_timeout(config.get("timeout", 30.0) if timeout is None else timeout)
    jobs = int(config.get("jobs", 8)) if jobs is None else jobs

    specs = [s for s in registry if s.stage == stage and is_selected(s, selection) and s.applies(profile)]
    tasks = [_Task(s) for s in specs if s.code != UNUSED_SUPPRESSION]
    for task in tasks:  # a check that runs its own bounded child gets that bound plus a margin
        key = task.spec.timeout_key
        own = config.get(key) if key else None
        task.limit = max(timeout, valid_timeout(own, timeout) + 15.0) if isinstance(own, (int, float)) else timeout
    queue = deque(_start_order(tasks))
    cond = threading.Condition()
    run_deadline = time.monotonic() + RUN_DEADLINE_TIMEOUTS * max([timeout, *(t.limit for t in tasks)])

    def worker() -> None:
        """Run queued checks one after another until none is left (a pool of ``jobs`` of these, not a
        thread per check: starting 45 threads while checks hold the GIL cost ~10 ms of start-up)."""
        while True:
            with cond:
                task = None
                while queue and task is None:
                    candidate = queue.popleft()
                    task = None if candidate.done.is_set() else candidate  # given up on while queued
                if task is None:
                    return
                task.started = time.monotonic()
                cond.notify_all()  # the runner's next wake-up must include this task's deadline
            outcome = (
                (Status.SKIP, [], "deep check: run with --deep")
                if task.spec.cost == "deep" and not deep
                else _run_one(task.spec, ctx)
            )
            with cond:
                if task.done.is_set():  # the runner gave up on it and started a worker in this one's place
                    return
                task.outcome = outcome
                task.duration = time.monotonic() - task.started
                task.done.set()
                cond.notify_all()

    def start_worker() -> None:
        # daemon threads: a check stuck past its timeout must not keep the process alive
        threading.Thread(target=worker, daemon=True, name="check-worker").start()

    for _ in range(min(max(1, jobs), len(tasks))):
        start_worker()

    with cond:
        while True:
            now = time.monotonic()
            pending = [t for t in tasks if not t.done.is_set()]
            if not pending:
                break
            running = [t for t in pending if t.started is not None]
            for t in running:
                if now - t.started >= t.limit:  # type: ignore[operator]
                    t.outcome = (Status.ERROR, [], f"timed out after {t.limit:g}s")
                    t.duration = now - t.started  # type: ignore[operator]
                    t.done.set()
                    if queue:  # its worker is stuck in it: a stuck check must not keep a queued one from starting
                        start_worker()
            if now >= run_deadline:
                for t in pending:
                    if not t.done.is_set():
                        t.outcome = (
                            Status.ERROR,
                            [],
                            f"not finished when the run's deadline "
                            f"({RUN_DEADLINE_TIMEOUTS} x the longest check timeout) passed",
                        )
                        t.duration = now - (t.started or now)
                        t.done.set()
                break
            deadlines = [t.started + t.limit - now for t in running if not t.done.is_set()]  # type: ignore[operator]
            deadlines.append(run_deadline - now)
            cond.wait(timeout=max(0.005, min(deadlines)) if deadlines else 0.05)

    sups = _suppressions(ctx)
    results: list[CheckResult] = []
    for task in tasks:
        outcome = task.outcome or (Status.ERROR, [], "no outcome")
        results.append(_finish(task.spec, outcome, task.duration, config, sups, ctx))

    # The unused-suppression check runs last: it needs to know what the others suppressed.
    unused_spec = registry.get(UNUSED_SUPPRESSION)
    if unused_spec and unused_spec in specs:
        ctx._values["suppression_usage"] = SuppressionUsage(
            sups, {t.spec.code for t in tasks}, registry, str(ctx.inputs.script) if ctx.inputs.script else None
        )
        results.append(_finish(unused_spec, *_timed(unused_spec, ctx), config))
    results.sort(key=lambda r: r.code)
    return RunResult(stage=stage, checks=results, fail_on=Severity.parse(config.get("fail-on", "error")))


def _timed(spec: CheckSpec, ctx: Context) -> tuple[tuple[Status, list[Finding], str | None], float]:
    start = time.monotonic()
    outcome = _run_one(spec, ctx)
    return outcome, time.monotonic() - start


def _finish(
    spec: CheckSpec,
    outcome: tuple[Status, list[Finding], str | None],
    duration: float,
    config: Any,
    sups: list[Suppression] | None = None,
    ctx: Context | None = None,
) -> CheckResult:
    """Stamp findings with code/name/severity, drop suppressed ones, derive the status."""
    status, findings, reason = outcome
    override = severity_override(config, spec)
    kept: list[Finding] = []
    for f in findings:
        f.code, f.name = spec.code, spec.name
        f.severity = override or f.severity or spec.severity
        if sups and ctx is not None:
            # file-wide disables silence the code for this whole run; line ones only in the script
            line = f.line if _in_script(f, ctx) else None
            sup = suppression_for(sups, spec.code, spec.name, line)
            if sup is not None:
                sup.used.add(spec.code)
                continue
        kept.append(f)
    if status is Status.PASS:
        status = status_for(kept)
    if len(kept) > MAX_FINDINGS_PER_CHECK:
        kept.sort(key=lambda f: -(f.severity.rank if f.severity else 2))  # stable: the worst, in their order
        hidden = len(kept) - MAX_FINDINGS_PER_CHECK + 1
        last = kept[MAX_FINDINGS_PER_CHECK - 1]
        kept = kept[: MAX_FINDINGS_PER_CHECK - 1]
        more = Finding(
            f"... and {hidden} more {spec.name} findings not shown",
            severity=last.severity,
            data={"hidden_findings": hidden},
        )
        more.code, more.name = spec.code, spec.name
        kept.append(more)
    return CheckResult(
        code=spec.code,
        name=spec.name,
        stage=spec.stage,
        status=status,
        severity=override or spec.severity,
        duration_ms=duration * 1000.0,
        findings=kept,
        reason=reason,
        family=spec.family,
    )


@dataclass
class SuppressionUsage:
    """The 'suppression_usage' fact: the script's disable comments after every other check ran."""

    suppressions: list[Suppression]
    ran: set[str]
    registry: Registry
    script: str | None


def _script_path(ctx: Context) -> Path | None:
    return ctx.inputs.script


def _in_script(f: Finding, ctx: Context) -> bool:
    script = _script_path(ctx)
    if script is None or f.path is None:
        return False
    try:
        return os.path.samefile(f.path, script) if os.path.exists(f.path) else Path(f.path) == script
    except OSError:
        return False


def _suppressions(ctx: Context) -> list[Suppression]:
    cached = ctx.peek("suppressions")
    if cached is not None:
        return cached
    script = _script_path(ctx)
    sups: list[Suppression] = []
    if script is not None:
        try:
            from preflight.safeio import read_limited
            from preflight.script.parser import MAX_SCRIPT_BYTES

            data = read_limited(script, MAX_SCRIPT_BYTES, "batch script")
            if b"\0" not in data[:8192]:
                sups = parse_suppressions(data.decode("utf-8", errors="replace"))
        except OSError:
            sups = []
    ctx._values["suppressions"] = sups
    return sups


def suppression_usage_fact(ctx: Context) -> SuppressionUsage:
    raise FactUnavailable("suppression usage is computed by the runner after the other checks")
