"""The job as a timeline (the ``timeline`` fact): its steps, its processes, its phases.

* steps: the launched commands of the batch script, in order, each with its phase
  (``preflight.jobscript``; absent when no script is known);
* processes: every log segment (one process run), placed in a phase: by its own evidence (an
  echo header, the script in its frames, a step grammar), else for a crash in ``chat_eval`` by
  the checkpoint it could not find, else by its neighbours in the same log;
* phases: the verdict of each phase with where it started and ended in the logs, so a report
  can draw the run (start/end lines, steps logged, the crash if any);
* streams: which stderr files were read beside the given logs, and where the traceback would
  be when none was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from preflight.facts import FactUnavailable


@dataclass
class Process:
    log: str
    start_line: int
    end_line: int
    phase: str | None
    script: str | None
    steps: int
    # header | step order | marker | script | steps | checkpoint load | stream pair | cascade | neighbour | unknown
    placed_by: str
    crash: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "lines": [self.start_line, self.end_line],
            "phase": self.phase,
            "script": self.script,
            "steps": self.steps,
            "placed_by": self.placed_by,
            "crash": self.crash,
        }


@dataclass
class PhaseSpan:
    name: str
    status: str
    cause: str
    start: str | None = None  # "path:line" of the first process of the phase
    end: str | None = None
    steps_logged: int = 0
    first_step: int | None = None
    last_step: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Timeline:
    steps: list[Any] = field(default_factory=list)
    script_source: str | None = None
    processes: list[Process] = field(default_factory=list)
    phases: list[PhaseSpan] = field(default_factory=list)
    streams: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "script_source": self.script_source,
            "steps": [s.to_json() for s in self.steps],
            "processes": [p.to_json() for p in self.processes],
            "phases": [p.to_json() for p in self.phases],
            "streams": self.streams.to_json() if self.streams is not None else None,
        }


def _placed(seg: Any) -> tuple[str | None, str]:
    from preflight.verdict import tb_phase

    if seg.header is not None:
        return seg.phase, "header"
    if seg.placed_by_step is not None:
        return seg.phase, "step order"
    if seg.marker:
        return seg.phase, "marker"
    if seg.phase:
        if seg.step_lines:
            return seg.phase, "steps"
        return seg.phase, seg.named_by_load or "script"
    for tb in seg.tracebacks:
        p = tb_phase(tb)
        if p:
            return p, "cascade"
    return None, "unknown"


def _crash(seg: Any) -> dict[str, Any] | None:
    from preflight.causes import classify_traceback

    tbs = [t for t in seg.tracebacks if not t.wrapper]
    if not tbs:
        return None
    tb = tbs[0]
    failed = seg.failed_marker.data if seg.failed_marker is not None else {}
    return {
        "where": tb.where,
        "type": tb.exc_type,
        "message": tb.message[:300],
        "root": tb.root[0],
        "ranks": tb.ranks,
        "exitcode": failed.get("exitcode"),
        "cause": classify_traceback(tb).to_json(),
    }


def build(logs: Any, phases: Any, script: Any = None) -> Timeline:
    tl = Timeline(streams=getattr(logs, "streams", None) if logs is not None else None)
    if script is not None:
        tl.steps, tl.script_source = list(script.steps), script.source
    for ix in logs.logs if logs is not None else []:
        placed = [_placed(seg) for seg in ix.segments]
        for i, seg in enumerate(ix.segments):
            phase, how = placed[i]
            if phase is None:  # between two processes of one phase: the same phase (a setup line, an eval)
                before = next((p for p, _ in reversed(placed[:i]) if p), None)
                after = next((p for p, _ in placed[i + 1 :] if p), None)
                if before and before == after:
                    phase, how = before, "neighbour"
            tl.processes.append(
                Process(ix.path, seg.start_line, seg.end_line, phase, seg.script, seg.step_lines, how, _crash(seg))
            )
    for v in phases.verdicts if phases is not None else []:
        mine = [p for p in tl.processes if p.phase == v.name]
        span = PhaseSpan(v.name, v.status, v.cause)
        if mine:
            span.start = f"{mine[0].log}:{mine[0].start_line}"
            span.end = f"{mine[-1].log}:{mine[-1].end_line}"
            span.steps_logged = sum(p.steps for p in mine)
        segs = logs.by_phase(v.name) if logs is not None else []
        firsts = [s.first_step.step for s in segs if s.first_step is not None]
        lasts = [s.last_step.step for s in segs if s.last_step is not None]
        span.first_step = min(firsts) if firsts else None
        span.last_step = max(lasts) if lasts else None
        tl.phases.append(span)
    return tl


def timeline_fact(ctx: Any) -> Timeline:
    logs = ctx.get("logs", None)
    phases = ctx.get("phases", None)
    if logs is None and phases is None:
        raise FactUnavailable("no logs and no base dir: nothing to place on a timeline")
    return build(logs, phases, ctx.get("jobscript", None))
