"""The stop-signal path, for real: SLURM's SIGUSR1 reaches the batch shell of scripts/speedrun.slurm,
which forwards SIGTERM through torchrun to the training workers; they save and exit, the shell does
not start the next phase, and a resumed run continues from the saved step. Also: a signal before or
while a phase starts, the demo's batch script as `./run demo` submits it, and a signal during a
trainer's start-up (its handler is installed before torch is imported).

Runs under real torchrun on whatever device is there (CPU with gloo here, CUDA on a GPU node);
the shell functions are taken from speedrun.slurm itself, so the test tracks the script.
"""

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

ROOT = Path(__file__).resolve().parents[2]
SMALL = [
    "--depth=2",
    "--max_seq_len=128",
    "--device_batch_size=4",
    "--total_batch_size=1024",
    "--eval_every=-1",
    "--eval_tokens=4096",  # the final evaluation of the resumed run: 4 steps, not the default 20,480 on a CPU
    "--sample_every=-1",
    "--run=dummy",
]


def _slurm_functions() -> str:
    text = (ROOT / "scripts" / "speedrun.slurm").read_text()
    start = text.index('CHILD=""')
    end = text.index("\n}\n", text.index("finish_phase() {")) + 3
    return text[start:end]


def _env(base: Path) -> dict:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        "NANOCHAT_BASE_DIR": str(base),
        "PYTHONPATH": path,
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="module")
def data_and_tokenizer(tmp_path_factory) -> Path:
    """A NANOCHAT_BASE_DIR with demo shards and a tokenizer (tests copy it)."""
    base = tmp_path_factory.mktemp("signal") / "base"
    for cmd in (
        ["nanochat.dataset", "build", "--num-shards", "2", "--chars-per-shard", "300000"],
        ["nanochat.tok_train", "--max_chars=600000", "--vocab_size=512"],
    ):
        subprocess.run(
            [sys.executable, "-m", *cmd], env=_env(base), cwd=ROOT, check=True, capture_output=True, timeout=300
        )
    return base


