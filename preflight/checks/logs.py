"""LOG: what the run's logs say. Every check queries the log index."""

from __future__ import annotations

import os
from collections.abc import Iterator

from preflight.model import Finding, Severity
from preflight.phases import TRAIN_PHASES, TRAINER_SCRIPTS
from preflight.registry import check


@check("LOG001", "wandb-dummy-run", stage="post", severity="info")
def wandb_dummy_run(logs, ctx) -> Iterator[Finding]:
    """
    What it checks: ``Overriding: run = dummy`` in a phase's log.

    Why it matters: "dummy" only disables wandb logging. It never skips training, evaluation or
    checkpoints; a missing checkpoint under dummy is a real failure with its own cause.

    Example:
        Overriding: run = dummy
        Autodetected device type: cuda     (then nothing: a crash, see stderr)

    How to fix: nothing to fix; pass --run=NAME with WANDB_MODE=offline if you want wandb logs.
    """
    phases = ctx.get("phases", None)
    done = set()
    for ix in logs.logs:
        for seg in ix.segments:
            if seg.overrides.get("run", "").strip("'\"") != "dummy" or (seg.phase or seg.script) in done:
                continue
            who = seg.phase or seg.script
            done.add(who)
            v = phases.get(seg.phase) if phases is not None and seg.phase else None
            if v is not None and v.status in ("failed", "partial", "stopped"):
                msg = (
                    f"{who} ran with run=dummy and {v.status}: dummy is NOT the cause (it only turns wandb off and "
                    f"never skips training or checkpoints); the real cause: {v.cause}"
                )
            else:
                msg = (
                    f"{who or 'a phase'} ran with run=dummy: wandb logging was off; dummy only disables wandb "
                    "and never skips training or checkpoints"
                )
            yield Finding(
                msg,
                path=ix.path,
                line=seg.override_line,
                fix="none needed; look at the phase table for the real cause of any missing checkpoint",
                data={"phase": seg.phase},
            )


_KILLED_FIX = {
    -9: "give the job more memory (#SBATCH --mem) or fewer dataloader workers, then rerun the phase (see the resume "
    "plan); sacct -j JOBID -o MaxRSS and dmesg on the node confirm an OOM kill",
    -11: "rerun the phase without what runs native code it did not run before: torch.compile's default mode (not "
    "reduce-overhead), or TORCHDYNAMO_DISABLE=1 to tell whether compilation is at fault; PYTHONFAULTHANDLER=1 prints "
    "the Python stack at the crash",
}


