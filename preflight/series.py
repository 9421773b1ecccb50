"""Training curves per phase (the ``series`` fact): loss, val bpb, lr multiplier, tok/s, MFU, dt vs step.

The points come from the log index's own pass (``logindex.index_log(..., series=SeriesCollector)``):
the bytes of every run of step lines are in memory there, so no log is read twice. What it costs is
bounded whatever the log size: a log of up to SAMPLE_BUDGET bytes is parsed whole (every step line,
exact); above that, windows of WINDOW bytes spread evenly over the step runs, SAMPLE_BUDGET bytes in
all (a 1 GB log: 1 line in ~500), and the first and last step of every process come exact from the
index. The regex's byte groups are kept as they come and turned into numbers only when a report
draws them. Validation lines outside the runs and RL lines come through the index's line handler.

For display, ``downsample`` folds a series into at most N buckets with min/max envelopes, so a
page stays small with 10^6 step lines and a spike between two drawn points still shows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

SAMPLE_BUDGET = 2 << 20  # bytes of step lines parsed per log, at most (~13,000 lines)
WINDOW = 2 << 10  # bytes per sampled window (~13 step lines)
DISPLAY_POINTS = 1000  # buckets per series in a chart
SPARK = "▁▂▃▄▅▆▇█"

# Fast path: the step-line grammars of every era as one bytes regex, fields in their
# fixed order; lines it does not match fall back to ``loglines.parse_step`` (the reference grammar).
# group 1-6: base/mid step, loss, lrm, dt, tok/sec, mfu; 7-9: SFT step, loss, lrm; 10-12: validation.
_FAST_RE = re.compile(
    rb"^(?:step (\d+)(?:/\d+)? \([^)\n]*\) \| loss: ([^ |\n]+) \|(?: grad norm: [^ |\n]+ \|)? lrm: ([^ |\n]+)"
    rb" \| dt: ([\d.]+)ms \| tok/sec: ([\d,]+) \| (?:bf16_)?mfu: ([\d.]+)"
    rb"|Step (\d+)/\d+ \| Training loss: ([^ |\n]+?) ?\| ?lrm: ([^ |\n]+)"
    rb"|Step (\d+) \| Validation (bpb|loss): ([\d.]+)\r?$)",
    re.M,
)
_STEP_START = (b"step ", b"Step ")
LRM_RE = re.compile(r"\| ?lrm: ([\d.]+)")
_STEP_NUM_RE = re.compile(r"[Ss]tep (\d+)")


def _f(raw: bytes | str | None) -> float:
    """A logged number ("1,092,000" or "3.5"); NaN when absent or unreadable."""
    if not raw:
        return math.nan
    try:
        return float(raw.replace(b",", b"") if isinstance(raw, bytes) else raw.replace(",", ""))
    except ValueError:
        return math.nan


COLUMNS = ("step", "loss", "lrm", "dt_ms", "tok_per_sec", "mfu")


class SegmentPoints:
    """The points of one process run: column arrays of equal length, NaN where a line lacks the field.

    The fast path keeps the regex's byte groups as they come (no Python work per line in the index's
    pass); they become numbers when a report first draws them. Plain Python: a text verdict of an
    ordinary log must not pay numpy's import (only a million points in a chart do, in ``downsample``)."""

    def __init__(self) -> None:
        self.raw: list[tuple[bytes, ...]] = []  # _FAST_RE.findall rows, not converted yet
        self.rows: list[tuple[float, ...]] = []  # (step, loss, lrm, dt_ms, tok/s, mfu) from other paths
        self.val: list[tuple[int, float, str]] = []  # (step, value, "bpb" | "loss")
        self._cols: dict[str, Any] | None = None
        self._done: list[tuple[float, ...]] = []  # converted rows

    def add(
        self,
        step: float,
        loss: float,
        lrm: float = math.nan,
        dt: float = math.nan,
        tok: float = math.nan,
        mfu: float = math.nan,
    ) -> None:
        self.rows.append((step, loss, lrm, dt, tok, mfu))
        self._cols = None

    def extend_raw(self, rows: list[tuple[bytes, ...]]) -> None:
        self.raw += rows
        self._cols = None

    def columns(self) -> dict[str, list[float]]:
        """name -> values, ordered by step (stable: a resumed run's lines keep their log order)."""
        if self._cols is None:
            if self.raw:
                self._done += _convert(self.raw, self.val)
                self.raw = []
            if self.rows:
                self._done += self.rows
                self.rows = []
            self._done.sort(key=_first)
            cols = list(zip(*self._done, strict=False)) if self._done else [()] * len(COLUMNS)
            self._cols = {name: list(col) for name, col in zip(COLUMNS, cols, strict=False)}
        return self._cols

    def __getattr__(self, name: str) -> Any:  # pts.loss, pts.step ...: the columns
        if name in COLUMNS:
            return self.columns()[name]
        raise AttributeError(name)


