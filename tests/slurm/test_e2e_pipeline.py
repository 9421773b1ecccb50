"""The bundled trainer end to end through the real local SLURM cluster (issue 6 §4).

Real `preflight sbatch`, real jobs running the tiny nanochat pipeline on CPU, real checkpoints,
then `postflight verify JOBID` as a user runs it; each test asserts the user-visible verdict:
the per-phase table, the findings, the resume plan and the exit code.

Costs on the 2-core machine: the full tiny speedrun ~50 s, the shared tokenizer/base/mid
fixture ~30 s, the crashed-SFT job ~15 s, the time-limit test 2-3 min (SLURM enforces limits
on a 30 s cycle, so a 1-minute job ends 60-90 s after it starts).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from slurm_helpers import slurm_env, wait_final

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[2]
# the tiny flags of scripts/speedrun.sh --tiny (kept in step with it by test_tiny_flags_match_speedrun)
SHARDS = "--num-shards 3 --chars-per-shard 600000"
TOK = "--max_chars=2000000 --vocab_size=1024"
BASE = (
    "--depth=2 --max_seq_len=256 --device_batch_size=4 --total_batch_size=2048 --num_iterations=40 "
    "--eval_every=20 --eval_tokens=8192 --sample_every=-1"
)
MID = (
    "--max_seq_len=256 --device_batch_size=4 --total_batch_size=2048 --task_size=200 --eval_every=20 --eval_tokens=4096"
)
SFT = "--device_batch_size=4 --target_examples_per_step=8 --task_size=100 --eval_every=25 --eval_steps=4 --eval_metrics_max_problems=4"
EVAL = "-x 8 -m 48"

# `bash scripts/speedrun.sh --tiny` is followed with its argument: preflight evaluates the option loop
# and the `if [ "$TINY" = "1" ]` blocks, resolves `$PYTHON -m ...` and the `launch` shell function, and
# plans the d2 run. No --signal: speedrun.sh runs its phases in the foreground, where no trap could pass
# one on (signal-not-delivered), and the plan's estimate is far under the 20 minutes (missing-timeout-signal
# is skipped).
TINY_SPEEDRUN_EXTRA = "#SBATCH --time=00:20:00\n"
JOB_TIMEOUT = 240  # seconds to wait for one job (the machine is shared and loaded)


# -- helpers ------------------------------------------------------------------------------------
def _env(base: Path | None = None) -> dict[str, str]:
    env = slurm_env()
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), WANDB_RUN="dummy", NO_COLOR="1")
    env.pop("PREFLIGHT_DEBUG", None)
    if base is not None:
        env["NANOCHAT_BASE_DIR"] = str(base)
    return env


def _cli(cli, tool: str, *args: str, cwd: Path, env: dict | None = None, timeout: float = 120):
    return cli(tool, *args, cwd=cwd, env=env or slurm_env(), timeout=timeout)


def _json_prefix(text: str) -> dict:
    """The JSON report at the start of ``text`` (preflight sbatch prints its notes after it)."""
    start = text.index("{")
    return json.JSONDecoder().raw_decode(text[start:])[0]


def _findings(doc: dict) -> list[tuple[str, str, str, str]]:
    """(code, name, severity, message) of every finding."""
    return [(c["code"], c["name"], f["severity"], f["message"]) for c in doc["checks"] for f in c["findings"]]


def _phases(doc: dict) -> dict[str, dict]:
    return {p["name"]: p for p in doc["phases"]}


def _submit(cli, script: Path, *, cwd: Path, force: bool = True) -> tuple[str, dict]:
    """`preflight sbatch [--force] --format json SCRIPT`: (job id, preflight report)."""
    args = ["sbatch", *(["--force"] if force else []), "--format", "json", str(script)]
    res = _cli(cli, "preflight", *args, cwd=cwd)
    assert res.returncode == 0, res.stderr[-3000:]
    job_id = res.stdout.strip()
    assert job_id.isdigit(), (res.stdout, res.stderr[-2000:])
    assert f"Submitted batch job {job_id}" in res.stderr
    assert (cwd / ".preflight" / "jobs" / f"{job_id}.json").is_file()
    return job_id, _json_prefix(res.stderr)


def _verify(cli, *args: str, cwd: Path, env: dict | None = None):
    res = _cli(cli, "postflight", "verify", *args, "--format", "json", cwd=cwd, env=env, timeout=JOB_TIMEOUT + 60)
    assert res.returncode in (0, 1), res.stderr[-3000:]
    return res.returncode, json.loads(res.stdout)


def _log(job_dir: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted((job_dir / "logs").glob("*.out")))


def _script(body: str, *, name: str, logs: Path, extra: str = "") -> str:
    head = f"#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output={logs}/%x_%j.out\n#SBATCH --partition=debug\n"
    return head + extra + textwrap.dedent(body).lstrip("\n")


def _run_module(args: str, base: Path, log) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", *args.split()],
        cwd=REPO,
        env=_env(base),
        stdout=log,
        stderr=subprocess.STDOUT,
        timeout=600,
    )
    assert proc.returncode == 0, f"python -m {args} failed (exit {proc.returncode}); see {log.name}"


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_base(tmp_path_factory) -> Path:
    """A NANOCHAT_BASE_DIR with the demo corpus, tokenizer, base and mid checkpoints (trained once,
    directly, with the tiny flags). Tests copy what they need; none writes here."""
    if shutil.which("sbatch") is None:
        pytest.skip("no sbatch")  # the slurm marker's probe already skips/fails without a cluster
    root = tmp_path_factory.mktemp("trained")
    base = root / "base"
    with open(root / "train.log", "w") as log:
        _run_module("nanochat.report reset", base, log)
        _run_module(f"nanochat.dataset build {SHARDS}", base, log)
        _run_module(f"nanochat.tok_train {TOK}", base, log)
        _run_module(f"nanochat.base_train --run=dummy {BASE}", base, log)
        _run_module(f"nanochat.mid_train --run=dummy {MID}", base, log)
    assert (base / "mid_checkpoints" / "d2" / "model_000012.pt").is_file(), sorted(p.name for p in base.iterdir())
    return base


def _copy_base(src: Path, dst: Path, parts: tuple[str, ...]) -> Path:
    dst.mkdir(parents=True)
    for name in parts:
        shutil.copytree(src / name, dst / name)
    return dst


# -- 0. the flags above are speedrun's -------------------------------------------------------------
def test_tiny_flags_match_speedrun():
    text = (REPO / "scripts" / "speedrun.sh").read_text()
    for var, value in (("SHARDS", SHARDS), ("TOK", TOK), ("BASE", BASE), ("MID", MID), ("SFT", SFT), ("EVAL", EVAL)):
        assert f'{var}="{value}"' in text, f"scripts/speedrun.sh --tiny changed its {var}; update this module"


# -- 1. the tiny speedrun, run=dummy: every phase done, only the wandb remarks ------------------------
def test_tiny_speedrun_completes_every_phase_done(slurm, cli, tmp_path):
    logs, base = tmp_path / "logs", tmp_path / "base"
    logs.mkdir()
    script = tmp_path / "speedrun.sbatch"
    script.write_text(
        _script(
            f"""
        set -euo pipefail
        export NANOCHAT_BASE_DIR={base}
        export WANDB_RUN=dummy
        cd {REPO}
        bash scripts/speedrun.sh --tiny
        """,
            name="tiny",
            logs=logs,
            extra=TINY_SPEEDRUN_EXTRA,
        )
    )

    job_id, pre = _submit(cli, script, cwd=tmp_path)
    pre_codes = {(code, name, sev) for code, name, sev, _ in _findings(pre)}
    assert ("ENV001", "wandb-disabled", "info") in pre_codes, pre_codes
    infos = {name for _, name, sev in pre_codes if sev == "info"}
    assert infos == {"wandb-disabled"}, pre_codes
    errors = {code for code, _, sev in pre_codes if sev != "info"}
    assert errors == set(), f"preflight findings on the tiny speedrun: {pre_codes}"
    ledger = json.loads((tmp_path / ".preflight" / "jobs" / f"{job_id}.json").read_text())
    # the plan sees the tiny flags through speedrun.sh: postflight looks for base_checkpoints/d2
    assert ledger["expected"]["model_tag"] == "d2" and ledger["expected"]["world_size"] == 1, ledger["expected"]

    code, doc = _verify(cli, job_id, "--wait", "--wait-timeout", str(JOB_TIMEOUT), cwd=tmp_path)
    assert (doc["job"]["state"], doc["job"]["exit_code"]) == ("COMPLETED", "0:0"), (doc["job"], _log(tmp_path)[-3000:])
    phases = _phases(doc)
    expected = {"tokenizer", "base", "mid", "sft", "report"}
    assert {n for n, p in phases.items() if p["expected"]} == expected
    assert {n: p["status"] for n, p in phases.items() if p["expected"]} == dict.fromkeys(expected, "done"), phases
    assert phases["base"]["cause"] == "checkpoint step 40 of 40"
    assert str(base / "base_checkpoints" / "d2" / "model_000040.pt") in phases["base"]["evidence"]
    assert doc["resume"]["phase"] is None and doc["resume"]["commands"] == []
    post = _findings(doc)
    # wandb-dummy-run once per phase that ran with run=dummy, and nothing else
    assert {(c, n, s) for c, n, s, _ in post} == {("LOG001", "wandb-dummy-run", "info")}, post
    assert doc["verdict"] == "pass" and code == 0


def test_tiny_speedrun_preflight_has_no_errors(cli, tmp_path):
    logs, base = tmp_path / "logs", tmp_path / "base"
    logs.mkdir()
    script = tmp_path / "speedrun.sbatch"
    script.write_text(
        _script(
            f"""
        set -euo pipefail
        export NANOCHAT_BASE_DIR={base}
        export WANDB_RUN=dummy
        cd {REPO}
        bash scripts/speedrun.sh --tiny
        """,
            name="tiny",
            logs=logs,
            extra=TINY_SPEEDRUN_EXTRA,
        )
    )
    res = _cli(cli, "preflight", "check", "--format", "json", str(script), cwd=tmp_path)
    doc = json.loads(res.stdout)
    assert [f for f in _findings(doc) if f[2] != "info"] == [] and res.returncode == 0


# -- 2. SFT crashes in a script without set -e: COMPLETED 0:0, silent failure ---------------------------
def test_crashed_sft_without_set_e_is_a_silent_failure(slurm, cli, tmp_path, trained_base):
    logs = tmp_path / "logs"
    logs.mkdir()
    base = _copy_base(
        trained_base, tmp_path / "base", ("base_data", "tokenizer", "base_checkpoints", "mid_checkpoints", "report")
    )
    script = tmp_path / "pipeline.sbatch"
    # no `set -e`: every phase runs whatever the previous one did, and the job's exit status is the last one's
    script.write_text(
        _script(
            f"""
        export NANOCHAT_BASE_DIR={base}
        export OMP_NUM_THREADS=1
        export PYTHONPATH={REPO}
        cd {REPO}
        python -m nanochat.chat_sft --run=dummy {SFT} --data=/nonexistent/missing.jsonl
        python -m nanochat.chat_eval -i sft {EVAL}
        python -m nanochat.report generate
        """,
            name="crash",
            logs=logs,
            extra="#SBATCH --time=00:10:00\n",
        )
    )

    job_id, pre = _submit(cli, script, cwd=tmp_path)
    assert "SB003" in {c for c, _, s, _ in _findings(pre) if s == "error"}, "preflight must flag the missing set -e"

    code, doc = _verify(cli, job_id, "--wait", "--wait-timeout", str(JOB_TIMEOUT), cwd=tmp_path)
    log = _log(tmp_path)
    assert (doc["job"]["state"], doc["job"]["exit_code"]) == ("COMPLETED", "0:0"), (doc["job"], log[-3000:])
    assert "FileNotFoundError" in log and "/nonexistent/missing.jsonl" in log
    assert code == 1 and doc["verdict"] == "fail"

    phases = _phases(doc)
    assert {n: phases[n]["status"] for n in ("tokenizer", "base", "mid")} == dict.fromkeys(
        ("tokenizer", "base", "mid"), "done"
    )
    sft = phases["sft"]
    assert sft["status"] == "failed", phases
    # the data file is opened before the first step: the timeline says the process died during its setup
    assert sft["cause"].startswith("died during setup"), sft
    assert "FileNotFoundError" in sft["cause"] and "missing.jsonl" in sft["cause"], sft

    by_name: dict[str, list[tuple[str, str]]] = {}
    for _c, n, s, msg in _findings(doc):
        by_name.setdefault(n, []).append((s, msg))
    (silent,) = by_name["job-silent-failure"]
    assert silent[0] == "error" and "COMPLETED 0:0" in silent[1] and "sft" in silent[1], silent
    crashed = [m for _, m in by_name.get("phase-crashed", [])]
    assert crashed and any("sft" in m and "missing.jsonl" in m for m in crashed), by_name
    cascade = [m for _, m in by_name.get("cascade-missing-checkpoint", [])]
    assert cascade and any("chat_eval" in m or "sft" in m for m in cascade), by_name
    assert not any(m.startswith("sft") and "missing.jsonl" in m for m in cascade), "the root cause is no cascade"

    resume = doc["resume"]
    assert resume["phase"] == "sft", resume
    cmds = resume["commands"]
    assert cmds[0].startswith("python -m nanochat.chat_sft") and "--data=/nonexistent/missing.jsonl" in cmds[0], cmds
    assert cmds[1:] == [f"python -m nanochat.chat_eval -i sft {EVAL}", "python -m nanochat.report generate"], cmds
    assert not any("base_train" in c or "mid_train" in c for c in cmds)


# -- 3. time limit during base with --signal: TIMEOUT, partial base, resume completes ----------------
# base and mid are both deliberately endless, and the resume below cuts each to 20 steps past where it stopped:
# SLURM sends the USR1 on a periodic pass, 10-40 s into the job (an 800-step base once finished first on a fast
# CI machine and never saw it); mid must still run at the limit (60-90 s), to be killed there
LONG_MID = "--num_iterations=20000"
LONG_BASE = "--num_iterations=30000"
SLOW_BASE = (
    "--depth=2 --max_seq_len=256 --device_batch_size=2 --total_batch_size=512 "
    f"{LONG_BASE} --eval_every=-1 --eval_tokens=2048 --sample_every=-1"
)


@pytest.mark.slow
def test_time_limit_with_signal_saves_then_resume_completes(slurm, cli, tmp_path, trained_base):
    logs = tmp_path / "logs"
    logs.mkdir()
    base = _copy_base(trained_base, tmp_path / "base", ("base_data", "tokenizer"))
    script = tmp_path / "timelimit.sbatch"
    script.write_text(
        _script(
            f"""
        # no set -e: the trap must survive a non-zero wait
        export NANOCHAT_BASE_DIR={base}
        export OMP_NUM_THREADS=1
        export PYTHONPATH={REPO}
        cd {REPO}
        # the trap comes first: a USR1 before it would kill this shell (state FAILED, exit 0:10)
        PID=""
        GOT_USR1=""
        # USR1 can come before the new python process has installed its handler (USR1's default action
        # kills it, exit 138): forward it once the trainer catches USR1 (bit 10 of SigCgt in /proc)
        forward() {{
            GOT_USR1=1
            [ -n "$PID" ] || return 0   # the trainer has not started: forwarded right after it does
            echo "batch shell: USR1, forwarding to $PID"
            while kill -0 $PID 2>/dev/null && ! (( 0x$(awk '/^SigCgt/{{print $2}}' /proc/$PID/status) & 0x200 )); do
                sleep 0.2
            done
            kill -USR1 $PID
        }}
        trap forward USR1
        python -m nanochat.report reset
        python -m nanochat.base_train --run=dummy {SLOW_BASE} &
        PID=$!
        [ -z "$GOT_USR1" ] || forward
        # wait returns early when the trapped USR1 arrives: wait again until the trainer is gone
        wait $PID; rc=$?
        while kill -0 $PID 2>/dev/null; do wait $PID; rc=$?; done
        echo "base_train exited $rc"
        python -m nanochat.mid_train --run=dummy {MID} {LONG_MID}
        python -m nanochat.chat_eval -i mid {EVAL}
        python -m nanochat.chat_sft --run=dummy {SFT}
        python -m nanochat.chat_eval -i sft {EVAL}
        python -m nanochat.report generate
        """,
            name="limit",
            logs=logs,
            extra="#SBATCH --time=00:01:00\n#SBATCH --signal=B:USR1@50\n",
        )
    )

    job_id, _ = _submit(cli, script, cwd=tmp_path)
    info = wait_final(job_id, timeout=JOB_TIMEOUT)
    # this test cluster tracks processes by parent (proctrack/linuxproc): when the batch shell dies of the limit's
    # SIGTERM, SLURM ends the job while mid_train, now an orphan, may still be writing its checkpoint. Wait for it
    # (a cgroup cluster would have waited, or killed it), so that postflight sees what the trainer did
    deadline = time.monotonic() + 30
    while "Received SIGTERM: saved checkpoint" not in _log(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.5)
    log = _log(tmp_path)
    assert info.state == "TIMEOUT", (info, log[-3000:])
    assert "USR1, forwarding" in log and "base_train exited 0" in log, log[-3000:]
    saved = sorted(int(m) for m in re.findall(r"base_checkpoints/d2/model_(\d{6})\.pt", log))
    assert saved and 0 <= saved[-1] < 30000, f"base saved {saved}; log tail:\n{log[-2000:]}"
    step = saved[-1]
    assert (base / "base_checkpoints" / "d2" / f"model_{step:06d}.pt").is_file()

    code, doc = _verify(cli, job_id, cwd=tmp_path)
    assert code == 1 and doc["job"]["state"] == "TIMEOUT"
    names = {n for _, n, _, _ in _findings(doc)}
    assert "job-timeout" in names, _findings(doc)
    phases = _phases(doc)
    assert phases["tokenizer"]["status"] == "done"
    assert phases["base"]["status"] == "partial", phases["base"]
    assert str(step) in phases["base"]["cause"], phases["base"]
    assert "DUE TO TIME LIMIT" in log, log[-2000:]
    resume = doc["resume"]
    assert resume["phase"] == "base", resume
    base_cmd = resume["commands"][0]
    assert base_cmd.startswith("python -m nanochat.base_train "), resume  # CPU job: no torchrun x 8
    assert f"--resume_from_step={step}" in base_cmd and LONG_BASE in base_cmd, base_cmd
    assert base_cmd.count("--resume_from_step") == 1
    (mid_cmd,) = [c for c in resume["commands"] if "mid_train" in c]
    assert mid_cmd.startswith("python -m nanochat.mid_train ") and LONG_MID in mid_cmd, resume
    # SLURM's SIGTERM at the limit made mid save too: it is partial and resumes from its own step
    assert phases["mid"]["status"] == "partial", phases["mid"]
    mid_step = int(re.search(r"--resume_from_step=(\d+)", mid_cmd).group(1))
    assert (base / "mid_checkpoints" / "d2" / f"model_{mid_step:06d}.pt").is_file()
    assert any("chat_sft" in c for c in resume["commands"]) and "report generate" in resume["commands"][-1]

    # run the plan as printed, with the same base dir, and verify again from its log and checkpoints;
    # only base's and mid's deliberately endless --num_iterations are cut to 20 steps after where each stopped
    resume_log = logs / "resume.out"
    base_end = step + 20
    commands = [
        c.replace(LONG_BASE, f"--num_iterations={base_end}").replace(LONG_MID, f"--num_iterations={mid_step + 20}")
        for c in resume["commands"]
    ]
    with open(resume_log, "w") as out:
        for cmd in commands:
            out.write(f"$ {cmd}\n")
            out.flush()
            proc = subprocess.run(
                cmd, shell=True, cwd=REPO, env=_env(base), stdout=out, stderr=subprocess.STDOUT, timeout=600
            )
            assert proc.returncode == 0, f"{cmd} failed; see {resume_log}"
    assert f"Resuming optimization from step {step}" in resume_log.read_text()
    assert f"Resuming optimization from step {mid_step}" in resume_log.read_text()
    assert (base / "base_checkpoints" / "d2" / f"model_{base_end:06d}.pt").is_file()

    code, again = _verify(
        cli, "--log", str(resume_log), "--base-dir", str(base), "--profile", "bundled", cwd=tmp_path, env=_env(base)
    )
    phases = _phases(again)
    assert {n: p["status"] for n, p in phases.items() if p["expected"]} == dict.fromkeys(
        ("tokenizer", "base", "mid", "sft", "report"), "done"
    ), phases
    assert phases["base"]["cause"] == f"checkpoint step {base_end} of {base_end}", phases["base"]
    assert again["resume"]["commands"] == [] and code == 0, _findings(again)
