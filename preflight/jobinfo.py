"""What the scheduler says about a job (the ``job`` fact), independent of where it came from."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from preflight.facts import FactUnavailable

TERMINAL_STATES = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
}
ACTIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING"}


@dataclass
class JobInfo:
    """A SLURM job as scontrol or sacct reports it."""

    job_id: str
    state: str  # first word of the SLURM state: COMPLETED, FAILED, TIMEOUT, RUNNING ... ("CANCELLED by 0" -> CANCELLED)
    exit_code: str = "0:0"  # "exit:signal" as SLURM prints it
    reason: str | None = None
    name: str | None = None
    work_dir: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    elapsed_s: int | None = None
    time_limit_s: int | None = None
    start: str | None = None
    end: str | None = None
    source: str = "scontrol"  # scontrol | sacct | sacct-completion | ledger
    raw: dict[str, Any] = field(default_factory=dict)
    array_id: str | None = None  # "6067_1" for a task of a job array (job_id is then its own id, 6068)

    @property
    def label(self) -> str:
        """The id a user knows the job by: the array task's ("6067_1") or the job's."""
        return self.array_id or self.job_id

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def running(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def exit_status(self) -> int:
        try:
            return int(self.exit_code.split(":")[0])
        except (ValueError, IndexError):
            return -1

    @property
    def signal(self) -> int:
        try:
            return int(self.exit_code.split(":")[1])
        except (ValueError, IndexError):
            return 0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("raw", None)
        return out


# -- job arrays: each task is a job of its own, named ARRAY_TASK ------------------------------------
def _named(value: str | None) -> str | None:
    return None if value in (None, "", "(null)", "None", "Unknown", "N/A") else value


def array_task(rec: dict[str, str]) -> str | None:
    """ "6067_1" for a task of a job array (scontrol's ArrayJobId/ArrayTaskId, sacct's JobID)."""
    array, task = _named(rec.get("ArrayJobId")), _named(rec.get("ArrayTaskId"))
    if array and task and task.isdigit():
        return f"{array}_{task}"
    jid = rec.get("JobID") or ""
    return jid if re.fullmatch(r"\d+_\d+", jid) else None


class ArrayJob(FactUnavailable):
    """A bare id that names a whole job array: each task is a job of its own to verify."""

    def __init__(self, job_id: str, tasks: list[tuple[str, str]]):
        self.tasks = sorted(
            tasks, key=lambda t: int(t[0].rsplit("_", 1)[-1]) if t[0].rsplit("_", 1)[-1].isdigit() else 0
        )
        shown = ", ".join(f"{task} {state}" for task, state in self.tasks[:8])
        more = f" and {len(self.tasks) - 8} more" if len(self.tasks) > 8 else ""
        super().__init__(
            f"job {job_id} is a job array of {len(self.tasks)} tasks ({shown}{more}): verify one task at a time, "
            f"e.g. postflight verify {self.tasks[0][0]}"
        )