def _first(row: tuple[float, ...]) -> float:
    return row[0]


def _convert(raw: list[tuple[bytes, ...]], val: list[tuple[int, float, str]]) -> list[tuple[float, ...]]:
    """The fast path's byte groups as (step, loss, lrm, dt_ms, tok/s, mfu) rows (validation rows go to
    ``val``). Plain float() per cell: numpy's bytes-to-float conversion measured slower."""
    from preflight.loglines import MAX_INT_DIGITS

    nan = math.nan
    out = []
    for g in raw:
        if len(g[0] or g[6] or g[9] or b"") > MAX_INT_DIGITS:  # no step number (int() refuses 4,300+ digits)
            continue
        try:
            if g[0]:
                out.append(
                    (int(g[0]), float(g[1]), float(g[2]), float(g[3]), float(g[4].replace(b",", b"")), float(g[5]))
                )
            elif g[6]:
                out.append((int(g[6]), float(g[7]), float(g[8]), nan, nan, nan))
            else:
                val.append((int(g[9]), float(g[11]), g[10].decode()))
        except ValueError:  # a field that only looks like a number ("1.2.3"): NaN for that cell alone
            if g[0] or g[6]:
                cells = (g[1], g[2], g[3], g[4], g[5]) if g[0] else (g[7], g[8], b"", b"", b"")
                out.append((int(g[0] or g[6]), *(_f(c) for c in cells)))
    return out


class SeriesCollector:
    """Receives step runs and lines from the log indexer (see ``logindex._Indexer``)."""

    def __init__(self, budget: int = SAMPLE_BUDGET, window: int = WINDOW):
        self.budget, self.window = budget, window
        self.stride = 0  # 0: every step line; else one window of ``window`` bytes every ``stride`` bytes of step runs
        self.until = 0  # step-run bytes left before the next window
        self.by_seg: dict[int, tuple[Any, SegmentPoints]] = {}

    def start(self, size: int) -> None:
        """The log's size, known when the index opens it: exact below the budget, else sampled."""
        self.stride = 0 if size <= self.budget else max(self.window, int(size / self.budget * self.window))

    @property
    def sampled(self) -> bool:
        return self.stride > 0

    def points(self, seg: Any) -> SegmentPoints:
        entry = self.by_seg.get(id(seg))
        if entry is None or entry[0] is not seg:
            entry = self.by_seg[id(seg)] = (seg, SegmentPoints())
        return entry[1]

    def run(self, seg: Any, buf: Any, a: int, b: int) -> None:
        """buf[a:b]: whole lines, a run of step lines (and plain validation lines) of ``seg``."""
        pts = self.points(seg)
        if not self.stride:
            self._parse(pts, buf, a, b)
            return
        pos = a
        while b - pos > self.until:
            pos += self.until
            start = pos if pos == a else buf.find(b"\n", pos - 1, b) + 1
            if start <= 0 or start >= b:
                self.until = self.stride
                return
            stop = buf.rfind(b"\n", start, min(b, start + self.window)) + 1
            if stop <= start:
                stop = buf.find(b"\n", start, b) + 1 or b
            self._parse(pts, buf, start, stop)
            pos = stop
            self.until = self.stride
        self.until -= b - pos

    def _parse(self, pts: SegmentPoints, buf: Any, a: int, b: int) -> None:
        rows = _FAST_RE.findall(buf, a, b)
        if rows:
            pts.extend_raw(rows)
        else:  # another layout (a future era): the reference grammar, line by line
            self._slow(pts, bytes(buf[a:b]))

    def _slow(self, pts: SegmentPoints, chunk: bytes) -> None:
        from preflight.loglines import parse_step, strip_ansi

        for raw in chunk.split(b"\n"):
            if raw.startswith(_STEP_START):
                text = strip_ansi(raw.decode("utf-8", "replace").rstrip("\r"))
                rec = parse_step(text, 0)
                if rec is not None:
                    self.step(pts, rec, text)

    # lines the indexer meets outside the runs (RL lines, validation lines between other lines)
    def step(self, seg_or_pts: Any, rec: Any, text: str) -> None:
        pts = seg_or_pts if isinstance(seg_or_pts, SegmentPoints) else self.points(seg_or_pts)
        m = LRM_RE.search(text)
        pts.add(
            rec.step,
            rec.loss if rec.loss is not None else math.nan,
            _f(m.group(1)) if m else math.nan,
            _nan(rec.dt_ms),
            _nan(rec.tok_per_sec),
            _nan(rec.mfu),
        )

    def val(self, seg: Any, step: int, kind: str, value: float | None) -> None:
        word = "bpb" if kind.endswith("bpb") else "loss" if kind.endswith("loss") else ""
        if word and value is not None:
            self.points(seg).val.append((step, value, word))


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


