"""The job's log streams: the stderr beside a stdout, and where it should be when it is not there.

Most SLURM scripts split the streams (``#SBATCH --output=%j.out --error=%j.err``): progress goes
to the .out, tracebacks to the .err. A user who passes only the .out must still get the crash,
so postflight reads the stderr beside it, found from (in order) the batch script's ``--error``
pattern (its ``%j``/``%x``/``%A``/``%a`` filled from the .out's own name), the ledger, SLURM's
``StdErr``, or the usual ``X.out`` -> ``X.err`` naming. A stderr path that is not a regular file
(a FIFO would block) or that leaves the job's directories (``..``) is not read, and says so.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.facts import FactUnavailable
from preflight.loggrammar import grammar_for
from preflight.logindex import Event, LogIndex, Segment, TracebackRecord, index_log
from preflight.loglines import PYTHON_INSTALL_RE

# X.out -> X.err, X.stdout -> X.stderr, X-out.log -> X-err.log ...
SIBLING_SUFFIXES = (
    (".out", ".err"),
    (".stdout", ".stderr"),
    ("-out.log", "-err.log"),
    ("_out.log", "_err.log"),
    (".o", ".e"),
)


@dataclass
class Streams:
    """What postflight read beside the logs it was given, and what it could not read."""

    also_read: list[tuple[str, str]] = field(default_factory=list)  # (path, why: "beside X.out", ...)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (path, why it was not read)
    stderr_hint: str | None = None  # where the traceback would be when no stderr was read
    merged: bool = False  # stderr goes into the stdout file (the script has no --error, or the log shows it)

    def to_json(self) -> dict[str, Any]:
        return {
            "also_read": [{"path": p, "why": w} for p, w in self.also_read],
            "refused": [{"path": p, "why": w} for p, w in self.refused],
            "stderr_hint": self.stderr_hint,
            "merged": self.merged,
        }


def _pattern_regex(pattern: str) -> re.Pattern | None:
    """An sbatch filename pattern as a regex that recovers its fields from a real file name."""
    out, i = [], 0
    while i < len(pattern):
        m = re.match(r"%(\d*)([%jJAaxustnN])", pattern[i:])
        if not m:
            out.append(re.escape(pattern[i]))
            i += 1
            continue
        letter = m.group(2)
        out.append(
            {
                "%": "%",
                "j": r"(?P<j>\d+)",
                "J": r"(?P<J>\d+(?:\.\w+)?)",
                "A": r"(?P<A>\d+)",
                "a": r"(?P<a>\d+)",
                "x": r"(?P<x>.+?)",
                "u": r"(?P<u>[^/]+?)",
                "s": r"[^/]+?",
                "t": r"\d+",
                "n": r"\d+",
                "N": r"(?P<N>[^/]+?)",
            }[letter]
        )
        i += m.end()
    try:
        return re.compile("(?:^|/)" + "".join(out) + "$")
    except re.error:  # a group used twice (%j twice): fall back to nothing
        return None


def fill_from(pattern: str, out_pattern: str | None, out_path: str) -> str | None:
    """The --error pattern with the fields the .out's real name reveals (``%j.out`` + ``76324.out``
    -> ``%j.err`` becomes ``76324.err``). None when a field stays unknown."""
    fields: dict[str, str] = {}
    if out_pattern:
        rx = _pattern_regex(out_pattern)
        m = rx.search(out_path) if rx else None
        if m:
            fields = {k: v for k, v in m.groupdict().items() if v is not None}
    job = fields.get("j") or fields.get("A") or (fields.get("J") or "").split(".")[0] or None

    def repl(m: re.Match) -> str:
        pad, letter = m.group(1), m.group(2)
        if letter == "%":
            return "%"
        value = {
            "j": job,
            "J": job,
            "A": job,
            "a": fields.get("a"),
            "x": fields.get("x"),
            "u": fields.get("u"),
            "N": fields.get("N"),
        }.get(letter)
        if value is None:
            raise KeyError(letter)
        return value.zfill(int(pad)) if pad else value

    try:
        return re.sub(r"%(\d*)([%jJAaxuN])", repl, pattern)
    except KeyError:
        return None


def _inside(path: Path, roots: list[Path]) -> bool:
    try:
        real = path.resolve()
    except (OSError, RuntimeError):
        return False
    for root in roots:
        try:
            real.relative_to(root.resolve())
            return True
        except (ValueError, OSError, RuntimeError):
            continue
    return False


def _usable(path: Path, roots: list[Path]) -> str | None:
    """None when ``path`` may be read as the job's stderr, else why not."""
    if ".." in Path(os.path.normpath(str(path))).parts or not _inside(path, roots):
        return "outside the job's directories"
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    return None


