"""What SLURM says: the ``slurm`` and ``job`` facts, job state from scontrol/sacct, --test-only.

Every call goes through ``preflight.proc.run_tool`` (no shell, a timeout): a missing tool is
FactUnavailable, a hung one is ToolTimeout (the asking check becomes *error*, never a hang).

Where a job's state comes from (measured on slurm-wlm 22.05):
- ``scontrol show job -o ID`` while the controller still knows the job (pending, running, and
  MinJobAge seconds after the end). For an unknown id: "Invalid job id specified", rc 1.
- ``sacct -X -P -j ID`` afterwards. sacct lags scontrol by 0.1-5 s: until it settles it shows
  ``JobName=allocation`` and/or a non-final state, so it is polled.
- ``sacct -c`` (the jobcomp/filetxt completion log) when accounting storage is disabled.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.facts import FactUnavailable
from preflight.jobinfo import ACTIVE_STATES, TERMINAL_STATES, ArrayJob, JobInfo, array_task
from preflight.proc import ToolResult, ToolTimeout, run_tool

DEFAULT_TIMEOUT = 20.0  # seconds for one client command (config: slurm-timeout)
PING_TIMEOUT = 8.0  # the slurm fact must be quick: an absent controller is "no SLURM here"
QUICK_TIMEOUT = 2.0  # a call whose answer only refines a guess (the partition's GPU model)
SACCT_FIELDS = (
    "JobID",
    "JobIDRaw",
    "JobName",
    "State",
    "ExitCode",
    "Elapsed",
    "Timelimit",
    "Start",
    "End",
    "Reason",
    "WorkDir",
    "NodeList",
    "AllocTRES",
)
# `sacct -c` (jobcomp/filetxt) knows fewer fields
SACCT_COMPLETION_FIELDS = ("JobID", "JobIDRaw", "JobName", "State", "ExitCode", "Elapsed", "Timelimit", "Start", "End")
UNSETTLED_NAME = "allocation"  # sacct's placeholder name before the record is complete
APPEAR_GRACE = 2.0  # seconds sacct may take to show a job at all before it counts as unknown

Env = Mapping[str, str] | None


# ---------------------------------------------------------------------------- time strings
_NO_TIME = {"", "UNLIMITED", "INFINITE", "NONE", "N/A", "UNKNOWN", "PARTITION_LIMIT", "INVALID"}
_TIME_RE = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?(?:\.\d+)?$")


def parse_time(text: str | None) -> int | None:
    """Seconds in a SLURM time string, or None for unlimited/unknown.

    Accepts what sbatch --time accepts and what scontrol/sacct print: ``MM``, ``MM:SS``,
    ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS`` (a bare number is minutes, as in
    ``--time=60`` and ``sacct -c``'s Timelimit). ``UNLIMITED``, ``INFINITE``, ``NONE``,
    ``Partition_Limit``, ``Unknown`` -> None. Malformed text raises ValueError.
    """
    if text is None:
        return None
    s = text.strip()
    if s.upper() in _NO_TIME:
        return None
    m = _TIME_RE.match(s)
    if not m:
        raise ValueError(f"not a SLURM time: {text!r}")
    days, a, b, c = m.group(1), int(m.group(2)), m.group(3), m.group(4)
    if days is not None:  # D-HH[:MM[:SS]]
        return int(days) * 86400 + a * 3600 + int(b or 0) * 60 + int(c or 0)
    if c is not None:  # HH:MM:SS
        return a * 3600 + int(b) * 60 + int(c)
    if b is not None:  # MM:SS
        return a * 60 + int(b)
    return a * 60  # MM


def format_time(seconds: int | None) -> str:
    """Seconds as SLURM prints them (``1-02:03:04``, ``00:05:00``); None -> ``UNLIMITED``."""
    if seconds is None:
        return "UNLIMITED"
    d, rem = divmod(int(seconds), 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    return f"{d}-{h:02d}:{m:02d}:{s:02d}" if d else f"{h:02d}:{m:02d}:{s:02d}"


def parse_time_or_none(text: str | None) -> int | None:
    """parse_time, with None for malformed text too (``#SBATCH --time=soon``)."""
    try:
        return parse_time(text)
    except ValueError:
        return None


# ---------------------------------------------------------------------------- parsers
_KEY_RE = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=")


def parse_keyvalue_line(line: str) -> dict[str, str]:
    """``Key=value Key2=a=b,c ...`` (one line of ``scontrol show ... -o``) -> dict.

    A value runs until the next whitespace-separated ``Key=``, so values that contain ``=``
    (TRES=cpu=1,node=1) or spaces (a Command path) survive.
    """
    out: dict[str, str] = {}
    matches = list(_KEY_RE.finditer(line))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
        out[m.group(1)] = line[m.end() : end].strip()
    return out


def parse_scontrol_jobs(text: str) -> list[dict[str, str]]:
    """All jobs in ``scontrol show job -o`` output (one per line)."""
    return [parse_keyvalue_line(line) for line in text.splitlines() if line.strip().startswith("JobId=")]


def parse_sacct(text: str) -> list[dict[str, str]]:
    """``sacct -P`` output with its header line -> one dict per row (field names from the header)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    header = lines[0].split("|")
    rows = []
    for ln in lines[1:]:
        parts = ln.split("|")
        if len(parts) < len(header):
            parts += [""] * (len(header) - len(parts))
        rows.append(dict(zip(header, parts, strict=False)))
    return rows


def normalize_state(state: str | None) -> str:
    """First word, upper case: ``CANCELLED by 0`` -> ``CANCELLED``; ``COMPLETED+`` -> ``COMPLETED``."""
    word = (state or "").strip().split(" ")[0].rstrip("+").upper()
    return word or "UNKNOWN"


def _none(value: str | None) -> str | None:
    return None if value in (None, "", "(null)", "None", "Unknown", "N/A") else value


def jobinfo_from_scontrol(rec: dict[str, str]) -> JobInfo:
    return JobInfo(
        array_id=array_task(rec),
        job_id=rec.get("JobId", ""),
        state=normalize_state(rec.get("JobState")),
        exit_code=rec.get("ExitCode") or "0:0",
        reason=_none(rec.get("Reason")),
        name=_none(rec.get("JobName")),
        work_dir=_none(rec.get("WorkDir")),
        stdout=_none(rec.get("StdOut")),
        stderr=_none(rec.get("StdErr")),
        elapsed_s=parse_time_or_none(rec.get("RunTime")),
        time_limit_s=parse_time_or_none(rec.get("TimeLimit")),
        start=_none(rec.get("StartTime")),
        end=_none(rec.get("EndTime")),
        source="scontrol",
        raw=dict(rec),
    )


def jobinfo_from_sacct(rec: dict[str, str], source: str = "sacct") -> JobInfo:
    return JobInfo(
        array_id=array_task(rec),
        job_id=rec.get("JobIDRaw") or rec.get("JobID", ""),
        state=normalize_state(rec.get("State")),
        exit_code=rec.get("ExitCode") or "0:0",
        reason=_none(rec.get("Reason")),
        name=_none(rec.get("JobName")),
        work_dir=_none(rec.get("WorkDir")),
        elapsed_s=parse_time_or_none(rec.get("Elapsed")),
        time_limit_s=parse_time_or_none(rec.get("Timelimit")),
        start=_none(rec.get("Start")),
        end=_none(rec.get("End")),
        source=source,
        raw=dict(rec),
    )


def sacct_settled(rec: dict[str, str]) -> bool:
    """The accounting record is complete: the real job name is in and the state is final."""
    return rec.get("JobName") != UNSETTLED_NAME and normalize_state(rec.get("State")) in TERMINAL_STATES


# ---------------------------------------------------------------------------- running tools
def _run(args: list[str], env: Env, timeout: float | None, cwd: str | os.PathLike | None = None) -> ToolResult:
    """run_tool, finding the executable on the PATH of ``env`` (the run's environment, so a
    hermetic context without PATH sees no SLURM) and passing that environment on."""
    exe = args[0]
    if env is not None:
        exe = shutil.which(args[0], path=env.get("PATH", "")) or ""
        if not exe:
            raise FactUnavailable(f"{args[0]} not found on PATH")
    return run_tool(
        [exe, *args[1:]], timeout=timeout or DEFAULT_TIMEOUT, env=env, cwd=str(cwd) if cwd is not None else None
    )


def _first_line(result: ToolResult) -> str:
    return meaningful_line((result.stderr or result.stdout), result.returncode)


def meaningful_line(text: str, returncode: int | None = None) -> str:
    """The line of a SLURM tool's output worth quoting: its last error line, else its first line
    with words in it, without banners (``scontrol ping`` frames "Slurmctld(primary) at x is DOWN"
    in rows of ``*``)."""
    lines = [ln.strip().strip("*=-#").strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if any(ch.isalnum() for ch in ln)]
    errors = [ln for ln in lines if "error" in ln.lower()]
    if errors:
        return errors[-1]
    if lines:
        return lines[0]
    return f"exit status {returncode}" if returncode is not None else "no output"


def _check_conf(env: Env) -> None:
    """A SLURM_CONF that does not exist makes every client retry for 60 s: fail fast instead."""
    conf = (env if env is not None else os.environ).get("SLURM_CONF")
    if conf and not Path(conf).is_file():
        raise FactUnavailable(f"SLURM_CONF={conf} does not exist")


# ---------------------------------------------------------------------------- partitions
@dataclass
class Partition:
    """A partition as ``scontrol show partition -o`` reports it."""

    name: str
    default: bool
    state: str
    max_time_s: int | None  # None: UNLIMITED
    default_time_s: int | None
    nodes: str
    total_cpus: int | None
    total_nodes: int | None
    gpus: int | None  # gres/gpu in the partition's TRES, if any
    raw: dict[str, str] = field(default_factory=dict, repr=False)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def parse_partitions(text: str) -> list[Partition]:
    """``scontrol show partition -o`` -> partitions."""
    out = []
    for line in text.splitlines():
        if not line.startswith("PartitionName="):
            continue
        rec = parse_keyvalue_line(line)
        gpus = None
        m = re.search(r"gres/gpu(?::[^=,]+)?=(\d+)", rec.get("TRES", ""))
        if m:
            gpus = int(m.group(1))
        out.append(
            Partition(
                name=rec.get("PartitionName", ""),
                default=rec.get("Default", "NO").upper() == "YES",
                state=rec.get("State", ""),
                max_time_s=parse_time_or_none(rec.get("MaxTime")),
                default_time_s=parse_time_or_none(rec.get("DefaultTime")),
                nodes=rec.get("Nodes", ""),
                total_cpus=_int(rec.get("TotalCPUs")),
                total_nodes=_int(rec.get("TotalNodes")),
                gpus=gpus,
                raw=rec,
            )
        )
    return out


def partitions(*, env: Env = None, timeout: float | None = None) -> list[Partition]:
    res = _run(["scontrol", "show", "partition", "-o"], env, timeout)
    if res.returncode != 0:
        raise FactUnavailable(f"scontrol show partition failed: {_first_line(res)}")
    return parse_partitions(res.stdout)


# ---------------------------------------------------------------------------- the slurm fact
@dataclass
class SlurmInfo:
    """A SLURM controller that answered: version, config file, partitions."""

    controller: str  # scontrol ping's line
    conf: str | None  # SLURM_CONF when set
    partitions: list[Partition]
    env: dict[str, str] | None = field(default=None, repr=False)  # environment the tools ran with
    timeout: float = DEFAULT_TIMEOUT

    @property
    def version(self) -> str:
        """``scontrol --version``, asked when read (no check needs it; every tool call is start-up time)."""
        return _run(["scontrol", "--version"], self.env, min(self.timeout, PING_TIMEOUT)).stdout.strip()

    @property
    def default_partition(self) -> Partition | None:
        return next((p for p in self.partitions if p.default), self.partitions[0] if self.partitions else None)

    def partition(self, name: str | None) -> Partition | None:
        if not name:
            return self.default_partition
        return next((p for p in self.partitions if p.name == name), None)


def slurm_fact(ctx: Any) -> SlurmInfo:
    """The ``slurm`` fact: FactUnavailable when sbatch/scontrol are missing or the controller
    does not answer within a few seconds."""
    env = dict(ctx.environ)
    timeout = float(ctx.config.get("slurm-timeout", DEFAULT_TIMEOUT) or DEFAULT_TIMEOUT)
    return probe(env=env, timeout=timeout, known_partitions=lambda: ctx.get("slurm_partitions", None))


def slurm_partitions_fact(ctx: Any) -> list[Partition]:
    """``scontrol show partition -o``, asked once per run: the plan (a GPU model from the partition) and
    the slurm fact share it. Bounded to 2 s: a hung controller costs the plan 2 s, not the probe's 20."""
    if not shutil.which("scontrol", path=ctx.environ.get("PATH", "")):
        raise FactUnavailable("no SLURM here: scontrol not found on PATH")
    env = dict(ctx.environ)
    try:
        # a controller that is down answers `ping` at once, while `show partition` retries for seconds (2 s of
        # every plan on a login node whose controller was down)
        ping = _run(["scontrol", "ping"], env, QUICK_TIMEOUT)
        if ping.returncode != 0 or " is UP" not in ping.stdout:
            raise FactUnavailable(f"SLURM controller does not answer: {_first_line(ping)}")
        return partitions(env=env, timeout=QUICK_TIMEOUT)
    except ToolTimeout as exc:
        raise FactUnavailable(str(exc)) from None


def probe(
    *,
    env: Env = None,
    timeout: float = DEFAULT_TIMEOUT,
    known_partitions: Callable[[], list[Partition] | None] | None = None,
) -> SlurmInfo:
    """Is a SLURM controller reachable from here? SlurmInfo, or FactUnavailable saying why.
    ``known_partitions``: the partitions when already asked for (else None: asked here, with ``timeout``)."""
    path = (env if env is not None else os.environ).get("PATH", "")
    for tool in ("sbatch", "scontrol"):
        if not shutil.which(tool, path=path):
            raise FactUnavailable(f"no SLURM here: {tool} not found on PATH")
    _check_conf(env)
    ping_timeout = min(timeout, PING_TIMEOUT)
    try:
        ping = _run(["scontrol", "ping"], env, ping_timeout)
    except ToolTimeout:
        raise  # a hung controller is not "no SLURM here": the checks that need it become errors
    except Exception as exc:
        raise FactUnavailable(f"SLURM controller does not answer: {exc}") from None
    line = _first_line(ping)
    if ping.returncode != 0 or " is UP" not in ping.stdout:
        raise FactUnavailable(f"SLURM controller does not answer: {line}")
    parts = known_partitions() if known_partitions is not None else None
    return SlurmInfo(
        controller=line,
        conf=(env or os.environ).get("SLURM_CONF"),
        partitions=parts if parts is not None else partitions(env=env, timeout=timeout),
        env=dict(env) if env is not None else None,
        timeout=timeout,
    )


# ---------------------------------------------------------------------------- one job
def scontrol_job(job_id: str | int, *, env: Env = None, timeout: float | None = None) -> dict[str, str] | None:
    """``scontrol show job -o ID`` as a dict; None when the controller no longer knows the job."""
    res = _run(["scontrol", "show", "job", "-o", str(job_id)], env, timeout)
    if res.returncode != 0:
        if "Invalid job id" in res.stderr or "Invalid job id" in res.stdout:
            return None
        raise FactUnavailable(f"scontrol show job {job_id} failed: {_first_line(res)}")
    jobs = parse_scontrol_jobs(res.stdout)
    tasks = [j for j in jobs if array_task(j) and j.get("ArrayJobId") == str(job_id)]
    if len(tasks) > 1:  # `scontrol show job 6067` of an array lists every task (the last one has JobId 6067)
        raise ArrayJob(str(job_id), [(array_task(j) or "", normalize_state(j.get("JobState"))) for j in tasks])
    wanted = (
        (lambda j: array_task(j) == str(job_id)) if "_" in str(job_id) else (lambda j: j.get("JobId") == str(job_id))
    )
    return next((j for j in jobs if wanted(j)), jobs[0] if jobs else None)


def _sacct_once(job_id: str, env: Env, timeout: float | None, completion: bool) -> tuple[dict[str, str] | None, str]:
    """One sacct query: (row or None, error text or "")."""
    fields = SACCT_COMPLETION_FIELDS if completion else SACCT_FIELDS
    args = ["sacct", "-c"] if completion else ["sacct", "-X"]
    res = _run([*args, "-P", "-j", str(job_id), f"--format={','.join(fields)}"], env, timeout)
    if res.returncode != 0:
        return None, _first_line(res)
    parsed = parse_sacct(res.stdout)
    rows = [r for r in parsed if str(job_id) in (r.get("JobID"), r.get("JobIDRaw"))]
    tasks = [r for r in parsed if (r.get("JobID") or "").startswith(f"{job_id}_")]
    if len(tasks) > 1:  # the array's id (also the JobIDRaw of its last task) names every task
        raise ArrayJob(str(job_id), [(r.get("JobID", ""), normalize_state(r.get("State"))) for r in tasks])
    if not rows and len(tasks) == 1:
        rows = tasks  # an array of one task
    return (rows[-1] if rows else None), ""


SACCT_STEP_FIELDS = ("JobID", "JobIDRaw", "JobName", "State", "ExitCode", "NodeList", "NNodes", "Elapsed")


def sacct_steps(job_id: str | int, *, env: Env = None, timeout: float | None = None) -> list[dict[str, str]]:
    """Every step of a job (``sacct -j ID`` without -X: the batch script, each srun, each
    torchrun launched by srun) with its state, exit code and nodes; [] when accounting cannot say."""
    try:
        res = _run(["sacct", "-P", "-j", str(job_id), f"--format={','.join(SACCT_STEP_FIELDS)}"], env, timeout)
    except FactUnavailable:
        return []
    if res.returncode != 0:
        return []
    # an array task's steps are named by the task (6067_1.batch), their JobIDRaw by its own id (6068.batch)
    return [
        r
        for r in parse_sacct(res.stdout)
        if r.get("JobID", "").startswith(f"{job_id}.") or r.get("JobIDRaw", "").startswith(f"{job_id}.")
    ]


def sacct_job(
    job_id: str | int, settle_timeout: float = 15.0, *, env: Env = None, timeout: float | None = None, poll: float = 0.5
) -> tuple[dict[str, str] | None, str]:
    """The accounting record of a job: (row, source) with source ``sacct`` or ``sacct-completion``.

    Polls ``sacct -X -P -j ID`` until the record settles (JobName is not ``allocation`` and
    the state is final) or ``settle_timeout`` passes (``APPEAR_GRACE`` when there is no row at all) (then the last row seen is returned: a
    job that is really still running stays RUNNING). Accounting disabled, or no row at all:
    falls back to ``sacct -c`` (the completion log). (None, "") when neither knows the job.
    """
    job_id = str(job_id)
    deadline = time.monotonic() + settle_timeout
    appear_deadline = time.monotonic() + min(APPEAR_GRACE, settle_timeout)
    last: dict[str, str] | None = None
    while True:
        row, err = _sacct_once(job_id, env, timeout, completion=False)
        if err:  # "Slurm accounting storage is disabled" and friends: no point polling
            break
        if row is not None:
            last = row
            if sacct_settled(row):
                return row, "sacct"
        if time.monotonic() >= deadline:
            break
        if last is None and time.monotonic() >= appear_deadline:
            break  # no record at all: unknown to accounting (a live job would be in scontrol)
        time.sleep(poll)
    if last is not None and last.get("JobName") != UNSETTLED_NAME:
        return last, "sacct"
    row, _ = _sacct_once(job_id, env, timeout, completion=True)
    if row is not None:
        return row, "sacct-completion"
    return last, "sacct" if last is not None else ""


def job_info(
    job_id: str | int, *, env: Env = None, timeout: float | None = None, settle_timeout: float = 15.0
) -> JobInfo | None:
    """State of a job: scontrol while the controller knows it, else sacct. None if unknown."""
    rec = scontrol_job(job_id, env=env, timeout=timeout)
    if rec is not None:
        return jobinfo_from_scontrol(rec)
    row, source = sacct_job(job_id, settle_timeout, env=env, timeout=timeout)
    if row is None:
        return None
    return jobinfo_from_sacct(row, source)


def wait_for_job(
    job_id: str | int, timeout: float = 600.0, poll: float = 1.0, *, env: Env = None, tool_timeout: float | None = None
) -> JobInfo | None:
    """Poll until the job reaches a final state or ``timeout`` seconds pass.

    Returns the last JobInfo seen (check ``.finished``: False means it timed out while the job
    was pending/running), or None if SLURM does not know the job at all. Once scontrol shows the
    final state, sacct is given a few seconds to settle when the job is gone from scontrol.
    """
    deadline = time.monotonic() + timeout
    info: JobInfo | None = None
    while True:
        remaining = max(0.0, deadline - time.monotonic())
        info = job_info(job_id, env=env, timeout=tool_timeout, settle_timeout=min(15.0, remaining))
        if info is None or info.finished or remaining <= 0:
            return info
        time.sleep(min(poll, remaining))


def job_fact(ctx: Any) -> JobInfo:
    """The ``job`` fact: what SLURM says about ``ctx.inputs.job_id``."""
    job_id = getattr(ctx.inputs, "job_id", None)
    if not job_id:
        raise FactUnavailable("no job id given")
    info: SlurmInfo = ctx.get("slurm")  # FactUnavailable when there is no SLURM here
    found = job_info(job_id, env=info.env, timeout=info.timeout)
    if found is None:
        raise FactUnavailable(f"SLURM knows no job {job_id} (scontrol and sacct)")
    return found


def job_steps_fact(ctx: Any) -> list[dict[str, str]]:
    """The ``job_steps`` fact: the job's steps as accounting records them (state, exit code, nodes)."""
    job = ctx.get("job")
    info: SlurmInfo = ctx.get("slurm")
    steps = sacct_steps(job.job_id, env=info.env, timeout=info.timeout)
    if not steps:
        raise FactUnavailable(f"accounting has no steps of job {job.job_id} (sacct: accounting off, or too early)")
    return steps


# ---------------------------------------------------------------------------- sbatch --test-only
@dataclass
class TestOnlyResult:
    """``sbatch --test-only``: would SLURM accept the job, and when would it start."""

    __test__ = False  # not a pytest class
    ok: bool
    message: str  # sbatch's answer (it is printed on stderr)
    returncode: int
    start: str | None = None  # "2026-11-28T23:05:34"
    nodes: str | None = None
    partition: str | None = None
    output: str = ""  # all sbatch said (stderr, then stdout)


_TEST_ONLY_RE = re.compile(r"Job (\d+) to start at (\S+) using \d+ processors on nodes (\S+)(?: in partition (\S+))?")


def parse_test_only(returncode: int, stderr: str, stdout: str = "") -> TestOnlyResult:
    text = "\n".join(t for t in (stderr.strip(), stdout.strip()) if t)
    m = _TEST_ONLY_RE.search(text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    message = m.group(0) if m and returncode == 0 else (lines[-1] if lines else f"exit status {returncode}")
    message = re.sub(r"^sbatch: (error: )?", "", message)
    return TestOnlyResult(
        ok=returncode == 0 and m is not None,
        message=message,
        returncode=returncode,
        start=m.group(2) if m else None,
        nodes=m.group(3) if m else None,
        partition=m.group(4) if m else None,
        output=text,
    )


def test_only(
    script: str | os.PathLike,
    args: list[str] | tuple[str, ...] = (),
    *,
    env: Env = None,
    timeout: float | None = None,
    cwd: str | os.PathLike | None = None,
) -> TestOnlyResult:
    """``sbatch --test-only ARGS SCRIPT`` (validates against the live cluster; uses up a job id)."""
    res = _run(["sbatch", "--test-only", *args, str(script)], env, timeout, cwd=cwd)
    return parse_test_only(res.returncode, res.stderr, res.stdout)


__all__ = [
    "ACTIVE_STATES",
    "TERMINAL_STATES",
    "Partition",
    "SlurmInfo",
    "TestOnlyResult",
    "format_time",
    "job_fact",
    "job_info",
    "jobinfo_from_sacct",
    "jobinfo_from_scontrol",
    "normalize_state",
    "parse_keyvalue_line",
    "parse_partitions",
    "parse_sacct",
    "parse_scontrol_jobs",
    "parse_test_only",
    "parse_time",
    "parse_time_or_none",
    "partitions",
    "probe",
    "sacct_job",
    "sacct_settled",
    "scontrol_job",
    "slurm_fact",
    "slurm_partitions_fact",
    "test_only",
    "wait_for_job",
]
