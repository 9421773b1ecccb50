"""
Training behaviour of the bundled trainer on CPU (tiny model, depth 2):
determinism, exact resume, stop signals, SIGKILL safety of checkpoints, 2-process torchrun (gloo),
and the configurator's errors.
"""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nc_helpers import REPO, TINY_BASE, nc_env, run_module


def ckpt_dir(base, tag, phase="base_checkpoints"):
    return base / phase / tag


def load_sd(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def max_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


# -----------------------------------------------------------------------------


def test_determinism_same_seed_same_loss(tiny_base_dir):
    outs = []
    for tag in ("det_a", "det_b"):
        p = run_module(
            tiny_base_dir,
            "nanochat.base_train",
            *TINY_BASE,
            "--num_iterations=5",
            "--eval_every=-1",
            f"--model_tag={tag}",
        )
        outs.append(re.findall(r"\| loss: ([\d.]+) \|", p.stdout))
    assert len(outs[0]) == 5 and outs[0] == outs[1], f"losses differ: {outs}"
    a = load_sd(ckpt_dir(tiny_base_dir, "det_a") / "model_000005.pt")
    b = load_sd(ckpt_dir(tiny_base_dir, "det_b") / "model_000005.pt")
    assert max_diff(a, b) == 0.0


def test_resume_equals_uninterrupted_run(tiny_base_dir):
    """Tolerance: bitwise (max |diff| == 0) on CPU fp32. The data loader resumes exactly (position of the first
    unconsumed token), optimizer states, schedules and the loss EMA come back from the checkpoint."""
    n = 8
    run_module(
        tiny_base_dir, "nanochat.base_train", *TINY_BASE, f"--num_iterations={n}", "--eval_every=-1", "--model_tag=full"
    )
    # the interrupted run: periodic save at step 4, then resume from it
    run_module(
        tiny_base_dir,
        "nanochat.base_train",
        *TINY_BASE,
        f"--num_iterations={n}",
        "--eval_every=-1",
        "--save_every=4",
        "--model_tag=resumed",
    )
    d = ckpt_dir(tiny_base_dir, "resumed")
    os.remove(d / f"model_{n:06d}.pt")
    os.remove(d / f"meta_{n:06d}.json")
    p = run_module(
        tiny_base_dir,
        "nanochat.base_train",
        *TINY_BASE,
        f"--num_iterations={n}",
        "--eval_every=-1",
        "--model_tag=resumed",
        "--resume_from_step=4",
    )
    assert "Resuming optimization from step 4" in p.stdout
    assert "step 00004/00008" in p.stdout and "step 00003/00008" not in p.stdout
    full = load_sd(ckpt_dir(tiny_base_dir, "full") / f"model_{n:06d}.pt")
    resumed = load_sd(d / f"model_{n:06d}.pt")
    assert max_diff(full, resumed) == 0.0, "resumed run must reproduce the uninterrupted one"
    m_full = json.load(open(ckpt_dir(tiny_base_dir, "full") / f"meta_{n:06d}.json"))
    m_res = json.load(open(d / f"meta_{n:06d}.json"))
    assert m_full["val_bpb"] == m_res["val_bpb"]
    assert m_full["loop_state"]["smooth_train_loss"] == m_res["loop_state"]["smooth_train_loss"]
    assert set(m_res) >= {
        "step",
        "val_bpb",
        "model_config",
        "user_config",
        "device_batch_size",
        "max_seq_len",
        "dataloader_state_dict",
        "loop_state",
    }
    assert {"pq_idx", "rg_idx"} <= set(m_res["dataloader_state_dict"])


def _wait_for(proc, pattern, timeout=120):
    """Read proc.stdout lines until one matches; returns the lines read."""
    lines = []
    t0 = time.time()
    while time.time() - t0 < timeout:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"{pattern!r} not seen; output:\n{''.join(lines)[-3000:]}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_stop_signal_saves_and_exits_zero(tiny_base_dir, sig):
    tag = f"sig_{sig.name}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nanochat.base_train",
            *TINY_BASE,
            "--num_iterations=10000",
            "--eval_every=-1",
            f"--model_tag={tag}",
        ],
        env=nc_env(tiny_base_dir),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(proc, r"^step 00002/")
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-2000:]
    m = re.search(rf"Received {sig.name}: saved checkpoint at step (\d+)", out)
    assert m, out[-2000:]
    step = int(m.group(1))
    from nanochat.checkpoint import find_last_step

    d = ckpt_dir(tiny_base_dir, tag)
    assert find_last_step(str(d)) == step
    assert (d / f"optim_{step:06d}_rank0.pt").exists()
    # and training resumes from it
    p = run_module(
        tiny_base_dir,
        "nanochat.base_train",
        *TINY_BASE,
        f"--num_iterations={step + 2}",
        "--eval_every=-1",
        f"--model_tag={tag}",
        f"--resume_from_step={step}",
    )
    assert f"Resuming optimization from step {step}" in p.stdout


