"""Good/bad cases for the LOG checks: real log text in every era's format (tests/factories.py)."""

from __future__ import annotations

import re

from preflight.testing import Scenario, bad, good
from tests import factories as F

OFFLINE = (
    "requests.exceptions.ConnectionError",
    "HTTPSConnectionPool(host='huggingface.co', port=443): Max retries exceeded (NameResolutionError)",
)
CASCADE = ("FileNotFoundError", "[Errno 2] No such file or directory: '/base/mid_checkpoints'")


def _log(text: str, **kw) -> Scenario:
    return Scenario(stage="post", files={"logs/run.out": text}, logs=["logs/run.out"], env={}, **kw)


@good("phase-crashed")
@good("phase-no-steps")
@good("cascade-missing-checkpoint")
@good("download-incomplete")
@good("time-limit-cancel")
@good("nan-loss")
@good("training-stopped-early")
@good("model-tag-mismatch")
@good("loss-diverged")
@good("command-not-found")
@good("loss-impossibly-low")
@good("lr-schedule-overrun")
@good("install-failed")
@good("slow-attention-fallback")
@good("validation-got-worse")
def _clean_classic_run():
    return _log(F.run_log())


@good("wandb-dummy-run")
def _named_wandb_run():
    return _log(F.run_log(per_phase={p: {"run": "speedrun"} for p in ("base", "mid", "sft")}))


@bad("wandb-dummy-run")
def _dummy_run():
    return _log(F.run_log())


@bad("phase-crashed")
def _mid_offline_crash():
    return _log(F.run_log(phases=("base", "mid"), per_phase={"mid": {"crash": OFFLINE, "crash_at": "setup"}}))


@bad("phase-no-steps")
def _mid_died_in_setup():
    # the .out alone: the echo header, the start lines, then the next phase (the traceback is in the .err)
    return _log(
        F.run_log(phases=("base",), report=False)
        + "[3/5] Midtraining (teaching conversation format)...\nOverriding: run = dummy\n"
        "Autodetected device type: cuda\nAutodetected device type: cuda\n"
    )


@bad("cascade-missing-checkpoint")
def _sft_cannot_find_mid():
    return _log(
        F.run_log(
            per_phase={"mid": {"crash": OFFLINE, "crash_at": "setup"}, "sft": {"crash": CASCADE, "crash_at": "setup"}}
        )
    )


@bad("download-incomplete")
def _231_of_240_shards():
    return _log(F.run_log(downloads=(231, 240)))


@bad("time-limit-cancel")
def _cancelled_in_base():
    return _log(F.run_log(per_phase={"base": {"steps": 7, "save": False}}, cancel_after="base"))


@bad("nan-loss")
def _loss_went_nan():
    return _log(F.run_log(phases=("base",), per_phase={"base": {"nan_at": 5}}))


@bad("training-stopped-early")
def _base_log_ends_mid_training():
    text = F.run_log(phases=("base",), report=False)
    cut = text.index("step 00012/")
    return _log(text[:cut])


def _with_loss(text: str, step_prefix: str, loss: str) -> str:
    """The log with the loss of the one step line that starts with step_prefix replaced."""
    new, n = re.subn(rf"^({re.escape(step_prefix)}[^|]*\| loss: )\S+", rf"\g<1>{loss}", text, count=1, flags=re.M)
    assert n == 1, step_prefix
    return new


@bad("loss-diverged")
def _mid_blew_up_from_a_trained_base():  # a real mid run's shape: 13.07, 16.04 at its first steps, then flat at 6.88
    return _log(_with_loss(F.run_log(), "step 00002 (", "16.036624"))


@bad("loss-diverged")
def _base_blew_up_after_warmup():
    text = F.run_log(phases=("base",), per_phase={"base": {"planned": 400}})
    return _log(_with_loss(text, "step 00300/", "12.5"))


@good("loss-diverged")
def _base_from_scratch_starts_near_uniform():  # a model trained from scratch starts at ~ln(vocab): not divergence
    text = F.run_log(phases=("base",), per_phase={"base": {"planned": 400}})
    return _log(_with_loss(text, "step 00001/", "11.5"))


@bad("loss-impossibly-low")
def _base_whose_model_reads_its_targets():  # a fork's own attention kernel: validation bpb 0.0048 at step 20
    text = F.run_log(phases=("base",))
    return _log(text.replace("Step 00020 | Validation bpb: 1.2345", "Step 00020 | Validation bpb: 0.0048", 1))


