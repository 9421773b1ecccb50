"""``postflight verify --format html``: one self-contained page, checked as a person sees it: rendered
by a real headless Chromium (tests/browser.py), asserted on the DOM, with a screenshot written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import factories as F
from tests.browser import Browser, artifacts_dir, install_chromium

ROOT = Path(__file__).resolve().parents[2]
CRASH = ("torch.OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB")
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


def verify_html(tmp_path, log, *extra, name="report.html"):
    out = tmp_path / name
    # hermetic: the developer's own ~/.cache/nanochat or NANOCHAT_BASE_DIR must not enter the verdict
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("NANOCHAT_BASE_DIR", None)
    env["HOME"] = str(tmp_path / "home")
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "preflight.postflight_entry",
            "verify",
            "--log",
            str(log),
            *extra,
            "-f",
            "html",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert p.returncode in (0, 1), p.stderr
    assert "Traceback" not in p.stderr
    return out


def killed_sft_log(tmp_path, name="run.out"):
    """A classic run whose SFT died at step 149 of 600 (OOM), after base and mid finished."""
    return F.write_log(tmp_path / name, F.run_log(per_phase={"sft": {"steps": 150, "planned": 600, "crash": CRASH}}))


@pytest.fixture(scope="module")
def chromium():
    exe = install_chromium()
    if exe is None:
        pytest.skip("no Chromium here and it cannot be installed (needs root and apt-get)")
    return exe


def test_page_is_self_contained_and_shows_where_a_phase_stopped(tmp_path):
    page = verify_html(tmp_path, killed_sft_log(tmp_path)).read_text()
    assert page.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in page
    assert not re.search(r"""\b(?:src|href)\s*=|<script|<link|@import|url\(""", page, re.I)  # nothing to fetch or run
    assert re.findall(r'<section class="phase-chart" data-phase="(\w+)"', page) == ["base", "mid", "sft"]
    sft = page[page.index('data-phase="sft"') :]
    assert "stopped at step 149 of 600" in sft and 'class="s-failed"' in sft
    assert "crashed (out of memory)" in page
    assert len(page) < 2 << 20


def test_hostile_log_text_is_escaped(tmp_path):
    text = F.run_log(
        per_phase={"base": {"run": HOSTILE}, "mid": {"crash": ("ValueError", HOSTILE), "crash_at": "setup"}}
    )
    page = verify_html(tmp_path, F.write_log(tmp_path / "x<b>y.out", text)).read_text()
    assert "<script" not in page and "<img" not in page and "<b>y" not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page


def test_a_run_with_one_step_or_none(tmp_path):
    text = F.run_log(
        phases=("base", "mid"),
        per_phase={"base": {"steps": 1, "planned": 1}, "mid": {"crash": CRASH, "crash_at": "setup"}},
    )
    page = verify_html(tmp_path, F.write_log(tmp_path / "run.out", text)).read_text()
    assert re.findall(r'data-phase="(\w+)" id=', page) == ["base", "mid"]
    mid = page[page.index('data-phase="mid" id=') :]
    assert "no training step logged" in mid and "no points logged" in mid


def test_where_the_loss_went_nan(tmp_path):
    text = F.run_log(phases=("base",), per_phase={"base": {"steps": 400, "planned": 400, "nan_at": 300, "save": False}})
    page = verify_html(tmp_path, F.write_log(tmp_path / "run.out", text)).read_text()
    assert "loss not a number from step 300" in page and ">NaN from step 300</text>" in page


def test_a_million_step_lines_stay_small(tmp_path):
    """10^6 points per series (what a sampled 1 GB log never exceeds): the page keeps a few thousand."""
    from preflight.model import RunResult
    from preflight.reporters.html_format import render
    from preflight.series import Attempt, PhaseSeries, RunSeries, SegmentPoints

    pts = SegmentPoints()
    n = 10**6
    for s in range(n):
        pts.add(s, 3.0 - s / n + (s % 7) * 0.01, 1.0, 480.0, 1.09e6 + s % 999, 48.0)
    result = RunResult(stage="post", checks=[])
    result.display["series"] = RunSeries([PhaseSeries("base", [Attempt("x", 1, pts, n, 0, n - 1)], planned=n)])
    page = render(result)
    assert len(page) < 2 << 20
    widest = max(len(m) for m in re.findall(r'points="([^"]*)"', page))
    assert widest < 40_000  # ~1,000 points, not a million


def test_rendered_in_chromium(tmp_path, chromium):
    report = verify_html(tmp_path, killed_sft_log(tmp_path))
    hostile = verify_html(
        tmp_path,
        F.write_log(
            tmp_path / "h.out",
            F.run_log(
                per_phase={"base": {"run": HOSTILE}, "sft": {"crash": ("ValueError", HOSTILE), "crash_at": "setup"}}
            ),
        ),
        name="hostile.html",
    )
    with Browser(chromium) as browser:
        page = browser.open(report.as_uri())
        shot = page.screenshot(artifacts_dir() / "postflight-report-sft-killed.png")
        seen = page.eval("""(() => ({
            phases: [...document.querySelectorAll('section.phase-chart')].map(s => s.dataset.phase),
            charts: [...document.querySelectorAll('section.phase-chart')].map(s => s.querySelectorAll('svg.chart').length),
            lines: [...document.querySelectorAll('section.phase-chart')].map(s => s.querySelectorAll('polyline').length),
            width: document.querySelector('svg.chart').getBoundingClientRect().width,
            verdict: document.querySelector('.verdict').innerText,
            table: [...document.querySelectorAll('#phases tr[data-phase]')].map(r => r.innerText.split('\\t').slice(0, 2)),
            stop: [...document.querySelectorAll('section[data-phase=sft] .stoplabel')].map(t => t.textContent),
        }))()""")
        assert seen["phases"] == ["base", "mid", "sft"]
        assert seen["charts"] == [5, 5, 5] and min(seen["lines"]) >= 3 and seen["width"] > 200
        assert seen["verdict"] in ("PASS", "WARN", "FAIL")
        assert ["sft", "failed"] in seen["table"] and ["base", "done"] in seen["table"]
        assert seen["stop"] and all(s == "stopped at step 149 of 600" for s in seen["stop"])
        assert page.console_errors() == []
        assert page.requests() == [report.as_uri()]  # no request leaves the page
        assert shot.stat().st_size > 10_000

        page = browser.open(hostile.as_uri())
        assert page.eval("window.__pwned === undefined && document.querySelectorAll('script, img').length === 0")
        assert HOSTILE in page.eval("document.body.innerText")  # shown as text, never run
        assert page.console_errors() == [] and page.requests() == [hostile.as_uri()]
