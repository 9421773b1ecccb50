"""Faults in the bundled trainer: a full disk while saving, stop signals, resume.

The full disk is a real 2 MB tmpfs (we run as root in CI; skipped with the reason where mount is
refused). Signals and resume run the real trainer (`python -m nanochat.base_train`) on CPU at depth 2.
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

import factories

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small filesystem for the full-disk test")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True,
                       timeout=20)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a 2 MB tmpfs here (needs root / CAP_SYS_ADMIN): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=20)


def _save_small_then_big(d: Path):
    import torch

    from nanochat.checkpoint import save_checkpoint

    save_checkpoint(str(d), 1, {"w": torch.ones(1000)}, [{"m": torch.ones(10)}], {"step": 1})
    with pytest.raises(Exception) as info:
        save_checkpoint(str(d), 2, {"w": torch.ones(1_000_000)}, [{"m": torch.ones(10)}], {"step": 2})
    return info.value


def test_full_disk_keeps_previous_checkpoint(small_disk, tally):
    import torch

    from nanochat.checkpoint import find_last_step, load_checkpoint

    d = small_disk / "base_checkpoints" / "d2"
    _save_small_then_big(d)
    tally.fault("disk full while saving")
    assert find_last_step(str(d)) == 1, "the failed save left a step that loaders would pick"
    model, optim, meta = load_checkpoint(str(d), 1, "cpu", load_optimizer=True)
    assert meta == {"step": 1} and torch.equal(model["w"], torch.ones(1000)) and torch.equal(optim[0]["m"], torch.ones(10))


def test_full_disk_message_is_clear(small_disk, tally):
    d = small_disk / "ck"
    err = _save_small_then_big(d)
    tally.fault("disk full while saving")
    msg = f"{type(err).__name__}: {err}"
    assert "model_000002" in msg or "No space left" in msg or "disk" in msg.lower(), \
        f"the failed save does not say what failed or why: {msg[:300]}"


def test_full_disk_leaves_no_temp_file(small_disk, tally):
    """A half-written temp file left on a full disk makes the next save (e.g. the SIGTERM save) fail too."""
    d = small_disk / "ck"
    _save_small_then_big(d)
    tally.fault("disk full while saving")
    leftovers = [p.name for p in d.iterdir() if ".tmp" in p.name]
    assert not leftovers, f"temp files left on the full disk: {leftovers}"


# -- signals and resume (the real trainer on CPU) ----------------------------------------------------
def _trainer_env(tmp: Path) -> tuple[Path, dict[str, str]]:
    base = tmp / "base"
    factories.write_tokenizer(base)
    env = dict(os.environ, NANOCHAT_BASE_DIR=str(base), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    code = ("from nanochat.dataset import build_shards, demo_documents; "
            f"build_shards(demo_documents(), num_shards=2, data_dir={str(base / 'base_data')!r})")
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True, timeout=120)
    return base, env


TRAIN = ["--depth=2", "--max_seq_len=32", "--device_batch_size=2", "--total_batch_size=64", "--eval_every=-1",
         "--eval_tokens=64", "--sample_every=-1", "--device_type=cpu"]


def _train(env, *args, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nanochat.base_train", *TRAIN, *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_step(proc: subprocess.Popen, n: int, timeout: float) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.match(r"step (\d+)/", line)
        if m and int(m.group(1)) >= n:
            return lines
    raise AssertionError("the trainer did not reach step %d in %.0fs:\n%s" % (n, timeout, "".join(lines[-30:])))


@pytest.mark.parametrize("sig", [signal.SIGUSR1, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_stop_signal_saves_and_resume_continues(sig, tmp_path, tally):
    base, env = _trainer_env(tmp_path)
    proc = _train(env, "--num_iterations=10000", cwd=ROOT)
    try:
        lines = _wait_for_step(proc, 2, timeout=180)
        proc.send_signal(sig)
        tally.fault(signal.Signals(sig).name.lower())
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(lines) + out
    assert proc.returncode == 0, f"exit {proc.returncode} after {sig.name}:\n{text[-3000:]}"
    from nanochat.checkpoint import find_last_step, load_checkpoint

    d = base / "base_checkpoints" / "d2"
    saved = find_last_step(str(d))
    assert saved >= 2, text[-2000:]
    load_checkpoint(str(d), saved, "cpu", load_optimizer=True)

    resumed = subprocess.run([sys.executable, "-m", "nanochat.base_train", *TRAIN, f"--resume_from_step={saved}",
                              f"--num_iterations={saved + 2}"], env=env, cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    steps = [int(m.group(1)) for m in re.finditer(r"^step (\d+)/", resumed.stdout, re.M)]
    assert steps and steps[0] == saved, f"resumed run started at step {steps[:1]}, expected {saved}"
    assert find_last_step(str(d)) == saved + 2
