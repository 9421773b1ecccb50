"""``postflight verify``: the job's checks, the report, and an exit code that says whether the run is done.
Registered on the postflight app by preflight.cli."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import typer

from preflight.cli_common import (
    EXIT_FINDINGS,
    BaseDirOpt,
    CheckoutOpt,
    ConfigOpt,
    DeepOpt,
    ExitZeroOpt,
    ExtendOpt,
    FailOn,
    FailOnOpt,
    Format,
    FormatOpt,
    IgnoreOpt,
    NoColorOpt,
    OutputOpt,
    PluginsOpt,
    ProfileName,
    ProfileOpt,
    SelectOpt,
    TrustOpt,
    VerboseOpt,
    cli_values_of,
    emit,
    exit_code,
    fail,
    run_stage,
    trust_values,
)


def verify_cmd(
    job_id: str | None = typer.Argument(None, help="SLURM job id (reads the ledger, then SLURM)."),
    log: list[Path] | None = typer.Option(None, "--log", help="A log file of the run (repeatable)."),
    base_dir: Path | None = BaseDirOpt,
    checkout: Path | None = CheckoutOpt,
    script: Path | None = typer.Option(
        None, "--script", help="The job's batch script (default: the ledger's, else SLURM's copy via scontrol/sacct)."
    ),
    profile: ProfileName | None = ProfileOpt,
    deep: bool | None = DeepOpt,
    smoke: bool | None = typer.Option(None, "--smoke/--no-smoke", help="Load the final chat model and generate."),
    python: str | None = typer.Option(
        None, "--python", help="Python for the checkout's model code (default: its .venv)."
    ),
    wait: bool = typer.Option(False, "--wait", help="If the job is still pending/running, poll until it ends."),
    wait_timeout: float = typer.Option(3600.0, "--wait-timeout", help="Seconds to wait with --wait."),
    select: list[str] | None = SelectOpt,
    ignore: list[str] | None = IgnoreOpt,
    extend_select: list[str] | None = ExtendOpt,
    fmt: Format = FormatOpt,
    output_file: Path | None = OutputOpt,
    fail_on: FailOn | None = FailOnOpt,
    exit_zero: bool = ExitZeroOpt,
    config: Path | None = ConfigOpt,
    plugins: list[Path] | None = PluginsOpt,
    trust_config: bool = TrustOpt,
    verbose: bool = VerboseOpt,
    no_color: bool = NoColorOpt,
) -> None:
    """Verify a finished (or running) job: state, logs, checkpoints, report; verdict per phase and resume plan."""
    from preflight.context import RunInputs
    from preflight.ledger import is_job_id

    if job_id is not None and not is_job_id(job_id):
        raise fail(
            f"postflight: no such job {job_id[:40]!r}{'...' if len(job_id) > 40 else ''} "
            "(a SLURM job id is ASCII digits: 123, 123_4, 123.batch)"
        )
    if job_id is None and not log and base_dir is None:
        raise fail("postflight: give a JOBID, or --log PATH and/or --base-dir DIR")
    cli_values = cli_values_of(
        select,
        ignore,
        extend_select,
        fail_on,
        profile,
        deep,
        checkout,
        smoke=smoke if smoke is not None else None,
        python=python,
    )
    cli_values.update(trust_values(plugins, trust_config))
    from preflight.reporters import wants_curves

    if script is not None and not script.is_file():
        raise fail(f"postflight: --script {script}: not a file")
    inputs = RunInputs(
        job_id=job_id,
        logs=list(log or []),
        base_dir=base_dir,
        stage="post",
        cwd=Path.cwd(),
        series=wants_curves(fmt.value),
        script=script,
    )
    if wait and job_id:
        _wait_for(job_id, wait_timeout, inputs, _hang_seconds(config))
    result, registry, ctx, elapsed = run_stage(
        "post", cli_values, inputs, config, ("profile", "job", "phases", "resume", "timeline")
    )
    why_job = _why_unavailable(ctx, "job") if job_id else None
    if why_job and " is a job array of " in why_job:  # one verdict per task: name the task
        raise fail(f"postflight: {why_job}")
    smoke_outcome = ctx.peek("chat_smoke")  # only if a CHAT check ran it: describing must never run a model
    if smoke_outcome is not None:
        result.extras["chat_smoke"] = smoke_outcome.to_json()
    if job_id and not log and base_dir is None and "job" not in result.extras and _optional(ctx, "ledger") is None:
        why = _why_unavailable(ctx, "ledger")
        if why and not why.startswith("no ledger for job"):  # there is one, and it cannot be used
            raise fail(f"postflight: no such job {job_id}: SLURM does not know it and its ledger cannot be read: {why}")
        raise fail(
            f"postflight: no such job {job_id}: SLURM does not know it (or cannot be asked) and there is "
            "no ledger for it (was it submitted with `preflight sbatch`?)"
        )
    title = f"postflight verify {job_id or ''}".rstrip()
    if result.checks and all(c.status.value == "skip" for c in result.checks):
        # every reason, whatever --verbose says: they are the whole answer
        emit(result, registry, fmt, output_file, verbose=True, no_color=no_color, elapsed=elapsed, title=title)
        raise fail("postflight: nothing was verified: every check skipped (see the reasons above)")
    if inputs.series:
        _describe_curves(result, ctx)
    emit(result, registry, fmt, output_file, verbose=verbose, no_color=no_color, elapsed=elapsed, title=title)
    phases = result.extras.get("phases") or []
    from preflight.model import phase_not_done

    incomplete = [p for p in phases if phase_not_done(p)]  # rl: not in every era
    from preflight.jobinfo import ACTIVE_STATES

    job = result.extras.get("job") or {}
    still_running = job.get("state") in ACTIVE_STATES
    if still_running and job.get("job_id") and os.environ.get("SLURM_JOB_ID") == str(job.get("job_id")):
        # the job's own last step (scripts/speedrun.slurm): it runs because this process does
        still_running = False
        sys.stderr.write(
            f"postflight: verifying job {job.get('job_id')} from its own last step: "
            "every phase before this step is final\n"
        )
    if still_running:
        sys.stderr.write(
            f"postflight: job {job.get('job_id')} is still {job.get('state')}: "
            "the verdict is provisional (use --wait to wait for it)\n"
        )
    code = exit_code(result, exit_zero)
    if incomplete and code == 0 and not exit_zero:  # "PASS: no findings" above, yet exit 1: say why
        names = ", ".join(p.get("name", "?") for p in incomplete)
        from preflight.ckpt import get_profile, planned_phases

        unplanned = planned_phases(ctx, get_profile(ctx)) is None
        # "not judged: nothing in these logs is in nanochat's formats", "report.md not checked (no base dir)"
        unjudged = all(re.search(r"^not judged|\bnot checked\b", str(p.get("cause", ""))) for p in incomplete)
        sys.stderr.write(
            f"postflight: exit {EXIT_FINDINGS}: no failing finding, but "
            + (
                "expected phases could not be judged (counted as not done)"
                if unjudged
                else "expected phases are not done"
            )
            + f": {names}"
            + (
                " (no job script or ledger says which phases the job runs, so the era's whole pipeline is expected: "
                "--script JOB.sh expects only what it launches)\n"
                if unplanned
                else "\n"
            )
        )
    if (incomplete or still_running) and not exit_zero:
        code = EXIT_FINDINGS  # the run itself is not done: that outranks a check that could not run
    raise typer.Exit(code)


def _describe_curves(result: Any, ctx: Any) -> None:
    """The training curves and the scheduler's raw record, for the formats that draw them (never serialized)."""
    from preflight.context import FactError
    from preflight.facts import FactUnavailable

    try:
        result.display["series"] = ctx.get("series")
    except (FactUnavailable, FactError):
        pass
    except Exception as exc:  # a picture must never take the verdict down
        sys.stderr.write(f"postflight: could not draw the training curves: {type(exc).__name__}: {exc}\n")
    job = ctx.peek("job")
    if job is not None:
        result.display["job_raw"] = dict(getattr(job, "raw", None) or {})


