"""The ``silence`` fact: how long the job wrote nothing before it ended (or up to now, while it runs).

nanochat prints a line every training step, so a phase that writes nothing for half an hour has
hung (a rank waiting in a collective, a stuck data loader, a deadlocked compile); it is not slow,
and a longer ``--time`` would only have burnt more hours. The time of the last output comes from:

* the log file's modification time, for a log that holds no SLURM end-of-job line (the usual
  separate ``.out``: the cancel line goes to the ``.err``);
* else the last timestamped line (python ``logging``'s ``2025-10-16 19:59:50,381 - ...``) near the
  end, when no step line follows it: a lower bound of the silence, read from the last 64 KiB only.

The end is ``now`` for a running job, else SLURM's End time, else the cancel line's own time.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from preflight.facts import FactUnavailable
from preflight.loglines import CANCEL_RE, RANK_PREFIX_RE, STEP_BYTES_RE, strip_ansi
from preflight.redact import redact

HANG_MINUTES = 30.0  # the default of the `hang-minutes` setting
TAIL_BYTES = 64 * 1024
STEPS_PER_BUFFER = 60  # a block-buffered stdout holds about this many step lines: their silence is not a hang
# a line at the very end that the end of the job itself wrote (SLURM, torchrun's shutdown, the shell)
_END_NOISE_RE = re.compile(r"CANCELLED AT|slurmstepd|srun: |death signal|closing signal|Sending process \d+|Terminated")
_KILLED_RE = re.compile(r"SignalException: Process \d+ got signal|got signal: \d+$")
_STAMP_RE = re.compile(r"^\[?(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)")
_ENDED = ("TIMEOUT", "CANCELLED", "DEADLINE", "PREEMPTED")


@dataclass
class Silence:
    seconds: int  # from the last output to the end (or to now)
    since: str  # when the last output was written, "2025-10-16 19:59:51"
    log: str
    line: int | None  # the last output's line in ``log``
    text: str  # that line, cut and redacted
    how: str  # "mtime" (the log's last write) | "timestamp" (its last timestamped line: a lower bound)
    phase: str | None
    step: int | None  # the phase's last logged step
    finished_phase: bool  # the phase had logged its end: the job idled after it
    ended: str  # "running" | the end: "TIMEOUT", "CANCELLED" ...

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _parse_time(text: str | None) -> float | None:
    """SLURM's ``2025-10-17T07:59:50`` (the cluster's local time) as epoch seconds."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.strip().replace(" ", "T")).timestamp()
    except ValueError:
        return None  # "Unknown", "None": no end yet