# -- per phase --------------------------------------------------------------------------------------
@dataclass
class Attempt:
    """One process run of a phase: its points, where it is in the log, how it ended."""

    log: str
    start_line: int
    points: SegmentPoints
    step_lines: int
    first_step: int | None
    last_step: int | None
    resume_from: int | None = None
    sampled: bool = False


@dataclass
class PhaseSeries:
    phase: str
    attempts: list[Attempt] = field(default_factory=list)
    planned: int | None = None
    checkpoints: list[int] = field(default_factory=list)
    status: str = ""
    cause: str = ""
    nan_step: int | None = None  # the first step whose loss (or validation) was not a number

    @property
    def last_step(self) -> int | None:
        steps = [a.last_step for a in self.attempts if a.last_step is not None]
        return max(steps) if steps else None

    @property
    def step_lines(self) -> int:
        return sum(a.step_lines for a in self.attempts)

    def column(self, name: str, last: int | None = None) -> tuple[list[float], list[float]]:
        """(steps, values) of one column over the attempts (the last ``last`` attempts), NaNs dropped."""
        attempts = self.attempts[-last:] if last else self.attempts
        xs: list[int] = []
        ys: list[float] = []
        for a in attempts:
            cols = a.points.columns()
            pairs = [(x, y) for x, y in zip(cols["step"], cols[name], strict=False) if y == y]  # NaN != NaN
            xs += [int(x) for x, _ in pairs]
            ys += [y for _, y in pairs]
        return xs, ys

    def val(self) -> tuple[str, list[float], list[float]]:
        for a in self.attempts:
            a.points.columns()  # converts the raw rows, validation lines among them
        pts = [v for a in self.attempts for v in a.points.val]
        kind = "bpb" if any(k == "bpb" for _, _, k in pts) else "loss"
        pts = sorted({(s, v) for s, v, k in pts if k == kind and v == v and math.isfinite(v)})
        return kind, [s for s, _ in pts], [v for _, v in pts]

    def to_json(self, points: int = 200) -> dict[str, Any]:
        xs, ys = self.column("loss")
        env = downsample(xs, ys, points)
        return {
            "phase": self.phase,
            "status": self.status,
            "planned": self.planned,
            "last_step": self.last_step,
            "step_lines": self.step_lines,
            "checkpoints": self.checkpoints,
            "sampled": any(a.sampled for a in self.attempts),
            "attempts": len(self.attempts),
            "loss": [[b.x, b.lo, b.mean, b.hi] for b in env],
        }


