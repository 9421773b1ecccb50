"""The log index's event lines: what a process logged about its work (resumes, loads, saves, downloads, settings,
end-of-phase values) and SLURM's own lines about the job (cancellation, OOM kill, a bad interpreter)."""

from __future__ import annotations

from preflight.loglines import (
    BAD_INTERPRETER_RE,
    BASE_EVAL_RE,
    BASE_SETUP_RE,
    CANCEL_RE,
    CHAT_EVAL_COUNT_RE,
    CHAT_EVAL_RE,
    DOWNLOAD_DONE_RE,
    DOWNLOAD_START_RE,
    END_RES,
    GRAD_ACCUM_RE,
    GUESS_TAG_RE,
    INSTALL_FAILED_RE,
    INSTALL_REASON_RE,
    LOAD_MODEL_RE,
    NOT_FOUND_RE,
    OOM_KILL_RE,
    PARAMS_RE,
    RESUME_RE,
    RUN_SETTING_RES,
    SAVE_KIND,
    SAVE_RE,
    SDPA_WINDOW_RE,
    STEP_IN_PATH_RE,
    TOK_TRAIN_RE,
    TRAINER_SETUP_RE,
    parse_int,
    parse_number,
)
from preflight.logrecords import Event, Segment
from preflight.phases import CKPT_DIR_RE, DIR_WORD_PHASE, script_of_dir_word

INSTALL_LINES = 20  # an install error's causes follow it within a few lines


