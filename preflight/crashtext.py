"""How a phase's crash reads in the phase table and in findings: "died during setup (offline dataset): ...",
"crashed (out of memory) after step 120 of 500: ...", "rank 3 failed first ...", from the traceback, the steps the
phase logged before it, its evaluations and torchrun's failure record."""

from __future__ import annotations

import re
from typing import Any

from preflight.phases import TRAINER_SCRIPTS


def _after(steps: int | None, last: Any) -> str:
    """ " after its last training step (26086/26087)" / " after step 120 of 500" / " after 3 logged steps"."""
    if not steps:
        return ""
    if last is None:
        return f" after {steps} logged steps"
    if last.total and last.step == last.total - 1:  # the loop's last printed step: then the final eval and save
        return f" after its last training step ({last.step}/{last.total})"
    return f" after step {last.step}" + (f" of {last.total}" if last.total else "")


def last_step_before(segs: list, tb: Any) -> Any:
    """The last step line the phase logged before the crash's traceback (a StepRecord), if any."""
    steps = [s.last_step for s in segs if s.last_step is not None and (s.path != tb.path or s.start_line <= tb.line)]
    return steps[-1] if steps else None


def crash_text(
    tb: Any, steps: int | None = None, failed: dict | None = None, evaluated: bool = False, last: Any = None
) -> str:
    """ "died during setup (offline dataset): HF dataset ... " for the phase table and findings.
    ``failed``: torchrun's record of the process's failure (rank, exitcode); when another rank failed
    first and this traceback only lost it, the text names that rank. ``evaluated``: the process logged
    its step-0 evaluation, so it was through setup and died in its first training step."""
    from preflight.causes import CASCADE, classify_traceback

    cause = classify_traceback(tb)
    if tb.exc_type:
        message = tb.message
        if not message and tb.exc_type == "AssertionError" and tb.calls and tb.calls[-1].lstrip().startswith("assert"):
            message = tb.calls[-1].strip()  # a bare assert: its source line says what failed
        what = cause.detail or (f"{tb.exc_type}: {message[:160]}" if message else tb.exc_type)
    else:  # a pasted or truncated log: the frames, then nothing
        what = "the traceback is cut off before its exception line"
    root = root_rank(tb, failed)
    if root is not None and cause.name in CASCADE:
        code = (failed or {}).get("exitcode")
        sig = f" ({SIGNALS[code]})" if code in SIGNALS else ""
        return (
            f"rank {root} failed first"
            + (f" (exit {code}{sig.replace(' (', ', ').rstrip(')')})" if code is not None else "")
            + _after(steps, last)
            + f"; rank {', '.join(map(str, tb.ranks)) or '?'} then lost it in a collective ({cause.name})"
        )
    if tb.script and tb.script not in TRAINER_SCRIPTS:  # an evaluation or a download: no training to set up
        return f"crashed ({cause.name}): {what}"
    if CORE_EVAL_CALL_RE.search(getattr(tb, "calls_text", "") or ""):
        # base_train's CORE evaluation runs in its loop (at step 0, every core_metric_every steps and at the end):
        # a crash there is no setup crash, whether or not the logs kept the step lines before it
        return f"crashed in its CORE evaluation ({cause.name}){_after(steps, last)}: {what}"
    if steps == 0 and evaluated:
        return f"died in its first training step, after the step-0 evaluation ({cause.name}): {what}"
    if steps == 0:
        return f"died during setup ({cause.name}): {what}"
    return f"crashed ({cause.name})" + _after(steps, last) + f": {what}"


CORE_EVAL_CALL_RE = re.compile(r"\bevaluate_model\(")  # base_train.py's call of base_eval's CORE evaluation


def evaluated_before(segs: list, tb: Any) -> bool:
    """A segment of the phase logged an evaluation before the crash's traceback (in the .out when the
    traceback is in the .err: an evaluation line is printed once the evaluation is done)."""
    return any(s.first_eval is not None and (s.path != tb.path or s.first_eval < tb.line) for s in segs)


def root_rank(tb: Any, failed: dict | None) -> int | None:
    """The rank torchrun saw fail first, when it is not one of the ranks that printed ``tb``."""
    rank = (failed or {}).get("rank")
    return rank if rank is not None and rank not in (tb.ranks or []) else None


def failed_record(logs: Any, tb: Any) -> dict:
    """torchrun's failure record (rank, exitcode) of the process that printed ``tb``."""
    for ix in logs.logs if logs is not None else []:
        for seg in ix.segments:
            if tb in seg.tracebacks:
                return seg.failed_marker.data if seg.failed_marker is not None else {}
    return {}


def cancel_text(due: str) -> str:
    """How SLURM's `*** JOB N CANCELLED AT T [DUE TO X] ***` line ended a phase. With no reason, a user's or an
    administrator's scancel: more --time would change nothing."""
    if "TIME" in due.upper():
        return "cancelled by SLURM at the time limit"
    if due:
        return f"cancelled by SLURM due to {due.lower()}"
    return "cancelled (scancel by a user or an administrator, not the time limit)"


SIGNALS = {-9: "SIGKILL", -6: "SIGABRT", -11: "SIGSEGV", -15: "SIGTERM"}  # torchrun's exitcode -N: killed by signal N


def killed_text(failed: dict) -> str | None:
    """A process torchrun reports killed by a signal before it logged a step, from its failure record."""
    code = failed.get("exitcode")
    if not isinstance(code, int) or code >= 0:
        return None
    why = {
        -9: "usually the node's memory (the kernel's OOM killer) or a login node's limits",
        -11: "a crash in native code, with no Python traceback (a compiled graph or kernel, CUDA graphs of "
        "torch.compile's reduce-overhead mode, an extension)",
    }.get(code, "")
    return f"torchrun reports it killed by {SIGNALS.get(code, f'signal {-code}')} (exit {code}) during setup" + (
        f": {why}" if why else ""
    )
