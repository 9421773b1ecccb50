"""The log index: ONE streaming pass per log that every log check queries.

Speed: a log is read in 4 MiB binary chunks. The bulk of a training log are step lines; the
runs of them are found by ``steplines`` (numpy for large logs, the last part by a helper
process for very large ones) and only the first and the last line of a run are parsed, the
last one lazily. Between runs, one compiled bytes regex finds the few *interesting* lines
(startup, Overriding, saves, validation, end-of-phase, tracebacks, SLURM); only those are
decoded. Memory stays flat: a chunk plus one capped line (MAX_LINE) are held, whatever the log
size or line length.

Structure: a log splits into *segments*, one per process run (a block of ``Overriding:``
lines, ``Autodetected device type``, a script marker ``=== phase: base ===``, or evidence of a
different script than the current one). Each segment learns its script (base_train, mid_train,
chat_sft ...) from evidence lines and so its pipeline phase (tokenizer, base, mid, sft, rl, report).
"""

from __future__ import annotations

import math
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

from preflight import steplines
from preflight.logevents import EventReader
from preflight.loglines import (
    ANCHOR_RE,
    ARGPARSE_ERROR_RE,
    BARE_EXC_RE,
    COMMAND_LINE_RE,
    DEVICE_RE,
    FAULT_RE,
    FRAME_RE,
    HELPER_EXC_RE,
    ITERS_RE,
    LAUNCH_ERROR_RE,
    MARKER_RE,
    NATIVE_CUDA_ERROR_RE,
    NCCL_WATCHDOG_RE,
    NOT_PLAIN_RE,
    OVERRIDE_CFG_RE,
    OVERRIDE_HINTS,
    OVERRIDE_RE,
    PASS_RE,
    RANK_PREFIX_RE,
    RL_STEPS_RE,
    SFT_METRICS_RE,
    SHELL_SIGNAL_RE,
    STDERR_LOGGING_RE,
    STEP_BYTES_RE,
    TERMINATE_RE,
    TORCHRUN_FAILED_RE,
    TORCHRUN_RANK_RE,
    VAL_RE,
    WORLD_RE,
    parse_int,
    parse_number,
    parse_step,
    strip_ansi,
)
from preflight.logrecords import Event, LogIndex, Segment, TracebackRecord
from preflight.logtracebacks import MAX_LINE, TracebackReader
from preflight.phases import (
    MARKER_NAMES,
    MID_STYLE_SCRIPTS,
    SCRIPT_PHASE,
    known_script,
    train_script_of,
)


def _nonfinite(value: float | None) -> bool:
    return value is not None and not math.isfinite(value)


# -- the indexer ---------------------------------------------------------------------------------
_ANCHORS: dict[bytes, re.Pattern] = {}


def _anchor_re(extra: bytes) -> re.Pattern:
    """The bytes anchor plus the era grammar's own anchors (headers, chained tracebacks, torchrun)."""
    if not extra:
        return ANCHOR_RE
    rx = _ANCHORS.get(extra)
    if rx is None:
        rx = _ANCHORS[extra] = re.compile(ANCHOR_RE.pattern + b"|" + extra)
    return rx


