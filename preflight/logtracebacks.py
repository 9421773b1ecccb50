"""Tracebacks in a log: opened, fed line by line, chained, closed into their process's segment.

A mixin of the log indexer (``logindex._Indexer``), which owns the state it works on: ``tb`` (rank
prefix -> the open traceback and its line count), ``chain_pending``, ``last_closed``, the current
segment ``seg`` and ``line``. Ranks print interleaved, so each rank prefix has its own open traceback.
"""

from __future__ import annotations

import re

from preflight import steplines
from preflight.loglines import (
    COMMAND_LINE_RE,
    ENTRY_POINT_IN_COMMAND_RE,
    EXC_RE,
    FAULT_THREAD_RE,
    FRAME_RE,
    PYTHON_INSTALL_RE,
    RANK_NUM_RE,
    RANK_PREFIX_RE,
    SCRIPT_IN_PATH_RE,
    SHELL_SIGNAL_RE,
    SHELL_SIGNALS,
    WHAT_RE,
    parse_int,
)
from preflight.logrecords import Event, Segment, TracebackRecord
from preflight.phases import SCRIPT_PHASE, known_script
from preflight.redact import redact

MAX_LINE = steplines.MAX_LINE  # longest line kept (bytes); longer lines are cut, never buffered whole
MAX_TB_LINES = 4000  # a traceback longer than this is closed without an exception line
MAX_TB_PER_SEGMENT = 256  # distinct tracebacks kept per process segment; more copies are only counted
MAX_TB_CALLS = 16  # frames of a traceback whose calls are kept
FAULT_TYPE = "Fatal Python error"  # the exc_type of a faulthandler dump's record
MAX_TB_DETAIL = 6  # lines of an exception message's continuation kept (what cause rules also read)
# a line that is the log's own, not the continuation of an exception's message
LOG_LINE_RE = re.compile(
    r"(?:[EWIDF]\d{4} |\[[A-Z]?\d|\d{4}-\d\d-\d\d|srun: |slurmstepd|\+ |=== |[\s\u2588\u2591]*\u2588|"
    r"During handling|The above exception|Traceback \(most)"
)
EXC_LIKE_RE = re.compile(r"[A-Za-z_][\w.]*(?:Error|Exception): ")


