"""Job logs of a public fork's SLURM runs (an eighth round of real evidence), as shapes written here in our own words:
a stderr file alone that holds a 3-day run's saves, cancels by a user against the time limit, an RL run whose
trainer cannot resume, a bare assert, an argparse run's computed horizon."""

from __future__ import annotations

from tests.clirun import verify_logs
from tests.factories import logger_line

TORCHRUN_WARNING = (
    "W0126 09:12:35.425000 3715933 .venv/lib/python3.12/site-packages/torch/distributed/run.py:803] Setting "
    "OMP_NUM_THREADS environment variable for each process to be 1 in default\n"
)


def _saves(tag, steps):
    d = f"/scratch/me/nanochat/base_checkpoints/{tag}"
    return "".join(
        logger_line("nanochat.checkpoint_manager", f"Saved model parameters to: {d}/model_{s:06d}.pt")
        + "\n"
        + logger_line("nanochat.checkpoint_manager", f"Saved metadata to: {d}/meta_{s:06d}.json")
        + "\n"
        for s in steps
    )


def _cancel(due=""):
    return f"slurmstepd: error: *** JOB 9387 ON gpu12 CANCELLED AT 2026-01-29T09:12:44{due} ***\n"


def test_a_stderr_log_of_a_long_run_is_partial_at_its_last_save_and_resumes_its_model(tmp_path, cli):
    err = tmp_path / "train_9387.err"
    err.write_text(
        TORCHRUN_WARNING
        + logger_line("nanochat.common", "Distributed world size: 2")
        + "\n"
        + _saves("d26", range(9500, 77000, 500))
        + _cancel(" DUE TO TIME LIMIT")
    )
    report, checks, phases = verify_logs(cli, tmp_path, err)
    base = phases["base"]
    assert base["status"] == "partial", base  # was "failed ... no checkpoint"
    assert base["cause"].startswith("cancelled by SLURM at the time limit; last checkpoint in the logs: step 76500"), (
        base
    )
    assert not checks["LOG003"]["findings"], checks["LOG003"]  # was "logged no training step ... during setup"
    (cmd,) = [c for c in report["resume"]["commands"] if "base_train" in c]
    assert "--depth=26" in cmd and cmd.endswith("=76500"), cmd  # without --depth it builds the default d20


def test_a_cancel_without_a_reason_is_a_users_not_the_time_limit(tmp_path, cli):
    err = tmp_path / "train_9860.err"
    err.write_text(TORCHRUN_WARNING + _saves("d26", range(77000, 131000, 500)) + _cancel())
    _report, checks, phases = verify_logs(cli, tmp_path, err)
    assert phases["base"]["cause"].startswith("cancelled (scancel by a user or an administrator, not the time limit)")
    assert not checks["LOG006"]["findings"], checks["LOG006"]  # no "raise #SBATCH --time"


def test_an_rl_run_cancelled_after_its_periodic_saves_stopped_early_and_is_rerun(tmp_path, cli):
    out = tmp_path / "rl_10246.out"
    steps = "".join(
        f"Step {s}/467 | Example step 0 | Pass 0 | loss: -0.000877 | Average reward: 0.625\n" for s in range(0, 253)
    )
    cut = steps.index("Step 61/")
    saved = "\u2705 Saved model checkpoint to /scratch/me/nanochat/chatrl_checkpoints/d26\n"
    out.write_text("Calculated number of steps: 467\n" + steps[:cut] + saved + steps[cut:] + _cancel())
    _report, checks, phases = verify_logs(cli, tmp_path, out)
    assert phases["rl"]["status"] == "partial", phases["rl"]
    (early,) = checks["LOG008"]["findings"]  # was PASS: the periodic save line read as the end of training
    assert early["message"] == "rl: last logged step 252 of 467: training stopped early", early
    assert early["fix"] == "rerun rl: its trainer cannot resume from a checkpoint", early


def test_a_bare_assert_names_its_source_line_and_a_computed_horizon_is_computed_again(tmp_path, cli):
    out = tmp_path / "train_9345.out"
    out.write_text(
        "Vocab size: 32,768\nnum_layers: 32\n"
        "Calculated number of iterations from target data:param ratio: 54,531\n"
        "Traceback (most recent call last):\n"
        '  File "/scratch/me/nanochat/scripts/base_train.py", line 134, in <module>\n'
        "    assert args.total_batch_size % world_tokens_per_fwdbwd == 0\n"
        "AssertionError\n"
    )
    report, _checks, phases = verify_logs(cli, tmp_path, out)
    assert phases["base"]["cause"].endswith(
        "AssertionError: assert args.total_batch_size % world_tokens_per_fwdbwd == 0"
    ), phases["base"]  # was "AssertionError: "
    (cmd,) = [c for c in report["resume"]["commands"] if "base_train" in c]
    # no flags in the log: what it printed of itself; the horizon it computed from the batch the fix changes is not
    # pinned on a rerun from scratch (only a resume keeps it, where its LR schedule must end)
    assert "--depth=32" in cmd and "iterations" not in cmd, cmd


def test_a_log_that_loads_midtrainings_checkpoint_is_of_an_era_with_midtraining(tmp_path, cli):
    err = tmp_path / "sft_10244.err"
    err.write_text(
        TORCHRUN_WARNING
        + logger_line("nanochat.checkpoint_manager", "Loading model from /s/nanochat/mid_checkpoints/d26 with step 818")
        + "\n"
        + logger_line(
            "nanochat.checkpoint_manager",
            "Building model with config: {'sequence_len': 2048, 'vocab_size': 32768, 'n_layer': 26, 'n_head': 13, "
            "'n_kv_head': 13, 'n_embd': 1664, 'window_pattern': 'L'}",
        )
        + "\n"
    )
    report, _checks, phases = verify_logs(cli, tmp_path, err)
    # window_pattern alone is shared by three eras; the two without midtraining never name its checkpoints
    assert report["profile"]["name"] == "argparse", report["profile"]  # was "current"
    assert phases["mid"]["status"] == "done", phases["mid"]