class _Indexer(TracebackReader, EventReader):
    def __init__(self, path: str, mid_style_phase: str = "mid", series: Any = None, grammar: Any = None):
        from preflight.loggrammar import grammar_for

        self.idx = LogIndex(path=path)
        self.series = series  # a series.SeriesCollector: the training curves, from this same pass
        self.grammar = grammar if grammar is not None else grammar_for(None)
        self.anchor = _anchor_re(self.grammar.anchors())
        self.chain_pending: dict[str, tuple[TracebackRecord, int]] = {}  # rank -> (record, line of the chain text)
        self.helper_line: dict[str, int] = {}  # rank -> line of its last "Exception in thread X:" / "Process X:"
        self.fault_thread: dict[str, bool] = {}  # rank -> a faulthandler dump is in its crashing thread's frames
        self.last_closed: dict[str, TracebackRecord] = {}
        self._saturated: set[int] = set()  # id() of segments holding MAX_TB_PER_SEGMENT distinct tracebacks
        self.exception_first: set[int] = set()  # id() of pasted tracebacks whose exception line came first
        self.last_failed: Event | None = None
        self.find_runs = steplines.runs_regex  # for blocks that come without their runs
        self.mid_script = "mid_train" if mid_style_phase == "mid" else "chat_sft"
        self.line = 1  # line number at self.cursor
        self.seg = self._new_segment(1)
        self.tb: dict[str, tuple[TracebackRecord, int]] = {}  # rank prefix -> (open traceback, lines seen)
        self.bad_bytes = 0

    # segments -------------------------------------------------------------------------------
    def _new_segment(self, line: int) -> Segment:
        seg = Segment(index=len(self.idx.segments), start_line=line, path=self.idx.path)
        if self.idx.segments:
            self.idx.segments[-1].end_line = max(line - 1, self.idx.segments[-1].start_line)
        self.idx.segments.append(seg)
        return seg

    def _start(self, line: int) -> Segment:
        """A process-start line: open a new segment unless the current one has only start lines."""
        if self.seg.content:
            self.seg = self._new_segment(line)
        return self.seg

    def _script_for(self, style: str) -> str:
        """The script that prints step lines of this style (mid-style lines: mid_train, or chat_sft in
        eras without midtraining)."""
        return self.mid_script if style == "mid" else train_script_of(style)

    def _evidence(self, script: str, line: int) -> Segment:
        """A line that only ``script`` prints: name the segment, or start a new one on conflict."""
        seg = self.seg
        if seg.script is None and (seg.marker is None or SCRIPT_PHASE.get(script) == seg.marker):
            seg.script = script
        elif seg.script != script and SCRIPT_PHASE.get(script) != seg.phase:
            if seg.named_by_steps and script in MID_STYLE_SCRIPTS:
                # the era's guess from mid-style step lines gives way to the process's own words (a fork's chat_sft
                # saving into chatsft_checkpoints): one process, not two
                seg.script, seg.named_by_steps = script, False
            else:
                seg = self.seg = self._new_segment(line)
                seg.script = script
        seg.content = True
        return seg

    def _step_evidence(self, style: str, line: int) -> Segment:
        """A step line of ``style``: mid-style lines are printed by mid_train and chat_sft alike, so they do not
        contradict a process named either; one they name is named by a guess (_evidence)."""
        seg = self.seg
        if style == "mid" and seg.script in MID_STYLE_SCRIPTS:
            seg.content = True
            return seg
        unnamed = seg.script is None
        named = self._evidence(self._script_for(style), line)
        if style == "mid" and (unnamed or named is not seg):
            named.named_by_steps = True  # named just now, by this guess
        return named

    def _name_by_load(self, seg: Segment) -> None:
        """A trainer that loaded a phase's checkpoint and named itself no other way by its end trains the phase
        the era builds on that checkpoint (mid on base's): the evidence of a process that only printed its
        setup before it hung or died (karpathy/nanochat issue 92). Evaluations load checkpoints too, but print
        no trainer setup; base_train's resume loads without this log line. Decided at the end of the log, so
        a fork's trainer that loads a checkpoint and then logs its own steps is named by those."""
        if seg.script is not None or seg.marker is not None or seg.loaded is None or not seg.trainer_setup:
            return
        consumer = self.grammar.consumer_of(seg.loaded.data["source"]) if seg.resume_from is None else None
        if consumer:
            seg.script, seg.named_by_load = train_script_of(consumer), "checkpoint load"

    # block processing -------------------------------------------------------------------------
    def block(self, buf: bytes, start: int, end: int, runs: list[steplines.Run] | None = None) -> None:
        """Index the complete lines buf[start:end] (end is just after a newline, or EOF).

        Alternates between runs of step lines (found by ``steplines``; only a run's first and
        last line are parsed) and regions of other lines (anchor regex; only matching lines are
        decoded)."""
        if runs is None:
            runs = self.find_runs(buf, start, end)
        pos = start
        if self.tb:
            pos = self._traceback_lines(buf, pos, end)
        for a, b, lines, steps in runs:
            if b <= pos:  # consumed by a traceback that was open
                continue
            if a < pos:
                a = pos
                lines, steps = steplines.count_run(buf, a, b)
            if a > pos:
                self._region(buf, pos, a)
            self._step_run(buf, a, b, lines, steps)
            pos = b
        if pos < end:
            self._region(buf, pos, end)

    def _region(self, buf: bytes, start: int, end: int) -> int:
        """Lines without the 'step ' prefix: decode and handle those that contain an anchor."""
        pos = start
        search = self.anchor.search
        while pos < end:
            m = search(buf, pos, end)
            if m is None:
                break
            ls = buf.rfind(b"\n", pos, m.start()) + 1
            if ls < pos:
                ls = pos
            le = buf.find(b"\n", m.end(), end)
            if le < 0:
                le = end
            self._advance(buf, pos, ls)
            if le - ls > MAX_LINE:
                self.idx.long_lines += 1
            self._line(buf[ls : min(le, ls + MAX_LINE)], self.line)
            self.line += 1
            pos = min(le + 1, end)
            if self.tb:
                pos = self._traceback_lines(buf, pos, end)
                if pos >= end:
                    return pos
        self._advance(buf, pos, end)
        return end

    def _advance(self, buf: bytes, a: int, b: int) -> None:
        if b > a:
            self.line += buf.count(b"\n", a, b)

    def _step_run(self, buf: bytes, a: int, b: int, n: int, steps: int) -> None:
        """buf[a:b] are n whole lines, ``steps`` of them step lines (the others plain validation
        lines): parse the first and the last one. A NaN anywhere in the run shows in its last line:
        base/mid log an EMA of the loss, and weights that went NaN stay NaN."""
        j = buf.rfind(b"\n", a, b - 1) + 1 if b - a > 1 else a
        if j < a:
            j = a
        first_line = self.line
        had_nan = self.seg.nan_loss is not None
        self.line += n
        last_line = self.line - 1
        if self.seg.first_step is None or j == a:
            self._step_at(buf, a, b, first_line)
        if j > a and not self._last_step_at(buf, j, b, last_line):
            self._step_at(buf, j, b, last_line)
        self.seg.step_lines += steps
        if not had_nan and self.seg.nan_loss is not None and self.seg.nan_loss.line > first_line:
            # the run's last line shows the NaN (the EMA stays NaN); the step where it began is the news
            k = buf.find(b"| loss: nan", a, b)
            if k >= 0:
                ls, le = max(a, buf.rfind(b"\n", a, k) + 1), buf.find(b"\n", k, b)
                text = self._decode(buf[ls : (le if le >= 0 else b)][:MAX_LINE])
                self.seg.nan_loss = Event("nan-loss", first_line + buf.count(b"\n", a, k), text)
        if self.series is not None:
            self.series.run(self.seg, buf, a, b)

    def _last_step_at(self, buf: bytes, i: int, b: int, line: int) -> bool:
        """The last line of a run, the hot path: for a plain-ASCII line, match the step grammars
        on the bytes and keep the line to parse only if a check asks (``Segment.last_step``).
        False: leave it to ``_step_at`` (non-ASCII or control bytes, a non-finite loss, a new segment)."""
        le = buf.find(b"\n", i, b)
        raw = buf[i : (le if le >= 0 else b)][:MAX_LINE]
        if NOT_PLAIN_RE.search(raw):
            return False
        m = STEP_BYTES_RE.match(raw)
        if m is None:
            return True  # not a step line after all: parse_step would give None too
        style = m.lastgroup
        loss = parse_number(m.group(style + "_loss").decode())
        if _nonfinite(loss):
            return False
        seg = self._step_evidence(style, line)
        if seg.first_step is None:
            return False
        total = m.group(style + "_total") if style != "mid" else None
        if total and not seg.planned_steps:
            seg.planned_steps = parse_int(total)
        seg._last_raw = (raw, line)
        return True

    def _step_at(self, buf: bytes, i: int, b: int, line: int) -> None:
        le = buf.find(b"\n", i, b)
        text = self._decode(buf[i : (le if le >= 0 else b)][:MAX_LINE])
        rec = parse_step(text, line)
        if rec is None:
            return
        seg = self._step_evidence(rec.style, line)
        if seg.first_step is None:
            seg.first_step = rec
        seg.last_step = rec
        if rec.total and not seg.planned_steps:
            seg.planned_steps = rec.total
        if _nonfinite(rec.loss) and seg.nan_loss is None:
            seg.nan_loss = Event("nan-loss", line, text)

    def _decode(self, raw: bytes) -> str:
        text = raw.decode("utf-8", "replace")
        if "\ufffd" in text:
            self.bad_bytes += text.count("\ufffd")
        if "\r" in text:
            text = text.rstrip("\r")
            if "\r" in text:  # progress bars: the last redraw is what a terminal shows
                text = text.rsplit("\r", 1)[-1]
        return strip_ansi(text)

    # one interesting line -------------------------------------------------------------------
    def _line(self, raw: bytes, line: int) -> None:
        text = self._decode(raw)
        rank = ""
        m = RANK_PREFIX_RE.match(text)
        if m:
            rank, text = m.group(0), text[m.end() :]
        s = text.strip()
        seg = self.seg
        if s.startswith("Traceback (most recent call last)"):
            self._open_traceback(line, rank)
            return
        if HELPER_EXC_RE.match(s):  # a thread's or a child process's report: its traceback follows
            self.helper_line[rank] = line
            return
        mt = TERMINATE_RE.match(s)
        if mt:
            self._cpp_terminate(mt, line, rank)
            return
        mfh = FAULT_RE.match(s)
        if mfh:
            self._fault_dump(mfh, line, rank)
            return
        mf = FRAME_RE.match(text)
        if mf:
            self._headless_traceback(mf, line, rank)
            return
        ml = LAUNCH_ERROR_RE.match(s)
        if ml:
            self._launch_error(ml, line, rank)
            return
        ma = ARGPARSE_ERROR_RE.match(s)
        if ma:
            self._argparse_error(ma, line, rank)
            return
        ms = SHELL_SIGNAL_RE.match(s)
        if ms:
            self._shell_signal(ms, line, rank)
            return
        mc = COMMAND_LINE_RE.match(s) if len(s) <= 2000 else None
        if mc and SCRIPT_PHASE.get(mc.group("script")) not in (None, "dataset"):
            # the traced or pasted command line: a new process of that entry point starts here
            if seg.content or seg.overrides or seg.marker or seg.script:
                seg = self.seg = self._new_segment(line)
            seg.script = mc.group("script")
            seg.command = Event("command", line, s, {"script": mc.group("script")})  # <= 2000 chars: its flags
            return
        if s.startswith(("Overriding", "overriding ")):
            if seg.content:
                seg = self._start(line)
            elif seg.overrides and seg.device:  # Overriding prints before device autodetection: a new process
                seg = self.seg = self._new_segment(line)
            mo = OVERRIDE_RE.match(s)
            if mo:
                seg.overrides[mo.group(1)] = mo.group(2).strip()
                seg.override_line = seg.override_line or line
                hint = OVERRIDE_HINTS.get(mo.group(1))
                if hint and seg.script is None:
                    seg.script = hint
            elif OVERRIDE_CFG_RE.match(s):
                seg.override_line = seg.override_line or line
            return
        mm = MARKER_RE.match(s)
        header = None if (mm and mm.group(1) in MARKER_NAMES) else self.grammar.header_phase(s)
        if (mm and mm.group(1) in MARKER_NAMES) or header:
            name = header or mm.group(1)
            seg = self.seg = self._new_segment(line) if (seg.content or seg.overrides or seg.marker) else seg
            seg.marker = name
            if header:
                seg.header = Event("header", line, s[:200], {"phase": header})
            return
        g = self.grammar
        if g.process_start is not None and g.process_start.search(s):
            self._start(line)
            return
        if g.chain is not None and g.chain.match(s):
            prev = self.last_closed.get(rank)
            if prev is not None:
                self.chain_pending[rank] = (prev, line)
            return
        if g.torchrun_exitcode is not None and self.last_failed is not None:
            mx = g.torchrun_exitcode.match(text)
            if mx:
                self.last_failed.data.setdefault("exitcode", parse_int(mx.group(1)))
                return
            mk = TORCHRUN_RANK_RE.match(text)
            if mk:  # the failed rank and its GPU on the node (torchrun gives local rank N the node's GPU N)
                self.last_failed.data.setdefault("rank", parse_int(mk.group(1)))
                self.last_failed.data.setdefault("local_rank", parse_int(mk.group(2)))
                return
        if "Autodetected device" in s:
            md = DEVICE_RE.search(s)
            if seg.content or seg.device:
                seg = self._start(line)
            seg.device = md.group(1) if md else seg.device
            return
        mw = WORLD_RE.search(s)
        if (mw or "Loading model from" in s) and self.idx.stderr_line is None and STDERR_LOGGING_RE.match(s):
            self.idx.stderr_line = line  # both are python logging lines: this log has the job's stderr
        if mw:
            if seg.content or seg.world_size:
                seg = self._start(line)
            seg.world_size = parse_int(mw.group(1) or mw.group(2))
            return
        if s.startswith(("Step ", "step ")):
            mv = VAL_RE.match(s) or SFT_METRICS_RE.match(s) or PASS_RE.match(s)
            if mv:
                if mv.re is VAL_RE and mv.group(2) == "CORE metric":
                    seg = self._evidence("base_train", line)  # only base_train prints its CORE score so
                seg.content = True
                seg.first_eval = seg.first_eval or line
                val = parse_number(mv.group(3) if mv.re is VAL_RE else mv.group(2))
                if _nonfinite(val) and seg.nan_loss is None:
                    seg.nan_loss = Event("nan-loss", line, s)
                step = parse_int(mv.group(1))
                if self.series is not None and mv.re is VAL_RE and step is not None:
                    self.series.val(seg, step, mv.group(2), val)
                return
            rec = parse_step(s, line)
            if rec is not None:
                seg = self._step_evidence(rec.style, line)
                seg.first_step = seg.first_step or rec
                seg.last_step = rec
                seg.step_lines += 1
                if rec.total and not seg.planned_steps:
                    seg.planned_steps = rec.total
                if _nonfinite(rec.loss):
                    seg.nan_loss = seg.nan_loss or Event("nan-loss", line, s)
                if rec.reward is not None:
                    seg.rewarded_steps += 1
                    seg.reward_max = rec.reward if seg.reward_max is None else max(seg.reward_max, rec.reward)
                if self.series is not None:
                    self.series.step(seg, rec, s)
                return
        mi = ITERS_RE.search(s)
        if mi:
            seg = self._evidence("base_train", line)
            seg.planned_steps = parse_int(mi.group(1))
            # the horizon it computed from its ratio or FLOPs target: a resume keeps it (its LR schedule ends there)
            if "num_iterations" not in seg.settings:
                seg.settings["num_iterations"] = mi.group(1).replace(",", "")
                seg.horizon_computed = True
            return
        mr = RL_STEPS_RE.search(s)
        if mr:
            seg = self._evidence("chat_rl", line)
            seg.planned_steps = parse_int(mr.group(1))
            return
        if self._event_line(s, line, seg):
            return
        mf = TORCHRUN_FAILED_RE.match(s)
        if mf:
            script = mf.group(1).rsplit(".", 1)[-1]
            target = seg
            if seg.script not in (None, script):  # torchrun prints after the child's own lines
                target = next((x for x in reversed(self.idx.segments) if x.script == script), seg)
            elif seg.script is None and known_script(script):
                # a process killed before it named itself (SIGKILL in setup, no command line): torchrun's record does
                target = self._evidence(script, line)
            target.failed_marker = self.last_failed = Event("failed", line, s, {"script": script})
            return
        if NCCL_WATCHDOG_RE.search(s):
            self.idx.slurm.append(Event("nccl-watchdog", line, s))
            return
        if "CUDA out of memory" in s or "OutOfMemoryError" in s:
            self.idx.slurm.append(Event("cuda-oom", line, s))  # and, as an exception line of its own, a crash
        mx = BARE_EXC_RE.match(text) if "Error" in s or "Exception" in s else None
        if mx is None and s.startswith("CUDA error ("):
            mx = NATIVE_CUDA_ERROR_RE.match(text)
        if mx:
            self._bare_exception(mx, line, rank)

    def finish(self) -> LogIndex:
        for rank in list(self.tb):
            self._close_traceback(rank)
        for seg in self.idx.segments:
            if len(seg.tracebacks) > 1:
                self._fold_segment(seg)
            self._name_by_load(seg)
        if self.idx.segments:
            self.idx.segments[-1].end_line = max(self.line - 1, self.idx.segments[-1].start_line)
        # drop a leading empty segment (no lines of interest before the first process start)
        segs = [
            s
            for s in self.idx.segments
            if s.content or s.overrides or s.device or s.marker or s.world_size or s.command
        ]
        for i, s in enumerate(segs):
            s.index = i
        self.idx.segments = segs
        self.idx.lines = self.line - 1
        return self.idx