@dataclass
class RunSeries:
    phases: list[PhaseSeries] = field(default_factory=list)

    def get(self, phase: str) -> PhaseSeries | None:
        return next((p for p in self.phases if p.phase == phase), None)

    def to_json(self) -> list[dict[str, Any]]:
        return [p.to_json() for p in self.phases]


def build_series(logs: Any, phases: Any = None, inv: Any = None, train_phases: Iterable[str] = ()) -> RunSeries:
    """Group the collected points by phase, with the plan, checkpoints and the verdict of each."""
    from preflight.loglines import MAX_INT_DIGITS

    out = RunSeries()
    collectors = getattr(logs, "series", None) or {}
    for phase in train_phases:
        segs = [s for s in (logs.by_phase(phase) if logs is not None else []) if s.step_lines or s.first_step]
        ps = PhaseSeries(phase)
        for seg in segs:
            col = collectors.get(seg.path)
            pts = col.points(seg) if col is not None else SegmentPoints()
            _add_exact_ends(pts, seg)
            ps.attempts.append(
                Attempt(
                    seg.path,
                    seg.start_line,
                    pts,
                    seg.step_lines,
                    seg.first_step.step if seg.first_step else None,
                    seg.last_step.step if seg.last_step else None,
                    seg.resume_from,
                    bool(col is not None and col.sampled),
                )
            )
            ps.planned = seg.planned_steps or ps.planned
            ps.checkpoints += seg.saved_steps("model")
            if seg.nan_loss is not None:  # the index sees a NaN in any line of a run (in its last line)
                m = _STEP_NUM_RE.search(seg.nan_loss.text)
                cols = pts.columns()
                # the first NaN among the points (where sampled, the first sampled one), and the index's
                steps = [int(x) for x, y in zip(cols["step"], cols["loss"], strict=False) if y != y][:1]
                steps += [int(m.group(1))] if m and len(m.group(1)) <= MAX_INT_DIGITS else []
                if steps and (ps.nan_step is None or min(steps) < ps.nan_step):
                    ps.nan_step = min(steps)
        verdict = phases.get(phase) if phases is not None else None
        if verdict is not None:
            ps.status, ps.cause = verdict.status, verdict.cause
            ps.planned = ps.planned or verdict.planned  # the log's own total (600) before the checkpoint step (599)
        pc = inv.phases.get(phase) if inv is not None and getattr(inv, "phases", None) else None
        if pc is not None:
            ps.checkpoints += list(pc.complete_steps)
        ps.checkpoints = sorted(set(ps.checkpoints))
        # a phase done before the logs, with neither step lines nor checkpoints here, has nothing to draw
        if ps.attempts or (ps.status not in ("", "not-run") and (ps.checkpoints or ps.status != "done")):
            out.phases.append(ps)
    return out


def _add_exact_ends(pts: SegmentPoints, seg: Any) -> None:
    """The index parsed a process's first and last step line exactly: make sure both are points
    (a sampled log may have no window on them)."""
    have = set(pts.step)
    for rec in (seg.first_step, seg.last_step):
        if rec is not None and rec.step not in have:
            pts.add(rec.step, _nan(rec.loss), math.nan, _nan(rec.dt_ms), _nan(rec.tok_per_sec), _nan(rec.mfu))
            have.add(rec.step)


def series_fact(ctx: Any) -> RunSeries:
    from preflight.facts import FactUnavailable
    from preflight.loggrammar import grammar_for
    from preflight.logindex import index_log
    from preflight.logset import LogSet
    from preflight.verdict import TRAIN_PHASES

    logs = ctx.get("logs", None)
    if logs is None:
        raise FactUnavailable("no logs: the curves come from the step lines of the job's logs")
    if not getattr(logs, "series", None) and logs.logs:
        # indexed without collectors (a library caller): index again, collecting this time
        again = LogSet(source=logs.source, missing=logs.missing)
        for ix in logs.logs:
            col = SeriesCollector()
            again.logs.append(
                index_log(ix.path, _mid_style(ctx), series=col, grammar=grammar_for(ctx.get("profile", None)))
            )
            again.series[ix.path] = col
        logs = again
    return build_series(logs, ctx.get("phases", None), ctx.get("checkpoints", None), TRAIN_PHASES)