def _wait_for_step(log: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 600
    while not re.search(r"^step 0000[5-9]", log.read_text(errors="replace"), re.M):
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, "training never reached step 5"
        time.sleep(0.5)


@pytest.mark.slow
def test_usr1_is_forwarded_through_torchrun_then_resume(tmp_path, data_and_tokenizer):
    base = tmp_path / "base"
    shutil.copytree(data_and_tokenizer, base)
    env = _env(base)
    py = sys.executable
    torchrun = [
        py,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=1",
        "-m",
        "nanochat.base_train",
        "--",
    ]
    harness = tmp_path / "phase.sh"
    harness.write_text(
        "#!/bin/bash\nset -euo pipefail\n"
        + _slurm_functions()
        + "\n"
        + " ".join(torchrun + SMALL + ["--num_iterations=1000000", "--save_every=-1"])
        + " &\n"
        + "PID=$!; CHILD=$PID\nwait $PID && rc=0 || rc=$?\nfinish_phase base $PID $rc\n"
        + "echo NEXT-PHASE-STARTED\n"
    )
    log = tmp_path / "phase.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["bash", str(harness)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _wait_for_step(log, proc)
        sent = time.monotonic()
        proc.send_signal(signal.SIGUSR1)  # what SLURM sends with --signal=B:USR1@N
        rc = proc.wait(timeout=180)
    text = log.read_text(errors="replace")
    assert rc == 0, text[-3000:]
    assert time.monotonic() - sent < 180
    assert "Received USR1, forwarding SIGTERM to the running phase" in text
    assert "Stopped by a signal during base" in text and "NEXT-PHASE-STARTED" not in text

    from nanochat.checkpoint import find_last_step

    ckpt_dir = base / "base_checkpoints" / "d2"
    step = find_last_step(str(ckpt_dir))
    assert step >= 5 and (ckpt_dir / f"meta_{step:06d}.json").exists()
    resumed = subprocess.run(
        torchrun + SMALL + [f"--num_iterations={step + 3}", f"--resume_from_step={step}"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert f"Resuming optimization from step {step}" in resumed.stdout + resumed.stderr
    assert (ckpt_dir / f"model_{step + 3:06d}.pt").exists()


def test_usr1_before_training_starts_no_phase(tmp_path):
    # the signal comes while a foreground step runs (tok_train in the script, `sleep` here): bash runs the
    # trap after it, and base training must not start only to be killed at the limit without a checkpoint
    harness = tmp_path / "early.sh"
    harness.write_text(
        "#!/bin/bash\nset -euo pipefail\n"
        + _slurm_functions()
        + "\n"
        + "echo READY\nsleep 2\nnot_stopped nanochat.base_train\necho BASE-STARTED\n"
    )
    log = tmp_path / "early.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["bash", str(harness)], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 30
        while "READY" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        proc.send_signal(signal.SIGUSR1)
        rc = proc.wait(timeout=30)
    text = log.read_text()
    assert rc == 0, text
    assert "Received USR1 while no training phase runs" in text
    assert "Stopped by a signal before nanochat.base_train started" in text and "BASE-STARTED" not in text


@pytest.mark.slow
def test_demo_script_saves_on_usr1_and_starts_no_next_phase(tmp_path, data_and_tokenizer):
    # the batch script `./run demo` submits, as written (its data steps dropped: the fixture made them),
    # with an endless base phase; USR1 as SLURM sends it with --signal=B:USR1@60
    from preflight.demo import SCRIPT

    base = tmp_path / "base"
    shutil.copytree(data_and_tokenizer, base)
    script = SCRIPT.format(logs=tmp_path, base=base, repo=ROOT, python=sys.executable)
    script = re.sub(r"^.*-m nanochat\.(dataset build|tok_train) .*\n", "", script, flags=re.M)
    script = script.replace("--num_iterations=40", "--num_iterations=1000000")
    harness = tmp_path / "demo.sbatch"
    harness.write_text(script)
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["bash", str(harness)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        _wait_for_step(log, proc)
        proc.send_signal(signal.SIGUSR1)
        rc = proc.wait(timeout=180)
    text = log.read_text(errors="replace")
    assert rc == 0, text[-3000:]
    assert "stopped by USR1 before the time limit; the checkpoint is saved" in text and "==> phase: mid" not in text
    from nanochat.checkpoint import find_last_step

    step = find_last_step(str(base / "base_checkpoints" / "d2"))
    assert step >= 5 and f"Received SIGUSR1: saved checkpoint at step {step}" in text


def test_signal_while_a_phase_starts_is_forwarded_to_it(tmp_path):
    # the signal came between `torchrun ... &` and `started $PID` (STOPPED is set, CHILD was empty):
    # started passes it on at once instead of letting the phase run to the time limit
    harness = tmp_path / "race.sh"
    harness.write_text(
        "#!/bin/bash\nset -euo pipefail\n"
        + _slurm_functions()
        + "\n"
        + "STOPPED=1\nsleep 120 &\nPID=$!; started $PID\nwait $PID && rc=0 || rc=$?\n"
        + "finish_phase nanochat.base_train $PID $rc\necho NEXT-PHASE-STARTED\n"
    )
    t0 = time.monotonic()
    proc = subprocess.run(["bash", str(harness)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert time.monotonic() - t0 < 30, "the phase was not stopped"
    assert "Stopped by a signal during nanochat.base_train" in proc.stdout and "NEXT-PHASE-STARTED" not in proc.stdout


@pytest.mark.slow
def test_usr1_during_start_up_still_saves(tmp_path, data_and_tokenizer):
    # a forwarded signal can come while python is still importing torch: the handler is installed
    # before that import, so the trainer saves at its first step instead of dying of SIGUSR1
    base = tmp_path / "base"
    shutil.copytree(data_and_tokenizer, base)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanochat.base_train", *SMALL, "--num_iterations=1000000"],
        env=_env(base),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(0.5)  # python is up, torch is not imported yet (it takes seconds here)
    proc.send_signal(signal.SIGUSR1)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    assert "Received SIGUSR1: saved checkpoint at step 0" in out, out[-3000:]


@pytest.mark.parametrize("name", ["base_train", "mid_train", "chat_sft"])
def test_every_trainer_installs_its_handler_before_torch(name):
    # mid and SFT need checkpoints to get that far: base's run above is the behaviour, this the same order
    lines = (ROOT / "nanochat" / f"{name}.py").read_text().splitlines()
    install = lines.index(
        "install_stop_handlers()  # first: a signal that comes while torch is imported must not kill us"
    )
    torch_import = next(i for i, line in enumerate(lines) if line.startswith(("import torch", "from torch")))
    assert install < torch_import
