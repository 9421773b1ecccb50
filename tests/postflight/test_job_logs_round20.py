"""Job logs of a twentieth round of real evidence, as shapes written here in our own words: logs read from inside
another nanochat checkout (this project's, whose ./report.md a demo left behind), a fork's chat_rl on a laptop that
died or was stopped, and a notebook's own GRPO loop whose step lines carry no total."""

from __future__ import annotations

from pathlib import Path

from tests.clirun import verify_logs

# a report.md that `nanochat.report reset` started long after the logs below (a demo run in the working directory)
LATER_REPORT = (
    "# nanochat training report\n\nGenerated: 2026-12-07 02:57:09\n\nRun started: 2026-12-07 02:57:09\n\n---\n\n"
    "## Summary\n\n| Metric | BASE | MID | SFT | RL |\n|--------|------|-----|-----|----|\n| CORE | 0.0101 | - | - | - |\n"
)


def _bundled_checkout(root: Path) -> Path:
    """A directory that is this project's checkout (the bundled trainer) with a report.md of its own."""
    for rel in ("nanochat/base_train.py", "nanochat/configurator.py", "scripts/.keep"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    (root / "report.md").write_text(LATER_REPORT)
    return root


def _colour(name: str, msg: str, when: str = "2025-11-02 17:41:38,388") -> str:
    # a fork's package logs in colour like nanochat's does (mychat.checkpoint_manager)
    return f"{when} - {name} - \x1b[32m\x1b[1mINFO\x1b[0m - {msg}"


def _laptop_rl_without_sft(frames_root: str) -> str:
    tb = [
        "Traceback (most recent call last):",
        '  File "/opt/py/lib/python3.10/runpy.py", line 196, in _run_module_as_main',
        "    return _run_code(code, main_globals, None,",
        f'  File "{frames_root}/scripts/chat_rl.py", line 70, in <module>',
        '    model, tokenizer, meta = load_model(source, device, phase="eval")',
        f'  File "{frames_root}/mychat/checkpoint_manager.py", line 98, in find_largest_model',
        "    model_tags = [f for f in os.listdir(checkpoint_dir)]",
        "FileNotFoundError: [Errno 2] No such file or directory: '/Users/w/.cache/mychat/chatsft_checkpoints'",
    ]
    return "\n".join(tb) + "\n"


def test_a_report_in_another_checkout_is_not_the_runs(tmp_path, cli):
    # the logs' traceback runs a checkout on a laptop (/Users/w/Desktop/mychat); postflight runs inside this project's
    # checkout, whose report.md and bundled era were taken as the run's: report "done", RPT002/RPT003 about sections
    # the run never wrote, and a resume plan for rl with no chat_rl in it (the bundled trainer has no RL)
    here = _bundled_checkout(tmp_path / "project")
    log = tmp_path / "rl.out"
    log.write_text(_laptop_rl_without_sft("/Users/w/Desktop/mychat"))
    report, checks, phases = verify_logs(cli, here, log)
    assert report["profile"]["name"] != "bundled", report["profile"]
    assert (
        "is not the checkout the logs ran (their tracebacks run /Users/w/Desktop/mychat)" in report["profile"]["reason"]
    )
    assert phases["rl"]["status"] == "failed" and phases["report"]["status"] == "not-run", phases["report"]
    assert {checks[c]["status"] for c in ("RPT001", "RPT002", "RPT003")} == {"skip"}
    assert "they ran a checkout at /Users/w/Desktop/mychat" in checks["RPT002"]["reason"]
    assert report["resume"]["phase"] == "rl" and "-m scripts.chat_rl" in report["resume"]["commands"][0], report[
        "resume"
    ]


def test_a_report_reset_after_a_fork_logs_coloured_lines_is_a_later_runs(tmp_path, cli):
    # no traceback to place the run; its lines are a fork's logger's, in colour, dated 2025-11-02: a report started
    # 2026-12-07 is another run's (the colour codes hid the dates, and the report was read as this run's)
    here = _bundled_checkout(tmp_path / "project")
    log = tmp_path / "rl.out"
    log.write_text(
        _colour("mychat.checkpoint_manager", "No model tag provided, guessing model tag: d4")
        + "\n"
        + _colour(
            "mychat.checkpoint_manager", "Loading model from /Users/w/.cache/mychat/chatsft_checkpoints/d4 with step 15"
        )
        + "\nCalculated number of steps: 467\n"
        + "Step 0/467 | Average reward: 0.125 | Average sequence length: 120.00\n"
    )
    report, checks, phases = verify_logs(cli, here, log)
    assert checks["RPT002"]["status"] == "skip" and checks["RPT002"]["reason"] == (
        "./report.md is a later run's (started 2026-12-07 02:57:09; these logs end 2025-11-02): pass --base-dir"
    ), checks["RPT002"]


def test_a_grpo_loop_without_totals_logs_its_steps(tmp_path, cli):
    # a notebook's own RL loop over the SFT model: "Step N | Mean Reward: x" with no "/total"; it stopped at step 136
    # of the 1868 it calculated. It was read as "logged no step: it went silent during setup"
    lines = [
        _colour("nanochat.common", "Distributed world size: 1", "2025-11-23 23:00:23,406"),
        _colour(
            "nanochat.checkpoint_manager",
            "Loading model from /home/u/.cache/nanochat/chatsft_checkpoints/d32 with step 650",
            "2025-11-23 23:00:27,123",
        ),
        "Calculated number of steps: 1868",
        "Starting training...",
        *[f"Step {s} | Mean Reward: 0.0625 | LR Multiplier: {1 - s / 1868:.4f}" for s in range(137)],
    ]
    log = tmp_path / "grpo.out"
    log.write_text("\n".join(lines) + "\n")
    # read inside this project's checkout: the bundled trainer prints its first line before "Calculated number of",
    # so a log without it is not its run (its era has no RL: the plan for rl had no command)
    report, checks, phases = verify_logs(cli, _bundled_checkout(tmp_path / "project"), log)
    assert report["profile"]["name"] != "bundled", report["profile"]
    assert report["resume"]["phase"] == "rl" and "-m scripts.chat_rl" in report["resume"]["commands"][0], report[
        "resume"
    ]
    assert phases["rl"]["status"] == "stopped", phases["rl"]
    assert "log stops at step 136 without saving" in phases["rl"]["cause"], phases["rl"]
    assert checks["LOG003"]["status"] == "pass"
    (finding,) = checks["LOG008"]["findings"]
    assert "last logged step 136 of 1868" in finding["message"], finding


def _rank_oom(rank: int, gpu: int, free: str) -> list[str]:
    return [
        f"[rank{rank}]: " + x
        for x in (
            "Traceback (most recent call last):",
            '  File "/nvme/nc/scripts/base_train.py", line 157, in <module>',
            "    model = FSDP(model, device_id=device)",
            '  File "/nvme/nc/.venv/lib/python3.10/site-packages/torch/distributed/fsdp/_flat_param.py", line 780, '
            "in flatten_tensors_into_flat_param",
            "    flat_param_data = self.flatten_tensors(tensors, self._aligned_numel)",
            f"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 530.00 MiB. GPU {gpu} has a total capacity "
            f"of 39.49 GiB of which {free} MiB is free. Process 2672077 has 39.19 GiB memory in use.",
        )
    ]


def test_a_model_too_big_for_its_gpus_is_said_once_with_its_size(tmp_path, cli):
    # a 39B-parameter model on three 40 GB GPUs runs out of memory as its weights are sharded, before any step: each
    # rank's copy (its own GPU number and free memory) was a finding of its own, and the fix was "shorter sequences",
    # which no batch or sequence length makes true
    lines = [
        "Overriding: depth = 92",
        "Overriding: device_batch_size = 1",
        "Autodetected device type: cuda",
        "2025-11-20 10:00:00,000 - nanochat.common - INFO - Distributed world size: 3",
        "Number of parameters: 39,045,824,512",
        *_rank_oom(2, 2, "302.50"),
        *_rank_oom(1, 1, "326.50"),
        *_rank_oom(0, 0, "302.50"),
    ]
    log = tmp_path / "oom.out"
    log.write_text("\n".join(lines) + "\n")
    report, checks, phases = verify_logs(cli, tmp_path, log)
    (found,) = checks["LOG002"]["findings"]
    assert "[ranks 0-2;" in found["message"] and found["data"]["ranks"] == [0, 1, 2], found
    too_big = (
        "the model is too big for these GPUs: 39.0B parameters are 145 GiB of fp32 weights, 48 GiB a GPU even split "
        "over the job's 3, more than each GPU's 39.49 GiB before any batch: no batch size makes it fit"
    )
    assert found["fix"].startswith(too_big), found["fix"]
    assert report["resume"]["fixes"][0].startswith(too_big), report["resume"]
    assert phases["base"]["status"] == "failed"


def test_a_dated_log_with_nothing_else_era_specific_takes_the_era_of_its_date(tmp_path, cli):
    # an out-of-memory in base_train, logged on 2026-01-20 with no line only one era prints: the oldest era was taken,
    # and its fix said --device_batch_size, which that month's argparse (dashes from 2026-01-13) refuses
    lines = [
        "2026-01-20 09:00:00,000 - nanochat.common - INFO - Distributed world size: 8",
        "Traceback (most recent call last):",
        '  File "/home/u/nanochat/scripts/base_train.py", line 300, in <module>',
        "    loss.backward()",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.",
    ]
    log = tmp_path / "oom.out"
    log.write_text("\n".join(lines) + "\n")
    report, checks, _phases = verify_logs(cli, tmp_path, log)
    assert report["profile"]["name"] == "argparse" and report["profile"]["variant"] == "argparse-dash", report[
        "profile"
    ]
    assert report["profile"]["reason"].startswith(
        "its log is dated 2026-01-20: the latest era begun by then that prints what it holds is argparse (from 2026-01-03)"
    ), report["profile"]
    (found,) = checks["LOG002"]["findings"]
    assert "--device-batch-size" in found["fix"] and "--device_batch_size" not in found["fix"], found["fix"]


def test_step_lines_with_an_epoch_are_sft_in_the_eras_without_midtraining(tmp_path, cli):
    # an excerpt of chat_sft going NaN (2026, no midtraining): its step lines carry "| epoch: N |", which January's
    # mid_train printed too, and the excerpt was read as midtraining, with a resume plan running scripts.mid_train
    lines = ["Step 00000 | Validation bpb: 1.0596"] + [
        f"step {s:05d} ({s / 7.5:.2f}%) | loss: {loss} | lrm: 0.01 | dt: 82.70ms | tok/sec: 198,125 | mfu: 0.00 | "
        "epoch: 1 | total time: 0.00m"
        for s, loss in ((1, "1.874766"), (2, "2.581178"), (3, "2.784387"), (4, "nan"), (5, "nan"))
    ]
    log = tmp_path / "sft.out"
    log.write_text("\n".join(lines) + "\n")
    report, checks, phases = verify_logs(cli, tmp_path, log)
    assert "mid" not in report["profile"]["phases"], report["profile"]
    assert phases["sft"]["status"] == "failed", phases["sft"]
    (nan,) = checks["LOG007"]["findings"]
    assert nan["message"].startswith("sft: non-finite loss: step 00004"), nan