class TracebackReader:
    def _launch_error(self, m: re.Match, line: int, rank: str) -> None:
        """`python -m scripts.base_train` that could not start: recorded as that phase's crash (python
        prints no traceback), so the phase is failed at setup with its cause, not "not run"."""
        module = m.group("module") or m.group("missing")
        exc = m.group("exc") or "ModuleNotFoundError"
        message = m.group("msg") or f"No module named '{module}'"
        rec = TracebackRecord(line=line, rank=rank, path=self.idx.path, exc_type=exc, exc_line=line)
        rec.message = redact(f"{message} (python -m {module} could not start)"[:500])
        base = module.rsplit(".", 1)[-1]
        rec.script = base if base in SCRIPT_PHASE else None
        self.tb[rank] = (rec, 0)
        self._close_traceback(rank)

    def _argparse_error(self, m: re.Match, line: int, rank: str) -> None:
        """argparse refused the command line (SystemExit 2, no traceback): the phase's crash before it started."""
        prog = m.group("prog")
        rec = TracebackRecord(line=line, rank=rank, path=self.idx.path, exc_type="SystemExit", exc_line=line)
        parser = "argparse" if prog else "torchrun refused its command line"  # torchrun's: no process started
        rec.message = redact(f"{parser}: {m.group('msg').strip()}"[:500])
        rec.script = prog if prog in SCRIPT_PHASE else None
        self.tb[rank] = (rec, 0)
        self._close_traceback(rank)

    def _cpp_terminate(self, m: re.Match, line: int, rank: str) -> None:
        """A C++ exception that ended the process (its message follows on a `what():` line): its crash."""
        if rank in self.tb:
            self._close_traceback(rank)
        rec = TracebackRecord(line=line, rank=rank, path=self.idx.path, exc_type=m.group("type"), exc_line=line)
        self.tb[rank] = (rec, 0)

    def _cpp_what(self, m: re.Match, rank: str) -> bool:
        """The `what():` line of the C++ exception just opened: its message. False: none is open."""
        open_rec = self.tb.get(rank)
        if open_rec is None or open_rec[0].message or "::" not in open_rec[0].exc_type:
            return False
        open_rec[0].message = redact(m.group("what").strip()[:500])
        self._close_traceback(rank)
        return True

    def _bare_exception(self, m: re.Match, line: int, rank: str) -> None:
        """An exception's last line with no traceback open: the process's crash all the same (its frames are
        not in the log). Stays open for its message's continuation lines (a path printed on the next line)."""
        rec = TracebackRecord(line=line, rank=rank, path=self.idx.path, exc_type=m.group("exc"), exc_line=line)
        rec.message = redact((m.group("msg") or "").strip()[:500])
        if "where" in m.re.groupindex:  # a kernel's abort names its source file: which kernel it was
            rec.message += f" (at {redact(m.group('where')[:300])})"
        self.tb[rank] = (rec, 0)

    def _shell_signal(self, m: re.Match, line: int, rank: str) -> None:
        """bash's line for a command a signal killed: that process's crash, which printed no traceback."""
        name = m.group("signal")
        me = ENTRY_POINT_IN_COMMAND_RE.search(m.group("cmd"))
        script = me.group(1) if me and me.group(1) in SCRIPT_PHASE else None
        dump = self.last_closed.get(rank)
        if dump is not None and dump.exc_type == FAULT_TYPE and dump in self.seg.tracebacks:
            dump.script = dump.script or script  # the same death, already told by faulthandler
            return
        seg = self.seg
        cmd = m.group("cmd")
        if script is not None and seg.command is None and seg.script in (None, script) and len(cmd) <= 2000:
            # bash's report quotes the command as the script ran it (its flags, its VAR=value prefix): the launch
            # a rerun repeats, where the trainer printed no Overriding lines
            if COMMAND_LINE_RE.match(cmd):
                seg.command = Event("command", line, cmd, {"script": script})
        rec = TracebackRecord(line=line, rank=rank, path=self.idx.path, exc_type=name, exc_line=line)
        rec.message = f"{SHELL_SIGNALS[name]}, reported by the shell (no Python traceback)"
        rec.script = script
        self.tb[rank] = (rec, 0)
        self._close_traceback(rank)

    @staticmethod
    def _add_frame(rec: TracebackRecord, mf: re.Match) -> None:
        rec.frames.append((mf.group(1), parse_int(mf.group(2)) or 0))
        ms = SCRIPT_IN_PATH_RE.search(mf.group(1))
        script = known_script(ms.group("stem")) if ms else None
        if script and rec.script is None:
            rec.script = script
            if ms.group("stem") != script:  # the fork's copy is the entry point a rerun must launch
                rec.entry = f"{ms.group('package')}.{ms.group('stem')}"

    def _fault_dump(self, m: re.Match, line: int, rank: str) -> None:
        """faulthandler's dump of a native crash: the process's crash, its frames those of the crashing thread."""
        if rank in self.tb:
            self._close_traceback(rank)
        rec = TracebackRecord(line=line, rank=rank, path=self.idx.path, exc_type=FAULT_TYPE, exc_line=line)
        rec.message = redact(m.group("what").strip())
        self.tb[rank] = (rec, 0)
        self.fault_thread[rank] = False

    def _fault_line(self, rec: TracebackRecord, rank: str, text: str) -> bool:
        """A line of an open faulthandler dump: thread headers and frames (kept for the crashing thread,
        innermost last, as a traceback has them). False: the dump ended at this line."""
        if not text.strip() or text.strip() == "<no Python frame>":
            return True
        mt = FAULT_THREAD_RE.match(text)
        if mt:
            self.fault_thread[rank] = mt.group("current") == "Current thread"
            return True
        mf = FRAME_RE.match(text) if text[:1].isspace() else None
        if mf is None:
            return False
        if self.fault_thread.get(rank) and len(rec.frames) < 64:
            self._add_frame(rec, mf)
            rec.frames.insert(0, rec.frames.pop())  # most recent call first: the first one is the innermost
        return True

    def _headless_traceback(self, mf: re.Match, line: int, rank: str) -> None:
        """A frame line with no traceback open: a traceback pasted from its first frame on (issue threads
        drop the ``Traceback (most recent call last):`` line). It opens one, with this frame."""
        self._open_traceback(line, rank)
        self._add_frame(self.tb[rank][0], mf)

    def _open_traceback(self, line: int, rank: str) -> None:
        pending = self.chain_pending.pop(rank, None)
        if pending is not None and line - pending[1] <= 64:  # ranks interleave: their blank lines come between
            # "During handling of the above exception ...": the same process, one more link of its chain
            rec = pending[0]
            if len(rec.chain) < 16:
                rec.chain.append((rec.exc_type, rec.message))
            rec.exc_line = None  # frames again, then the next exception line
            self.tb[rank] = (rec, 0)
            return
        rec = TracebackRecord(line=line, rank=rank, path=self.idx.path)
        rec.helper = self.helper_line.pop(rank, None) == line - 1
        mr = RANK_NUM_RE.search(rank)
        if mr and parse_int(mr.group(1)) is not None:
            rec.ranks.append(parse_int(mr.group(1)))
        self.tb[rank] = (rec, 0)

    def _traceback_lines(self, buf: bytes, pos: int, end: int) -> int:
        """Consume lines one by one while a traceback is open (frames, then the exception line)."""
        while self.tb and pos < end:
            le = buf.find(b"\n", pos, end)
            if le < 0:
                le = end
            text = self._decode(buf[pos : min(le, pos + MAX_LINE)])
            line = self.line
            self.line += 1 if le < end else (1 if buf[end - 1 : end] == b"\n" else 0)
            pos = min(le + 1, end)
            rank = ""
            m = RANK_PREFIX_RE.match(text)
            if m:
                rank, text = m.group(0), text[m.end() :]
            if rank not in self.tb:
                # a line of another process (or rank) while this traceback is open: index it normally; it ends
                # the messages of tracebacks past their exception line (their process has moved on or died)
                for done in [r for r, (open_rec, _) in self.tb.items() if open_rec.exc_line is not None]:
                    self._close_traceback(done)
                self._plain(text, line, rank)
                continue
            rec, count = self.tb[rank]
            count += 1
            self.tb[rank] = (rec, count)
            if rec.exc_type == FAULT_TYPE and rec.exc_line is not None and self._fault_line(rec, rank, text):
                continue
            if rec.exc_line is not None and (mw := WHAT_RE.match(text)) and self._cpp_what(mw, rank):
                continue  # a C++ exception's message, on the line after its type
            if rec.exc_line is not None:  # past the exception line: its message's continuation, if any
                if self._message_continues(rec, text):
                    if text.strip() not in ("...", "…"):  # an excerpt's elision
                        rec.detail.append(redact(text.strip()[:200]))
                    continue
                if not rec.frames and (mf := FRAME_RE.match(text)) and line - rec.exc_line <= 8:
                    # an excerpt pasted exception first, then (after a "...") its frames: the same crash, whose
                    # frames now follow as in a traceback (its line stays the exception's)
                    rec.exc_line = None
                    self.exception_first.add(id(rec))
                    self._add_frame(rec, mf)
                    continue
                self._close_traceback(rank)
                if text.startswith("Traceback (most recent call last)"):
                    self._open_traceback(line, rank)
                else:
                    self._plain(text, line, rank)
                continue
            if text.startswith("Traceback (most recent call last)"):
                self._close_traceback(rank)
                self._open_traceback(line, rank)
                continue
            if not text.strip():
                continue
            mf = FRAME_RE.match(text)
            if mf or text[:1].isspace():  # a frame (pasted frames may have lost their indent) or its source line
                if mf and len(rec.frames) < 64:
                    self._add_frame(rec, mf)
                elif (
                    not mf
                    and rec.frames
                    and len(rec.calls) < MAX_TB_CALLS
                    and not PYTHON_INSTALL_RE.search(rec.frames[-1][0])
                    and text.strip().strip("^~ ")
                ):
                    rec.calls.append(redact(text.strip()[:200]))  # the frame's source line (not its ^^^ markers)
                if count > MAX_TB_LINES:
                    self._close_traceback(rank)
                continue
            if SHELL_SIGNAL_RE.match(text.strip()):  # bash's report that the process died: its traceback ended
                self._close_traceback(rank)
                self._plain(text, line, rank)
                continue
            me = EXC_RE.match(text.strip()) if not text.startswith(("During handling", "The above exception")) else None
            if me and id(rec) in self.exception_first:  # its exception line came first: this is another crash
                self._close_traceback(rank)
                self._plain(text, line, rank)
                continue
            if me:
                rec.exc_type = me.group(1)
                rec.message = redact((me.group(2) or "").strip()[:500])  # quoted in findings and the verdict
                rec.exc_line = line
                continue  # open until its message's continuation lines end (NCCL's "Last error:" ...)
            self._close_traceback(rank)
        return pos

    def _message_continues(self, rec: TracebackRecord, text: str) -> bool:
        """A line after the exception line that still belongs to its message: NCCL's ``ncclSystemError: ...`` /
        ``Last error:`` / ``Call to ibv_create_cq failed ...``, a CUDA OOM's ``GPU 0 has a total capacity ...``.
        A blank or indented line, a log line (glog, timestamps, SLURM, a known anchor) ends it."""
        if len(rec.detail) >= MAX_TB_DETAIL or not text.strip() or text[:1].isspace() or LOG_LINE_RE.match(text):
            return False
        return not self.anchor.search(text.encode("utf-8", "replace")) or bool(EXC_LIKE_RE.match(text))

    def _plain(self, text: str, line: int, rank: str) -> None:
        if self.anchor.search(text.encode("utf-8", "replace")):
            self._line((rank + text).encode("utf-8", "replace"), line)

    def _close_traceback(self, rank: str) -> None:
        rec, _ = self.tb.pop(rank)
        self.last_closed[rank] = rec
        seg = self.seg
        phase = rec.phase
        if (
            not rec._added
            and rec.script
            and seg.script
            and seg.content
            and SCRIPT_PHASE.get(seg.script) != phase
            and (seg.marker is None or seg.marker != phase)
        ):
            seg = self.seg = self._new_segment(rec.line)  # another process's crash (a stderr log has no headers)
        if rec.script and seg.script is None and seg.marker in (None, phase):
            seg.script = rec.script
        seg.content = True
        if rec._added:  # a chained link of a traceback already in the segment
            return
        rec._added = True
        if len(seg.tracebacks) >= MAX_TB_PER_SEGMENT:  # 10,000 identical tracebacks: keep counting, not storing
            if id(seg) not in self._saturated:
                self._fold_segment(seg)
            if len(seg.tracebacks) >= MAX_TB_PER_SEGMENT:
                # still full of distinct ones: count the rest; folding again for each (a million distinct
                # tracebacks) was quadratic
                self._saturated.add(id(seg))
                seg.tracebacks[-1].copies += 1
                return
        seg.tracebacks.append(rec)

    @staticmethod
    def _fold_segment(seg: Segment) -> None:
        """Every rank prints the same traceback (and a chain prints several): one record per distinct
        process failure, with the ranks that printed it and how many copies there were."""
        _end_interleaved(seg)
        folded: dict[tuple, TracebackRecord] = {}
        for rec in seg.tracebacks:
            key = rec.signature
            have = folded.get(key)
            if have is None:
                folded[key] = rec
                continue
            have.copies += rec.copies
            for r in rec.ranks:
                if r not in have.ranks:
                    have.ranks.append(r)
        for rec in folded.values():
            rec.ranks.sort()
        seg.tracebacks = list(folded.values())


INTERLEAVED_LINES = 60  # ranks that print at once without prefixes: their tracebacks start within a few lines


def _end_interleaved(seg: Segment) -> None:
    """Ranks that crash at once and print without ``[rankN]:`` prefixes interleave their tracebacks: each header
    cuts the one before it off, and the exception lines come after the last header. A traceback cut off by the
    next one's header ends in the first exception that follows it closely (the ranks run the same code)."""
    tbs = seg.tracebacks
    for i, rec in enumerate(tbs):
        if rec.exc_type:
            continue
        later = next((t for t in tbs[i + 1 :] if t.exc_type and t.line - rec.line <= INTERLEAVED_LINES), None)
        if later is not None and tbs[i + 1].line - rec.line <= INTERLEAVED_LINES:
            rec.exc_type, rec.message, rec.exc_line = later.exc_type, later.message, later.exc_line
            rec.detail = list(later.detail)