class EventReader:
    """A mixin of the indexer (``idx``, ``_evidence``): one stripped line ``s`` of segment ``seg``."""

    def _event_line(self, s: str, line: int, seg: Segment) -> bool:
        """Record the line if it is one of these events; whether it was."""
        mr = RESUME_RE.search(s)
        if mr:
            seg.resume_from = parse_int(mr.group(1))
            seg.content = True
            return True
        mg = GUESS_TAG_RE.search(s)
        if mg:
            seg.guessed_tag = seg.guessed_tag or Event("guess", line, s, {"tag": mg.group(1)})
            seg.content = True
            return True
        ml = LOAD_MODEL_RE.search(s)
        if ml:
            seg.content = True
            mdir = CKPT_DIR_RE.search(ml.group(1))
            step = parse_int(ml.group(2))
            if mdir and step is not None:
                source = DIR_WORD_PHASE[mdir.group(1)]
                seg.load_sources.add(source)
                if seg.loaded is None:
                    seg.loaded = Event("load", line, s, {"source": source, "step": step, "path": ml.group(1)})
            return True
        for key, rx in RUN_SETTING_RES:
            mv = rx.search(s)
            if mv:
                seg.settings.setdefault(key, next(g for g in mv.groups() if g).replace(",", ""))
        if TRAINER_SETUP_RE.search(s):
            seg.content = seg.trainer_setup = True
            ma = GRAD_ACCUM_RE.search(s)
            if ma:
                seg.grad_accum = int(ma.group(1))
            return True
        if BASE_SETUP_RE.search(s):
            seg.content = seg.trainer_setup = True
            if seg.script is None and seg.marker in (None, "base"):
                seg.script = "base_train"  # (only where nothing else named it: the lines of a fork's other trainer?)
            return True
        mc = CHAT_EVAL_COUNT_RE.match(s)
        if mc:
            seg.eval_counts["?"] = int(mc.group(2))  # the task is named by the accuracy line after it
            return True
        me = CHAT_EVAL_RE.match(s)
        if me:
            task, value = (me.group(1), me.group(2)) if me.group(1) else (me.group(3), me.group(4))
            seg.evals[task] = float(value)
            if "?" in seg.eval_counts and task != "ChatCORE":
                seg.eval_counts[task] = seg.eval_counts.pop("?")
            seg.content = True
            return True
        mp = PARAMS_RE.search(s)
        if mp and seg.params is None:
            seg.params = parse_int(mp.group(1))
            return True
        for name, rx in END_RES.items():
            me = rx.search(s)
            if me:
                seg.content = True
                seg.end_markers[name] = Event(name, line, s, {"value": parse_number(me.group(1))})
                return True
        if TOK_TRAIN_RE.search(s):
            self._evidence("tok_train", line)
            return True
        mb = BASE_EVAL_RE.search(s)
        if mb:
            seg = self._evidence("base_eval", line)
            if mb.group(1) is not None:  # its last line: the CORE score over every task
                seg.end_markers.setdefault("core", Event("core", line, s, {"value": parse_number(mb.group(1))}))
            return True
        ms = SAVE_RE.search(s)
        if ms:
            kind = SAVE_KIND[ms.group(1) or ms.group(2)]
            target = ms.group(3).strip()
            mstep = STEP_IN_PATH_RE.search(target)
            mdir = CKPT_DIR_RE.search(target)
            if kind in ("tokenizer", "token_bytes"):
                seg = self._evidence("tok_train", line)
            elif mdir:
                seg = self._evidence(script_of_dir_word(mdir.group(1)), line)
            seg.content = True
            seg.saves.append(
                Event(
                    "save",
                    line,
                    s,
                    {"kind": kind, "path": target, "step": parse_int(mstep.group(1)) if mstep else None},
                )
            )
            return True
        md = DOWNLOAD_DONE_RE.search(s)
        if md:
            seg = self._evidence("dataset", line)
            done, total = parse_int(md.group(1)), parse_int(md.group(2))
            if done is not None and total is not None:
                seg.downloads.append(Event("download", line, s, {"done": done, "total": total}))
            return True
        if DOWNLOAD_START_RE.search(s):
            self._evidence("dataset", line)
            return True
        if "FOOTGUN" in s:
            seg = self._evidence("mid_train", line) if seg.script is None else seg
            seg.footgun = Event("footgun", line, s)
            seg.content = True
            return True
        if s.startswith("Generating report to "):  # `nanochat.report generate`: a process of its own, after chat_eval's
            if self.seg.script != "report" and (self.seg.content or self.seg.world_size or self.seg.device):
                self.seg = self._new_segment(line)  # (after chat_eval's output, which names no script)
            self._evidence("report", line)
            return True
        if s.startswith("Reset report and wrote header to "):  # `nanochat.report reset`: the sections so far are gone
            self.idx.slurm.append(Event("report-reset", line, s))
            return True
        if "Copying report" in s:
            self._evidence("report", line)
            return True
        if INSTALL_FAILED_RE.match(s):  # one event per install: its first error line
            last = next((e for e in reversed(self.idx.slurm) if e.kind == "install-failed"), None)
            if last is None or line - last.line > INSTALL_LINES:
                last = Event("install-failed", line, s, {"reason": ""})
                self.idx.slurm.append(last)
            mr = INSTALL_REASON_RE.search(s)  # pip prints it on the same line
            if mr and not last.data["reason"]:
                last.data["reason"] = mr.group(0)
            return True
        mr = INSTALL_REASON_RE.search(s)
        if mr:  # the reason, printed below the error line (uv's tree of causes)
            last = next((e for e in reversed(self.idx.slurm) if e.kind == "install-failed"), None)
            if last is not None and line - last.line <= INSTALL_LINES and not last.data["reason"]:
                last.data["reason"] = mr.group(0)
                return True
        mw = SDPA_WINDOW_RE.search(s)
        if mw:
            self.idx.slurm.append(Event("sdpa-window", line, s, {"pattern": mw.group("pattern")}))
            return True
        mn = NOT_FOUND_RE.match(s)
        if mn:  # the batch script's own shell, with SLURM's lines about the job: what the job could not run
            self.idx.slurm.append(Event("not-found", line, s, {k: mn.group(k) for k in ("where", "lineno", "cmd")}))
            return True
        mc = CANCEL_RE.search(s)
        if mc:
            self.idx.slurm.append(
                Event(
                    "cancel",
                    line,
                    s,
                    {"what": mc.group(1), "id": mc.group(2), "at": mc.group(4), "due": (mc.group(5) or "").strip()},
                )
            )
            seg.content = True
            return True
        if OOM_KILL_RE.search(s):
            self.idx.slurm.append(Event("oom-kill", line, s))
            return True
        mi = BAD_INTERPRETER_RE.search(s)
        if mi:
            self.idx.slurm.append(Event("bad-interpreter", line, s, {"interpreter": mi.group(1)}))
            return True
        return False