@check("LOG003", "phase-no-steps", stage="post", severity="error")
def phase_no_steps(logs, ctx) -> Iterator[Finding]:
    """
    What it checks: a training phase that started (an echo header such as ``[3/5] Midtraining``,
    ``Overriding:``/startup lines) but logged no training step and left no traceback in the logs
    read: it died during setup, and its traceback is in a stderr file postflight did not get.
    The finding names that file (the .err beside the .out, or the script's ``--error`` pattern).
    A phase whose traceback was read is reported by phase-crashed instead, and one that went silent
    before the job ended (a hang, LOG010) by job-hung.

    Why it matters: stdout then ends with ``Autodetected device type: cuda``; the cause is in the
    stderr file (often a data download or an assertion), not in the missing steps, and not in
    ``run = dummy``.

    Example:
        [3/5] Midtraining (teaching conversation format)...
        Overriding: run = dummy
        Autodetected device type: cuda
        <next phase>

    How to fix: pass the stderr file too (``--log X.err``); fix its error and rerun the phase.
    """
    from preflight.crashtext import killed_text
    from preflight.log_ends import SILENT_UNKNOWN, silent_at_end, stderr_note

    note = stderr_note(logs)
    job = ctx.get("job", None)
    # a phase whose logs show it saving checkpoints trained (a stderr log alone holds its saves, not its steps)
    stepped = {s.phase for s in logs.segments if s.step_lines or any(s.saved_steps("model"))}
    hung = ctx.get("silence", None)
    reported = {hung.phase} if hung is not None and not hung.finished_phase else set()
    for ix in logs.logs:
        for seg in ix.segments:
            if (
                seg.phase in TRAIN_PHASES
                and seg.step_lines == 0
                and seg.phase not in stepped
                and seg.phase not in reported
                and (seg.script is None or seg.script in TRAINER_SCRIPTS)
            ):
                # its own crash, or one named for its phase (a kernel's bare abort names no script: its segment's)
                tb = next((t for t in seg.tracebacks if not t.wrapper), None) or next(
                    (t for t in logs.tracebacks if t.phase == seg.phase and not t.wrapper), None
                )
                reported.add(seg.phase)
                if tb is not None:
                    continue  # phase-crashed already says it died during setup, with the cause
                killed = killed_text(seg.failed_marker.data) if seg.failed_marker is not None else None
                if killed:  # torchrun's failure record names the signal: no traceback to look for anywhere
                    yield Finding(
                        f"{seg.phase} started but logged no training step: {killed}",
                        path=ix.path,
                        line=seg.failed_marker.line,
                        fix=_KILLED_FIX.get(
                            seg.failed_marker.data.get("exitcode"), f"rerun {seg.phase} (see the resume plan)"
                        ),
                    )
                    continue
                if seg.first_eval is not None:  # through setup: it evaluated, then stopped before a step line
                    what = f"it logged an evaluation (line {seg.first_eval}) and then stopped"
                elif silent_at_end(logs, seg, job):
                    what = SILENT_UNKNOWN
                else:
                    what = "it died during setup"
                if "no traceback" in note:  # nothing to read: whether it was killed or hangs is the question
                    fix = (
                        f"find out whether {seg.phase} hangs (its state, py-spy dump on the node) or was killed "
                        f"(sacct -j JOBID, dmesg), then rerun it (see the resume plan)"
                    )
                else:
                    fix = f"read the traceback, fix that error, rerun {seg.phase} (see the resume plan)"
                said = stderr_note(logs, what == SILENT_UNKNOWN)
                yield Finding(
                    f"{seg.phase} started but logged no training step: {what}; {said}",
                    path=ix.path,
                    line=seg.start_line,
                    fix=fix,
                )


@check("LOG004", "cascade-missing-checkpoint", stage="post", severity="error")
def cascade_missing_checkpoint(logs, ctx) -> Iterator[Finding]:
    """
    What it checks: ``FileNotFoundError`` for a checkpoint dir (``.../mid_checkpoints``, "No
    checkpoints found") and the earlier phase that should have written it.

    Why it matters: this error is a consequence; fixing the path does nothing. The root cause is
    the earlier phase's crash (mid crashes offline -> chat_sft cannot find mid).

    Example:
        FileNotFoundError: [Errno 2] No such file or directory: '/.../mid_checkpoints'

    How to fix: fix the named earlier phase and rerun from it.
    """
    from preflight.causes import classify_traceback
    from preflight.verdict import is_missing_checkpoint, missing_source_phase

    phases = ctx.get("phases", None)
    told: set[tuple] = set()
    # one finding per missing checkpoint and process: ranks that print at once interleave their copies, and a copy
    # whose frames went to another rank's traceback names no script
    named = {(tb.path, tb.message) for tb in logs.tracebacks if tb.script}
    for tb in logs.tracebacks:
        if not is_missing_checkpoint(tb):
            continue
        src = missing_source_phase(tb)
        seen = (tb.path, tb.script or tb.phase, tb.message)
        if seen in told or (tb.script is None and (tb.path, tb.message) in named):
            continue
        told.add(seen)
        root = next(
            (t for t in logs.tracebacks if src and t.phase == src and not t.wrapper and not is_missing_checkpoint(t)),
            None,
        )
        if root is not None:
            cause = classify_traceback(root, ctx.get("profile", None)).name  # with its frames, as LOG002 classifies it
            why = f"root cause: {src} crashed first ({cause}: {root.exc_type}) at {root.where}"
        elif phases is not None and src and phases.get(src) and phases.get(src).status != "done":
            v = phases.get(src)
            if v.status == "not-run":
                # `mid not-run (not in these logs ...)` read as a phase that failed: it wrote nothing there
                why = f"root cause: no {src} checkpoint was written there ({src}: {v.cause or 'not run'})"
            else:
                why = f"root cause: {src} {v.status} ({v.cause})"
        else:
            why = f"root cause: {src or 'the source phase'} did not save a checkpoint"
        yield Finding(
            f"{tb.script or tb.phase or 'a phase'}: {tb.exc_type}: {tb.message[:160]}; {why}",
            path=tb.path,
            line=tb.line,
            fix=f"fix {src or 'the earlier phase'} first, then rerun from it",
            data={"root_phase": src},
        )


