"""What the logs show beyond each phase's own evidence, applied to the verdicts once each phase is judged
(preflight.verdict.phases_fact): a later phase that loaded an earlier one's checkpoint, a tokenizer a trainer used,
a run that skipped midtraining, a loss that diverged, a phase that went silent, phases outside the logs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from preflight.verdict import PhaseVerdict


def mark_hung(ctx: Any, verdicts: list[PhaseVerdict]) -> None:
    """The phase that went silent (the ``silence`` fact) says so: hung, not slow."""
    from preflight.units import duration

    hung = ctx.get("silence", None)
    if hung is None or hung.finished_phase or not hung.phase:
        return
    for v in verdicts:
        if v.name == hung.phase and v.status in ("failed", "partial", "running", "stopped"):
            v.cause += f"; silent for {'the last ' if hung.ended != 'running' else ''}{duration(hung.seconds)}: hung"
            where = f"{hung.log}:{hung.line}" if hung.line else hung.log
            if where not in v.evidence:
                v.evidence.append(where)


def mark_loaded(logs: Any, verdicts: list[PhaseVerdict]) -> None:
    """A phase missing from the logs whose checkpoint a process in them loaded was done before them (issue 92's
    log starts at midtraining, which loaded base's step 21400): so were the phases before it, which it needed.
    The resume plan then starts after it, not at the tokenizer."""
    names = [v.name for v in verdicts]
    loads = [
        (seg.path, seg.loaded)
        for seg in (logs.segments if logs is not None else [])
        if seg.loaded is not None and seg.loaded.data["source"] in names
    ]
    if not loads:
        return
    last = max(names.index(e.data["source"]) for _, e in loads)
    for v in verdicts[: last + 1]:
        own = next(((p, e) for p, e in loads if e.data["source"] == v.name), None)
        if v.status != "not-run" or not (v.expected or own):  # an optional phase (rl) whose checkpoint was loaded ran
            continue
        path, event = own or next((p, e) for p, e in loads if names.index(e.data["source"]) > names.index(v.name))
        data = event.data
        if own:
            v.cause = f"done before these logs: its step-{data['step']} checkpoint was loaded ({data['path']})"
        else:
            v.cause = f"done before these logs: a later phase ran on it ({data['source']}'s checkpoint was loaded)"
        v.status = "done"
        v.evidence.append(f"{path}:{event.line}")


def mark_skipped_mid(logs: Any, verdicts: list[PhaseVerdict]) -> None:
    """SFT that started from base's checkpoint, in a run whose logs show no midtraining: this run has none (a fork's
    SFT straight on a base model), so mid is not expected of it and a resume plan does not start there."""
    mid = next((v for v in verdicts if v.name == "mid"), None)
    if mid is None or mid.status != "not-run" or not mid.expected or logs is None or logs.by_phase("mid"):
        return
    loads = [s for s in logs.by_phase("sft") if s.load_sources]
    if loads and all(s.load_sources == {"base"} for s in loads):
        where = f"{Path(loads[0].path).name}:{loads[0].loaded.line}" if loads[0].loaded is not None else ""
        mid.expected = False
        mid.cause = "not part of this run: its SFT started from base's checkpoint" + (f" ({where})" if where else "")


def mark_tokenizer_used(logs: Any, verdicts: list[PhaseVerdict]) -> None:
    """A tokenizer missing from the logs (and from a base dir) was there before them when a later phase's
    trainer got through its setup or logged steps: every trainer loads the tokenizer first."""
    tok = verdicts[0]
    if tok.name != "tokenizer" or tok.status != "not-run" or tok.cause or not tok.expected or logs is None:
        return
    used = next(
        (
            seg
            for seg in logs.segments
            if seg.phase not in (None, "tokenizer") and (seg.step_lines or seg.trainer_setup)
        ),
        None,
    )
    if used is not None:
        who = used.script or used.phase
        tok.status, tok.cause = "done", f"done before these logs: {who} ran on it"
        tok.evidence.append(f"{used.path}:{used.start_line}")


def mark_evaluated(logs: Any, verdicts: list[PhaseVerdict]) -> None:
    """A phase whose checkpoint chat_eval evaluated in these logs gets its results (the last such run's), and a done
    phase says them: what the run's chat model scores is the run's outcome."""
    for v in verdicts:
        runs = [s for s in logs.segments if s.evals and s.load_sources == {v.name}] if logs is not None else []
        if not runs:
            continue
        v.evaluation = dict(runs[-1].evals)
        counts = runs[-1].eval_counts
        tasks = ", ".join(
            f"{task} {value:.2f}%" + (f" of {counts[task]:,}" if task in counts else "")
            for task, value in v.evaluation.items()
            if task != "ChatCORE"
        )
        core = f"ChatCORE {v.evaluation['ChatCORE']:.4f}" if "ChatCORE" in v.evaluation else ""
        if v.status == "done":
            v.cause += "; chat_eval of its checkpoint: " + " ".join(
                x for x in (core, f"({tasks})" if core else tasks) if x
            )


def report_of_unfinished_run(verdicts: list[PhaseVerdict]) -> None:
    """A report the logs show generated after a phase failed holds no sections for what did not finish."""
    report = verdicts[-1]
    if report.name != "report" or report.status != "done" or not report.cause.startswith("the log shows"):
        return
    unfinished = [v for v in verdicts[:-1] if v.expected and not v.before_logs and v.status != "done"]
    if unfinished:
        # a job that ended after base (a smoke test) ran no sft: "did not finish" read as a crash
        said = [f"{v.name} {'did not run' if v.status == 'not-run' else 'did not finish'}" for v in unfinished]
        report.status = "partial"
        report.cause = f"the log shows report.md generated, but {', '.join(said)}: it has no section for them"


def mark_diverged(logs: Any, verdicts: list[PhaseVerdict]) -> None:
    """A phase whose last step line has a NaN/inf loss trained on to the end of a diverged run: whatever it saved
    holds NaN weights, so it failed however many steps it logged (a NaN it recovered from is LOG007's alone)."""
    for v in verdicts:
        segs = [s for s in logs.by_phase(v.name) if s.last_step is not None] if logs is not None else []
        loss = segs[-1].last_step.loss if segs else None
        if loss is None or math.isfinite(loss) or v.status not in ("done", "partial"):
            continue
        first = next((s for s in segs if s.nan_loss is not None), None)
        since = f"from {Path(first.path).name}:{first.nan_loss.line} " if first is not None else ""
        v.status, v.step = "failed", None
        v.cause = (
            f"training diverged: the loss is non-finite {since}to its last step ({segs[-1].last_step.step}); "
            "a checkpoint it saved holds NaN weights"
        )


def mark_before_logs(verdicts: list[PhaseVerdict]) -> None:
    """Logs alone (no base dir) that begin with a later phase, e.g. mid_train's crash pasted from an issue: the
    phases before it are not in them. Without a base dir nothing says they did not run, so they are marked as
    outside the logs, and the resume plan starts at the first phase the logs show."""
    first_seen = next((i for i, v in enumerate(verdicts) if v.status != "not-run" and v.name != "tokenizer"), None)
    if first_seen is None:
        return
    later = verdicts[first_seen].name
    for v in verdicts[:first_seen]:
        if v.expected and v.status == "not-run" and not v.cause:
            v.before_logs = True
            v.cause = f"not in these logs (no base dir to check): {later} ran after it"