def _script_streams(ctx: Any) -> tuple[str | None, str | None, Path | None]:
    """(--output pattern, --error pattern, work dir) from the job's batch script, when known."""
    from preflight.ledger import parse_sbatch_options, script_directives

    js = ctx.get("jobscript", None)
    if js is None or not js.text:
        return None, None, None
    opts = parse_sbatch_options(script_directives(js.text))
    workdir = Path(opts["chdir"]) if opts.get("chdir") else None
    return opts.get("output"), opts.get("error"), workdir


def find_streams(ctx: Any, given: list[str]) -> tuple[list[tuple[str, str]], Streams]:
    """The stderr files to read beside the ``given`` logs, and the Streams record."""
    streams = Streams()
    out_pattern, err_pattern, workdir = _script_streams(ctx)
    cwd = Path(ctx.inputs.cwd)
    given_real = {os.path.realpath(p) for p in given}
    roots = [cwd] + [Path(p).parent if os.path.isabs(p) else (cwd / p).parent for p in given]
    if workdir is not None:
        roots.append(workdir if workdir.is_absolute() else cwd / workdir)
    job = ctx.get("job", None)
    if job is not None and getattr(job, "work_dir", None):
        roots.append(Path(job.work_dir))
    candidates: list[tuple[str, str]] = []
    for out in given:
        out_abs = out if os.path.isabs(out) else str(cwd / out)
        if err_pattern:
            filled = fill_from(err_pattern, out_pattern, out_abs)
            if filled:
                base = Path(out_abs).parent if not out_pattern or "/" not in out_pattern else (workdir or cwd)
                p = Path(filled) if os.path.isabs(filled) else base / filled
                candidates.append((str(p), f"the script's --error {err_pattern}"))
            elif not streams.stderr_hint:
                streams.stderr_hint = f"the script's --error file ({err_pattern})"
        for a, b in SIBLING_SUFFIXES:
            if out_abs.endswith(a):
                candidates.append((out_abs[: -len(a)] + b, f"beside {Path(out).name}"))
                break
    ledger = ctx.get("ledger", None)
    if isinstance(ledger, dict) and (ledger.get("logs") or {}).get("stderr"):
        candidates.append((str(ledger["logs"]["stderr"]), "the ledger's stderr"))
    if job is not None and getattr(job, "stderr", None):
        candidates.append((str(job.stderr), "SLURM's StdErr"))
    found: list[tuple[str, str]] = []
    seen = set(given_real)
    for path, why in candidates:
        p = Path(path)
        real = os.path.realpath(p)
        if real in seen:
            continue
        problem = _usable(p, roots)
        if problem == "missing":
            if not streams.stderr_hint and "--error" in why:
                streams.stderr_hint = f"{path} (the script's --error; not found: pass it with --log)"
            elif not streams.stderr_hint and why.startswith("beside"):
                streams.stderr_hint = f"the job's stderr: {Path(path).name} was not found {why} (pass it with --log)"
            continue
        seen.add(real)
        if problem:
            streams.refused.append((path, problem))
            continue
        found.append((str(p), why))
        streams.also_read.append((str(p), why))
    js = ctx.get("jobscript", None)
    if found:
        streams.stderr_hint = None
    elif js is not None and js.text and not err_pattern:
        streams.merged = True  # no --error: stderr went into the .out, so a crash there would show
        streams.stderr_hint = None
    elif not streams.stderr_hint:
        streams.stderr_hint = (
            f"the job's stderr ({err_pattern})"
            if err_pattern
            else "the job's stderr file (#SBATCH --error, or the .err beside the .out)"
        )
    return found, streams