@check("LOG005", "download-incomplete", stage="post", severity="error")
def download_incomplete(logs) -> Iterator[Finding]:
    """
    What it checks: the dataset downloader's ``Done! Downloaded: X/N shards`` with X < N.

    Why it matters: nanochat.dataset exits 0 even when shards failed after 5 retries; training
    then sees fewer shards (and a different validation shard) than planned.

    Example:
        Done! Downloaded: 231/240 shards to /scratch/nanochat/base_data

    How to fix: rerun ``python -m nanochat.dataset -n N`` (it skips existing shards) before training.
    """
    for ix in logs.logs:
        for seg in ix.segments:
            for ev in seg.downloads:
                if ev.data["done"] < ev.data["total"]:
                    yield Finding(
                        f"dataset download incomplete: {ev.data['done']}/{ev.data['total']} shards",
                        path=ix.path,
                        line=ev.line,
                        fix=f"python -m nanochat.dataset -n {ev.data['total']}  # retries the missing shards",
                    )


@check("LOG006", "time-limit-cancel", stage="post", severity="error")
def time_limit_cancel(logs, ctx) -> Iterator[Finding]:
    """
    What it checks: SLURM's ``slurmstepd: error: *** JOB … CANCELLED AT … DUE TO TIME LIMIT ***``.

    Why it matters: the phase running at that moment lost everything since its last save
    (base_train saves only at the end unless --save_every is set).

    Example:
        slurmstepd: error: *** JOB 4242 ON gpu01 CANCELLED AT 2025-10-14T12:00:00 DUE TO TIME LIMIT ***

    How to fix: raise #SBATCH --time, add --save_every, and resume with --resume_from_step.
    """
    from preflight.causes import respell_flags

    hung = ctx.get("silence", None)
    for ix, ev in logs.slurm_events("cancel"):
        if "TIME" in ev.data.get("due", "").upper():
            seg = next((s for s in reversed(ix.segments) if s.start_line <= ev.line), None)
            if (seg is None or seg.phase is None) and len(logs.logs) > 1:
                # slurmstepd wrote the cancel into the .err: the phase is the job's last one, from its other logs
                started = [p for p in logs.started_phases() if p in TRAIN_PHASES]
                seg = logs.by_phase(started[-1])[-1] if started and logs.by_phase(started[-1]) else seg
            phase = seg.phase if seg else None
            last = seg.last_step.step if seg and seg.last_step else None
            # this attempt's own saves, or the checkpoint it resumed from (another run's base saved nothing of this)
            saved = seg is not None and bool(seg.saved_steps("model") or seg.resume_from)
            plain = (
                "raise #SBATCH --time or set --save_every, then resume from the last checkpoint"
                if saved or seg is None
                else f"raise #SBATCH --time and rerun {phase} with --save_every=N: it saved no checkpoint before the "
                "limit, so there is nothing to resume from"
            )
            yield Finding(
                f"job cancelled at the time limit during {phase or 'an unknown phase'}"
                + (f" (last logged step {last})" if last is not None else "")
                + ("; it had hung before (LOG010)" if hung else ""),
                path=ix.path,
                line=ev.line,
                fix="find why it hung (LOG010), then resume from the last checkpoint"
                if hung
                # (--save-every in the eras whose argparse spells it with a dash)
                else respell_flags(plain, ctx.get("profile", None), None, phase or "base"),
            )


