"""Logs as people paste them into issues, in our own words: shapes from karpathy/nanochat's threads.

A CPU run whose base_loss (not base_train) crashed loading the base checkpoint (issue 143); a base_eval
that died inside torch's own code (PR 140); a traceback whose paste ends before the exception line."""

from __future__ import annotations

import json
import sys

BANNER_TRAIN = (
    "Overriding: depth = 4\n"
    "Overriding: device_batch_size = 1\n"
    "Autodetected device type: mps\n"
    "Tokens / micro-batch / rank: 1 x 1024 = 1,024\n"
    "Total batch size 1,024 => gradient accumulation steps: 1\n"
)
BASE_LOSS_CRASH = (
    "Overriding: device_batch_size = 1\n"
    "Overriding: split_tokens = 4096\n"
    "Autodetected device type: mps\n"
    "Traceback (most recent call last):\n"
    '  File "/Users/u/nanochat/scripts/base_loss.py", line 30, in <module>\n'
    '    model, tokenizer, meta = load_model("base", device, phase="eval")\n'
    '  File "/Users/u/nanochat/nanochat/checkpoint_manager.py", line 146, in load_model\n'
    "    return load_model_from_dir(checkpoints_dir, *args, **kwargs)\n"
    '  File "/Users/u/nanochat/.venv/lib/python3.10/site-packages/torch/serialization.py", line 1479, in load\n'
    "    with _open_file_like(f, 'rb') as opened_file:\n"
)


def _verify(cli, log):
    proc = cli("postflight", "verify", "--log", str(log), "--format", "json", cwd=log.parent)
    report = json.loads(proc.stdout)
    return report, {c["code"]: c for c in report["checks"]}, {p["name"]: p for p in report["phases"]}


def test_base_loss_crash_is_no_base_train_setup_and_its_flags_stay_out_of_the_resume(tmp_path, cli):
    log = tmp_path / "run.log"
    log.write_text(BANNER_TRAIN + BASE_LOSS_CRASH + 'FileNotFoundError: [Errno 2] No such file: "model_000050.pt"\n')
    report, checks, phases = _verify(cli, log)
    assert phases["base"]["status"] == "failed"
    assert phases["base"]["cause"].startswith("base_loss crashed"), phases["base"]  # was "died during setup"
    (crash,) = checks["LOG002"]["findings"]
    assert crash["message"].startswith("base_loss (base) crashed"), crash["message"]
    # the innermost frame of the job's own code, not torch's serialization.py
    assert "raised at /Users/u/nanochat/nanochat/checkpoint_manager.py:146" in crash["message"]
    train = next(c for c in report["resume"]["commands"] if "scripts.base_train" in c)
    assert "--depth=4" in train and "split_tokens" not in train, train  # base_loss's flag is no base_train flag


def test_a_traceback_cut_off_before_its_exception_line_says_so(tmp_path, cli):
    log = tmp_path / "run.log"
    log.write_text(BANNER_TRAIN + BASE_LOSS_CRASH)  # the paste ends in the frames
    _report, checks, phases = _verify(cli, log)
    (crash,) = checks["LOG002"]["findings"]
    assert "the traceback is cut off before its exception line" in crash["message"], crash["message"]
    assert ": :" not in crash["message"] and ": :" not in phases["base"]["cause"]  # was "(other): :"