def tail_lines(path: str) -> tuple[list[str], bool] | None:
    """The last lines of ``path`` (up to TAIL_BYTES; a cut first line is dropped), and whether the
    file ends with a newline."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - TAIL_BYTES))
            raw = f.read(TAIL_BYTES)
    except OSError:
        return None
    lines = raw.decode("utf-8", "replace").split("\n")
    if size > TAIL_BYTES:
        lines = lines[1:]
    ends_nl = raw.endswith(b"\n")
    if ends_nl:
        lines = lines[:-1]
    return lines, ends_nl


_ERROR_WORD_RE = re.compile(r"\b(?:error|fatal|failed|not found|no such)\b", re.I)


def last_words(path: str, limit: int = 160) -> tuple[str, str] | None:
    """What a log nothing else in which is recognised said last: ("its last error line" | "its last line", the line
    as plain text: no colour codes, no control bytes, secrets masked, cut to ``limit``)."""
    got = tail_lines(path)
    lines = [strip_ansi(ln) for ln in got[0] if ln.strip()] if got else []
    if not lines:
        return None
    line = next((ln for ln in reversed(lines) if _ERROR_WORD_RE.search(ln)), None)
    what = "its last error line" if line is not None else "its last line"
    line = line if line is not None else lines[-1]
    text = "".join(ch if ch.isprintable() else " " for ch in line).strip()
    return what, redact(text[:limit] + ("..." if len(text) > limit else ""))


def _text(line: str) -> str:
    line = strip_ansi(line)
    m = RANK_PREFIX_RE.match(line)
    return line[m.end() :] if m else line


def _last_output(ix: Any) -> tuple[float, int, str, str] | None:
    """(time, line, text, how) of the last output the job's processes wrote to this log."""
    got = tail_lines(ix.path)
    if got is None or not got[0]:
        return None
    lines, ends_nl = got
    last_no = ix.lines if ends_nl else ix.lines + 1  # the number of the tail's last line
    written_at_end = any(e.kind == "cancel" for e in ix.slurm)
    k = len(lines) - 1
    while k >= 0:
        text = _text(lines[k])
        if text.strip() and not _END_NOISE_RE.search(text):
            if not _KILLED_RE.search(text):
                break
            # torchrun's own traceback for the signal that ended it: written at the end, skip it whole
            while k > 0 and not _text(lines[k]).startswith("Traceback (most recent call last)"):
                k -= 1
        written_at_end = written_at_end or bool(text.strip())
        k -= 1
    if k < 0:
        return None
    text = _text(lines[k]).strip()
    line_no = last_no - (len(lines) - 1 - k)
    if not written_at_end:
        try:
            return os.stat(ix.path).st_mtime, line_no, text, "mtime"
        except OSError:
            return None
    # the end of the job wrote to this log: the last timestamp before it, if no step line came after
    for j in range(k, -1, -1):
        t = _text(lines[j])
        m = _STAMP_RE.match(t)
        if m:
            when = _parse_time(f"{m.group(1)}T{m.group(2)}")
            return (when, line_no, text, "timestamp") if when is not None else None
        if STEP_BYTES_RE.search(t.encode("utf-8", "replace")):
            return None  # training went on after the last timestamp: its time is unknown
    return None


def _end_time(job: Any, logs: Any) -> tuple[float, str] | None:
    if job is not None and getattr(job, "running", False):
        return time.time(), "running"
    if job is not None and job.state in _ENDED:
        end = _parse_time(job.end)
        if end is not None:
            return end, job.state
    for _ix, ev in logs.slurm_events("cancel"):
        m = CANCEL_RE.search(ev.text)
        end = _parse_time(m.group(4)) if m else None
        if end is not None:
            return end, "TIMEOUT" if "TIME" in (m.group(5) or "").upper() else "CANCELLED"
    return None


def _hang_seconds(ctx: Any) -> float:
    try:
        minutes = float(ctx.config.get("hang-minutes", HANG_MINUTES))
    except (TypeError, ValueError, AttributeError):
        minutes = HANG_MINUTES
    return max(minutes, 0.0) * 60


def silence_fact(ctx: Any) -> Silence | None:
    """The job's last silence if it lasted ``hang-minutes`` or more, else None."""
    logs = ctx.get("logs")
    job = ctx.get("job", None)
    if job is not None and job.finished and job.state not in _ENDED:
        return None  # it ended by itself (COMPLETED, FAILED ...): a hang would have ended in a time limit or a cancel
    end = _end_time(job, logs)
    if end is None:
        raise FactUnavailable("the job is neither running nor stopped by SLURM or a user (no end time to measure from)")
    until, ended = end
    outputs = [(out, ix) for ix in logs.logs if not ix.error and ix.size and (out := _last_output(ix))]
    if not outputs:
        raise FactUnavailable("no log with a datable last line")
    (when, line, text, how), ix = max(outputs, key=lambda o: o[0][0])
    seconds = until - when
    seg = next((s for s in reversed(ix.segments) if s.start_line <= line), None)
    last = seg.last_step if seg is not None else None
    need = _hang_seconds(ctx)
    if last is not None and last.dt_ms:
        need = max(need, STEPS_PER_BUFFER * last.dt_ms / 1000)
    if seconds < need or seconds <= 0:
        return None
    return Silence(
        seconds=int(seconds),
        since=datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M:%S"),
        log=ix.path,
        line=line,
        text=redact(text[:160]),
        how=how,
        phase=seg.phase if seg is not None else None,
        step=last.step if last is not None else None,
        finished_phase=bool(seg is not None and seg.end_markers),
        ended=ended,
    )