def _mid_style(ctx: Any) -> str:
    profile = ctx.get("profile", None)
    phases = getattr(profile, "phases", None) or []
    return "mid" if (not phases or "mid" in phases) else "sft"


# -- display helpers ------------------------------------------------------------------------------
@dataclass
class Bucket:
    x: float  # the bucket's last step
    lo: float
    mean: float
    hi: float
    last: float


def downsample(xs: list[float], ys: list[float], n: int = DISPLAY_POINTS) -> list[Bucket]:
    """At most ``n`` buckets of equal step width (ascending), each with min, mean, max and last value;
    the points themselves when there are no more than ``n``. Non-finite values are left out."""
    pts = [(x, y) for x, y in zip(xs, ys, strict=False) if math.isfinite(y)]
    if len(pts) <= n:
        return [Bucket(float(x), y, y, y, y) for x, y in sorted(pts, key=_first)]
    if len(pts) > NUMPY_POINTS:
        return _downsample_numpy(pts, n)
    x0 = min(x for x, _ in pts)
    width = (max(x for x, _ in pts) - x0) / n or 1.0
    acc: dict[int, list[float]] = {}  # bucket -> [x, lo, sum, hi, last, count]
    for x, y in pts:
        k = min(n - 1, int((x - x0) / width))
        b = acc.get(k)
        if b is None:
            acc[k] = [x, y, y, y, y, 1]
        else:
            if x > b[0]:
                b[0] = x
            if y < b[1]:
                b[1] = y
            if y > b[3]:
                b[3] = y
            b[2] += y
            b[4] = y
            b[5] += 1
    return [Bucket(float(b[0]), b[1], b[2] / b[5], b[3], b[4]) for _, b in sorted(acc.items())]


NUMPY_POINTS = 50_000  # above this, downsampling is vectorised (numpy's import pays for itself)


def _downsample_numpy(pts: list[tuple[float, float]], n: int) -> list[Bucket]:
    import numpy as np

    arr = np.asarray(pts, dtype=float)
    x, y = arr[:, 0], arr[:, 1]
    x0 = x.min()
    width = (x.max() - x0) / n or 1.0
    k = np.minimum(((x - x0) / width).astype(np.int64), n - 1)
    order = np.argsort(k, kind="stable")  # stable: within a bucket the points keep their log order
    k, x, y = k[order], x[order], y[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    ends = np.r_[starts[1:], k.size] - 1
    lo, hi = np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)
    mean = np.add.reduceat(y, starts) / np.diff(np.r_[starts, k.size])
    bx = np.maximum.reduceat(x, starts)
    return [
        Bucket(*row)
        for row in zip(bx.tolist(), lo.tolist(), mean.tolist(), hi.tolist(), y[ends].tolist(), strict=False)
    ]


