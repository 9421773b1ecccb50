"""Verdict per phase (the ``phases`` fact; the resume plan built on it is preflight.resume).

A phase is judged from every source at hand: the log index (steps, tracebacks, saves, SLURM
cancels), the checkpoint inventory (last complete step vs the plan), report.md, the job state.
Statuses: done | partial | failed | not-run | running | stopped. ``stopped``: logs read without the job's state end
in the phase with no error, no save and no cancel, so a copy of a log still growing (a run still going) and a run
killed or hung look the same; only the job's state tells them apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight import verdict_marks as marks
from preflight.crashtext import (
    cancel_text,
    crash_text,
    evaluated_before,
    failed_record,
    killed_text,
    last_step_before,
)
from preflight.facts import FactUnavailable
from preflight.log_ends import (
    SILENT_UNKNOWN,
    evaluated_only,
    evaluations_only,
    last_written,
    logs_end_quietly_in,
    silent_at_end,
    stderr_note,
)
from preflight.phases import CKPT_DIR_RE, DIR_WORD_PHASE, TRAIN_PHASES, TRAINER_SCRIPTS  # noqa: F401  (re-exported)
from preflight.phases import PHASE_NAMES as PHASES

STATUSES = ("done", "partial", "failed", "not-run", "running", "stopped")
UNFINISHED = ("failed", "partial", "running", "stopped")  # a phase that began and did not end

MISSING_CKPT_RE = re.compile(CKPT_DIR_RE.pattern + r"|No checkpoints found")


def classify(exc_type: str, message: str) -> str:
    """The cause name of one exception (rules: the profile's ``evidence.causes``)."""
    from preflight.causes import classify_text

    return classify_text(f"{exc_type}: {message}").name


def tb_phase(tb: Any) -> str | None:
    """A traceback's phase: its script's, or for chat_eval (no phase of its own) the phase whose
    checkpoint it could not find (``chat_eval -i sft`` -> sft)."""
    if tb.phase:
        return tb.phase
    if tb.script == "chat_eval" and is_missing_checkpoint(tb):
        return missing_source_phase(tb)
    return None


def _unavailable_reason(ctx: Any, fact: str) -> str:
    """Why a fact that came back None could not be had (no base dir, a later run's ./report.md)."""
    try:
        ctx.get(fact)
    except FactUnavailable as why:
        return str(why)
    return "no base dir"


def _tb_text(tb: Any) -> str:
    return "\n".join([tb.message, *getattr(tb, "detail", [])])


def is_missing_checkpoint(tb: Any) -> bool:
    return tb.exc_type.endswith("FileNotFoundError") and bool(MISSING_CKPT_RE.search(_tb_text(tb)))


def missing_source_phase(tb: Any) -> str | None:
    m = MISSING_CKPT_RE.search(_tb_text(tb))
    if not m or not m.group(1):
        return None
    return DIR_WORD_PHASE[m.group(1)]


@dataclass
class PhaseVerdict:
    name: str
    status: str
    cause: str = ""
    evidence: list[str] = field(default_factory=list)
    expected: bool = True
    step: int | None = None
    planned: int | None = None
    before_logs: bool = False  # logs alone, and they begin with a later phase: this one is outside them
    # its training finished (this checkpoint step) and only its evaluation failed: a resume reruns the evaluation
    trained: int | None = None
    rerun: str | None = None  # then the entry point to rerun it from (base_eval)
    evaluation: dict[str, float] | None = None  # chat_eval's results on its checkpoint, where the logs show them

    def to_json(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "status": self.status,
            "cause": self.cause,
            "evidence": self.evidence,
            "expected": self.expected,
        }
        if self.before_logs:
            out["before_logs"] = True
        if self.trained is not None:
            out["trained"] = self.trained
        if self.evaluation:
            out["evaluation"] = self.evaluation
        return out


@dataclass
class Phases:
    verdicts: list[PhaseVerdict]

    def get(self, name: str) -> PhaseVerdict | None:
        return next((v for v in self.verdicts if v.name == name), None)

    @property
    def first_incomplete(self) -> PhaseVerdict | None:
        return next((v for v in self.verdicts if v.expected and v.status != "done"), None)

    @property
    def all_done(self) -> bool:
        return self.first_incomplete is None

    def failed(self) -> list[PhaseVerdict]:
        return [v for v in self.verdicts if v.status == "failed"]

    def rows(self) -> list[tuple[str, str, str, str]]:
        return [
            (
                v.name,
                v.status if v.expected or v.status != "not-run" else "not-run (not planned)",
                v.cause,
                ", ".join(v.evidence[:2]),
            )
            for v in self.verdicts
        ]

    def to_json(self) -> list[dict[str, Any]]:
        return [v.to_json() for v in self.verdicts]


def _planned(ctx: Any, phase: str, segs: list[Any], profile: Any) -> int | None:
    """The step the phase's final checkpoint should carry."""
    ledger = ctx.get("ledger", None)
    if isinstance(ledger, dict):
        steps = (ledger.get("expected") or {}).get("steps") or {}
        if isinstance(steps.get(phase), (int, float)):
            return int(steps[phase])
    planned = next((s.planned_steps for s in reversed(segs) if s.planned_steps), None)
    if planned is None:
        return None
    rule = ((profile.phase(phase) or {}).get("step_rule") if profile else None) or "num_iterations"
    if rule == "num_iterations_minus_1" or (phase == "sft" and rule != "num_iterations"):
        return planned - 1
    if rule == "save_every_and_last":
        return planned - 1
    return planned


def _rank_root(ctx: Any, phase: str, tb: Any, profile: Any) -> tuple[str, str] | None:
    """(cause, path:line) of the rank that failed first of its own in this phase of a multi-rank job,
    when ``tb`` is only a consequence of it (a collective that lost its peer)."""
    from preflight.causes import CASCADE, classify_traceback

    if classify_traceback(tb, profile).name not in CASCADE:
        return None
    try:
        failures = ctx.get("rank_failures", None) or []
    except Exception:  # an unreadable log is the log checks' finding; the traceback's cause stands
        return None
    for lf in failures:
        root = lf.report.root
        if lf.phase == phase and root is not None and root.rank not in (tb.ranks or []):
            text = lf.describe()
            if text:
                return text, f"{lf.path}:{root.line}"
    return None


def judge_phase(
    ctx: Any, phase: str, logs: Any, inv: Any, job: Any, profile: Any, last_started: str | None
) -> PhaseVerdict:
    v = PhaseVerdict(phase, "not-run")
    segs = logs.by_phase(phase) if logs is not None else []
    # a traceback whose frames name no entry point (an excerpt: checkpoint_manager.py only) is its process's
    seg_of = {id(t): s for s in segs for t in s.tracebacks}
    # a stderr file that names no phase at all (its .out does): its crashes are the last started phase's
    phaseless = {ix.path for ix in logs.logs if not any(s.phase for s in ix.segments)} if logs is not None else set()
    tbs = [
        t
        for t in (logs.tracebacks if logs is not None else [])
        if (
            tb_phase(t) == phase
            or (tb_phase(t) is None and (id(t) in seg_of or (phase == last_started and t.path in phaseless)))
        )
        and not t.wrapper
    ]
    tbs = [t for t in tbs if not superseded(t, segs)]
    if any(s.script in TRAINER_SCRIPTS and s.failed_marker is not None for s in segs):
        # its trainer failed: an evaluation of the phase that then found no checkpoint of it is the consequence
        tbs = [t for t in tbs if not (t.script not in TRAINER_SCRIPTS and is_missing_checkpoint(t))]
    # the phase's own crash first; a chat_eval that could not find this phase's checkpoint is its consequence
    tbs.sort(key=lambda t: not is_missing_checkpoint(t) or missing_source_phase(t) != phase)
    pc = inv.phases.get(phase) if inv is not None else None
    planned = _planned(ctx, phase, segs, profile)
    v.planned = planned
    ck = pc.last_step if pc is not None else None
    v.step = ck
    logged_steps = sum(s.step_lines for s in segs)
    cancels = logs.slurm_events("cancel") if logs is not None else []
    ckpt_ok = ck is not None and (planned is None or ck >= planned)
    if pc is not None and pc.dir and ck is not None:
        ev_ck = f"{pc.dir}/model_{ck:06d}.pt"
    else:
        ev_ck = None
    running = job is not None and getattr(job, "running", False) and last_started == phase
    # this job's process of the phase logged no step, saved nothing and never reached its end: it died
    # during setup, and a checkpoint on disk was written by an earlier run, not by it
    died_in_setup = (
        bool(segs)
        and logged_steps == 0
        and all(s.script is None or s.script in TRAINER_SCRIPTS for s in segs)
        and not any(s.saves or s.end_markers for s in segs)
        and not running
    )
    earlier = f"; the step-{ck} checkpoint in {pc.dir} is an earlier run's" if died_in_setup and ev_ck else ""
    if tbs and (not ckpt_ok or died_in_setup):
        # the phase's trainer crashed: that is the phase's cause, not an evaluation that then crashed too
        own = [t for t in tbs if t.script in TRAINER_SCRIPTS and not is_missing_checkpoint(t)]
        tb = own[-1] if own else tbs[-1]
        same = [t for t in tbs if seg_of.get(id(t)) is not None and seg_of.get(id(t)) is seg_of.get(id(tb))]
        tb = same[0] if same else tb  # one process's crashes: its first is the cause (a later one, its consequence)
        if is_missing_checkpoint(tb) and missing_source_phase(tb) != phase:
            src = missing_source_phase(tb)
            v.status, v.cause = "failed", f"{tb.exc_type}: the {src or 'earlier'} checkpoint is missing (cascade)"
        else:
            text = crash_text(
                tb, logged_steps, failed_record(logs, tb), evaluated_before(segs, tb), last_step_before(segs, tb)
            )
            trained = None if own or is_missing_checkpoint(tb) else _trained_before(phase, segs, tb, planned)
            if tb.script and tb.script not in TRAINER_SCRIPTS:
                text = f"{tb.script} {text}"  # the phase's evaluation crashed, not its training
            if trained is not None:  # its training is done: only the evaluation is to be rerun
                (v.trained, how), v.rerun = trained, tb.script
                text += f"; its training was done ({how}): only the evaluation is to be rerun"
            v.status, v.cause = "failed", text + earlier
            root = _rank_root(ctx, phase, tb, profile)
            if root is not None:  # this traceback is a rank that lost its peer; the cause is the peer's
                v.cause, where = root
                v.evidence.append(where)
        v.evidence.append(tb.where)
        if ck is not None:
            v.evidence.append(ev_ck)
        return v
    if cancels and last_started == phase and not ckpt_ok:
        ix, ev = cancels[-1]
        # no base dir: the saves the logs show (a stderr log may hold nothing else of a 3-day run)
        saved = ck if ck is not None or inv is not None else _checkpoint_in_logs(segs)
        v.status = "partial" if saved is not None or logged_steps else "failed"  # partial: it stopped after some steps
        last = max((s.last_step.step for s in segs if s.last_step is not None), default=None)
        where = "checkpoint step" if ck is not None else "checkpoint in the logs: step"
        v.cause = cancel_text(ev.data.get("due", "")) + (
            f"; last {where} {saved}" + (f" of {planned}" if planned else "")
            if saved is not None
            else (
                f" after step {last}" + (f" of {planned}" if planned else "") + "; no checkpoint to resume from"
                if last is not None
                else "; no checkpoint"
            )
        )
        v.step = v.step if v.step is not None else saved
        v.evidence.append(f"{ix.path}:{ev.line}")
        return v
    if ck is not None and not died_in_setup:
        v.evidence.append(ev_ck)
        if planned is not None and ck < planned:
            v.status, v.cause = "partial", f"last complete checkpoint is step {ck}, planned {planned}"
        else:
            v.status, v.cause = "done", f"checkpoint step {ck}" + (f" of {planned}" if planned else "")
        if running and v.status != "done":
            v.status = "running"
        return v
    if pc is not None and pc.steps and not died_in_setup:
        v.status, v.cause = "failed", "checkpoint files without a complete model/meta pair"
        v.evidence.append(pc.dir or pc.stage_dir)
        return v
    if segs:
        seg = segs[-1]
        v.evidence.append(f"{seg.path}:{seg.start_line}")
        evaluated = evaluated_only(phase, segs, logs) if logged_steps == 0 and not tbs else None
        if job is not None and getattr(job, "running", False) and last_started == phase:
            v.status, v.cause = "running", f"{logged_steps} step lines so far"
        elif evaluated is not None:  # a job that evaluated the phase's model (base_eval), trained in an earlier one
            v.status, v.cause = "done", evaluated
        elif logged_steps == 0 and not _saved_step(segs):  # (a stderr file alone holds the saves, not the steps)
            started = segs[0]
            bare = all(not (s.overrides or s.device or s.world_size or s.content) for s in segs)
            what = "printed nothing after its header" if bare else "logged no step"
            evaluated = next((s for s in segs if s.first_eval is not None), None)
            if evaluated is not None:  # through setup: it evaluated (base_train's CORE at its first step)
                v.status, v.cause = (
                    "failed",
                    f"logged an evaluation ({Path(evaluated.path).name}:{evaluated.first_eval}) and then no step "
                    f"line: it stopped there; {stderr_note(logs)}{earlier}",
                )
                return v
            silent = silent_at_end(logs, segs[-1], job)
            marker = next((s.failed_marker for s in segs if s.failed_marker is not None), None)
            killed = killed_text(marker.data) if marker is not None else None
            died = killed or (SILENT_UNKNOWN if silent else "died during setup")
            silent = silent and killed is None
            note = "" if killed else f"; {stderr_note(logs, silent)}"
            v.status, v.cause = (
                "stopped" if silent else "failed",
                f"started at {Path(started.path).name}:{started.start_line}, {what}: {died}{note}{earlier}"
                + (last_written(segs[-1].path) if silent else ""),
            )
        elif inv is None:
            _judge_from_log_alone(v, seg, segs, planned, logs, job)
        else:
            v.status, v.cause = "failed", f"logged {logged_steps} steps but wrote no checkpoint"
        return v
    return v


def _trained_before(phase: str, segs: list, tb: Any, planned: int | None) -> tuple[int, str] | None:
    """The checkpoint step the phase's training finished with, and how the logs show it, where a crash of its
    evaluation (base_eval, base_loss) came after that: the trainer ended its run and saved, or the evaluation
    loaded the phase's own checkpoint (a separate eval job) at the planned horizon or with none known."""
    for seg in reversed(segs):
        if seg.script in TRAINER_SCRIPTS and seg.end_markers and seg.failed_marker is None and not seg.tracebacks:
            step = max(seg.saved_steps(), default=None)
            if step is not None and (planned is None or step >= planned):
                return step, f"{seg.script} ended and saved its step-{step} checkpoint"
    for seg in reversed(segs):
        load = seg.loaded
        if (
            any(t is tb for t in seg.tracebacks)
            and load is not None
            and load.data.get("source") == phase
            and load.line < tb.line
            and seg.script not in TRAINER_SCRIPTS
        ):
            step = load.data.get("step")
            if isinstance(step, int) and (planned is None or step >= planned):
                return step, f"{seg.script} loaded its step-{step} checkpoint"
    return None


def _saved_step(segs: list) -> int | None:
    """The latest model checkpoint the phase's logs show saved."""
    return max((step for s in segs for step in s.saved_steps()), default=None)


def _checkpoint_in_logs(segs: list) -> int | None:
    """The latest checkpoint step the phase's logs prove exists: one it saved, or one it resumed from."""
    steps = [_saved_step(segs)] + [s.resume_from for s in segs if s.resume_from]
    return max((s for s in steps if s is not None), default=None)


def _judge_from_log_alone(
    v: PhaseVerdict, seg: Any, segs: list, planned: int | None, logs: Any = None, job: Any = None
) -> None:
    """No checkpoint directory to look at: the log's own saves and step counter decide. An intermediate save
    (--save_every) is not the end of training: the run is done only where it saved or stepped up to its total."""
    stepped = [s for s in segs if s.last_step is not None]  # not an evaluation run after it (base_eval)
    last = stepped[-1].last_step if stepped else None
    at = last.step if last else "?"
    total = planned or (last.total if last else None)
    saved = _saved_step(segs)
    reached = total is None or (saved is not None and saved >= total) or (last is not None and last.step >= total - 1)
    if last is None and saved is not None and not seg.end_markers and total is None:
        # a stderr file alone: saves, no step lines, no horizon; no error or cancel after its last save
        v.status, v.cause = (
            "done",
            (
                f"its last save in these logs is step {saved}, with no error after it (no step lines: a stderr file "
                "alone; the .out or --base-dir confirms the horizon)"
            ),
        )
    elif seg.end_markers or (saved is not None and reached):
        v.status, v.cause = "done", f"log shows the end of training (last step {at})"
        # the evidence is where it ended (its first end line, else its last save), not where the process began
        ends = [e.line for e in seg.end_markers.values()] or [e.line for e in seg.saves]
        if ends and v.evidence and v.evidence[-1] == f"{seg.path}:{seg.start_line}":
            v.evidence[-1] = f"{seg.path}:{min(ends) if seg.end_markers else max(ends)}"
    elif saved is not None:
        v.status, v.step = "partial", saved
        v.cause = f"last saved checkpoint is step {saved} of {total}; the log stops at step {at}"
    else:
        v.status, v.cause = "failed", f"log stops at step {at} without saving"
        if last is not None and v.evidence and v.evidence[-1] == f"{seg.path}:{seg.start_line}":
            v.evidence[-1] = f"{stepped[-1].path}:{last.line}"  # where it stopped, not where the process began
        if job is None and logs_end_quietly_in(logs, seg):
            # the logs end here, with no error: a copy of a log that is still growing looks the same
            v.status = "stopped"
            v.cause += ", and with no error: killed, hung or still running (the logs alone cannot tell; postflight "
            v.cause += "verify JOBID reads the job's state)" + last_written(seg.path)
    events = logs.slurm_events("nccl-watchdog") if logs is not None else []
    watchdog = next((e for ix, e in events if str(ix.path) == str(seg.path) and e.line > seg.start_line), None)
    if v.status != "done" and watchdog is not None:
        v.cause += (
            f"; then NCCL's watchdog gave up on a collective (line {watchdog.line}): the ranks waited for one that "
            "had stopped or hung (its own error is not in these logs)"
        )


def judge_tokenizer(logs: Any, inv: Any, job: Any = None) -> PhaseVerdict:
    v = PhaseVerdict("tokenizer", "not-run")
    tbs = [t for t in (logs.tracebacks if logs is not None else []) if t.phase == "tokenizer" and not t.wrapper]
    if inv is not None and inv.tokenizer and all(inv.tokenizer.values()):
        v.status, v.cause = "done", "tokenizer.pkl and token_bytes.pt present"
        v.evidence.append(f"{inv.base_dir}/tokenizer/tokenizer.pkl")
        return v
    saves = [(s, e) for s in (logs.by_phase("tokenizer") if logs is not None else []) for e in s.saves]
    if tbs and not superseded(tbs[-1], logs.by_phase("tokenizer")):  # a later attempt that saved supersedes it
        tb = tbs[-1]
        v.status, v.cause = (
            "failed",
            f"crashed ({classify(tb.exc_type, tb.message)}): {tb.exc_type}"
            + (f": {tb.message[:160]}" if tb.message else ""),
        )
        v.evidence.append(tbs[-1].where)
        return v
    if inv is not None and inv.tokenizer:
        missing = [n for n, ok in inv.tokenizer.items() if not ok]
        v.cause = f"missing {', '.join(missing)}"
        if saves:
            v.status = "failed"
        return v
    if saves:
        v.status, v.cause = "done", "log shows the tokenizer saved"
        v.evidence.append(f"{saves[-1][0].path}:{saves[-1][1].line}")
        return v
    segs = [s for s in (logs.by_phase("tokenizer") if logs is not None else []) if s.script == "tok_train"]
    if segs and inv is None:  # tok_train at work (rustbpe's lines) and no save: where the logs end decides
        seg = segs[-1]
        v.evidence.append(f"{seg.path}:{seg.start_line}")
        if job is None and logs_end_quietly_in(logs, seg):
            v.status = "stopped"
            v.cause = (
                f"tok_train began training ({Path(seg.path).name}:{seg.start_line}) and the logs end in it with no "
                "save and no error: killed, hung or still running (the logs alone cannot tell; postflight verify "
                "JOBID reads the job's state)" + last_written(seg.path)
            )
        else:
            v.status, v.cause = (
                "failed",
                f"tok_train began training ({Path(seg.path).name}:{seg.start_line}) and saved nothing",
            )
    return v


def superseded(tb: Any, segs: list) -> bool:
    """tb is an earlier attempt's crash: the phase's last process (segs, in log order) starts after it in the
    same log and got going (steps or saves), so that attempt, not the crash, is the phase's state."""
    return superseded_at(tb.path, tb.exc_line or tb.line, segs)


def superseded_at(path: Any, at: int, segs: list) -> bool:
    """superseded() for an error at line ``at`` of ``path`` (a rank's error line, no traceback object)."""
    if any(e.line > at for s in segs if s.path == path for e in s.saves):  # it saved after the crash
        return True
    last = segs[-1] if segs else None
    got_going = last is not None and bool(last.step_lines or last.saves)
    return got_going and path == last.path and at < last.start_line


def judge_report(ctx: Any, profile: Any, logs: Any = None) -> PhaseVerdict:
    v = PhaseVerdict("report", "not-run")
    if not profile.data.get("report"):
        v.expected, v.cause = False, f"the {profile.name} era writes no report.md"
        writes = [p.name for p in profile.alternative_profiles() if p.data.get("report")]
        if writes:  # the era is a guess between eras that differ here: what the logs show, not what the era does
            v.cause = (
                f"no report step in these logs (the {profile.name} era writes none; {', '.join(writes)}, which the "
                "evidence fits as well, does)"
            )
        return v
    rep = ctx.get("report", None)
    if rep is None:
        segs = logs.by_phase("report") if logs is not None else []
        made = [s for s in segs if not s.tracebacks]
        crashed = [t for s in segs for t in s.tracebacks if not t.wrapper]
        if crashed and not made:  # nanochat.report itself crashed (its reset at the start, or generate)
            tb = crashed[-1]
            v.status, v.cause = "failed", f"nanochat.report crashed: {tb.exc_type}: {tb.message[:160]}"
            v.evidence.append(tb.where)
            return v
        if made:  # "Copying report.md to ..." (speedrun's last step): generated, though no base dir to read it
            v.status, v.cause = "done", "the log shows report.md generated and copied (no base dir to read it)"
            v.evidence.append(f"{made[-1].path}:{made[-1].start_line}")
            return v
        v.cause = f"report.md not checked: {_unavailable_reason(ctx, 'report')}"
        return v
    if not rep.exists:
        v.cause = "report.md missing"
        return v
    v.evidence.append(rep.path)
    if rep.wall_clock and rep.wall_clock != "unknown" and rep.summary_line:
        v.status, v.cause = "done", f"report.md with summary ({rep.wall_clock})"
    else:
        v.status, v.cause = "partial", "report.md without a complete summary"
    return v


def phases_fact(ctx: Any) -> Phases:
    from preflight.ckpt import expected_phases, get_profile, planned_phases

    profile = get_profile(ctx)
    logs = ctx.get("logs", None)
    inv = ctx.get("checkpoints", None)
    if logs is None and inv is None:
        raise FactUnavailable("no logs and no base dir to judge the phases from")
    job = ctx.get("job", None)
    expected = set(expected_phases(ctx, profile))
    unjudged = ""
    if inv is None and logs is not None and planned_phases(ctx, profile) is None:
        if logs.no_pipeline_phase:
            # nothing in the logs is the pipeline, and nothing says the job runs it (LOG009 says so): nothing expected
            expected = set()
            unjudged = "not judged: no process in these logs is a phase of the pipeline"
        elif evaluations_only(logs):
            # a job that only evaluated (a standalone base_eval): the phases it evaluated are what it ran
            expected = set(logs.started_phases())
        elif logs.logs and not logs.recognised:
            # nothing in them is in nanochat's formats (LOG009): what ran is unknown, so what was expected stays
            # not done (a job that died before its first phase prints nothing of nanochat's either)
            unjudged = "not judged: nothing in these logs is in nanochat's formats"
    started = logs.started_phases() if logs is not None else []
    last_started = next((p for p in reversed(started) if p in PHASES), None)
    verdicts: list[PhaseVerdict] = []
    for phase in PHASES:
        if phase == "tokenizer":
            v = judge_tokenizer(logs, inv, job)
        elif phase == "report":
            v = judge_report(ctx, profile, logs)
        else:
            if profile.phase(phase) is None and phase not in started:
                v = PhaseVerdict(phase, "not-run", f"the {profile.name} era has no {phase} phase", expected=False)
                verdicts.append(v)
                continue
            v = judge_phase(ctx, phase, logs, inv, job, profile, last_started)
            if inv is None and v.step is None and v.status in UNFINISHED:
                v.step = _checkpoint_in_logs(logs.by_phase(phase) if logs is not None else [])
        if v.expected:
            v.expected = phase in expected or phase in started
        if unjudged and v.status == "not-run" and not v.cause:
            v.cause = unjudged
        verdicts.append(v)
    marks.mark_diverged(logs, verdicts)
    marks.mark_skipped_mid(logs, verdicts)
    marks.mark_loaded(logs, verdicts)
    marks.mark_tokenizer_used(logs, verdicts)
    marks.mark_evaluated(logs, verdicts)
    if inv is None:
        marks.mark_before_logs(verdicts)
        marks.report_of_unfinished_run(verdicts)
    marks.mark_hung(ctx, verdicts)
    first_bad = next((v for v in verdicts if v.expected and v.status in ("failed", "partial", "stopped")), None)
    if first_bad is not None:
        for v in verdicts:
            if v.expected and v.status == "not-run" and PHASES.index(v.name) > PHASES.index(first_bad.name):
                v.cause = f"not reached: {first_bad.name} {first_bad.status} first"
    return Phases(verdicts)
