"""JOB: what SLURM says about the job (the ``job`` fact; skipped without SLURM)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

from preflight.model import Finding
from preflight.registry import check


def _no_log_hint(job, ctx) -> str:
    """FAILED 0:53 with no log: sbatch could not open --output (its directory is missing)."""
    if job.exit_code != "0:53" and not (job.state == "FAILED" and job.stdout):
        return ""
    out = job.stdout
    if out and not os.path.exists(out):
        parent = os.path.dirname(out) or "."
        if not os.path.isdir(parent):
            return f"; the output dir {parent} does not exist, so the job died before writing any log"
        return f"; no log at {out}"
    return ""


def _bad_interpreter_hint(ctx) -> str:
    """slurmstepd's `execve(): bad interpreter(X)` in the log: the batch script never started."""
    logs = ctx.get("logs", None)
    events = logs.slurm_events("bad-interpreter") if logs is not None else []
    if not events:
        return ""
    ix, event = events[0]
    return (
        f"; slurmstepd could not start the batch script: its interpreter {event.data.get('interpreter')} does not "
        f"exist on the node ({os.path.basename(ix.path)}:{event.line}), so nothing in the script ran"
    )


def _signal_hint(job) -> str:
    """FAILED 0:10 (or 0:12): the batch shell died of SIGUSR1/SIGUSR2, which only --signal=B:... sends."""
    sig = job.exit_code.partition(":")[2]
    if job.state != "FAILED" or not sig.isdigit() or int(sig) not in (signal.SIGUSR1, signal.SIGUSR2):
        return ""
    name = signal.Signals(int(sig)).name
    return (
        f"; the batch shell died of {name}, which SLURM sends before the time limit with "
        f"#SBATCH --signal=B:{name[3:]}@N: the script has no trap for it (or sets it too late), so the "
        "running phase was killed without saving"
    )


@check("JOB001", "job-failed", stage="post", severity="error")
def job_failed(job, ctx) -> Iterator[Finding]:
    """
    What it checks: the job's final state and exit code (sacct / scontrol): FAILED, NODE_FAIL,
    CANCELLED, BOOT_FAIL; a FAILED 0:53 job with no log points at a missing --output directory,
    FAILED 0:10 at the SIGUSR1 of ``--signal=B:USR1`` that no trap caught.

    Why it matters: the state tells whether the job itself broke (node, launch, output dir) as
    opposed to a phase inside it.

    Example:
        JobState=FAILED ExitCode=0:53   StdOut=/home/u/logs/nanochat_4242.out (dir missing)

    How to fix: mkdir -p the --output directory before sbatch; for node failures, resubmit.
    """
    if job.running:
        return
    if job.state in ("FAILED", "NODE_FAIL", "CANCELLED", "BOOT_FAIL", "PREEMPTED", "DEADLINE"):
        hint = _no_log_hint(job, ctx) or _bad_interpreter_hint(ctx)
        signal_hint = "" if hint else _signal_hint(job)
        if "does not exist" in hint and "interpreter" in hint:
            fix = "make the script's #! line name an interpreter every compute node has (#!/bin/bash), then resubmit"
        elif "does not exist" in hint:
            fix = "mkdir -p the #SBATCH --output/--error directory, then resubmit"
        elif signal_hint:
            fix = (
                "trap the signal and forward it to the trainer started with & and waited for (scripts/speedrun.slurm; "
                "`preflight check` reports this as signal-not-delivered), then resume (resume plan)"
            )
        else:
            fix = "see the phase table for the failing phase; resubmit from it (resume plan)"
        yield Finding(
            f"job {job.label} ended {job.state} with exit code {job.exit_code}{hint}{signal_hint}",
            fix=fix,
            path=job.stdout,
            data={"state": job.state, "exit_code": job.exit_code},
        )