def test_sigkill_never_leaves_a_broken_latest_checkpoint(tiny_base_dir, monkeypatch):
    """Checkpoint every step, SIGKILL at random moments; whatever is left, the latest complete step loads."""
    monkeypatch.setenv("NANOCHAT_BASE_DIR", str(tiny_base_dir))
    from nanochat.checkpoint import build_model, find_last_step, load_checkpoint

    rng = random.Random(1234)
    tag = "killed"
    d = ckpt_dir(tiny_base_dir, tag)
    kills = 0
    for _attempt in range(4):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nanochat.base_train",
                *TINY_BASE,
                "--num_iterations=10000",
                "--eval_every=-1",
                "--save_every=1",
                f"--model_tag={tag}",
            ],
            env=nc_env(tiny_base_dir),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            _wait_for(proc, r"Saved (model parameters|metadata) to")  # checkpointing has begun
            time.sleep(rng.uniform(0.0, 1.5))
            proc.kill()
            proc.wait(timeout=30)
            kills += 1
        finally:
            if proc.poll() is None:
                proc.kill()
        step = find_last_step(str(d))
        model, _, meta = build_model(str(d), step, torch.device("cpu"), phase="eval")
        assert meta["step"] == step
        _, optim, _ = load_checkpoint(str(d), step, torch.device("cpu"), load_optimizer=True)
        assert isinstance(optim, list) and len(optim) == 2
    assert kills == 4
    # the next save cleans up temp files of the killed writers
    run_module(
        tiny_base_dir, "nanochat.base_train", *TINY_BASE, "--num_iterations=1", "--eval_every=-1", f"--model_tag={tag}"
    )
    assert not [f for f in os.listdir(d) if ".tmp." in f], os.listdir(d)


def test_torchrun_two_processes_gloo(tiny_base_dir):
    env = nc_env(tiny_base_dir)
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "nanochat.base_train",
            "--",
            "--depth=2",
            "--max_seq_len=256",
            "--device_batch_size=4",
            "--total_batch_size=2048",
            "--eval_tokens=4096",
            "--sample_every=-1",
            "--device_type=cpu",
            "--num_iterations=4",
            "--eval_every=-1",
            "--model_tag=ddp",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert "Distributed world size: 2" in out
    assert "gradient accumulation steps: 1" in out
    d = ckpt_dir(tiny_base_dir, "ddp")
    for f in ("model_000004.pt", "meta_000004.json", "optim_000004_rank0.pt", "optim_000004_rank1.pt"):
        assert (d / f).exists(), f
    meta = json.load(open(d / "meta_000004.json"))
    assert len(meta["dataloader_state_dicts"]) == 2
    # replicated optimizer: both ranks hold the same state after gradient averaging
    o0, o1 = load_sd(d / "optim_000004_rank0.pt"), load_sd(d / "optim_000004_rank1.pt")
    assert torch.equal(o0[1]["state"][0]["momentum_buffer"], o1[1]["state"][0]["momentum_buffer"])


# -----------------------------------------------------------------------------
# configurator


def test_configurator_overrides_and_errors(capsys):
    from nanochat.configurator import configure

    settings = {"depth": 20, "run": "dummy", "lr": 0.02, "flag": True}
    cfg = configure(settings, ["--depth=4", "--run=myrun", "--lr=0.1"])
    assert cfg == {"depth": 4, "run": "myrun", "lr": 0.1, "flag": True}
    out = capsys.readouterr().out
    assert "Overriding: depth = 4" in out and "Overriding: run = myrun" in out
    with pytest.raises(SystemExit, match="Unknown config key: detph"):
        configure(dict(settings), ["--detph=4"])
    with pytest.raises(SystemExit, match=r"has no '='.*--depth=VALUE"):
        configure(dict(settings), ["--depth", "4"])
    with pytest.raises(SystemExit, match="Type mismatch for --depth: got float"):
        configure(dict(settings), ["--depth=4.5"])


def test_configurator_error_from_cli_is_clean(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "nanochat.base_train", "--depth", "4"],
        env=nc_env(tmp_path),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode != 0
    assert "has no '='" in p.stderr and "Traceback" not in p.stderr


def test_wandb_missing_gives_clear_message(tmp_path):
    pytest.importorskip("torch")
    try:
        import wandb  # noqa: F401

        pytest.skip("wandb is installed here")
    except ImportError:
        pass
    from nanochat.common import DummyWandb, init_wandb

    assert isinstance(init_wandb("dummy", True, "p", {}), DummyWandb)
    with pytest.raises(SystemExit, match="wandb is not installed"):
        init_wandb("myrun", True, "p", {})


# -----------------------------------------------------------------------------
# mid and SFT: resume and signals

MID = [
    "--max_seq_len=256",
    "--device_batch_size=4",
    "--total_batch_size=2048",
    "--task_size=200",
    "--eval_tokens=4096",
    "--device_type=cpu",
]
SFT = [
    "--device_batch_size=2",
    "--target_examples_per_step=4",
    "--task_size=100",
    "--eval_steps=2",
    "--eval_metrics_max_problems=2",
    "--device_type=cpu",
]