@check("LOG007", "nan-loss", stage="post", severity="error")
def nan_loss(logs) -> Iterator[Finding]:
    """
    What it checks: a NaN/Inf training loss or validation metric in a step or eval line.

    Why it matters: once NaN, the EMA loss and the weights stay NaN; every later checkpoint is useless.

    Example:
        step 01234/21400 (5.77%) | loss: nan | ...

    How to fix: resume from a checkpoint before the NaN with a lower learning rate / batch change.
    """
    for ix in logs.logs:
        for seg in ix.segments:
            if seg.nan_loss:
                saved_before = seg.phase is None or any(
                    s.path != ix.path or e.line < seg.nan_loss.line for s in logs.by_phase(seg.phase) for e in s.saves
                )
                fix = (
                    "resume from an earlier checkpoint with a lower learning rate"
                    if saved_before
                    else f"rerun {seg.phase} from its start with a lower learning rate: it saved nothing before the NaN"
                )
                clog = _sft_packer_clog(seg)
                yield Finding(
                    f"{seg.phase or 'a phase'}: non-finite loss: {seg.nan_loss.text[:160]}" + (clog[0] if clog else ""),
                    path=ix.path,
                    line=seg.nan_loss.line,
                    fix=clog[1] if clog else fix,
                )


# SFT packs whole conversations into rows of max_seq_len + 1 tokens (the best-fit loader, token-batched SFT from
# 2026-02); below this many tokens a good share of SmolTalk's conversations never fit a row
SFT_SHORT_SEQ = 1024


def _sft_packer_clog(seg) -> tuple[str, str] | None:
    """(cause, fix) of an SFT NaN that a short inherited sequence length explains: conversations longer than a row
    are never placed, fill the packer's buffer, and rows of padding only average the loss over zero targets."""
    seq = seg.settings.get("max_seq_len", "")
    if seg.phase != "sft" or not seq.isdigit() or int(seq) > SFT_SHORT_SEQ:
        return None
    # a clogged packer also stops consuming the data: its progress stands still after the NaN (a run that goes on
    # through its epoch went NaN for another reason)
    from preflight.loglines import parse_step

    at_nan = parse_step(seg.nan_loss.text, seg.nan_loss.line)
    last = seg.last_step.pct if seg.last_step is not None else None
    if at_nan is None or at_nan.pct is None or last is None or last > at_nan.pct + 0.5:
        return None
    return (
        f"; sft ran with max_seq_len {seq} (inherited from the base model unless set): conversations longer than "
        f"{int(seq) + 1} tokens never fit a row, fill the best-fit packer's buffer, and a batch of padding-only rows "
        "averages the loss over zero targets (NaN); the NaN weights stay NaN",
        "rerun sft with --max-seq-len=2048 (or a checkout whose SFT loader crops long conversations); a lower "
        "learning rate does not help here",
    )