@check("JOB002", "job-silent-failure", stage="post", severity="error")
def job_silent_failure(job, phases) -> Iterator[Finding]:
    """
    What it checks: a job that SLURM reports COMPLETED 0:0 while a phase failed or never ran.

    Why it matters: speedrun.sh has no ``set -e``; the last command (report generate) exits 0, so
    the scheduler says success although mid or SFT crashed.

    Example:
        State COMPLETED 0:0, but mid_train crashed and chatsft_checkpoints/ is missing

    How to fix: add ``set -euo pipefail`` to the job script; rerun from the failed phase.
    """
    if job.state == "COMPLETED" and job.exit_code == "0:0":
        bad = [v for v in phases.verdicts if v.expected and v.status in ("failed", "partial", "not-run")]
        if bad:
            first = bad[0]
            yield Finding(
                f"job {job.label} COMPLETED 0:0 but {first.name} is {first.status} ({first.cause})",
                path=first.evidence[0].rsplit(":", 1)[0] if first.evidence else None,
                fix=f"add `set -euo pipefail` to the script so a failed phase fails the job; rerun from {first.name}",
            )


@check("JOB003", "job-timeout", stage="post", severity="error")
def job_timeout(job, ctx) -> Iterator[Finding]:
    """
    What it checks: state TIMEOUT (the job hit its --time limit).

    Why it matters: the running phase lost its progress since its last save.

    Example:
        State TIMEOUT  Elapsed 12:00:00  TimeLimit 12:00:00

    How to fix: raise --time, save periodically (--save_every), and resume (--resume_from_step).
    """
    if job.state == "TIMEOUT":
        from preflight.units import duration

        hung = ctx.get("silence", None)
        yield Finding(
            f"job {job.label} hit its time limit"
            + (f" after {job.elapsed_s // 3600}h{job.elapsed_s % 3600 // 60:02d}m" if job.elapsed_s else "")
            + (f", silent for its last {duration(hung.seconds)}: it had hung (LOG010)" if hung else ""),
            fix="find why it hung (LOG010); more --time would not help"
            if hung
            else "raise #SBATCH --time, add --save_every, resume with --resume_from_step (see the resume plan)",
        )


@check("JOB004", "job-oom", stage="post", severity="error")
def job_oom(job) -> Iterator[Finding]:
    """
    What it checks: state OUT_OF_MEMORY (the cgroup's host-memory OOM killer ended the job).

    Why it matters: host RAM, not GPU memory: dataloader workers, a large --mem-free node, or
    loading a checkpoint fully on CPU; the Python process gets SIGKILL with no traceback.

    Example:
        State OUT_OF_MEMORY ExitCode 0:125

    How to fix: request more memory (#SBATCH --mem=0 / --mem-per-gpu) or reduce host-side buffers.
    """
    if job.state == "OUT_OF_MEMORY":
        yield Finding(
            f"job {job.label} was killed by the out-of-memory killer (host RAM), exit {job.exit_code}",
            fix="#SBATCH --mem=0 (all node memory) or a larger --mem-per-gpu; resume from the last checkpoint",
        )


_BAD_STEP_STATES = ("FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL")


@check("JOB005", "step-failed", stage="post", severity="error")
def step_failed(job, job_steps) -> Iterator[Finding]:
    """
    What it checks: the state of every step of the job in SLURM's accounting (``sacct -j ID``
    without ``-X``): the batch script and each ``srun`` (one per phase in a multi-node job), with
    exit code and node list.

    Why it matters: the job's own state is the batch shell's; a script without ``set -e`` ends
    COMPLETED after a phase's step FAILED, and in a multi-node job the failing step's node list
    says where to look.

    Example:
        JobID      JobName   State      ExitCode  NodeList
        4711       speedrun  COMPLETED  0:0       node[1-2]
        4711.0     torchrun  FAILED     1:0       node[1-2]

    How to fix: read the failing step's phase in the logs (postflight's phase table), fix it, and
    add ``set -e`` (or a per-phase exit check) so the job fails with it.
    """
    for st in job_steps:
        state = (st.get("State") or "").split()[0]
        if state not in _BAD_STEP_STATES:
            continue
        step = st.get("JobID", "")
        if step.endswith(".batch") and job.state == state:
            continue  # the job's own state: job-failed and job-timeout report it
        nodes = st.get("NodeList") or "?"
        hidden = f"; the job itself reports {job.state}" if job.state == "COMPLETED" else ""
        yield Finding(
            f"step {step} ({st.get('JobName') or '?'}) ended {state} with exit {st.get('ExitCode') or '?'} "
            f"on {nodes}{hidden}",
            fix="see the phase table for the phase that step ran; add set -e so the job fails with its step",
            data={"step": step, "state": state, "nodes": nodes, "exit_code": st.get("ExitCode")},
        )