@bad("command-not-found")
def _uv_not_on_the_nodes_path():  # a fork's speedrun: `uv sync` at its line 52, then every phase without its venv
    return _log("runs/speedrun.sh: line 52: uv: command not found\n" + F.run_log(phases=("base",)))


@bad("command-not-found")
def _a_bash_script_run_by_dash():  # no #! line: sbatch's /bin/sh has no `source`
    return _log("/var/lib/slurm/slurmd/job713551/slurm_script: 4: source: not found\n")


@bad("slow-attention-fallback")
def _sdpa_with_a_sliding_window():  # a no-mid era d24 on 4 x RTX 3090: no Flash Attention 3, the default SSSL
    return _log(
        "WARNING: Flash Attention 3 not available, using PyTorch SDPA fallback\n"
        "WARNING: SDPA has no support for sliding window attention (window_pattern='SSSL'). Your GPU utilization "
        "will be terrible.\n" + F.run_log(phases=("base",))
    )


@bad("install-failed")
def _uv_sync_filled_the_home_quota():  # a fork's speedrun on an AFS home: every phase then lacked its modules
    return _log(
        "Downloading torch (859.2MiB)\n"
        "  \u00d7 Failed to download `nvidia-cufft-cu12==11.3.3.83`\n"
        "  \u251c\u2500\u25b6 Failed to extract archive\n"
        "  \u2570\u2500\u25b6 failed to flush file `/home/me/.cache/uv/.tmp/libcufft.so.11`:\n"
        "      Disk quota exceeded (os error 122)\n" + F.run_log(phases=("base",))
    )


@bad("install-failed")
def _pip_hit_the_quota():  # pip says it on one line
    return _log("ERROR: Could not install packages due to an OSError: [Errno 122] Disk quota exceeded\n")


@bad("model-tag-mismatch")
def _mid_guessed_an_older_bigger_base():  # karpathy/nanochat#542's shape: base saved d2, mid picked d26
    return _log(F.run_log(per_phase={"mid": {"tag": "d26", "guessed": True}}))


def _mid_guessed_alone(*tags: str) -> Scenario:
    """Only mid's log (base ran in an earlier job): it guessed d16, and its base checkpoint dir holds ``tags``."""
    files = {f"base/base_checkpoints/{t}/model_000020.pt": "x" for t in tags}
    log = F.run_log(("mid",), base="{tmp}/base", tokenizer=False, per_phase={"mid": {"tag": "d16", "guessed": True}})
    return Scenario(stage="post", files={"logs/run.out": log, **files}, logs=["logs/run.out"], env={})


@bad("model-tag-mismatch")
def _mid_guessed_among_two_models():  # karpathy/nanochat#542: runs at two depths in one base dir
    return _mid_guessed_alone("d16", "d8")


@good("model-tag-mismatch")
def _mid_guessed_the_only_model():
    return _mid_guessed_alone("d16")


@good("log-unusable")
def _readable_text_log():
    return _log(F.run_log())


@bad("log-unusable")
def _random_bytes_log():
    import random

    noise = bytes(random.Random(7).randrange(256) for _ in range(64 * 1024))
    return Scenario(stage="post", files={"logs/run.out": noise}, logs=["logs/run.out"], env={})


@bad("log-unusable")
def _empty_log():
    return Scenario(stage="post", files={"logs/run.out": ""}, logs=["logs/run.out"], env={})


@bad("log-unusable")
def _fifo_as_log():
    import os

    return Scenario(
        stage="post",
        logs=["logs/pipe.out"],
        env={},
        setup=lambda root: ((root / "logs").mkdir(), os.mkfifo(root / "logs" / "pipe.out")),
    )


# -- job-hung
def _stamp(seconds_from_now: float) -> str:
    import time
    from datetime import datetime

    return datetime.fromtimestamp(time.time() + seconds_from_now).strftime("%Y-%m-%dT%H:%M:%S")


HUNG_SETUP = (
    "2025-10-16 19:59:51,395 - nanochat.checkpoint_manager - INFO - Building model with config: {}\n"
    "Muon: Grouping 20 params of shape torch.Size([5120, 1280])\n"
)


