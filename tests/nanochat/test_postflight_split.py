"""A real tiny CPU run with split streams (as `#SBATCH --output/--error` make them): base trains, mid
dies during setup with its traceback on stderr only. postflight reads the .err beside the .out and
names the crash in mid; given the .out alone it says mid died during setup and where the traceback is."""

import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nc_helpers import REPO, TINY_BASE, nc_env  # noqa: E402

JOB = """\
echo "[2/5] Base model pretraining..."
python -m nanochat.base_train {base} --num_iterations=3 --run=dummy
echo "[3/5] Midtraining (teaching conversation format)..."
python -m nanochat.mid_train --max_seq_len=256 --device_batch_size=4 --total_batch_size=2048 --device_type=cpu \\
    --run=dummy --data=/nonexistent/conversations.jsonl
"""


def _verify(base, cwd, *args):
    code = "import sys; sys.argv[0] = 'postflight'; from preflight.cli import postflight_main; postflight_main()"
    p = subprocess.run(
        [sys.executable, "-c", code, "verify", *args, "--base-dir", str(base), "--format", "json", "--no-smoke"],
        env={**nc_env(base), "NO_COLOR": "1"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback (most recent call last)" not in p.stderr, p.stderr[-3000:]
    return json.loads(p.stdout)


@pytest.mark.slow
def test_split_streams_of_a_real_run(fresh_base_dir, tmp_path):
    base = fresh_base_dir
    (tmp_path / "job.sh").write_text(JOB.format(base=" ".join(TINY_BASE)))
    with open(tmp_path / "run.out", "w") as out, open(tmp_path / "run.err", "w") as err:
        subprocess.run(
            ["bash", str(tmp_path / "job.sh")], env=nc_env(base), cwd=REPO, stdout=out, stderr=err, timeout=600
        )
    assert "Traceback" not in (tmp_path / "run.out").read_text()  # the crash is on stderr only
    assert "FileNotFoundError" in (tmp_path / "run.err").read_text()

    doc = _verify(base, tmp_path, "--log", "run.out")
    phases = {p["name"]: p for p in doc["phases"]}
    assert phases["base"]["status"] == "done", phases["base"]
    assert phases["mid"]["status"] == "failed" and "died during setup" in phases["mid"]["cause"]
    assert "FileNotFoundError" in phases["mid"]["cause"] or "missing data" in phases["mid"]["cause"]
    assert doc["timeline"]["streams"]["also_read"][0]["path"].endswith("run.err")
    crashed = [f for c in doc["checks"] for f in c["findings"] if f["code"] == "LOG002"]
    assert [f["data"]["phase"] for f in crashed] == ["mid"]

    os.rename(tmp_path / "run.err", tmp_path / "elsewhere.log")
    doc = _verify(base, tmp_path, "--log", "run.out")
    mid = {p["name"]: p for p in doc["phases"]}["mid"]
    assert mid["status"] == "failed" and "died during setup" in mid["cause"] and "run.err" in mid["cause"]
