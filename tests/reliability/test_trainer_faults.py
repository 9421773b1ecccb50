"""Faults in the bundled trainer: a full disk while saving.

The full disk is a real 2 MB tmpfs (we run as root in CI; skipped with the reason where mount is
refused). Stop signals, SIGKILL and resume are covered by tests/nanochat/test_nanochat_training.py
(test_stop_signal_*, test_sigkill_never_leaves_a_broken_latest_checkpoint, test_resume_*): not duplicated.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small filesystem for the full-disk test")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True, timeout=20
    )
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
    assert (
        meta == {"step": 1} and torch.equal(model["w"], torch.ones(1000)) and torch.equal(optim[0]["m"], torch.ones(10))
    )


def test_full_disk_message_is_clear(small_disk, tally):
    d = small_disk / "ck"
    err = _save_small_then_big(d)
    tally.fault("disk full while saving")
    msg = f"{type(err).__name__}: {err}"
    assert "model_000002" in msg or "No space left" in msg or "disk" in msg.lower(), (
        f"the failed save does not say what failed or why: {msg[:300]}"
    )


def test_full_disk_leaves_no_temp_file(small_disk, tally):
    """A half-written temp file left on a full disk makes the next save (e.g. the SIGTERM save) fail too."""
    d = small_disk / "ck"
    _save_small_then_big(d)
    tally.fault("disk full while saving")
    leftovers = [p.name for p in d.iterdir() if ".tmp" in p.name]
    assert not leftovers, f"temp files left on the full disk: {leftovers}"
