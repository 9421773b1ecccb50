"""``preflight sbatch``: submit a batch script with the real sbatch, after preflight, with a ledger."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.facts import FactUnavailable
from preflight.proc import ToolTimeout

EXIT_OK = 0
EXIT_REFUSED = 1  # preflight found errors (same code as `preflight check` with findings)
EXIT_ERROR = 2  # usage / tool problem
# sbatch options that make it print something other than a job id, or that we set ourselves
_CONFLICTING = ("--parsable", "--test-only", "--wrap", "-W", "--wait", "--help", "-h", "--usage", "-V", "--version")
_PARSABLE_RE = re.compile(r"^\s*([0-9]+)(?:;(\S+))?\s*$")


class SubmitError(Exception):
    """Submission could not happen (sbatch missing, hung, or rejected the job)."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class SubmitOutcome:
    job_id: str | None = None  # set when sbatch accepted the job
    exit_code: int = EXIT_OK
    message: str = ""  # what the CLI prints on stderr
    refused: bool = False  # preflight errors, no --force: nothing was submitted
    forced: bool = False  # submitted despite preflight errors
    test_only: bool = False
    ledger_path: Path | None = None
    failing: list[str] = field(default_factory=list)  # "CODE name" of the findings that refused/forced
    sbatch_stdout: str = ""
    sbatch_stderr: str = ""
    cluster: str | None = None  # sbatch --parsable prints "ID;CLUSTER" on multi-cluster sites


def parse_parsable(stdout: str) -> tuple[str, str | None] | None:
    """``sbatch --parsable`` output -> (job id, cluster or None); None if there is no job id."""
    for line in stdout.splitlines():
        m = _PARSABLE_RE.match(line)
        if m:
            return m.group(1), m.group(2)
    return None


def _failing_codes(run_result: Any) -> list[str]:
    if run_result is None:
        return []
    out = []
    for f in run_result.failing():
        label = f"{f.code} {f.name}".strip()
        where = f" ({f.path}:{f.line})" if f.path and f.line else (f" ({f.path})" if f.path else "")
        out.append(f"{label}{where}: {f.message}")
    return out


def _env_and_timeout(ctx: Any) -> tuple[dict[str, str], float]:
    env = dict(ctx.environ) if ctx is not None else dict(os.environ)
    timeout = 60.0
    if ctx is not None and getattr(ctx, "config", None) is not None:
        timeout = max(float(ctx.config.get("slurm-timeout", 20.0) or 20.0), 30.0)
    return env, timeout


