"""Training curves from the logs (preflight/series.py): collected in the index's pass, exact for
ordinary logs, evenly sampled for huge ones, downsampled with min/max envelopes for display;
sparklines in the text and markdown verdicts; the live line of --wait."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from preflight.logindex import index_log
from preflight.logset import LogSet
from preflight.series import (
    SeriesCollector,
    build_series,
    downsample,
    live_line,
    loss_sparkline,
    phase_timeline,
    sparkline,
)
from tests import factories as F

ROOT = Path(__file__).resolve().parents[2]


def curves(path, budget=None, window=None, vector=None, mid_style="mid"):
    col = SeriesCollector(**{k: v for k, v in (("budget", budget), ("window", window)) if v})
    logs = LogSet(logs=[index_log(path, mid_style, vector=vector, series=col)])
    logs.series[str(path)] = col
    return build_series(logs, train_phases=("base", "mid", "sft", "rl")), col


@pytest.mark.parametrize("era", ["classic", "argparse", "current"])
def test_every_step_line_becomes_a_point(tmp_path, era):
    phases = ("base", "sft") if era == "current" else ("base", "mid", "sft")
    log = F.write_log(tmp_path / "run.out", F.run_log(phases=phases, era=era))
    rs, col = curves(log, mid_style="sft" if era == "current" else "mid")
    assert not col.sampled
    assert [p.phase for p in rs.phases] == list(phases)
    for ps in rs.phases:
        xs, ys = ps.column("loss")
        assert len(xs) == ps.step_lines > 0
        assert xs == list(range(len(xs)))
        assert ys == pytest.approx([3.5 - s * 0.01 for s in xs])  # the logged values, not a model of them
        _, lrm = ps.column("lrm")
        assert lrm and set(lrm) == ({0.5} if ps.phase == "sft" and era != "current" else {1.0})
        if ps.phase == "base":
            assert set(ps.column("tok_per_sec")[1]) == {1092000.0} and set(ps.column("mfu")[1]) == {48.12}
            assert ps.column("dt_ms")[1][0] == 480.12
            assert ps.val() == ("bpb", [0, 20], [1.2345, 1.2345])  # every 250 steps and the last
            assert ps.checkpoints == [20] and ps.planned == 20


def test_sampled_points_are_real_lines_and_the_ends_are_exact(tmp_path):
    text = F.run_log(phases=("base",), per_phase={"base": {"steps": 4000, "planned": 4000}})
    log = F.write_log(tmp_path / "big.out", text)
    exact, _ = curves(log)
    truth = dict(zip(*exact.get("base").column("loss"), strict=False))
    assert len(truth) == 4000
    for vector in (False, True):  # the regex and numpy step finders feed the collector the same runs
        rs, col = curves(log, budget=48 << 10, window=1 << 10, vector=vector)
        assert col.sampled
        xs, ys = rs.get("base").column("loss")
        assert 100 < len(xs) < 1500
        assert xs[0] == 0 and xs[-1] == 3999  # first and last step: exact, from the index
        assert all(truth[x] == y for x, y in zip(xs, ys, strict=False))
        gaps = [b - a for a, b in zip(xs, xs[1:], strict=False)]
        assert max(gaps) < 400  # spread over the whole phase, not only its start


def test_lines_outside_runs_rl_and_validation(tmp_path):
    # validation lines before a run's first step line and after its last (where no run holds them)
    lines = F.phase_log("base", steps=8, planned=8, save=False) + [
        "Step 00009 | CORE metric: 0.1",
        "Step 00009 | Validation bpb: 0.75",
    ]
    lines += F.phase_log("rl", steps=6, planned=6)  # RL step lines are never in a run
    rs, _ = curves(F.write_log(tmp_path / "x.out", "\n".join(lines) + "\n"))
    assert rs.get("base").val()[1:] == ([0, 8, 9], [1.2345, 1.2345, 0.75])
    assert rs.get("rl").column("step")[0] == list(range(6))


def test_numbers_that_only_look_like_numbers(tmp_path):
    good = F.step_line("base", 1, 4, 3.4)
    lines = [
        F.step_line("base", 0, 4, "1.2.3"),
        good.replace("dt: 480.12ms", "dt: 4.8.0ms"),
        F.step_line("base", 2, 4, "nan"),
        F.step_line("base", 3, 4, 3.2),
    ]
    rs, _ = curves(F.write_log(tmp_path / "x.out", "\n".join(lines) + "\n"))
    ps = rs.get("base")
    assert ps.column("loss") == ([1, 3], [3.4, 3.2])  # unreadable and non-finite losses are no points
    assert ps.column("dt_ms") == ([0, 2, 3], [480.12, 480.12, 480.12])  # the bad cell alone is dropped


def test_downsample_keeps_envelopes_and_spikes():
    n = 10**6
    xs = list(range(n))
    ys = [3.0 - x / n for x in xs]
    ys[654_321] = 99.0  # one spike among a million points
    out = downsample(xs, ys, 1500)
    assert len(out) == 1500
    assert max(b.hi for b in out) == 99.0 and min(b.lo for b in out) == pytest.approx(2.000001)
    assert all(b.lo <= b.mean <= b.hi for b in out) and [b.x for b in out] == sorted(b.x for b in out)
    assert downsample([], []) == [] and downsample([5], [float("nan")]) == []
    assert [(b.x, b.lo, b.hi) for b in downsample([7], [1.5])] == [(7.0, 1.5, 1.5)]


def test_downsample_numpy_and_python_agree(monkeypatch):
    import random

    from preflight import series

    rng = random.Random(7)
    xs = sorted(rng.uniform(0, 5000) for _ in range(3000))
    ys = [rng.gauss(3.0, 0.5) for _ in xs]
    python = downsample(xs, ys, 100)
    monkeypatch.setattr(series, "NUMPY_POINTS", 10)
    vectorised = downsample(xs, ys, 100)
    assert [(b.x, b.lo, b.hi, b.last) for b in python] == [(b.x, b.lo, b.hi, b.last) for b in vectorised]
    assert [b.mean for b in python] == pytest.approx([b.mean for b in vectorised])


def test_text_verdict_of_an_ordinary_log_imports_no_numpy(tmp_path):
    log = F.write_log(tmp_path / "run.out", F.run_log())
    code = (
        "import sys; from preflight.cli import postflight_main; sys.argv = ['postflight', 'verify', '--log', "
        f"{str(log)!r}, '--no-color']\ntry: postflight_main()\nexcept SystemExit: pass\n"
        "print('numpy' in sys.modules, file=sys.stderr)"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=_env())
    assert "▁" in p.stdout and p.stderr.strip().splitlines()[-1] == "False", p.stderr


def test_sparklines():
    assert sparkline(list(range(100)), [3.0 - x / 50 for x in range(100)], 10) == "██▇▆▅▄▃▂▁▁"
    assert sparkline([0, 1, 2], [2.0, 2.0, 2.0], 4) == "▄▄▄▄"  # flat: mid-height
    assert sparkline([], [], 8) == "" and sparkline([3], [math.inf], 8) == ""
    assert len(sparkline([0, 10, 20], [3.0, 2.0, 1.0], 16)) == 16  # few points, stretched over their steps
    assert sparkline([0, 249], [9.29, 3.89], 16) == "█▁"  # two points (a log every 249 steps) are two cells


def test_text_markdown_json_verdicts(tmp_path):
    log = F.write_log(tmp_path / "run.out", F.run_log())

    def verify(fmt):
        p = subprocess.run(
            [sys.executable, "-m", "preflight.postflight_entry", "verify", "--log", str(log), "-f", fmt, "--no-color"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=_env(),
        )
        assert p.returncode in (0, 1), p.stderr
        return p.stdout

    text = verify("text")
    row = next(line for line in text.splitlines() if line.startswith("base "))
    spark = re.search(r"3\.50 ([▁▂▃▄▅▆▇█]{16}) 3\.31", row).group(1)  # first loss, shape, last loss
    assert spark[0] == "█" and spark[-1] == "▁" and list(spark) == sorted(spark, reverse=True) and "done" in row
    assert next(line for line in text.splitlines() if line.startswith("phase ")).split()[:3] == [
        "phase",
        "status",
        "loss",
    ]
    md = verify("markdown")
    assert "| Phase | Status | Loss | Cause |" in md and "| sft | done | 3.50 " in md
    doc = json.loads(verify("json"))
    assert "series" not in doc  # the machine formats are unchanged
    summary = tmp_path / "summary.md"  # GitHub's step summary: the markdown verdict, sparklines included
    p = subprocess.run(
        [sys.executable, "-m", "preflight.postflight_entry", "verify", "--log", str(log), "-f", "github"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(_env(), GITHUB_STEP_SUMMARY=str(summary)),
    )
    assert p.returncode in (0, 1) and "| Phase | Status | Loss | Cause |" in summary.read_text()


def test_library_callers_get_curves_without_asking(tmp_path):
    """The curves are collected in the index's pass whatever the format (LOG012 reads them); a log set indexed
    without collectors (built by a library caller) is indexed again, collecting."""
    from preflight.config import load_config
    from preflight.context import Context, RunInputs

    log = F.write_log(tmp_path / "run.out", F.run_log(phases=("base",)))
    ctx = Context(load_config({}, cwd=tmp_path), inputs=RunInputs(logs=[log], stage="post", cwd=tmp_path))
    assert list(ctx.get("logs").series) == [str(log)]
    ctx.get("logs").series.clear()
    assert ctx.get("series").get("base").column("loss")[0] == list(range(20))


def test_timeline_from_dt():
    from preflight.series import Attempt, PhaseSeries, RunSeries, SegmentPoints

    pts = SegmentPoints()
    for s in range(10):
        pts.add(s, 3.0, dt=500.0)
    rs = RunSeries(
        [
            PhaseSeries("base", [Attempt("x", 1, pts, 10, 0, 9)]),
            PhaseSeries("sft", [Attempt("x", 9, SegmentPoints(), 3, 0, 2)]),
        ]
    )
    assert phase_timeline(rs) == [("base", 0.0, 5.0), ("sft", None, None)]
    assert loss_sparkline(rs.get("base"), 4) == "3.00 ▄▄▄▄ 3.00"


def test_live_line(tmp_path):
    log = tmp_path / "job.out"
    assert live_line(str(log)) is None  # not written yet
    log.write_text("Autodetected device type: cuda\n")
    assert live_line(str(log)) is None
    log.write_text(
        "".join(F.step_line("base", s, 21400, 3.5 - s / 100) + "\n" for s in range(13))
        + "Step 00012 | Validation bpb: 1.1\n"
    )
    assert live_line(str(log)) == "base step 12/21400 · loss 3.3800 · 1.09M tok/s · ETA 2h51m"
    with log.open("a") as f:  # mid lines carry no total: it comes from the percentage
        f.write("\x1b[32m[rank0]: " + F.step_line("mid", 100, 800, 2.0) + "\n")
    assert live_line(str(log)).startswith("mid step 100/800 · loss 2.0000")


def _env():
    import os

    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