def index_log(
    path: str | Path, mid_style_phase: str = "mid", vector: bool | None = None, series: Any = None, grammar: Any = None
) -> LogIndex:
    """Index one log up to its size at open time. Unreadable logs give ``LogIndex.error``.

    ``vector`` picks the numpy step-line finder (default: for logs of NUMPY_MIN_LOG or more, or
    when numpy is already imported), with a helper process for logs of HELPER_MIN_LOG or more;
    every way gives the same index. ``series`` (a ``series.SeriesCollector``) collects the
    training curves during the same pass."""
    path = str(path)
    ix = _Indexer(path, mid_style_phase, series, grammar)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device would block or never end
            ix.idx.error = f"{path} is not a regular file"
            return ix.idx
        f = open(path, "rb")
    except OSError as exc:
        ix.idx.error = f"cannot read {path}: {exc.strerror or exc}"
        return ix.idx
    with f:
        try:
            remaining = os.fstat(f.fileno()).st_size
        except OSError as exc:
            ix.idx.error = f"cannot stat {path}: {exc.strerror or exc}"
            return ix.idx
        ix.idx.size = remaining
        if series is not None:
            series.start(remaining)
        if vector is None:
            vector = (remaining >= steplines.NUMPY_MIN_LOG or "numpy" in sys.modules) and steplines.numpy_available()
        tagged = steplines.tagged(f)  # its blocks are copies without the tags: the helper reads the file itself
        reader = steplines.BlockReader(f, remaining)
        helper = (
            steplines.RunsHelper(path, remaining)
            if vector and not tagged and remaining >= steplines.HELPER_MIN_LOG
            else None
        )
        if vector:
            ix.find_runs = steplines.runs_numpy
        blocks = steplines.untagged_blocks(reader.blocks()) if tagged else reader.blocks()
        try:
            for buf, start, end, offset in blocks:
                ix.block(buf, start, end, helper.runs(offset, start, end) if helper else None)
        except OSError as exc:
            ix.idx.error = f"read error in {path}: {exc.strerror or exc}"
        finally:
            if helper:
                helper.close()
        ix.idx.long_lines += reader.long_lines
    idx = ix.finish()
    idx.binary = (
        idx.size > 0 and ix.bad_bytes > 0 and ix.bad_bytes * 4 > min(idx.size, 1 << 20) // 64
    ) or looks_binary(reader.head)
    return idx


def looks_binary(sample: bytes) -> bool:
    """Like git and file(1): NUL bytes, or many bytes that are neither UTF-8 text nor layout."""
    if not sample:
        return False
    if b"\0" in sample:
        return True
    text = sample.decode("utf-8", errors="replace")
    odd = text.count("\ufffd") + sum(1 for c in text if c < " " and c not in "\n\r\t\x1b\b\f")
    return odd > len(text) * 0.05


def __getattr__(name: str) -> Any:
    """The log set and the ``logs`` fact live in ``preflight.logset`` now; old imports still work."""
    if name in ("LogSet", "logs_fact", "candidate_logs", "iter_segments"):
        from preflight import logset

        return getattr(logset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