def submit(
    script: Path,
    sbatch_args: Sequence[str],
    *,
    force: bool = False,
    test_only: bool = False,
    run_result: Any = None,
    ctx: Any = None,
    script_args: Sequence[str] = (),
) -> SubmitOutcome:
    """Submit ``script`` with the real ``sbatch``, gated by the preflight result; write the ledger.

    Called by ``preflight sbatch SCRIPT [SBATCH ARGS...] [--force] [--test-only] [-- SCRIPT ARGS]``
    after the CLI ran the pre-stage checks with ``sbatch_args`` merged over the script's
    ``#SBATCH`` directives (``run_result``, and ``ctx`` holding the facts it computed).

    - ``test_only``: runs ``sbatch --test-only ARGS SCRIPT`` whatever preflight found (nothing is
      submitted) and returns sbatch's answer (printed on stderr by sbatch) as ``message`` and its
      exit status as ``exit_code``. No ledger.
    - preflight reported findings at or above fail-on and not ``force``: nothing is submitted;
      ``refused=True``, ``exit_code=1`` and ``message`` names the findings.
    - otherwise: ``sbatch --parsable ARGS SCRIPT [SCRIPT ARGS]`` (no shell; cwd and environment
      from ``ctx``, so the job inherits them as with a plain sbatch), the job id parsed, the
      ledger ``<ledger-dir>/<JOBID>.json`` written atomically (``forced`` recorded) and
      ``job_id`` returned with ``exit_code=0``.

    Raises SubmitError (with ``exit_code``) when sbatch is missing, hangs, rejects the job (its
    error message, e.g. "Requested time limit is invalid"), or prints no job id. If the ledger
    cannot be written after a successful submit, the job id is still returned, with a warning.
    """
    from preflight import slurm
    from preflight.ledger import build_ledger, ledger_dir, write_ledger

    script = Path(script)
    args = list(sbatch_args)
    bad = [a for a in args if a.split("=", 1)[0] in _CONFLICTING]
    if bad:
        raise SubmitError(f"do not pass {bad[0]} to preflight sbatch (use --test-only, or plain sbatch)")
    env, timeout = _env_and_timeout(ctx)
    cwd = Path(getattr(getattr(ctx, "inputs", None), "cwd", None) or Path.cwd())

    if test_only:
        try:
            res = slurm.test_only(script, args, env=env, timeout=timeout, cwd=cwd)
        except FactUnavailable as exc:
            raise SubmitError(f"sbatch --test-only: {exc.reason}") from None
        except ToolTimeout as exc:
            raise SubmitError(f"sbatch --test-only: {exc}") from None
        return SubmitOutcome(
            exit_code=EXIT_OK if res.ok else (res.returncode or EXIT_REFUSED),
            test_only=True,
            message=f"sbatch --test-only: {res.message}",
            failing=_failing_codes(run_result),
        )

    failing = _failing_codes(run_result)
    if failing and not force:
        lines = "\n".join(f"  {f}" for f in failing)
        return SubmitOutcome(
            exit_code=EXIT_REFUSED,
            refused=True,
            failing=failing,
            message=f"preflight sbatch: not submitted: {len(failing)} error(s):\n{lines}\n"
            "Fix them, or submit anyway with --force (recorded in the ledger).",
        )

    try:
        res = slurm._run(["sbatch", "--parsable", *args, str(script), *script_args], env, timeout, cwd=cwd)
    except FactUnavailable as exc:
        raise SubmitError(f"cannot submit: {exc.reason}") from None
    except ToolTimeout as exc:
        raise SubmitError(f"cannot submit: {exc} (the job may or may not have been queued: check squeue)") from None
    if res.returncode != 0:
        err = res.stderr.strip() or res.stdout.strip() or f"exit status {res.returncode}"
        raise SubmitError(f"sbatch rejected the job: {err}", exit_code=EXIT_REFUSED)
    parsed = parse_parsable(res.stdout)
    if parsed is None:
        raise SubmitError(f"sbatch printed no job id: {res.stdout.strip()!r} {res.stderr.strip()!r}")
    job_id, cluster = parsed

    outcome = SubmitOutcome(
        job_id=job_id,
        forced=bool(failing),
        failing=failing,
        sbatch_stdout=res.stdout,
        sbatch_stderr=res.stderr,
        cluster=cluster,
    )
    notes = []
    if failing:
        notes.append(f"preflight sbatch: submitted despite {len(failing)} error(s) (--force, recorded in the ledger)")
    try:
        doc = build_ledger(
            job_id=job_id,
            script=script,
            sbatch_args=args,
            cwd=cwd,
            forced=force,
            ctx=ctx,
            run_result=run_result,
            script_args=list(script_args),
        )
        if cluster:
            doc["cluster"] = cluster
        outcome.ledger_path = write_ledger(doc, ledger_dir(ctx, cwd=cwd))
        notes.append(f"Submitted batch job {job_id}; ledger {outcome.ledger_path}")
    except Exception as exc:  # the job is queued: never hide its id because the ledger failed
        notes.append(f"Submitted batch job {job_id}; WARNING: ledger not written: {type(exc).__name__}: {exc}")
    if res.stderr.strip():  # sbatch warnings, e.g. about an unknown partition default
        notes.insert(0, res.stderr.strip())
    outcome.message = "\n".join(notes)
    return outcome
