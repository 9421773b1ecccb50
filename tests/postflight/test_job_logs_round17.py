"""Job logs of a seventeenth round of real evidence (a fork's sweeps of a small model, another fork's benchmark and
vision trainer), as shapes written here in our own words: base_train going silent in its setup, a run that stopped
after its last step but before its save, and logs that hold no phase of the pipeline at all."""

from __future__ import annotations

from tests.clirun import verify_logs
from tests.postflight.logshapes import _log


def _base_setup(iterations: int) -> list[str]:
    """What an argparse-era base_train prints before its first step (no Overriding lines, no command line)."""
    return [
        "Autodetected device type: cuda",
        _log("nanochat.common", "Distributed world size: 1"),
        "Vocab size: 65,536",
        "Model config:",
        "{",
        '  "sequence_len": 2048,',
        '  "n_layer": 6,',
        '  "n_embd": 384,',
        '  "window_pattern": "L"',
        "}",
        "A fork's own line about its sparse mode",
        "Estimated FLOPs per token: 2.713208e+08",
        f"Using user-provided number of iterations: {iterations:,}",
        f"Total number of training tokens: {iterations * 262144:,}",
        "Total training FLOPs estimate: 7.112511e+16",
        "Tokens / micro-batch / rank: 32 x 2048 = 65,536",
        "Total batch size 262,144 => gradient accumulation steps: 4",
    ]


def _step(s: int, total: int, loss: float) -> str:
    return (
        f"step {s:05d}/{total:05d} ({100 * s / total:.2f}%) | loss: {loss:.6f} | lrm: 1.00 | dt: 460.00ms | "
        "tok/sec: 570,000 | mfu: 0.00 | total time: 1.00m | eta: 0.0m"
    )


def test_base_train_that_went_silent_in_its_setup_is_base_not_a_run_that_never_started(tmp_path, cli):
    log = tmp_path / "sparse_diag.log"
    log.write_text("\n".join(_base_setup(1000)) + "\n")
    report, checks, phases = verify_logs(cli, tmp_path, log)
    # the logs end there with no error and no job to ask: stopped (killed, hung or still running), not failed
    assert phases["base"]["status"] == "stopped" and "went silent during setup" in phases["base"]["cause"], phases
    assert phases["tokenizer"]["status"] == "done", phases["tokenizer"]  # base_train loaded it
    assert checks["LOG003"]["status"] == "fail", checks["LOG003"]
    resume = report["resume"]
    assert resume["phase"] == "base", resume
    assert resume["commands"][0] == (
        "python -m scripts.base_train --depth=6 --num-iterations=1000 --device-batch-size=32 --max-seq-len=2048"
    ), resume
    # the rerun is built from what base_train printed of itself: the flags it did not print are the user's to add
    assert any("add any other flag the run was given" in r for r in resume["remarks"]), resume


def test_a_fork_trainer_that_prints_a_vocab_size_is_not_base_train(tmp_path, cli):
    # a fork's own trainer prints "Vocab size" too, but none of base_train's token and FLOPs lines
    log = tmp_path / "train_unified.out"
    log.write_text("\n".join(["Autodetected device type: cuda", "Schema: kubernetes", "Vocab size: 20,000"]) + "\n")
    report, _checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["base"]["status"] == "not-run", phases["base"]
    assert report["resume"]["commands"] == [], report["resume"]


def test_a_run_that_stopped_after_its_last_step_before_its_save_stopped_early(tmp_path, cli):
    # logged every 249 steps: step 0, step 249 of 250, then nothing (no final evaluation, save or summary)
    log = tmp_path / "constlr.log"
    lines = [*_base_setup(250), "Step 00000 | Validation bpb: 3.255072", _step(0, 250, 9.29), _step(249, 250, 3.89)]
    log.write_text("\n".join(lines) + "\n")
    _report, checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["base"]["status"] == "stopped", phases["base"]
    assert phases["base"]["evidence"][-1].endswith(f":{len(lines)}"), phases["base"]  # where it stopped
    (early,) = checks["LOG008"]["findings"]
    assert early["message"].startswith(
        "base: last logged step 249 of 250: its steps ran, but it stopped in the final"
    ), early
    assert early["location"]["line"] == len(lines)
    # the same run with its save and summary after the last step is done, and nothing is said
    lines += [
        "Saved model parameters to: /scratch/nanochat/base_checkpoints/d6/model_000250.pt",
        "Peak memory usage: 4779.43MiB",
    ]
    log.write_text("\n".join(lines) + "\n")
    _report, checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["base"]["status"] == "done" and checks["LOG008"]["status"] == "pass", (
        phases["base"],
        checks["LOG008"],
    )


def test_a_log_of_no_pipeline_phase_says_so_and_expects_nothing(tmp_path, cli):
    # a fork's benchmark that imports nanochat (its device and world-size lines) and finished fine
    log = tmp_path / "bench.stdout.log"
    lines = ["Autodetected device type: mps", _log("nanochat.common", "Distributed world size: 1")]
    lines += [f"[copy_s1] step {s:04d}/500 | loss 0.0350 | acc 0.9951 | elapsed 18.8m" for s in (25, 500)]
    lines += ["[copy_s1] done in 18.79m  final_acc=0.9951"]
    log.write_text("\n".join(lines) + "\n")
    report, checks, phases = verify_logs(cli, tmp_path, log)
    (none,) = checks["LOG009"]["findings"]
    assert none["message"].startswith("no process in this log is a phase of the pipeline"), none
    assert none["severity"] == "warning"
    assert not any(p["expected"] for p in phases.values()), phases  # not the whole pipeline "not done"
    assert report["resume"]["commands"] == [] and "no plan" in report["resume"]["note"], report["resume"]
    assert report["verdict"] != "fail", report["verdict"]