@bad("job-hung")
def _():  # setup, then nothing for 12 hours until the time limit (a public report's shape)
    return _log(
        HUNG_SETUP + "slurmstepd: error: *** JOB 42 ON gpu01 CANCELLED AT 2025-10-17T08:00:02 DUE TO TIME LIMIT ***\n"
    )


@good("job-hung")
def _():  # trained up to the time limit: the .out was written a moment before the cancel
    return Scenario(
        stage="post",
        files={
            "logs/run.out": F.run_log(phases=("base",), report=False),
            "logs/run.err": f"slurmstepd: error: *** JOB 42 ON gpu01 CANCELLED AT {_stamp(60)} DUE TO TIME LIMIT ***\n",
        },
        logs=["logs/run.out", "logs/run.err"],
        env={},
    )


_SFT_PAST_ITS_SCHEDULE = """\
Autodetected device type: cuda
2026-03-10 18:40:12,590 - nanochat.checkpoint_manager - INFO - Loading model from /base/base_checkpoints/d12 with step 1905
Total batch size 262,144 => gradient accumulation steps: 16
step 00031 (99.40%) | loss: 2.113759 | lrm: 0.01 | dt: 859.54ms | tok/sec: 304,982 | mfu: 74.92 | epoch: 1
step 00032 (102.60%) | loss: 2.116690 | lrm: -0.05 | dt: 858.57ms | tok/sec: 305,326 | mfu: 75.00 | epoch: 1
2026-03-10 18:50:29,379 - nanochat.checkpoint_manager - INFO - Saved model parameters to: /base/chatsft_checkpoints/d12/model_000032.pt
Peak memory usage: 3540.40MiB
"""


@bad("lr-schedule-overrun")
def _sft_that_counted_its_iterations_in_micro_batches():  # --num-iterations=500 with 16 accumulation steps: 32 steps
    return _log(_SFT_PAST_ITS_SCHEDULE)


@good("lr-schedule-overrun")
def _sft_that_ended_its_epoch_on_schedule():
    return _log(_SFT_PAST_ITS_SCHEDULE.replace("(102.60%)", "(100.00%)").replace("lrm: -0.05", "lrm: 0.00"))


def _sft_validation(values: list[float]) -> str:
    """chat_sft's own lines (classic era): a validation loss every 100 steps, the training loss falling."""
    out = ["Loading model from /base/mid_checkpoints/d20 with step 765"]
    for i, v in enumerate(values):
        out.append(f"Step {100 * i:05d} | Validation loss: {v:.6f}")
        out.append(f"Step {100 * i:05d}/{100 * (len(values) - 1):05d} | Training loss: {1.2 - 0.02 * i:.6f}| lrm: 1.0")
    out.append(f"Saved model checkpoint to /base/chatsft_checkpoints/d20/model_{100 * (len(values) - 1):06d}.pt")
    return "\n".join(out) + "\n"


@bad("validation-got-worse")
def _sft_made_validation_worse():  # a real constrained-SFT run: 1.141 at step 0, 1.174 at its end, every eval up
    return _log(_sft_validation([1.141, 1.147, 1.155, 1.163, 1.174]))


@good("validation-got-worse")
def _sft_validation_flat_within_noise():
    return _log(_sft_validation([1.141, 1.120, 1.118, 1.125, 1.127]))


def _rl_rewards(rewards: list[float]) -> str:
    out = ["Overriding: source = sft", "Loading model from /base/chatsft_checkpoints/d20 with step 700"]
    n = len(rewards)
    out += [
        f"Step {i:05d}/{n:05d} | Average reward: {r} | Average sequence length: 255.00" for i, r in enumerate(rewards)
    ]
    out.append(f"Saved model checkpoint to /base/chatrl_checkpoints/d20/model_{n - 1:06d}.pt")
    return "\n".join(out) + "\n"


@bad("rl-reward-zero")
def _rl_never_rewarded():  # a d12 RL run whose GSM8K answers never once matched
    return _log(_rl_rewards([0.0] * 20))


@good("rl-reward-zero")
def _rl_rewarded_now_and_then():
    return _log(_rl_rewards([0.0] * 12 + [0.0625] + [0.0] * 7))


@good("rl-reward-zero")
def _rl_zero_in_its_first_steps_only():  # too few steps to call it the run's
    return _log(_rl_rewards([0.0] * 5))