@check("LOG008", "training-stopped-early", stage="post", severity="error")
def training_stopped_early(logs, ctx) -> Iterator[Finding]:
    """
    What it checks: a phase whose last logged step is below its planned total (``step N/T`` lines or
    ``Calculated number of iterations``) with no end-of-training lines after it; or whose last step is logged
    but which saved nothing and printed no end-of-training lines after it (it stopped in the final evaluation
    and save).

    Why it matters: the process died or was killed mid-training (host OOM kill, preemption, node
    failure) without a Python traceback; the final checkpoint was never written.

    Example:
        step 12345/21400 (57.69%) | loss: 2.9 ...   <log ends>

    How to fix: resume from the last periodic checkpoint (--resume_from_step) or rerun the phase.
    """
    from preflight.causes import respell_flags
    from preflight.log_ends import logs_end_quietly_in
    from preflight.resume import resume_key
    from preflight.verdict import superseded_at

    profile = ctx.get("profile", None)
    verdicts = ctx.get("phases", None)  # the timeline's verdicts, which see the checkpoints too

    ledger = ctx.get("ledger", None)
    planned_map = ((ledger or {}).get("expected") or {}).get("steps") or {} if isinstance(ledger, dict) else {}
    for ix in logs.logs:
        for seg in ix.segments:
            if seg.phase not in TRAIN_PHASES or not seg.last_step:
                continue
            total = planned_map.get(seg.phase) or seg.planned_steps
            if not total:
                continue
            if (
                seg.end_markers
                or seg.saved_steps("model")
                and max(seg.saved_steps("model")) >= total - 1
                # a stepless save (SFT's final "✅ Saved model checkpoint"; RL prints it every N steps too): the end
                # only when no step came after it
                or any(e.data.get("kind") == "checkpoint" and e.line > seg.last_step.line for e in seg.saves)
            ):
                continue
            # its last step logged, but nothing of the end after it (the final evaluation, save and summary):
            # it stopped before it saved (where the phase's verdict, which sees the checkpoints, says so too)
            unsaved_end = seg.last_step.step >= total - 1 and (
                not any(s.saves for s in logs.by_phase(seg.phase))
                and getattr(verdicts.get(seg.phase) if verdicts else None, "status", None) in ("failed", "stopped")
            )
            if seg.last_step.step < total - 1 or unsaved_end:
                if superseded_at(ix.path, seg.last_step.line, logs.by_phase(seg.phase)):
                    continue  # a later attempt of the phase (a resume) got going after it: that one is the state
                # the logs end on this step with no error and no job to ask: the run may still be going
                open_end = not getattr(ctx.inputs, "job_id", None) and logs_end_quietly_in(logs, seg)
                what = (
                    "its steps ran, but it stopped in the final evaluation and save after them (no checkpoint, no "
                    "end-of-training lines)"
                    if unsaved_end
                    else "training stopped early"
                )
                yield Finding(
                    f"{seg.phase}: last logged step {seg.last_step.step} of {total}: {what}"
                    + (
                        ", or it is still running: the logs end there with no error (they alone cannot tell; "
                        "postflight verify JOBID reads the job's state)"
                        if open_end
                        else ""
                    ),
                    path=ix.path,
                    line=seg.last_step.line,
                    severity=Severity.WARNING if open_end else None,
                    fix=f"rerun {seg.phase}: its trainer cannot resume from a checkpoint"
                    if profile is not None and resume_key(profile, seg.phase) is None
                    else "resume from the last checkpoint (see the resume plan) or rerun the phase"
                    if any(s.saved_steps("model") or s.resume_from for s in logs.by_phase(seg.phase))
                    else respell_flags(
                        "rerun the phase (these logs show no checkpoint of it to resume from; --save_every keeps one)",
                        profile,
                        None,
                        seg.phase,
                    ),
                )


