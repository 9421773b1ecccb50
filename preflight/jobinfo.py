"""What the scheduler says about a job (the ``job`` fact), independent of where it came from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

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