# -- the fact ------------------------------------------------------------------------------------
@dataclass
class LogSet:
    """Every log of a run, indexed; ``missing`` are logs that were named but do not exist."""

    logs: list[LogIndex] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (path, where it was named)
    source: str = ""

    @property
    def recognised(self) -> bool:
        """Some log holds what nanochat, torchrun or SLURM prints (False for none, or a fork's own format only)."""
        return any(ix.recognised for ix in self.logs)

    streams: Any = None  # preflight.logset.Streams: the stderr read beside the given logs, or where it would be
    series: dict[str, Any] = field(default_factory=dict)  # path -> series.SeriesCollector (when asked for)

    @property
    def segments(self) -> list[Segment]:
        return [s for ix in self.logs for s in ix.segments]

    @property
    def no_pipeline_phase(self) -> bool:
        """Processes ran (nanochat's setup lines, a traceback) but none of them is a phase of the pipeline, nor
        names the script it ran: a fork's own program (a benchmark, another model's trainer). A traceback with no
        frame of the program's own (a pasted fragment) says nothing of which program crashed."""
        segs = self.segments
        named = any(s.phase or s.script or s.load_sources for s in segs)  # (an evaluation loads a phase's checkpoint)
        unknown = any(
            not any(not PYTHON_INSTALL_RE.search(f) and not f.startswith("<") for f, _ in t.frames)
            for t in self.tracebacks
        )
        return bool(segs) and not named and not unknown and not self.started_phases()

    @property
    def tracebacks(self) -> list[TracebackRecord]:
        return [t for ix in self.logs for t in ix.tracebacks]

    def by_phase(self, phase: str) -> list[Segment]:
        return [s for s in self.segments if s.phase == phase]

    def slurm_events(self, kind: str | None = None) -> list[tuple[LogIndex, Event]]:
        return [(ix, e) for ix in self.logs for e in ix.slurm if kind is None or e.kind == kind]

    def started_phases(self) -> list[str]:
        out: list[str] = []
        for seg in self.segments:
            if seg.phase and seg.phase not in out:
                out.append(seg.phase)
        for tb in self.tracebacks:
            if tb.phase and tb.phase not in out:
                out.append(tb.phase)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "logs": [ix.to_json() for ix in self.logs],
            "missing": [p for p, _ in self.missing],
        }


def _expand(pattern: str, job_id: str | None, job_name: str | None, array_id: str | None = None) -> str | None:
    """A --output pattern filled in as SLURM does: %j the job's own id, %A the array's (the job's own
    when it is not in an array), %a the array task, %x the job name; None when one is not known."""
    master, _, task = (array_id or "").partition("_")
    values = {"%j": job_id, "%A": master or job_id, "%a": task or None, "%x": job_name}
    if any(key in pattern and not value for key, value in values.items()):
        return None
    for key, value in values.items():
        pattern = pattern.replace(key, value or "")
    return pattern.replace("%%", "%")


def _array_task_of(job: Any, inputs: Any) -> str | None:
    """The array task being verified ("6067_1"): as SLURM names it, else as the user did."""
    asked = str(getattr(inputs, "job_id", None) or "")
    return getattr(job, "array_id", None) or (asked if "_" in asked else None)


def candidate_logs(ctx: Any) -> tuple[list[tuple[str, bool]], str]:
    """(path, named explicitly) pairs and where they came from."""
    inputs = ctx.inputs
    cwd = Path(inputs.cwd)
    if inputs.logs:
        return [(str(p), True) for p in inputs.logs], "--log"
    ledger = ctx.get("ledger", None)
    if isinstance(ledger, dict):
        logs = ledger.get("logs") or {}
        paths = [logs.get(k) for k in ("stdout", "stderr") if logs.get(k)]
        if any("%" in p for p in paths):  # an array's: each task's ids fill the pattern
            job = ctx.get("job", None)
            own = getattr(job, "job_id", None)
            paths = [
                e for p in paths if (e := _expand(p, own, getattr(job, "name", None), _array_task_of(job, inputs)))
            ]
        paths = list(dict.fromkeys(str(cwd / p) if not os.path.isabs(p) else p for p in paths))
        if paths:
            return [(p, True) for p in paths], "ledger"
    job = ctx.get("job", None)
    if job is not None:
        paths = [p for p in (getattr(job, "stdout", None), getattr(job, "stderr", None)) if p]
        work = Path(job.work_dir) if getattr(job, "work_dir", None) else cwd
        paths = list(dict.fromkeys(str(work / p) if not os.path.isabs(p) else p for p in paths))
        if paths:
            return [(p, True) for p in paths], "scheduler"
    job_id = getattr(job, "job_id", None) or inputs.job_id
    job_name = getattr(job, "name", None) if job is not None else None
    array_id = _array_task_of(job, inputs)
    out: list[tuple[str, bool]] = []
    for pattern in ctx.config.get("log-patterns") or []:
        expanded = _expand(pattern, job_id, job_name, array_id)
        if expanded:
            p = Path(expanded)
            p = p if p.is_absolute() else cwd / p
            if p.is_file():
                out.append((str(p), False))
    return out, "log-patterns"