@pytest.fixture(scope="module")
def base_ckpt(tiny_base_dir):
    import shutil

    run_module(
        tiny_base_dir, "nanochat.base_train", *TINY_BASE, "--num_iterations=6", "--eval_every=-1", "--model_tag=mb"
    )
    for tag in ("mb2", "mb3"):
        shutil.copytree(ckpt_dir(tiny_base_dir, "mb"), ckpt_dir(tiny_base_dir, tag), dirs_exist_ok=True)
    return tiny_base_dir


def test_mid_and_sft_resume_equal_uninterrupted(base_ckpt):
    """Tolerance: bitwise on CPU, as for base_train."""
    import shutil

    base = base_ckpt
    n = 6
    run_module(base, "nanochat.mid_train", *MID, f"--num_iterations={n}", "--eval_every=-1", "--model_tag=mb")
    run_module(
        base,
        "nanochat.mid_train",
        *MID,
        f"--num_iterations={n}",
        "--eval_every=-1",
        "--save_every=3",
        "--model_tag=mb2",
    )
    d = ckpt_dir(base, "mb2", "mid_checkpoints")
    os.remove(d / f"model_{n:06d}.pt")
    os.remove(d / f"meta_{n:06d}.json")
    p = run_module(
        base,
        "nanochat.mid_train",
        *MID,
        f"--num_iterations={n}",
        "--eval_every=-1",
        "--model_tag=mb2",
        "--resume_from_step=3",
    )
    assert "Resuming optimization from step 3" in p.stdout
    full = load_sd(ckpt_dir(base, "mb", "mid_checkpoints") / f"model_{n:06d}.pt")
    assert max_diff(full, load_sd(d / f"model_{n:06d}.pt")) == 0.0, (
        "mid: resumed run must reproduce the uninterrupted one"
    )
    assert json.load(open(d / f"meta_{n:06d}.json"))["step"] == n

    # SFT from identical mid checkpoints: uninterrupted (mb) vs stopped at 3 and resumed (mb3)
    shutil.copytree(
        ckpt_dir(base, "mb", "mid_checkpoints"), ckpt_dir(base, "mb3", "mid_checkpoints"), dirs_exist_ok=True
    )
    run_module(base, "nanochat.chat_sft", *SFT, f"--num_iterations={n}", "--model_tag=mb")
    run_module(base, "nanochat.chat_sft", *SFT, f"--num_iterations={n}", "--save_every=3", "--model_tag=mb3")
    d = ckpt_dir(base, "mb3", "chatsft_checkpoints")
    assert (d / "optim_000003_rank0.pt").exists(), "intermediate SFT saves carry the optimizer (for resume)"
    assert not (d / f"optim_{n - 1:06d}_rank0.pt").exists(), "the final SFT save is classic: no optimizer file"
    os.remove(d / f"model_{n - 1:06d}.pt")
    os.remove(d / f"meta_{n - 1:06d}.json")
    p = run_module(base, "nanochat.chat_sft", *SFT, f"--num_iterations={n}", "--model_tag=mb3", "--resume_from_step=3")
    assert (
        "Resuming optimization from step 3" in p.stdout
        and "Step 00003/00006" in p.stdout
        and "Step 00002/00006" not in p.stdout
    )
    full = load_sd(ckpt_dir(base, "mb", "chatsft_checkpoints") / f"model_{n - 1:06d}.pt")
    assert max_diff(full, load_sd(d / f"model_{n - 1:06d}.pt")) == 0.0, (
        "sft: resumed run must reproduce the uninterrupted one"
    )


@pytest.mark.parametrize(
    "module,args,pattern",
    [
        ("nanochat.mid_train", MID + ["--num_iterations=100000", "--eval_every=-1"], r"^step 00002 "),
        (
            "nanochat.chat_sft",
            SFT + ["--num_iterations=100000", "--eval_every=100000", "--eval_metrics_every=100000"],
            r"^Step 00002/",
        ),
    ],
)
def test_stop_signal_mid_and_sft(base_ckpt, module, args, pattern):
    tag = "mb"
    phase_dir = "mid_checkpoints" if module == "nanochat.mid_train" else "chatsft_checkpoints"
    if module == "nanochat.chat_sft" and not (base_ckpt / "mid_checkpoints" / tag).exists():
        run_module(base_ckpt, "nanochat.mid_train", *MID, "--num_iterations=2", "--eval_every=-1", f"--model_tag={tag}")
    out_tag = "sig" + module.split(".")[1]
    import shutil

    src = base_ckpt / ("base_checkpoints" if module == "nanochat.mid_train" else "mid_checkpoints") / tag
    shutil.copytree(src, src.parent / out_tag, dirs_exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args, f"--model_tag={out_tag}"],
        env=nc_env(base_ckpt),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(proc, pattern)
        proc.send_signal(signal.SIGUSR1)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-2000:]
    m = re.search(r"Received SIGUSR1: saved checkpoint at step (\d+)", out)
    assert m, out[-2000:]
    from nanochat.checkpoint import find_last_step

    assert find_last_step(str(base_ckpt / phase_dir / out_tag)) == int(m.group(1))
