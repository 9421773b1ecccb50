"""A job that hung: it wrote nothing for hours before SLURM ended it (or while it still runs).

The shape is a public report (karpathy/nanochat issue 92, in our own words): midtraining on 8 GPUs
printed its setup (timestamped checkpoint lines, then "Muon: Grouping ..."), then nothing for 12
hours. More --time would not have helped; postflight must say "hung", not "raise --time"."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime

import pytest

SETUP = """\
=== phase: mid ===
Overriding: run = dummy
2025-10-16 19:59:50,381 - nanochat.checkpoint_manager - INFO - No model tag provided, guessing model tag: d20
2025-10-16 19:59:51,395 - nanochat.checkpoint_manager - INFO - Building model with config: {'n_layer': 20}
Tokens / micro-batch / rank: 32 x 2048 = 65,536
Total batch size 524,288 => gradient accumulation steps: 1
Muon: Grouping 20 params of shape torch.Size([5120, 1280]), device cuda:0, dtype torch.float32
"""
CANCEL = "slurmstepd: error: *** JOB 4242 ON gpu01 CANCELLED AT {at} DUE TO TIME LIMIT ***\n"


def _verify(cli, *logs, env=None):
    args = [a for log in logs for a in ("--log", str(log))]
    proc = cli("postflight", "verify", *args, "--format", "json", env=env)
    report = json.loads(proc.stdout)
    checks = {c["code"]: c for c in report["checks"]}
    return proc, checks, {p["name"]: p for p in report["phases"]}


def _msg(check):
    return [f["message"] for f in check["findings"]]


def test_a_merged_log_silent_for_twelve_hours_is_a_hang(tmp_path, cli):
    log = tmp_path / "slurm-4242.out"
    log.write_text(SETUP + CANCEL.format(at="2025-10-17T08:00:02"))
    proc, checks, phases = _verify(cli, log)
    assert proc.returncode == 1
    (hung,) = _msg(checks["LOG010"])
    assert hung.startswith("mid wrote nothing for the last 12h00m before the time limit before its first step")
    assert "more --time would not have helped" in hung
    assert "(2025-10-16 19:59:51, timestamped) was slurm-4242.out:7 `Muon: Grouping 20 params" in hung
    assert checks["LOG010"]["findings"][0]["location"] == {"path": str(log), "line": 7}
    assert "py-spy dump" in checks["LOG010"]["findings"][0]["fix"]
    # the time-limit finding no longer tells the user to raise --time
    (cancel,) = checks["LOG006"]["findings"]
    assert cancel["message"].endswith("it had hung before (LOG010)") and "raise" not in cancel["fix"]
    assert phases["mid"]["cause"].endswith("silent for the last 12h00m: hung")


def test_separate_streams_date_the_silence_by_the_out_files_last_write(tmp_path, cli):
    out, err = tmp_path / "speedrun-4242.out", tmp_path / "speedrun-4242.err"
    steps = "".join(f"step {i:05d} (1.{i:02d}%) | loss: 2.5 | lrm: 1.00 | dt: 500.00ms\n" for i in range(3))
    out.write_text(SETUP.split("Tokens")[0] + steps)
    err.write_text(CANCEL.format(at="2025-10-17T08:00:02"))
    end = datetime.fromisoformat("2025-10-17T08:00:02").timestamp()
    os.utime(out, (end - 3 * 3600 - 120, end - 3 * 3600 - 120))  # the last step line, 3h02m before the end
    _proc, checks, _phases = _verify(cli, out, err)
    (hung,) = _msg(checks["LOG010"])
    assert hung.startswith("mid wrote nothing for the last 3h02m before the time limit at step 2"), hung
    assert "speedrun-4242.out:7 `step 00002 (1.02%)" in hung and "timestamped" not in hung


def test_a_run_that_trained_up_to_the_time_limit_did_not_hang(tmp_path, cli):
    out, err = tmp_path / "run.out", tmp_path / "run.err"
    out.write_text(SETUP + "step 00100 (10.00%) | loss: 2.5 | lrm: 1.00 | dt: 500.00ms\n")
    err.write_text(CANCEL.format(at="2025-10-17T08:00:02"))
    end = datetime.fromisoformat("2025-10-17T08:00:02").timestamp()
    os.utime(out, (end - 20, end - 20))
    _proc, checks, phases = _verify(cli, out, err)
    assert checks["LOG010"]["status"] == "pass" and not checks["LOG010"]["findings"]
    assert "raise #SBATCH --time" in checks["LOG006"]["findings"][0]["fix"]
    assert "hung" not in phases["mid"]["cause"]
    # a merged log with step lines after its last timestamp: when they were written is unknown
    merged = tmp_path / "merged.out"
    merged.write_text(
        SETUP + "step 00100 (10.00%) | loss: 2.5 | dt: 500.00ms\n" + CANCEL.format(at="2025-10-17T08:00:02")
    )
    _proc, checks, _phases = _verify(cli, merged)
    assert checks["LOG010"]["status"] == "skip" or not checks["LOG010"]["findings"]


def test_hang_minutes_sets_what_counts_as_a_hang(tmp_path, cli):
    log = tmp_path / "slurm-4242.out"
    log.write_text(SETUP + CANCEL.format(at="2025-10-16T20:19:51"))  # 20 minutes of silence
    _proc, checks, _phases = _verify(cli, log)
    assert not checks["LOG010"]["findings"]  # under the default 30
    _proc, checks, _phases = _verify(cli, log, env={"PREFLIGHT_HANG_MINUTES": "15"})
    assert _msg(checks["LOG010"])[0].startswith("mid wrote nothing for the last 20m00s before the time limit")


WORKER = """
import logging, time
logging.basicConfig(format="%(asctime)s - %(name)s - %(levelname)s - %(message)s", level=logging.INFO)
logging.getLogger("nanochat.checkpoint_manager").info("Building model with config: {'n_layer': 20}")
print("Muon: Grouping 20 params of shape torch.Size([5120, 1280])", flush=True)
time.sleep(120)
"""


def test_torchruns_own_shutdown_after_the_cancel_is_not_the_last_output(tmp_path, cli):
    # a real torchrun stopped the way SLURM stops it at the time limit: slurmstepd's cancel line, then
    # SIGTERM, then torchrun's shutdown lines and its SignalException traceback, all in one merged log
    pytest.importorskip("torch")
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    log = tmp_path / "slurm-77.out"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", str(worker)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        deadline = time.monotonic() + 120
        while "Muon" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        at = datetime.fromtimestamp(time.time() + 2 * 3600 + 300).strftime("%Y-%m-%dT%H:%M:%S")
        with open(log, "a") as out:
            out.write(CANCEL.format(at=at))  # the 2h05m of silence, standing in
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    text = log.read_text()
    assert "got signal: 15" in text.splitlines()[-1], text[-2000:]  # torchrun's own last words
    _proc, checks, _phases = _verify(cli, log)
    (hung,) = _msg(checks["LOG010"])
    muon = next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("Muon"))
    assert hung.startswith("the job wrote nothing for the last 2h0") and "before the time limit" in hung, hung
    assert f"timestamped) was slurm-77.out:{muon} `Muon: Grouping" in hung, hung
