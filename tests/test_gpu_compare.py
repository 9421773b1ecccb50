"""bench/gpu_compare.py: the same-call summary of classic vs bundled trainer logs (the GPU rows of BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_log(path: Path, dt_ms: float, loss0: float, peak: float, t0: float = 1000.0) -> None:
    lines = ["nanochat", "Total batch size 524,288 => gradient accumulation steps: 8"]
    ts = t0
    for step in range(30):
        dt = 40000.0 if step == 0 else dt_ms
        ts += dt / 1000
        loss = loss0 - 0.2 * step
        lines.append(
            f"step {step:05d}/00030 ({100 * step / 30:.2f}%) | loss: {loss:.6f} | grad norm: 0.5 | lrm: 1.00 | "
            f"dt: {dt:.2f}ms | tok/sec: {int(524288 / dt * 1000):,} | mfu: 50.00 | total time: 0.00m"
        )
    lines += [f"Peak memory usage: {peak:.2f}MiB", "EXIT 0"]
    stamped = subprocess.run(
        [sys.executable, "bench/gpu_compare.py", "stamp"],
        cwd=ROOT,
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # replace the real timestamps by the simulated ones so that the wall-clock rate is known
    out, ts = [], t0
    for line in stamped.splitlines():
        _, _, rest = line.partition(" ")
        if rest.startswith("step "):
            ts += float(rest.split("dt: ")[1].split("ms")[0]) / 1000
        out.append(f"{ts:.3f} {rest}")
    path.write_text("\n".join(out) + "\n")


def test_summary_gives_same_call_ratio_loss_gap_and_memory(tmp_path):
    write_log(tmp_path / "c20.log", dt_ms=3450.0, loss0=11.0906, peak=73833.77)
    write_log(tmp_path / "b20.log", dt_ms=3136.4, loss0=11.0926, peak=69033.84)
    proc = subprocess.run(
        [
            sys.executable,
            "bench/gpu_compare.py",
            "summary",
            str(tmp_path / "c20.log"),
            str(tmp_path / "b20.log"),
            "--json",
            str(tmp_path / "out.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "RATIO b20 / c20: tok/s 1.1000" in proc.stdout
    data = json.loads((tmp_path / "out.json").read_text())
    (cmp,) = data["comparisons"]
    assert cmp["ratio"] == 1.1 and abs(cmp["wall_ratio"] - 1.1) < 1e-3
    assert abs(cmp["max_loss_gap"] - 0.002) < 1e-9 and cmp["loss_steps"] == "0-29"
    assert (cmp["peak_mib"], cmp["classic_peak_mib"]) == (69033.84, 73833.77)
    runs = {r["name"]: r for r in data["runs"]}
    assert (
        runs["c20"]["steps_in_median"] == "11-29" and runs["c20"]["median_dt_ms"] == 3450.0 and runs["b20"]["exit"] == 0
    )


def test_variant_compared_with_classic_of_its_depth_and_missing_classic_skipped(tmp_path):
    write_log(tmp_path / "c12.log", dt_ms=1100.0, loss0=11.09, peak=31729.77)
    write_log(tmp_path / "b12-attn_backend_default.log", dt_ms=1000.0, loss0=11.09, peak=30000.0)
    write_log(tmp_path / "b20.log", dt_ms=3000.0, loss0=11.09, peak=70000.0)  # no c20: no ratio
    proc = subprocess.run(
        [sys.executable, "bench/gpu_compare.py", "summary", *map(str, sorted(tmp_path.glob("*.log")))],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "RATIO b12-attn_backend_default / c12: tok/s 1.1000" in proc.stdout
    assert "RATIO b20" not in proc.stdout


def test_summary_of_a_directory_reads_its_logs(tmp_path):
    """A device call's $OUT holds the logs beside compare.json: the folder is read as its *.log files."""
    write_log(tmp_path / "c20.log", dt_ms=3300.0, loss0=11.09, peak=73833.77)
    write_log(tmp_path / "b20.log", dt_ms=3000.0, loss0=11.09, peak=48809.81)
    (tmp_path / "compare.json").write_text("{}")
    proc = subprocess.run(
        [sys.executable, "bench/gpu_compare.py", "summary", str(tmp_path)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "RATIO b20 / c20: tok/s 1.1000" in proc.stdout


def test_profile_harness_runs_the_bundled_step_on_cpu():
    """bench/gpu_profile.py's harness (the step it profiles on the GPU) runs the bundled model and optimizers;
    the classic side needs .bench-classic/, which CI does not have."""
    run = subprocess.run(
        [
            sys.executable,
            "bench/gpu_profile.py",
            "--impl",
            "bundled",
            "--device",
            "cpu",
            "--depth",
            "2",
            "--batch",
            "2",
            "--seq",
            "32",
            "--accum",
            "2",
            "--vocab",
            "256",
            "--warmup",
            "2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "bundled d2 on cpu: 2 steps ran, last loss" in run.stdout


def test_a_ratio_at_its_targets_edge_shows_three_decimals():
    from bench.__main__ import table
    from bench.common import Row

    def shown(ours, meets):
        row = Row("trainer d20", ours, "tok/s", baseline=100.0, target="≥ 1.10× classic", meets=meets)
        return table([row], markdown=True).splitlines()[-1]

    assert "| 1.101× |" in shown(110.07, True)  # met, but by 0.0007: not a plain "1.10×"
    assert "| 1.096× |" in shown(109.57, False) and "**NO**" in shown(109.57, False)
    assert "| 1.13× |" in shown(113.03, True)  # clear of the target


def test_a_target_is_met_only_if_every_call_of_the_same_code_met_it(tmp_path, monkeypatch):
    from bench import gpu

    data = json.loads(gpu.RESULTS.read_text())
    entry = next(s for s in data["side_by_side"] if s["key"] == "d20_1gpu")
    entry.update(ratio=1.12, repeat_ratios=[1.12, 1.09], code="as landed: test")
    entry["bundled"]["tok_per_sec"], entry["classic"]["tok_per_sec"] = 112, 100
    results = tmp_path / "gpu_results.json"
    results.write_text(json.dumps(data))
    monkeypatch.setattr(gpu, "RESULTS", results)
    (row,) = [r for r in gpu.bench() if r.what == "trainer d20, 1 GPU (H100, recorded): tok/sec"]
    assert row.meets is False and row.spread == "1.090–1.120× (2 calls)", (row.meets, row.spread)
    entry["repeat_ratios"] = [1.12, 1.11]
    results.write_text(json.dumps(data))
    (row,) = [r for r in gpu.bench() if r.what == "trainer d20, 1 GPU (H100, recorded): tok/sec"]
    assert row.meets is True
