"""Where the job's batch script comes from after the job (the ``jobscript`` fact).

In order: ``--script FILE`` (the user knows best); the script `preflight sbatch` recorded in the
ledger (its path, checked against the recorded sha256); SLURM's own copy, ``scontrol write
batch_script JOBID -`` while the controller still knows the job, then ``sacct -B -j JOBID`` where
the accounting stores batch scripts. The text is parsed (never run) into the ordered steps of the
job: ``preflight.script``'s invocations, each mapped to its phase by the era profile.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.facts import FactUnavailable

MAX_SCRIPT_BYTES = 4 << 20  # SLURM caps batch scripts at 4 MiB by default


@dataclass
class JobStep:
    """One launched command of the batch script, in script order."""

    index: int
    line: int
    module: str | None
    phase: str | None
    command: str  # as written in the script (the resume plan reuses the job's own spelling)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "line": self.line,
            "module": self.module,
            "phase": self.phase,
            "command": self.command,
        }


@dataclass
class JobScript:
    text: str
    source: str  # "--script FILE" | "ledger" | "scontrol" | "sacct"
    path: str | None = None
    note: str = ""  # e.g. "the script changed since submission"
    steps: list[JobStep] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "path": self.path, "note": self.note, "steps": [s.to_json() for s in self.steps]}


def _read(path: Path) -> str | None:
    try:
        from preflight.safeio import read_limited

        return read_limited(path, MAX_SCRIPT_BYTES, "batch script").decode("utf-8", "replace")
    except OSError:
        return None


def _from_ledger(ctx: Any) -> JobScript | None:
    ledger = ctx.get("ledger", None)
    if not isinstance(ledger, dict):
        return None
    rec = ledger.get("script") or {}
    path = Path(rec["path"]) if isinstance(rec, dict) and rec.get("path") else None
    if path is None:
        return None
    text = _read(path)
    if text is None:
        return None
    note = ""
    if rec.get("sha256") and hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest() != rec["sha256"]:
        note = f"{path} changed since the job was submitted (sha256 differs from the ledger)"
    return JobScript(text, "ledger", str(path), note)


def _strip_sacct_header(text: str) -> str:
    """``sacct -B`` prints "Batch Script for 123" and a dashed rule before the script."""
    lines = text.splitlines()
    for i, line in enumerate(lines[:4]):
        if line.startswith("#!") or line.startswith("#SBATCH"):
            return "\n".join(lines[i:]) + "\n"
    if len(lines) > 2 and lines[0].startswith("Batch Script for") and set(lines[1].strip()) <= {"-"}:
        return "\n".join(lines[2:]) + "\n"
    return text


def _from_slurm(ctx: Any, job_id: str) -> JobScript | None:
    from preflight.proc import ToolTimeout
    from preflight.slurm import _run

    try:
        info = ctx.get("slurm")
    except FactUnavailable:
        return None
    for source, args in (
        ("scontrol", ["scontrol", "write", "batch_script", job_id, "-"]),
        ("sacct", ["sacct", "-B", "-j", job_id]),
    ):
        try:
            res = _run(args, info.env, info.timeout)
        except (FactUnavailable, ToolTimeout):
            continue
        text = _strip_sacct_header(res.stdout) if source == "sacct" else res.stdout
        if res.returncode == 0 and ("#!" in text[:200] or "#SBATCH" in text) and len(text) <= MAX_SCRIPT_BYTES:
            return JobScript(text, source)
    return None


def steps_of(text: str, profile: Any) -> list[JobStep]:
    """The launched commands of a batch script, in order, each with its phase (chat_eval by -i)."""
    from preflight.script import parse_text

    try:
        model = parse_text(text)
    except Exception:  # an unparsable script gives no steps, not a crash
        return []
    steps: list[JobStep] = []
    for inv in model.all_invocations:
        if not inv.entry:
            continue
        phase = profile.phase_of_module(inv.entry, list(inv.args)) if profile is not None else None
        cmd = " ".join(getattr(inv.command, "raw_words", None) or []) or inv.entry
        steps.append(JobStep(len(steps), inv.line, inv.entry, phase, cmd))
    return steps


def jobscript_fact(ctx: Any) -> JobScript:
    inputs = ctx.inputs
    js: JobScript | None = None
    if getattr(inputs, "script", None):
        path = Path(inputs.script)
        path = path if path.is_absolute() else Path(inputs.cwd) / path
        text = _read(path)
        if text is None:
            raise FactUnavailable(f"--script {inputs.script}: not a readable file")
        js = JobScript(text, "--script", str(path))
    job_id = getattr(inputs, "job_id", None)
    if js is None and job_id:
        js = _from_ledger(ctx) or _from_slurm(ctx, str(job_id))
    if js is None:
        raise FactUnavailable("no batch script: pass --script FILE (or a JOBID with a ledger or SLURM record)")
    js.steps = steps_of(js.text, ctx.get("profile", None))
    return js