def test_set_x_traces_name_each_process_and_its_flags_the_era(tmp_path, cli):
    # a real bash with `set -x` (its trace goes to stderr, merged into the log as SLURM's default does):
    # the second entry point prints nothing of its own before it dies, so only the trace names it
    import subprocess

    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "tok_train.py").write_text('print("Saved tokenizer encoding to /x/tokenizer.pkl")\n')
    (tmp_path / "scripts" / "chat_sft.py").write_text("import sys\nsys.exit(3)\n")
    (tmp_path / "job.sh").write_text(
        f"#!/bin/bash\nset -x\n{sys.executable} -m scripts.tok_train\n"
        f"{sys.executable} -m scripts.chat_sft -- --device-batch-size=4 || true\n"
    )
    proc = subprocess.run(
        ["bash", "job.sh"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    log = tmp_path / "slurm-9.out"
    log.write_text(proc.stdout)
    assert f"+ {sys.executable} -m scripts.chat_sft -- --device-batch-size=4" in proc.stdout, proc.stdout
    report, _checks, phases = _verify(cli, log)
    assert phases["sft"]["status"] == "failed", phases["sft"]  # was not-run: nothing named the process
    assert "died during setup" in phases["sft"]["cause"]
    assert report["profile"]["name"] in ("argparse", "no-mid", "current"), report["profile"]  # dashes: 2026-01-13+


def test_a_terminal_paste_names_its_entry_point(tmp_path, cli):
    log = tmp_path / "paste.txt"
    log.write_text(
        "(nanochat) me@box:~/nanochat$ WANDB_RUN=t1 python -m scripts.base_train --depth=4 --device-batch-size=4\n"
        "Autodetected device type: cuda\n"
    )
    _report, _checks, phases = _verify(cli, log)
    assert phases["base"]["status"] == "failed" and phases["base"]["evidence"] == [f"{log}:1"], phases["base"]


def test_the_logs_era_wins_over_a_checkout_only_guessed_from_where_postflight_runs(tmp_path, cli):
    # postflight run from this project's own directory (the bundled trainer's checkout) on a classic job's log:
    # `Overriding:` lines exist in the configurator era only, so the resume plan is classic's, not the bundled one's
    from pathlib import Path

    log = tmp_path / "slurm-5.out"
    log.write_text(BANNER_TRAIN + BASE_LOSS_CRASH + "FileNotFoundError: [Errno 2] No such file: 'model_000050.pt'\n")
    root = Path(__file__).resolve().parents[2]
    proc = cli("postflight", "verify", "--log", str(log), "--format", "json", cwd=root)
    report = json.loads(proc.stdout)
    assert report["profile"]["name"] == "classic", report["profile"]
    # its traceback's frames run another checkout (/Users/u/nanochat): this one is not the run's
    assert "is not the checkout the logs ran (their tracebacks run /Users/u/nanochat)" in report["profile"]["reason"]
    assert all("nanochat.base_train" not in c for c in report["resume"]["commands"]), report["resume"]


def test_a_checkout_whose_era_the_logs_do_not_contradict_stays(tmp_path, cli):
    from pathlib import Path

    log = tmp_path / "slurm-6.out"
    log.write_text("COMPUTE_DTYPE: torch.bfloat16\nAutodetected device type: cuda\n")
    current = Path(__file__).resolve().parents[1] / "fixtures" / "current_checkout"
    proc = cli("postflight", "verify", "--log", str(log), "--format", "json", cwd=current)
    assert json.loads(proc.stdout)["profile"]["name"] == "current"


def test_a_traceback_pasted_from_its_first_frame_is_still_the_crash(tmp_path, cli):
    # threads often drop the "Traceback (most recent call last):" line; the frames and the exception remain
    log = tmp_path / "paste.txt"
    log.write_text(
        'File "/home/u/nanochat/scripts/chat_rl.py", line 176, in main\n'
        "    optim.step()\n"
        '  File "/home/u/.venv/lib/python3.10/site-packages/torch/optim/adam.py", line 182, in _init_group\n'
        '    state["exp_avg_sq"] = torch.zeros_like(p)\n'
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 32.00 MiB.\n"
        "GPU 0 has a total capacity of 79.33 GiB of which 14.00 MiB is free.\n"
    )
    _report, checks, phases = _verify(cli, log)
    assert phases["rl"]["status"] == "failed" and "out of memory" in phases["rl"]["cause"], phases["rl"]
    (crash,) = checks["LOG002"]["findings"]
    assert crash["data"]["class"] == "out of memory"
    assert "raised at /home/u/nanochat/scripts/chat_rl.py:176" in crash["message"], crash["message"]


def test_an_excerpt_pasted_exception_first_then_its_frame_is_one_crash(tmp_path, cli):
    # a note quoting a CUDA OOM: the exception line, its detail, "...", then the frame that raised it
    log = tmp_path / "paste.txt"
    log.write_text(
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.51 GiB.\n"
        "GPU 0 has a total capacity of 11.56 GiB of which 1.16 GiB is free.\n"
        "...\n"
        'File ".../nanochat/gpt.py", line 515, in forward\n'
        "    logits = softcap * torch.tanh(logits / softcap)\n"
    )
    _report, checks, _phases = _verify(cli, log)
    (crash,) = checks["LOG002"]["findings"]  # was two: the OOM, and "the traceback is cut off" for the frame
    assert crash["data"]["class"] == "out of memory" and crash["location"]["line"] == 1
    assert "raised at .../nanochat/gpt.py:515" in crash["message"], crash["message"]


def test_a_second_exception_after_an_exception_first_excerpt_is_its_own_crash(tmp_path, cli):
    # two errors quoted one after the other (an issue thread): the frame belongs to the first, not the second
    log = tmp_path / "paste.txt"
    log.write_text(
        "RuntimeError: Parent directory /x/base_checkpoints/d20 does not exist.\n"
        '  File "nanochat/checkpoint_manager.py", line 38, in save_checkpoint\n'
        "    torch.save(optimizer_data, optimizer_path)\n"
        "RuntimeError: PytorchStreamReader failed reading zip archive: failed finding central directory\n"
    )
    _report, checks, _phases = _verify(cli, log)
    first, second = checks["LOG002"]["findings"]
    assert "Parent directory" in first["message"] and "raised at nanochat/checkpoint_manager.py:38" in first["message"]
    assert "PytorchStreamReader" in second["message"] and "raised at" not in second["message"]


def test_a_core_evaluation_names_base_training_and_is_past_setup(tmp_path, cli):
    # base_train's first CORE evaluation, then the log ends (a paste, or a process killed without a traceback)
    log = tmp_path / "run.log"
    log.write_text(
        "Evaluating: boolq (10-shot, type: multiple_choice)... accuracy: 1.0000 | centered: 1.0000 | time: 0.02s\n"
        "Step 00001 | CORE metric: 0.0636\n"
    )
    _report, checks, phases = _verify(cli, log)
    assert phases["base"]["status"] == "failed", phases["base"]  # was not-run: nothing named the process
    assert "logged an evaluation (run.log:2)" in phases["base"]["cause"]
    assert "died during setup" not in phases["base"]["cause"]
    (finding,) = checks["LOG003"]["findings"]
    assert "logged an evaluation (line 2) and then stopped" in finding["message"]


def test_the_bundled_trainers_own_log_keeps_its_checkout(tmp_path, cli):
    # the bundled trainer prints `Overriding:` lines too; its first line names it, so its checkout stays
    from pathlib import Path

    log = tmp_path / "slurm-7.out"
    log.write_text("Overriding: depth = 2\nnanochat (bundled with nanochat-preflight)\nAutodetected device type: cpu\n")
    proc = cli("postflight", "verify", "--log", str(log), "--format", "json", cwd=Path(__file__).resolve().parents[2])
    assert json.loads(proc.stdout)["profile"]["name"] == "bundled"


def test_a_mac_run_resumes_as_one_process(tmp_path, cli):
    log = tmp_path / "run.log"
    log.write_text(BANNER_TRAIN.replace("Tokens / micro-batch", "Scaling the LR") + "Killed: 9\n")
    report, _checks, _phases = _verify(cli, log)
    assert report["resume"]["commands"], report["resume"]
    assert all(not c.startswith("torchrun") for c in report["resume"]["commands"]), report["resume"]  # was x 8


def _steps(first, last, total):
    return "".join(
        f"step {i:05d}/{total:05d} ({100 * (i + 1) / total:.2f}%) | loss: 5.0 | grad norm: 0.2 | lrm: 1.00 | "
        f"dt: 5157.80ms | tok/sec: 83,384 | mfu: 4.91 | total time: 0.10m\n"
        for i in range(first, last + 1)
    )


SAVE_CRASH = (
    "Traceback (most recent call last):\n"
    '  File "scripts/base_train.py", line 250, in <module>\n'
    "    save_checkpoint(checkpoint_dir, step, orig_model.state_dict())\n"
    '  File "nanochat/checkpoint_manager.py", line 38, in save_checkpoint\n'
    "    torch.save(optimizer_data, optimizer_path)\n"
    "RuntimeError: Parent directory /x/base_checkpoints/d20 does not exist.\n"
)


def test_a_crash_names_the_step_it_came_after_not_a_count_of_step_lines(tmp_path, cli):
    # an issue's excerpt of a 26,087-step run keeps its last 2 step lines: "after 2 logged steps" misread it
    log = tmp_path / "paste.txt"
    log.write_text(_steps(3, 4, 5) + SAVE_CRASH)
    _report, checks, phases = _verify(cli, log)
    (crash,) = checks["LOG002"]["findings"]
    assert "crashed (other) after its last training step (4/5): RuntimeError: Parent directory" in crash["message"]
    assert "after its last training step (4/5)" in phases["base"]["cause"], phases["base"]

    log.write_text(_steps(0, 2, 5) + SAVE_CRASH)
    _report, checks, _phases = _verify(cli, log)
    (crash,) = checks["LOG002"]["findings"]
    assert "crashed (other) after step 2 of 5:" in crash["message"], crash["message"]


def test_a_windows_prompts_command_line_gives_the_resume_every_flag_and_a_silent_end_is_no_verdict(tmp_path, cli):
    # a Windows user's paste: the prompt, a 400-character command line, then step lines that stop without an error
    # (copied while it ran); the resume kept 4 of its 17 flags and the phase was simply "failed"
    flags = (
        "--depth=16 --save-every=4000 --num-iterations=200000 --run=dummy --head-dim=64 --window-pattern=L "
        "--max-seq-len=512 --device-batch-size=8 --total-batch-size=16384 --eval-tokens=524288 "
        "--core-metric-every=-1 --sample-every=4000 --log-every=50 --eval-every=2000 --warmup-steps=2000 "
        "--warmdown-ratio=0.9 --aspect-ratio=64"
    )
    log = tmp_path / "paste.txt"
    log.write_text(
        rf"(my_env) C:\Users\me\nanochat>python -m scripts.base_train {flags}" + "\n"
        "Autodetected device type: cuda\n"
        "2026-03-16 22:43:15,107 - nanochat.common - INFO - Distributed world size: 1\n" + _steps(2250, 2300, 200000)
    )
    report, _checks, phases = _verify(cli, log)
    (command,) = [c for c in report["resume"]["commands"] if "base_train" in c]
    assert command == f"python -m scripts.base_train {flags}", command
    assert "killed, hung or still running" in phases["base"]["cause"], phases["base"]


def test_a_base_train_that_printed_its_setup_and_no_step_started(tmp_path, cli):
    # a 2026 run's setup ("... from target data:param ratio: 418": the ratio's own colon hid the count), then the
    # paste ends before step 0: base started and went silent, not "not-run"
    log = tmp_path / "paste.txt"
    log.write_text(
        "Autodetected device type: cpu\n"
        "Calculated number of iterations from target data:param ratio: 418\n"
        "Total number of training tokens: 109,576,192\n"
        "Total batch size 262,144 => gradient accumulation steps: 128\n"
    )
    _report, _checks, phases = _verify(cli, log)
    assert phases["base"]["status"] == "failed" and "started at paste.txt:1, logged no step" in phases["base"]["cause"]


def test_a_close_forks_checkpoint_lines_finish_and_resume_its_run(tmp_path, cli):
    # a fork's base run resumed at 105,000 ("✅ Loaded checkpoint from step ...") saves its last model as
    # "✅ Checkpoint saved: .../model_200000.pt": done, not "log stops at step 199990 without saving"
    log = tmp_path / "run.log"
    log.write_text(
        "Overriding: num_iterations = 200000\nOverriding: resume_from_step = 105000\n"
        "✅ Loaded checkpoint from step 105000\n"
        + _steps(199980, 199990, 200000)
        + "✅ Checkpoint saved: checkpoints/k8s_baseline_v1/model_200000.pt\n"
    )
    _report, checks, phases = _verify(cli, log)
    assert phases["base"]["status"] == "done", phases["base"]
    assert not checks["LOG008"]["findings"], checks["LOG008"]


def test_an_excerpts_crash_without_an_entry_point_frame_is_its_phases_cause(tmp_path, cli):
    # issue #315's excerpt: base's last steps, then the save's error (a frame in checkpoint_manager.py only) and a
    # second error after it; the phase table said "log stops at step 4 without saving"
    log = tmp_path / "paste.txt"
    log.write_text(
        _steps(3, 4, 5) + "RuntimeError: Parent directory /x/base_checkpoints/d20 does not exist.\n"
        '  File "nanochat/checkpoint_manager.py", line 38, in save_checkpoint\n'
        "    torch.save(optimizer_data, optimizer_path)\n"
        "RuntimeError: PytorchStreamReader failed reading zip archive: failed finding central directory\n"
    )
    _report, _checks, phases = _verify(cli, log)
    cause = phases["base"]["cause"]
    assert phases["base"]["status"] == "failed" and "after its last training step (4/5)" in cause, cause
    assert "Parent directory" in cause and "PytorchStreamReader" not in cause, cause


def test_an_abridged_mid_excerpt_that_diverged_reads_its_steps_and_says_so(tmp_path, cli):
    # a write-up quoting a mid run's output: step lines cut to loss and lrm (no percentage), numbers aligned with two
    # spaces, the author's notes after them; the loss went far above a uniform guess at once, then sat at 6.88
    log = tmp_path / "output.log"
    log.write_text(
        "Step 00000 | Validation bpb: 0.2982      <- from a healthy base\n"
        "step 00001 | loss: 13.070236 | lrm: 1.00\n"
        "step 00002 | loss: 16.036624 | lrm: 1.00 <- worse than uniform\n"
        "step 00150 | Validation bpb: 1.7252\n"
        "step 00401 | loss:  6.900375 | lrm: 1.00\n"
        "step 02381 | loss:  6.870882 | lrm: -0.00 <- flat\n"
        "Step 02381 | Validation bpb: 1.6045      <- nothing gained\n"
    )
    _report, checks, phases = _verify(cli, log)
    assert phases["mid"]["status"] == "stopped" and "step 2381" in phases["mid"]["cause"], phases["mid"]  # was not-run
    (blowup,) = checks["LOG012"]["findings"]
    assert blowup["message"].startswith("mid: training loss 13.07 at step 1 (up to 16.04), above ln(65536) = 11.09")