def smooth(ys: list[float], span: int | None = None) -> list[float]:
    """Exponential moving average (debiased, as nanochat's own smoothed loss)."""
    if not ys:
        return []
    span = span or max(2, len(ys) // 50)
    beta = 1 - 2 / (span + 1)
    out, ema = [], 0.0
    for k, y in enumerate(ys, 1):
        ema = beta * ema + (1 - beta) * y
        out.append(ema / (1 - beta**k))
    return out


def sparkline(xs: list[float], ys: list[float], width: int = 16) -> str:
    """``ys`` against ``xs`` as ``width`` unicode blocks (the mean of each step range; a range
    without a point repeats the one before), lowest = ▁."""
    buckets = downsample(xs, ys, width)
    if not buckets:
        return ""
    # fewer points than characters: each character shows the last point up to its step (two points stay two: held
    # over the width they would draw a plateau and a drop that no line of the log shows)
    if 2 < len(buckets) < width:
        x0, span = buckets[0].x, (buckets[-1].x - buckets[0].x) or 1.0
        cells, k = [], 0
        for i in range(width):
            while k + 1 < len(buckets) and buckets[k + 1].x <= x0 + span * (i + 1) / width:
                k += 1
            cells.append(buckets[k])
        buckets = cells
    lo, hi = min(b.mean for b in buckets), max(b.mean for b in buckets)
    if hi - lo < 1e-12:
        return SPARK[3] * len(buckets)
    return "".join(SPARK[min(len(SPARK) - 1, int((b.mean - lo) / (hi - lo) * len(SPARK)))] for b in buckets)


def loss_sparkline(ps: PhaseSeries | None, width: int = 16) -> str:
    """The loss of a phase's last attempt as a sparkline, with its first and last value
    ("3.50 ▇▆▅▄▃▂▁ 1.21"); empty when it logged no loss."""
    if ps is None:
        return ""
    xs, ys = ps.column("loss", last=1)
    line = sparkline(xs, ys, width)
    finite = [y for y in ys if math.isfinite(y)]
    return f"{finite[0]:.2f} {line} {finite[-1]:.2f}" if line else ""


def sparklines(result: Any, width: int = 16) -> dict[str, str]:
    """phase -> loss sparkline, for the reports that show a phase table (empty without curves)."""
    rs = getattr(result, "display", {}).get("series")
    if rs is None:
        return {}
    return {ps.phase: s for ps in rs.phases if (s := loss_sparkline(ps, width))}


def phase_timeline(rs: RunSeries) -> list[tuple[str, float | None, float | None]]:
    """(phase, start s, end s) per training phase, from its step lines: mean logged dt x step lines
    (nanochat's own "total time"); the phases are laid end to end from 0, since the time between
    them (evals, data loading) leaves no step line. A phase without dt fields has no timing."""
    out: list[tuple[str, float | None, float | None]] = []
    t = 0.0
    for ps in rs.phases:
        _, dts = ps.column("dt_ms")
        if not dts or not ps.step_lines:
            out.append((ps.phase, None, None))
            continue
        took = sum(dts) / len(dts) / 1000 * ps.step_lines
        out.append((ps.phase, t, t + took))
        t += took
    return out


# -- the live line of ``postflight verify --wait`` ------------------------------------------------
TAIL = 64 << 10


def live_line(path: str, tail: int = TAIL) -> str | None:
    """ "base step 1234/21400 · loss 3.2100 · 1.09M tok/s · ETA 2h13m" from the last step line in the
    log's tail; None when the tail has none (or the log cannot be read yet)."""
    import os

    from preflight.loglines import RANK_PREFIX_RE, parse_step, strip_ansi

    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - tail))
            data = f.read(tail)
    except OSError:
        return None
    for raw in reversed(data.split(b"\n")[1 if size > tail else 0 :]):
        if b"tep " not in raw:
            continue
        text = strip_ansi(raw.decode("utf-8", "replace").rsplit("\r", 1)[-1])
        text = RANK_PREFIX_RE.sub("", text).strip()
        rec = parse_step(text, 0)
        if rec is None:
            continue
        total = rec.total or (round(rec.step * 100 / rec.pct) if rec.pct else None)
        parts = [
            f"{rec.style} step {rec.step}" + (f"/{total}" if total else "")
        ]  # the line's grammar: base, mid, sft, rl
        if rec.loss is not None:
            parts.append(f"loss {rec.loss:.4f}")
        if rec.tok_per_sec:
            parts.append(f"{_si(rec.tok_per_sec)} tok/s")
        if total and rec.dt_ms and total > rec.step:
            parts.append(f"ETA {_eta((total - rec.step) * rec.dt_ms / 1000)}")
        return " · ".join(parts)
    return None


def _si(v: float) -> str:
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}k" if v >= 1e3 else f"{v:.0f}"


def _eta(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
