"""How a phase's logs end, where no job state says more: silent in its setup, quiet after its last step (killed,
hung or still running: a log still growing looks the same), written minutes ago, or, in a job that only evaluated,
at its evaluation's result."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from preflight.phases import EVALUATION_SCRIPTS, TRAINER_SCRIPTS


def stderr_note(logs: Any, silent: bool = False) -> str:
    """Where a phase's missing traceback is: the stderr postflight did not get, or why there is none
    (silent: the logs end in that phase, which may still run or hang, so no guess why)."""
    streams = getattr(logs, "streams", None) if logs is not None else None
    if streams is None:
        return "see the job's stderr"
    if streams.stderr_hint:
        return f"the traceback is in {streams.stderr_hint}"
    why = "" if silent else ": killed or exited without one"
    if streams.also_read:
        return f"no traceback in {', '.join(p for p, _ in streams.also_read)} either{why}"
    if streams.merged:
        return f"stderr goes to this log too and it holds no traceback{why}"
    return "see the job's stderr"


# a process that logged no step and left no traceback, the last thing in logs read without the job's state
SILENT_UNKNOWN = (
    "it went silent during setup: it died, hung or is still running (these logs alone cannot tell; "
    "postflight verify JOBID reads the job's state)"
)


def silent_at_end(logs: Any, seg: Any, job: Any) -> bool:
    """seg is the last process of the logs, they end in its setup, their stderr was read and holds no traceback,
    and there is no job state to say more. (Where stderr went elsewhere, the traceback is there: it died.)"""
    streams = getattr(logs, "streams", None) if logs is not None else None
    read_all = streams is not None and not streams.stderr_hint and bool(streams.merged or streams.also_read)
    return job is None and read_all and bool(logs.segments) and logs.segments[-1] is seg


RECENTLY_WRITTEN_S = 15 * 60  # a log written this recently may be the live file of a run still going


def last_written(path: str) -> str:
    """A note on a log written in the last minutes (its file's time): a fact the user can weigh, not a verdict (a
    fresh copy of an old log is recent too)."""
    from preflight.units import duration

    try:
        age = time.time() - Path(path).stat().st_mtime
    except OSError:
        return ""
    if not 0 <= age < RECENTLY_WRITTEN_S:
        return ""
    return f"; {Path(path).name} was last written {duration(age)} ago: if it is the live log of a run, that run is probably still going"


def logs_end_quietly_in(logs: Any, seg: Any) -> bool:
    """The logs end in this process with no error of it and no SLURM event: a copy of a log still growing (a run still
    going) looks the same as one that was killed or hung."""
    if logs is None or not logs.segments or logs.segments[-1] is not seg or seg.tracebacks or seg.nan_loss is not None:
        return False
    return not any(logs.slurm_events(k) for k in ("cancel", "oom-kill", "nccl-watchdog"))


def evaluated_only(phase: str, segs: list, logs: Any) -> str | None:
    """The phase's processes in these logs are only its evaluations (base_eval, no trainer), and the logs show the
    phase's checkpoint loaded: its training is an earlier job's, done; what these logs ran is said (None otherwise)."""
    names = {s.script for s in segs}
    if not names or None in names or names & set(TRAINER_SCRIPTS):
        return None
    load = next(
        (s.loaded for s in logs.segments if s.loaded is not None and s.loaded.data.get("source") == phase), None
    )
    end = next((e for s in segs for e in s.end_markers.values()), None)
    if load is None or end is None or not isinstance(load.data.get("step"), int):
        return None  # (an evaluation cut off before its result is no finished one)
    said = " ".join(end.text.split())[:60]
    return (
        f"trained before these logs: {', '.join(sorted(names))} evaluated its step-{load.data['step']} checkpoint "
        f"(line {load.line}) to its end (line {end.line}: {said})"
    )


def evaluations_only(logs: Any) -> bool:
    """Every process these logs name is an evaluation entry point: no trainer ran in them."""
    names = {s.script for s in logs.segments if s.script}
    return bool(names) and names <= EVALUATION_SCRIPTS