def test_a_crash_of_a_program_outside_the_pipeline_gets_no_pipeline_plan(tmp_path, cli):
    log = tmp_path / "tier2.log"
    lines = [
        "Traceback (most recent call last):",
        '  File "/home/u/proj/nanochat/vision/train_vision.py", line 981, in main',
        "    train(args)",
        '  File "/home/u/proj/nanochat/vision/utils.py", line 372, in make_experiment_dir',
        "    raise FileExistsError(",
        "FileExistsError: Experiment directory already exists: checkpoints/A_baseline",
        "Pass --resume to continue training from that checkpoint.",
    ]
    log.write_text("\n".join(lines) + "\n")
    report, checks, _phases = verify_logs(cli, tmp_path, log)
    (crash,) = checks["LOG002"]["findings"]
    assert "FileExistsError" in crash["message"], crash
    assert crash["fix"].startswith("read the traceback (it says: Pass --resume to continue training from"), crash["fix"]
    assert "see the resume plan" not in crash["fix"]
    assert report["resume"]["commands"] == [], report["resume"]  # not eight GPUs' worth of tok_train ... report


def test_chat_eval_of_the_sft_checkpoint_is_the_phases_outcome(tmp_path, cli):
    # an SFT run, then chat_eval of its checkpoint: its scores were in no report, table or JSON
    log = tmp_path / "sft_eval.log"
    lines = [
        "Autodetected device type: cuda",
        _log("nanochat.checkpoint_manager", "Loading model from /r/base_checkpoints/a10 with step 1905"),
        *[f"Step {s:05d}/00032 | Training loss: 1.500000| lrm: 1.000000| num_tokens: 9,000" for s in range(0, 32)],
        _log("nanochat.checkpoint_manager", "Saved model parameters to: /r/chatsft_checkpoints/a10/model_000032.pt"),
        "Autodetected device type: cuda",
        _log("nanochat.checkpoint_manager", "Loading model from /r/chatsft_checkpoints/a10 with step 32"),
        "Final: 595/2376 (25.04%)",
        "ARC-Easy accuracy: 25.04%",
        "MMLU accuracy: 22.94%",
        "ChatCORE metric: -0.0113",
    ]
    log.write_text("\n".join(lines) + "\n")
    _report, _checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["sft"]["status"] == "done", phases["sft"]
    assert phases["sft"]["evaluation"] == {"ARC-Easy": 25.04, "MMLU": 22.94, "ChatCORE": -0.0113}, phases["sft"]
    assert phases["sft"]["cause"].endswith(
        "; chat_eval of its checkpoint: ChatCORE -0.0113 (ARC-Easy 25.04% of 2,376, MMLU 22.94%)"
    ), phases["sft"]["cause"]
    assert "evaluation" not in phases["base"]  # it evaluated SFT's checkpoint, not base's


def test_an_sft_run_past_its_schedule_says_its_iterations_were_micro_batches(tmp_path, cli):
    # chat_sft (2026-01-31 on) counts --num-iterations per micro-batch: 500 with 16 accumulation steps stopped after
    # 32 optimizer steps, the last at 102.6% of its schedule with lrm -0.05; postflight said the phase was fine
    log = tmp_path / "sft.log"
    lines = [
        "Autodetected device type: cuda",
        _log("nanochat.checkpoint_manager", "Loading model from /r/base_checkpoints/a10 with step 1905"),
        "Total batch size 262,144 => gradient accumulation steps: 16",
        "step 00031 (99.40%) | loss: 2.113759 | lrm: 0.01 | dt: 859.54ms | tok/sec: 304,982 | mfu: 74.92 | epoch: 1",
        "step 00032 (102.60%) | loss: 2.116690 | lrm: -0.05 | dt: 858.57ms | tok/sec: 305,326 | mfu: 75.00 | epoch: 1",
        _log("nanochat.checkpoint_manager", "Saved model parameters to: /r/chatsft_checkpoints/a10/model_000032.pt"),
        "Peak memory usage: 3540.40MiB",
    ]
    log.write_text("\n".join(lines) + "\n")
    _report, checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["sft"]["status"] == "done", phases["sft"]
    (over,) = checks["LOG017"]["findings"]
    assert over["message"].startswith(
        "sft: step 32 ran past the end of its learning-rate schedule (progress 102.60%, learning-rate multiplier -0.05)"
    ), over
    assert (
        "a run given --num-iterations=N stops after about N/16 optimizer steps (this one after 32)" in over["message"]
    )
    assert over["fix"] == "for N optimizer steps pass --num-iterations=N x 16 (or -1: one epoch)", over["fix"]
    assert over["severity"] == "warning" and over["location"]["line"] == 5