def logs_fact(ctx: Any) -> LogSet:
    paths, source = candidate_logs(ctx)
    profile = ctx.get("profile", None)
    phases = getattr(profile, "phases", None) or []
    mid_style = "mid" if (not phases or "mid" in phases) else "sft"
    grammar = grammar_for(profile)
    result = LogSet(source=source)

    def index(path: str) -> LogIndex:
        # the curves are collected in the index's own pass for every format: the reports draw them, LOG012 reads
        # them (a bounded sample of the step lines: ~2% of the time of a 256 MB log's index)
        from preflight.series import SeriesCollector

        collector = result.series[path] = SeriesCollector()
        return index_log(path, mid_style, series=collector, grammar=grammar)

    for path, named in paths:
        if not os.path.exists(path):
            if named:
                result.missing.append((path, source))
            continue
        if os.path.isdir(path):
            result.missing.append((path, source + " (a directory, not a log file)"))
            continue
        result.logs.append(index(path))
    given = [ix.path for ix in result.logs]
    companions, result.streams = find_streams(ctx, given) if given else ([], None)
    for path, _why in companions:
        result.logs.append(index(path))
    if result.streams is not None and not companions:
        # no stderr file beside: a log that holds python logging's lines (which go to stderr) has the stderr too,
        # SLURM's default without --error (karpathy/nanochat issue 92's slurm log)
        merged = next((ix for ix in result.logs if ix.stderr_line is not None), None)
        if merged is not None:
            result.streams.merged, result.streams.stderr_hint = True, None
    pair_setup_with_load(result, grammar)
    js = ctx.get("jobscript", None)
    if js is not None and js.steps and profile is not None:
        for ix in result.logs:
            align_with_steps(ix, js.steps, profile)
    if not result.logs and not result.missing:
        raise FactUnavailable("no log found: pass --log PATH (or a JOBID with a ledger or SLURM record)")
    return result


def pair_setup_with_load(logs: LogSet, grammar: Any) -> None:
    """A job with separate streams splits a trainer's setup evidence in two: stdout has its batch arithmetic,
    stderr (python logging) the checkpoint it loaded. When a job's stderr loaded one phase's checkpoints only
    and its stdout holds exactly one unnamed process that set up a trainer, that process trains the phase the
    era builds on that checkpoint (issue 92's hung midtraining, run with --error)."""
    from preflight.phases import train_script_of

    by_path = {os.path.abspath(ix.path): ix for ix in logs.logs}  # a given log may be relative, its .err not
    for out in logs.logs:
        path = os.path.abspath(out.path)
        err = next((by_path.get(path[: -len(o)] + e) for o, e in SIBLING_SUFFIXES if path.endswith(o)), None)
        if err is None:
            continue
        sources = {src for seg in err.segments for src in seg.load_sources}
        consumer = grammar.consumer_of(next(iter(sources))) if len(sources) == 1 else None
        if consumer is None or any(seg.phase == consumer for ix in (out, err) for seg in ix.segments):
            continue
        setups = [
            seg
            for seg in out.segments
            if seg.script is None and seg.marker is None and seg.trainer_setup and seg.resume_from is None
        ]
        if len(setups) == 1:
            setups[0].script, setups[0].named_by_load = train_script_of(consumer), "stream pair"


def iter_segments(logs: LogSet, phase: str) -> Iterator[Segment]:
    yield from logs.by_phase(phase)


def align_with_steps(ix: LogIndex, steps: list[Any], profile: Any) -> int:
    """Give each process of a log that printed nothing identifying the phase of its step in the
    batch script, by order: configurator start blocks (``Overriding:``) pair with the steps whose
    module uses the configurator; without them, device lines pair with every step. Only when the
    counts agree and every process that knows its phase agrees with its step (no guessing).
    Returns how many processes were placed."""
    starts = [s for s in ix.segments if s.overrides]
    if starts:
        wanted = [st for st in steps if st.module and profile.uses_configurator(st.module)]
    else:
        starts = [s for s in ix.segments if s.device]
        wanted = list(steps)
    if not starts or len(starts) != len(wanted):
        return 0
    if any(seg.phase and st.phase and seg.phase != st.phase for seg, st in zip(starts, wanted, strict=False)):
        return 0
    placed = 0
    for seg, st in zip(starts, wanted, strict=False):
        if seg.phase is None and st.phase:
            seg.marker = st.phase
            seg.placed_by_step = st.index
            placed += 1
    return placed
