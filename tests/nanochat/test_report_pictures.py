"""The run report's pictures on real runs of the bundled trainer (tiny, CPU): a good run (base, mid, SFT all
done) and the same run with SFT killed (SIGKILL) at step 149 of 600. The HTML page is rendered in a real
headless Chromium; the text and markdown verdicts carry a loss sparkline per training phase."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nc_helpers import REPO, TINY_BASE, copy_data_and_tokenizer, nc_env  # noqa: E402

from tests.browser import Browser, artifacts_dir, install_chromium  # noqa: E402

pytestmark = pytest.mark.slow
MID = [
    "--max_seq_len=256",
    "--device_batch_size=4",
    "--total_batch_size=2048",
    "--task_size=200",
    "--eval_tokens=4096",
    "--device_type=cpu",
    "--num_iterations=12",
    "--eval_every=6",
]
SFT = [
    "--device_batch_size=2",
    "--target_examples_per_step=4",
    "--task_size=100",
    "--eval_steps=2",
    "--eval_every=50",
    "--eval_metrics_every=100000",
    "--device_type=cpu",
]


def train(base: Path, log: Path, module: str, *args: str) -> None:
    """Run one phase as a batch script would: its stdout and stderr appended to the job's log."""
    with log.open("a") as out:
        p = subprocess.run(
            [sys.executable, "-m", module, *args],
            env=nc_env(base),
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    assert p.returncode == 0, log.read_text()[-3000:]


def train_until_killed(base: Path, log: Path, module: str, pattern: str, *args: str) -> None:
    """Start a phase and SIGKILL it once its log shows ``pattern`` (an OOM kill or a node failure looks so)."""
    start = log.stat().st_size
    with log.open("a") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args], env=nc_env(base), cwd=REPO, stdout=out, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 900
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                with log.open("rb") as f:
                    f.seek(start)
                    if re.search(pattern.encode(), f.read()):
                        break
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


def verify(log: Path, base: Path, cwd: Path, fmt: str, out: Path | None = None) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    argv = [
        sys.executable,
        "-m",
        "preflight.postflight_entry",
        "verify",
        "--log",
        str(log),
        "--base-dir",
        str(base),
        "--no-smoke",
        "--no-color",
        "-f",
        fmt,
    ] + (["-o", str(out)] if out else [])
    p = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    assert p.returncode in (0, 1) and "Traceback" not in p.stderr, p.stderr
    return out.read_text() if out else p.stdout


@pytest.fixture(scope="module")
def runs(tiny_base_dir, tmp_path_factory):
    """Both runs share base and mid; the killed SFT is verified before the good SFT writes its checkpoint."""
    root = tmp_path_factory.mktemp("pictures")
    base = copy_data_and_tokenizer(tiny_base_dir, root / "base")
    prefix = root / "prefix.out"
    train(base, prefix, "nanochat.base_train", *TINY_BASE, "--num_iterations=30", "--eval_every=10")
    train(base, prefix, "nanochat.mid_train", *MID)
    killed = root / "killed.out"
    shutil.copy(prefix, killed)
    train_until_killed(base, killed, "nanochat.chat_sft", r"\nStep 00149/00600 ", *SFT, "--num_iterations=600")
    out = {
        "killed": {
            "log": killed,
            "html": verify(killed, base, root, "html", root / "killed.html"),
            "text": verify(killed, base, root, "text"),
            "markdown": verify(killed, base, root, "markdown"),
        }
    }
    good = root / "good.out"
    shutil.copy(prefix, good)
    train(base, good, "nanochat.chat_sft", *SFT, "--num_iterations=30")
    out["good"] = {
        "log": good,
        "html": verify(good, base, root, "html", root / "good.html"),
        "text": verify(good, base, root, "text"),
        "markdown": verify(good, base, root, "markdown"),
    }
    return root, out


def last_sft_step(log: Path) -> int:
    return int(re.findall(r"^Step (\d+)/00600 \| Training loss", log.read_text(), re.M)[-1])


def test_sparklines_in_text_and_markdown(runs):
    _, out = runs
    for name in ("good", "killed"):
        rows = {
            line.split()[0]: line
            for line in out[name]["text"].splitlines()
            if line.startswith(("base ", "mid ", "sft "))
        }  # the phase table's rows
        for phase in ("base", "mid", "sft"):
            assert re.search(r"\d+\.\d\d [▁▂▃▄▅▆▇█]{16} \d+\.\d\d", rows[phase]), rows[phase]
        md = out[name]["markdown"]
        assert "| Phase | Status | Loss | Cause |" in md
        assert re.search(r"\| base \| done \| \d+\.\d\d [▁▂▃▄▅▆▇█]{16} \d+\.\d\d \|", md)
    assert "failed" in next(line for line in out["killed"]["text"].splitlines() if line.startswith("sft "))


def test_pages_in_chromium(runs):
    exe = install_chromium()
    if exe is None:
        pytest.skip("no Chromium here and it cannot be installed (needs root and apt-get)")
    root, out = runs
    shots = artifacts_dir()
    stop = last_sft_step(out["killed"]["log"])
    assert stop >= 149
    with Browser(exe) as browser:
        for name in ("good", "killed"):
            url = (root / f"{name}.html").as_uri()
            page = browser.open(url)
            page.screenshot(shots / f"real-run-{name}.png")
            seen = page.eval("""(() => ({
                phases: [...document.querySelectorAll('section.phase-chart')].map(s => s.dataset.phase),
                curves: [...document.querySelectorAll('section.phase-chart')].map(
                    s => s.querySelector('svg.chart polyline.smooth').getAttribute('points').split(' ').length),
                status: Object.fromEntries([...document.querySelectorAll('#phases tr[data-phase]')].map(
                    r => [r.dataset.phase, r.children[1].innerText])),
                stop: [...document.querySelectorAll('section[data-phase=sft] .stoplabel')].map(t => t.textContent),
                ckpt: document.querySelectorAll('section[data-phase=base] svg .ckpt').length,
            }))()""")
            assert seen["phases"] == ["base", "mid", "sft"]
            assert min(seen["curves"]) >= 10  # a real curve per phase: at least as many points as logged steps
            assert seen["status"]["base"] == seen["status"]["mid"] == "done"
            assert seen["ckpt"] >= 1  # the base checkpoint is marked
            if name == "good":
                assert seen["status"]["sft"] == "done" and seen["stop"] == []
            else:
                assert seen["status"]["sft"] == "failed"
                assert seen["stop"] and set(seen["stop"]) == {f"stopped at step {stop} of 600"}
            assert page.console_errors() == [] and page.requests() == [url]