@check("LOG009", "log-unusable", stage="post", severity="warning")
def log_unusable(logs, ctx) -> Iterator[Finding]:
    """
    What it checks: every log of the run (named with ``--log``, in the ledger, or found by the
    job's StdOut/StdErr) can be read, is not empty, is text rather than binary data, and (for one
    of them at least) holds something nanochat, torchrun or SLURM prints; and that some process in
    them is a phase of the pipeline, not only a fork's own program.

    Why it matters: an empty, unreadable or wrong file gives postflight no evidence: every
    log-based verdict (crashes, cascades, time limits) is silently missing, and a wrong
    ``--log`` would look like a clean run.

    Example:
        postflight verify --log model_021400.pt --base-dir ...   # a checkpoint, not a log

    How to fix: point ``--log`` at the job's output (``#SBATCH --output``; ``slurm-<jobid>.out``
    by default), or check why the job wrote nothing (a missing ``--output`` directory: exit 0:53).
    """
    for ix in logs.logs:
        if ix.error:  # as bad as a missing log (an error in phase-crashed): no evidence at all
            yield Finding(
                f"log {ix.path} cannot be used: {ix.error}",
                path=ix.path,
                severity=Severity.ERROR,
                fix="pass a readable text log with --log (the job's #SBATCH --output file)",
            )
        elif ix.size == 0:
            yield Finding(
                f"log {ix.path} is empty: the job (or that stream) wrote nothing",
                path=ix.path,
                fix="check the other stream (--error) or why the job printed nothing; pass it with --log",
            )
        elif ix.binary:
            yield Finding(
                f"log {ix.path} is not text (mostly undecodable bytes): is it the right file?",
                path=ix.path,
                fix="pass the job's text output with --log",
            )
        elif not logs.recognised:
            from preflight.silence import last_words

            last = last_words(ix.path)
            yield Finding(
                f"log {ix.path} ({ix.lines:,} lines) has nothing nanochat, torchrun or SLURM prints (no phase start, "
                "step line, checkpoint save or traceback in their formats): its phases cannot be judged from it, "
                "so they read as not run and no resume plan is given (a fork's own log format?)"
                + (f"; {last[0]}: {last[1]!r}" if last else ""),
                path=ix.path,
                fix="pass the job's nanochat output with --log, or --base-dir to judge the phases by their checkpoints",
            )
    if logs.no_pipeline_phase and ctx.get("checkpoints", None) is None:  # (a base dir judges them by checkpoints)
        first = logs.segments[0]
        yield Finding(
            f"no process in {'these logs' if len(logs.logs) > 1 else 'this log'} is a phase of the pipeline: "
            f"{'its process starts' if len(logs.segments) == 1 else 'the first starts'} at line "
            f"{first.start_line} and prints no phase's steps, saves or setup, nor the name of a phase's script "
            "(a fork's own program: a benchmark, another model's trainer?): no phase is judged from it and no "
            "resume plan is given",
            path=first.path,
            line=first.start_line,
            fix="pass the pipeline job's output with --log; --script JOB.sh says which phases the job runs",
        )


@check("LOG010", "job-hung", stage="post", severity="error")
def job_hung(silence, ctx) -> Iterator[Finding]:
    """
    What it checks: how long the job wrote nothing before it ended, or up to now while it runs:
    the log's last write (or its last timestamped line) against the job's end. Config
    ``hang-minutes`` (default 30) is the silence that counts as a hang.

    Why it matters: nanochat prints a line every step. A phase silent for half an hour has hung
    (a rank waiting in a collective, a stuck data loader); it is not slow, and a longer --time
    only burns more GPU hours before the same time limit.

    Example:
        2025-10-16 19:59:51,395 - nanochat.checkpoint_manager - INFO - Building model with config: ...
        Muon: Grouping 20 params of shape torch.Size([5120, 1280]) ...
        (nothing more for 12 hours)

    How to fix: while it hangs, see where each rank waits (py-spy dump on the node; NCCL_DEBUG=INFO
    for collectives), fix that, then resume from the last checkpoint.
    """
    from preflight.units import duration

    if silence is None:
        return
    what = silence.phase or "the job"
    where = f"{os.path.basename(silence.log)}:{silence.line}" if silence.line else os.path.basename(silence.log)
    at = f" at step {silence.step}" if silence.step is not None else (" before its first step" if silence.phase else "")
    last = f"the last output ({silence.since}{', timestamped' if silence.how == 'timestamp' else ''}) was {where} `{silence.text}`"
    gap = duration(silence.seconds)
    if silence.finished_phase:
        head = f"after {what} finished, the job wrote nothing for {gap}"
    elif silence.ended == "running":
        head = f"{what} has written nothing for {gap}{at}; the job is still running: it has hung, it is not slow"
    else:
        end = "the time limit" if silence.ended == "TIMEOUT" else f"the end ({silence.ended})"
        head = f"{what} wrote nothing for the last {gap} before {end}{at}: it had hung, so more --time would not have helped"
    job = ctx.get("job", None)
    label = job.label if job is not None else "JOBID"
    yield Finding(
        f"{head}; {last}",
        path=silence.log,
        line=silence.line,
        fix=(
            f"see where each rank waits while it hangs (`srun --overlap --jobid {label} py-spy dump --pid PID` on its node; "
            "NCCL_DEBUG=INFO shows a stuck collective), then resume from the last checkpoint"
        ),
    )
