"""Every benchmark of the suite runs at its tiny size and produces rows (issue 8 §4: never a time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.__main__ import BENCHMARKS

ROOT = Path(__file__).resolve().parents[1]


def test_bench_tiny_runs_every_benchmark(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    data = json.loads(out.read_text())
    assert data["tiny"] is True
    rows = data["rows"]
    failed = [r["what"] for r in rows if "FAILED" in r["what"]]
    assert not failed, failed
    prefixes = {
        "startup": "start-up",
        "preflight_check": "preflight check",
        "postflight_verify": "postflight verify",
        "checkout_read": "checkout read",
        "logscan": "log index",
        "report_html": "postflight --format html",
        "deep": "--deep",
        "trainer_cpu": "trainer on CPU",
        "gpu": "trainer d",
        "multinode": "tiny pipeline, 2 local",
        "install": "install: pip install",
    }
    assert set(prefixes) == set(BENCHMARKS)
    for name, prefix in prefixes.items():
        mine = [r for r in rows if r["what"].startswith(prefix)]
        assert mine, f"{name} produced no rows"
        for r in mine:
            assert r["ours"] > 0 and r["unit"], r
    # the machine is stated
    assert data["machine"].get("cores") and data["machine"].get("torch")


def run_startup(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`python bench/startup.py ARGS` from the project root, as a developer runs it."""
    return subprocess.run(
        [sys.executable, "bench/startup.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_startup_against_another_checkout_alternates_and_reports_both(tmp_path):
    """`bench/startup.py --against DIR` times this checkout's check and DIR's; a directory that is not a
    checkout of the project is a usage error, not a traceback."""
    proc = run_startup("--against", str(ROOT), "--repeat", "1", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "preflight check job.sbatch, 1 alternating runs each"
    assert lines[1].startswith("this checkout") and lines[2].startswith(str(ROOT))
    assert all(" wall " in ln and " cpu " in ln for ln in lines[1:3])
    bad = run_startup("--against", str(tmp_path))
    assert bad.returncode == 2 and "not a checkout of this project" in bad.stderr
    zero = run_startup("--repeat", "0")
    assert zero.returncode == 2 and "--repeat must be at least 1" in zero.stderr


def test_startup_refuses_to_time_a_cli_that_does_not_run(tmp_path):
    """A check that exits 2 or more (a missing dependency, an internal error) is not a start-up time: the
    bench names the command and its exit code instead of printing a fast-looking median."""
    broken = tmp_path / "preflight"
    broken.mkdir()
    (broken / "__init__.py").write_text("")
    (broken / "cli.py").write_text(
        "import sys\n\ndef preflight_main():\n    sys.stderr.write('preflight: no module named typer\\n')\n    sys.exit(2)\n"
    )
    proc = run_startup("--against", str(tmp_path), "--repeat", "1", timeout=120)
    assert proc.returncode == 1 and "wall" not in proc.stdout, proc.stdout
    assert "exited 2, not timed" in proc.stderr and "no module named typer" in proc.stderr, proc.stderr