LIVE_EVERY_S = 60.0  # without a terminal (CI logs): one progress line a minute at most


def _why_unavailable(ctx: Any, name: str) -> str | None:
    """The reason a fact is unavailable (None when it is available or failed otherwise)."""
    from preflight.facts import FactUnavailable

    try:
        ctx.get(name)
    except FactUnavailable as exc:
        return exc.reason
    except Exception:
        return None
    return None


def _optional(ctx: Any, name: str) -> Any:
    """A fact, or None when it is unavailable or cannot be computed."""
    try:
        return ctx.get(name, None)
    except Exception:
        return None


def _hang_seconds(config_path: Path | None) -> float:
    """The configured ``hang-minutes`` in seconds (the default when the configuration is invalid:
    the verify run that follows reports that)."""
    from preflight.config import ConfigError, load_config
    from preflight.silence import HANG_MINUTES

    try:
        return float(load_config(config_path=config_path).get("hang-minutes", HANG_MINUTES)) * 60
    except (ConfigError, OSError, TypeError, ValueError):
        return HANG_MINUTES * 60


def _quiet_for(log: str, hang_s: float) -> str:
    """ "no output for 41m07s: hung?" when the log has not grown for hang-minutes (LOG010 says why), else ""."""
    from preflight.units import duration

    try:
        quiet = time.time() - os.stat(log).st_mtime
    except OSError:
        return ""
    return f"no output for {duration(quiet)}: hung?" if quiet >= hang_s else ""


