"""What signal-not-delivered (SB016) claims, checked against the real SLURM: five 1-minute jobs with
``--signal=...@50`` run a stand-in trainer (``python -m nanochat.base_train`` resolved to a module that
only waits for SIGUSR1 and says so; the real trainer's handler is tested in
tests/nanochat/test_signal_forwarding.py). Preflight's verdict on each script must match whether
the trainer really got the signal, and postflight must explain the job the untrapped signal killed.

SLURM sends the signal 10-40 s into the job (its 30 s cycle); the jobs that never get it end at the
limit, 60-90 s in. All five run at once.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from slurm_helpers import sbatch, slurm_env, wait_final

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

STAND_IN = """\
import signal, sys, time
def stop(signum, frame):
    print(f"trainer got {signal.Signals(signum).name}", flush=True)
    sys.exit(0)
signal.signal(signal.SIGUSR1, stop)
print("trainer started", flush=True)
time.sleep(600)
"""
TRAIN = "python3 -m nanochat.base_train --depth=2"
FORWARD = """\
trap 'kill -USR1 "$PID" 2>/dev/null' USR1
{train} &
PID=$!
wait $PID || wait $PID
"""

# name: (--signal, body, does the trainer get the signal?, final state)
JOBS = {
    "untrapped": ("B:USR1@50", f"{TRAIN}\n", False, "FAILED"),
    "foreground": ("B:USR1@50", f"trap 'kill -USR1 \"$PID\"' USR1\n{TRAIN}\n", False, "TIMEOUT"),
    "no-b": ("USR1@50", f"{TRAIN}\n", False, "TIMEOUT"),
    "srun": ("USR1@50", f"srun {TRAIN}\n", True, "COMPLETED"),
    "forwarded": ("B:USR1@50", FORWARD.format(train=TRAIN), True, "COMPLETED"),
}


def _script(name: str, signal_opt: str, body: str, logs: Path) -> str:
    return (
        f"#!/bin/bash\n#SBATCH --job-name=sig-{name}\n#SBATCH --output={logs}/{name}.out\n"
        f"#SBATCH --partition=debug\n#SBATCH --time=00:01:00\n#SBATCH --signal={signal_opt}\n" + textwrap.dedent(body)
    )


def test_preflight_verdict_matches_what_slurm_delivers(slurm, cli, tmp_path):
    fake = tmp_path / "fake" / "nanochat"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "base_train.py").write_text(STAND_IN)
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {**slurm_env(), "PYTHONPATH": str(fake.parent)}

    verdicts, job_ids = {}, {}
    for name, (signal_opt, body, _, _) in JOBS.items():
        path = tmp_path / f"{name}.sbatch"
        path.write_text(_script(name, signal_opt, body, logs))
        res = cli("preflight", "check", "--select", "SB016", "--format", "json", str(path), cwd=tmp_path, env=env)
        doc = json.loads(res.stdout)
        (check,) = doc["checks"]
        verdicts[name] = check["status"]
        job_ids[name] = sbatch(str(path), cwd=tmp_path, env=env)

    for name, (_, _, delivered, state) in JOBS.items():
        info = wait_final(job_ids[name], timeout=240)
        out = (logs / f"{name}.out").read_text(errors="replace")
        assert "trainer started" in out, (name, out)
        assert ("trainer got SIGUSR1" in out) is delivered, (name, info, out)
        assert info.state == state, (name, info, out)
        assert verdicts[name] == ("pass" if delivered else "fail"), (name, verdicts[name])
    assert wait_final(job_ids["untrapped"]).exit_code == "0:10"

    res = cli(
        "postflight",
        "verify",
        job_ids["untrapped"],
        "--base-dir",
        str(tmp_path / "base"),
        "--no-smoke",
        "--format",
        "json",
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert res.returncode == 1, res.stderr[-2000:]
    failed = [f for c in json.loads(res.stdout)["checks"] if c["name"] == "job-failed" for f in c["findings"]]
    assert failed and "the batch shell died of SIGUSR1" in failed[0]["message"], failed