def _wait_for(job_id: str, timeout: float, inputs: Any = None, hang_s: float = float("inf")) -> None:
    """Poll SLURM until the job ends (or ``timeout``), with a live line (state, step, loss, tok/s, ETA
    from the tail of the job's log, and how long it has been silent past hang-minutes): redrawn on a
    terminal, a line a minute otherwise."""
    from preflight import slurm
    from preflight.series import live_line

    start = time.monotonic()
    status = None
    if sys.stderr.isatty():
        from rich.console import Console

        status = Console(stderr=True).status(f"waiting for job {job_id}")
        status.start()
    printed, last_print = "", -LIVE_EVERY_S
    try:
        while True:
            left = timeout - (time.monotonic() - start)
            info = slurm.wait_for_job(job_id, timeout=max(0.0, min(5.0, left)))
            if info is None or info.finished or left <= 5.0:
                break
            log = _live_log(info, inputs)
            progress = live_line(log) if log else None
            quiet = _quiet_for(log, hang_s) if log and info.state == "RUNNING" else ""
            progress = " · ".join(x for x in (progress, quiet) if x) or None
            line = f"job {job_id} {info.state} {time.monotonic() - start:.0f}s" + (f" · {progress}" if progress else "")
            if status is not None:
                status.update(line)
            elif progress and progress != printed and time.monotonic() - last_print >= LIVE_EVERY_S:
                sys.stderr.write(f"postflight: {line}\n")
                printed, last_print = progress, time.monotonic()
    except Exception as exc:  # the verify run reports the state; waiting is best effort
        sys.stderr.write(f"postflight: --wait: {exc}\n")
    finally:
        if status is not None:
            status.stop()


def _live_log(info: Any, inputs: Any) -> str | None:
    """The log to watch: the first --log, else the job's stdout as SLURM names it."""
    if inputs is not None and inputs.logs:
        return str(inputs.logs[0])
    out = getattr(info, "stdout", None)
    if not out:
        return None
    return out if os.path.isabs(out) else os.path.join(getattr(info, "work_dir", None) or os.getcwd(), out)
