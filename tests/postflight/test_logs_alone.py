"""Logs given alone (no base dir, no job id), in shapes found in public nanochat threads and forks' committed
logs, written here in our own words: what postflight must say about each phase, its cause and the resume."""

from __future__ import annotations

import json
import subprocess
import sys


def _verify(cli, *logs):
    args = [a for log in logs for a in ("--log", str(log))]
    proc = cli("postflight", "verify", *args, "--format", "json", cwd=logs[0].parent)
    report = json.loads(proc.stdout)
    return report, {c["code"]: c for c in report["checks"]}, {p["name"]: p for p in report["phases"]}


def _step(n, total=21400, loss="3.164064"):
    return (
        f"step {n:05d}/{total} ({100 * n / total:.2f}%) | loss: {loss} | lrm: 1.00 | dt: 3571.05ms | "
        f"tok/sec: 146,810 | mfu: 51.80 | total time: {n * 0.06:.2f}m\n"
    )


ORDINAL = "torch.AcceleratorError: CUDA error: invalid device ordinal"
NO_DISK_SPACE = "OSError: Not enough disk space. Needed: 45.32 MiB (download: 45.32 MiB, generated: 0 bytes)"


def _tb(path, line, call, exc):
    """A one-frame traceback as Python prints it."""
    return f'Traceback (most recent call last):\n  File "{path}", line {line}, in <module>\n    {call}\n{exc}\n'


def _save(step):
    return (
        f"2026-03-02 18:32:51,834 - nanochat.checkpoint_manager - INFO - Saved model parameters to: "
        f"/home/u/.cache/nanochat/base_checkpoints/d20/model_{step:06d}.pt\n"
    )


def test_an_intermediate_save_is_not_the_end_of_training(tmp_path, cli):
    # --save_every=200: the last save is step 4800 of 21400, the log stops at 4845 (was "done" + resume from mid)
    log = tmp_path / "run.out"
    log.write_text(
        "Overriding: depth = 20\nOverriding: save_every = 200\n"
        + "".join(_step(n) for n in range(4790, 4800))
        + _save(4800)
        + "".join(_step(n) for n in range(4800, 4846))
    )
    report, checks, phases = _verify(cli, log)
    assert phases["base"]["status"] == "partial", phases["base"]
    assert "last saved checkpoint is step 4800 of 21400" in phases["base"]["cause"]
    assert report["resume"]["phase"] == "base"
    train = next(c for c in report["resume"]["commands"] if "scripts.base_train" in c)
    assert "--resume_from_step=4800" in train, train


def test_the_final_save_still_means_done(tmp_path, cli):
    log = tmp_path / "run.out"
    log.write_text("Overriding: depth = 4\n" + "".join(_step(n, total=50) for n in range(40, 50)) + _save(50))
    _report, _checks, phases = _verify(cli, log)
    assert phases["base"]["status"] == "done", phases["base"]
    # no finding, yet the run is not done: FAIL and exit 1, and the verdict line says which phases (it said "PASS")
    proc = cli("postflight", "verify", "--log", str(log), cwd=tmp_path)
    assert proc.returncode == 1 and "FAIL: no findings; not done: mid, sft" in proc.stdout, proc.stdout[-500:]
    assert "exit 1: no failing finding, but expected phases are not done: mid, sft" in proc.stderr, proc.stderr
    assert _report["verdict"] == "fail", _report["verdict"]  # JSON agrees with the exit code


def test_a_sighup_is_a_hangup_with_its_own_fix(tmp_path, cli):
    log = tmp_path / "run.out"
    log.write_text(
        "Overriding: depth = 20\n"
        + "".join(_step(n) for n in range(4610, 4624))
        + _tb(
            "/home/u/nanochat/.venv/bin/torchrun",
            10,
            "sys.exit(main())",
            "torch.distributed.elastic.multiprocessing.api.SignalException: Process 91952 got signal: 1",
        )
    )
    _report, checks, _phases = _verify(cli, log)
    (crash,) = checks["LOG002"]["findings"]
    assert "(hangup)" in crash["message"], crash["message"]
    assert "SIGHUP" in crash["fix"] and "tmux" in crash["fix"]
    # a real log started with nohup still got it: torchrun installs its own SIGHUP handler (it said "or nohup")
    assert "not nohup alone" in crash["fix"], crash["fix"]


def test_argparse_refusing_the_command_line_is_the_phase_crash(tmp_path, cli):
    # a real argparse, run as the job runs it: `python -m scripts.base_train --models base`
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "base_train.py").write_text(
        "import argparse\np = argparse.ArgumentParser()\np.add_argument('--depth', type=int)\np.parse_args()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.base_train", "--depth=20", "--models", "base"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "error: unrecognized arguments" in proc.stderr
    log = tmp_path / "run.err"
    log.write_text(proc.stderr)
    report, checks, phases = _verify(cli, log)
    assert report["verdict"] != "pass"  # was PASS with no findings
    assert phases["base"]["status"] == "failed"
    assert "bad flag" in phases["base"]["cause"] and "--models base" in phases["base"]["cause"], phases["base"]
    (crash,) = checks["LOG002"]["findings"]
    assert "--help" in crash["fix"]
    assert report["resume"]["phase"] == "base" and report["resume"]["assumed"] == ["tokenizer"]


def test_an_exception_line_without_its_traceback_is_still_a_crash(tmp_path, cli):
    # stderr pasted from its last line; the path went onto the next line
    log = tmp_path / "job.err"
    log.write_text(
        "FileNotFoundError: [Errno 2] No such file or directory:\n'/scratch/u/nanochat-cache/chatsft_checkpoints'\n"
    )
    report, checks, _phases = _verify(cli, log)
    assert report["verdict"] != "pass"  # was PASS with no findings
    (cascade,) = checks["LOG004"]["findings"]
    assert "sft" in cascade["message"], cascade["message"]


def test_frames_pasted_without_their_indent_keep_the_offline_cause_and_resume_at_the_phase(tmp_path, cli):
    log = tmp_path / "job.err"
    log.write_text(
        'File "/scratch/u/nanochat/scripts/mid_train.py", line 100, in <module>\n'
        '    MMLU(subset="auxiliary_train", split="train"),\n'
        'File "/scratch/u/nanochat/tasks/mmlu.py", line 22, in __init__\n'
        '    self.ds = load_dataset("cais/mmlu", subset, split=split).shuffle(seed=42)\n'
        "ConnectionError: Couldn't reach 'cais/mmlu' on the Hub (LocalEntryNotFoundError)\n"
    )
    report, _checks, phases = _verify(cli, log)
    assert phases["mid"]["status"] == "failed"
    assert "offline dataset" in phases["mid"]["cause"] and "cais/mmlu" in phases["mid"]["cause"]
    assert "cut off" not in phases["mid"]["cause"]
    # the phases before mid are outside these logs: the plan starts at mid and says what it assumes
    assert phases["base"]["status"] == "not-run" and phases["base"]["before_logs"] is True
    assert report["resume"]["phase"] == "mid" and report["resume"]["assumed"] == ["tokenizer", "base"]
    assert not any("scripts.base_train" in c for c in report["resume"]["commands"])
    assert "load_dataset('cais/mmlu'" in report["resume"]["fixes"][0]


def test_the_first_nan_step_is_reported_not_the_last(tmp_path, cli):
    log = tmp_path / "run.out"
    log.write_text(
        "Overriding: depth = 4\n"
        + "".join(_step(n, total=50) for n in range(1, 4))
        + "".join(_step(n, total=50, loss="nan") for n in range(4, 7))
    )
    _report, checks, _phases = _verify(cli, log)
    (nan,) = checks["LOG007"]["findings"]
    assert "step 00004/50" in nan["message"] and nan["location"]["line"] == 5, nan


def test_a_phase_silent_at_the_end_of_the_logs_may_hang_as_well_as_have_died(tmp_path, cli):
    # stderr in the same log (python logging's lines), no traceback, nothing after the setup lines, no job id
    log = tmp_path / "run.out"
    log.write_text(
        "2026-01-02 10:00:00,000 - nanochat.checkpoint_manager - INFO - Loading model from "
        "/root/.cache/nanochat/base_checkpoints/d20 with step 21400\n"
        "Muon: Grouping 20 params of shape torch.Size([5120, 1280]), device cuda:0, dtype torch.float32\n"
    )
    _report, checks, phases = _verify(cli, log)
    assert phases["base"]["status"] == "done"
    assert "died, hung or is still running" in phases["mid"]["cause"], phases["mid"]
    (silent,) = checks["LOG003"]["findings"]
    assert "read the traceback" not in silent["fix"] and "hangs" in silent["fix"], silent


def test_out_of_memory_while_the_model_is_built_is_no_batch_size_problem(tmp_path, cli):
    log = tmp_path / "run.out"
    log.write_text(
        "Traceback (most recent call last):\n"
        '  File "/home/u/nanochat/scripts/base_train.py", line 619, in <module>\n'
        "    model.to_empty(device=device)\n"
        '  File "/home/u/nanochat/.venv/lib/python3.12/site-packages/torch/nn/modules/module.py", line 1243, in to_empty\n'
        "    return self._apply(\n"
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 64.00 MiB. GPU 0 has a total capacity of "
        "3.68 GiB of which 14.38 MiB is free.\n"
    )
    _report, checks, phases = _verify(cli, log)
    (crash,) = checks["LOG002"]["findings"]
    assert "(model too large)" in crash["message"], crash["message"]
    assert "--depth" in crash["fix"] and "batch" not in crash["fix"].split("before any")[0]


# -- round five: logs of several attempts, renamed entry points, traced command lines


def test_a_nan_on_the_first_step_line_quotes_that_line(tmp_path, cli):
    log = tmp_path / "run.out"
    log.write_text("COMPUTE_DTYPE: torch.float32\n" + _step(1, total=5, loss="nan"))
    _report, checks, _phases = _verify(cli, log)
    (nan,) = checks["LOG007"]["findings"]
    assert nan["message"].startswith("base: non-finite loss: step 00001/5"), nan["message"]  # was the file's start


def test_a_resumed_run_that_crashed_resumes_from_the_step_it_resumed_from(tmp_path, cli):
    log = tmp_path / "run.out"
    log.write_text(
        "Overriding: depth = 20\nOverriding: resume_from_step = 5000\nResuming optimization from step 5000\n"
        + "".join(_step(n) for n in range(5000, 5002))
        + _tb(
            "/root/nanochat/scripts/base_train.py",
            308,
            "loss = model(x, y)",
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 160.00 MiB.",
        )
    )
    report, _checks, _phases = _verify(cli, log)
    train = next(c for c in report["resume"]["commands"] if "scripts.base_train" in c)
    assert train.endswith("--resume_from_step=5000"), train  # was a restart from step 0


def test_a_later_attempt_in_the_same_log_supersedes_an_earlier_crash(tmp_path, cli):
    # attempt 1: Ctrl-C in the tokenizer, base dies at setup (more ranks than GPUs); attempt 2 trains on
    log = tmp_path / "run.out"
    log.write_text(
        _tb("/home/u/nanochat/scripts/tok_train.py", 40, "tokenizer = train(text_iter)", "KeyboardInterrupt")
        + "Saved tokenizer encoding to /home/u/.cache/nanochat/tokenizer/tokenizer.pkl\n"
        "Overriding: depth = 20\n"
        + _tb("/home/u/nanochat/scripts/base_train.py", 71, "device = compute_init(device_type)", ORDINAL)
        + "Overriding: depth = 20\nOverriding: device_batch_size = 4\n"
        + "".join(_step(n) for n in range(0, 3))
    )
    _report, checks, phases = _verify(cli, log)
    assert phases["tokenizer"]["status"] == "done", phases["tokenizer"]  # was failed (KeyboardInterrupt)
    assert phases["base"]["cause"].startswith("log stops at step 2 without saving, and with no error"), phases["base"]
    assert not checks["LOG002"]["findings"], checks["LOG002"]  # both crashes are past: later attempts went on
    # the same log cut after the base crash: that crash is the news, with its cause
    log.write_text(log.read_text().split("Overriding: device_batch_size = 4")[0])
    _report, checks, phases = _verify(cli, log)
    (crash,) = checks["LOG002"]["findings"]
    assert "died during setup (more processes than GPUs)" in crash["message"], crash["message"]
    assert "--nproc_per_node" in crash["fix"]


def test_ctrl_c_and_a_full_disk_from_hf_datasets_have_their_causes(tmp_path, cli):
    log = tmp_path / "run.out"
    for exc, cause in ((NO_DISK_SPACE, "(disk full)"), ("KeyboardInterrupt", "(interrupted)")):
        log.write_text(_tb("/home/u/nanochat/scripts/mid_train.py", 100, "train_dataset = TaskMixture(tasks)", exc))
        _report, checks, _phases = _verify(cli, log)
        (crash,) = checks["LOG002"]["findings"]
        assert cause in crash["message"], crash["message"]


def test_a_forks_renamed_trainer_is_still_base_training(tmp_path, cli):
    log = tmp_path / "run.out"
    log.write_text(
        "Resuming optimization from step 307584\n"
        + _tb(
            "/home/u/nanochat/scripts/base_train_gc.py",
            471,
            "loss = model(x, y)",
            "RuntimeError: CUDA driver error: out of memory",
        )
    )
    report, _checks, phases = _verify(cli, log)
    assert phases["base"]["status"] == "failed" and "out of memory" in phases["base"]["cause"], phases["base"]
    assert report["resume"]["phase"] == "base"  # was the whole pipeline from the tokenizer
    assert any(c.endswith("--resume_from_step=307584") for c in report["resume"]["commands"])


def test_the_traced_command_line_gives_the_resume_its_launcher_and_flags(tmp_path, cli):
    # `set -x`: argparse eras print no Overriding lines; the trace has the launch and its flags
    log = tmp_path / "run.out"
    log.write_text(
        "+ torchrun --standalone --nproc_per_node=2 -m scripts.base_train -- --depth=4 --device-batch-size=4\n"
        "COMPUTE_DTYPE: torch.bfloat16\n" + "".join(_step(n, total=50) for n in range(0, 3))
    )
    report, _checks, _phases = _verify(cli, log)
    train = next(c for c in report["resume"]["commands"] if "scripts.base_train" in c)
    assert train.startswith("torchrun --standalone --nproc_per_node=2 "), train  # was 8 processes, no flags
    assert "--depth=4" in train and "--device-batch-size=4" in train, train


def test_a_report_the_log_shows_generated_is_done_without_a_base_dir(tmp_path, cli):
    ckpt = "2026-01-02 10:00:00,000 - nanochat.checkpoint_manager - INFO - Saved model parameters to: /c/{}/d4/model_{:06d}.pt\n"
    mid = "step 00001 (50.00%) | loss: 2.000000 | lrm: 1.00 | dt: 10.00ms | tok/sec: 1,000 | mfu: 1.00 | total time: 0.01m\n"
    sft = "Step 00001/00002 | Training loss: 1.500000| lrm: 0.500000| num_tokens: 1,000\n"
    report = "Generating report to /c/report/report.md\nCopying report.md to current directory for convenience\n"
    log = tmp_path / "run.out"
    log.write_text(
        "Overriding: depth = 4\n"
        + "".join(_step(n, total=50) for n in range(40, 50))
        + _save(50)
        + "Overriding: dry_run = 0\n"
        + mid
        + ckpt.format("mid_checkpoints", 2)
        + "Overriding: target_examples_per_step = 4\n"
        + sft
        + ckpt.format("chatsft_checkpoints", 2)
        + report
    )
    _report, _checks, phases = _verify(cli, log)
    assert [phases[p]["status"] for p in ("base", "mid", "sft")] == ["done"] * 3, phases
    assert phases["report"]["status"] == "done", phases["report"]  # was "not checked (no base dir)"
    # the same report step after SFT stopped early: the report lacks what did not finish
    log.write_text(log.read_text().replace(ckpt.format("chatsft_checkpoints", 2), ""))
    _report, _checks, phases = _verify(cli, log)
    assert phases["report"]["status"] == "partial" and "sft did not finish" in phases["report"]["cause"], phases


def test_the_configurators_assert_is_a_bad_flag_raised_where_the_script_calls_it(tmp_path, cli):
    # classic's configurator is exec'd from a string: `--depth 20` (no "=") or a bare `--` trips its assert
    log = tmp_path / "run.out"
    log.write_text(
        "Traceback (most recent call last):\n"
        '  File "/root/nanochat/scripts/base_train.py", line 70, in <module>\n'
        "    exec(open(os.path.join('nanochat', 'configurator.py')).read())\n"
        '  File "<string>", line 29, in <module>\n'
        "AssertionError\n"
    )
    _report, checks, _phases = _verify(cli, log)
    (crash,) = checks["LOG002"]["findings"]
    assert "(bad flag)" in crash["message"] and "only --key=value" in crash["message"], crash["message"]
    assert "raised at /root/nanochat/scripts/base_train.py:70" in crash["message"]  # not <string>:29


def test_the_out_of_memory_fix_halves_the_batch_the_run_used(tmp_path, cli):
    log = tmp_path / "run.out"
    log.write_text(
        "Overriding: depth = 26\nOverriding: device_batch_size = 8\n"
        + _tb(
            "/root/nanochat/scripts/base_train.py",
            308,
            "loss = model(x, y)",
            "torch.OutOfMemoryError: CUDA out of memory.",
        )
    )
    report, checks, _phases = _verify(cli, log)
    (crash,) = checks["LOG002"]["findings"]
    assert crash["fix"].startswith("lower --device_batch_size (8 -> 4 -> 2)"), crash["fix"]  # was 32 -> 16 -> 8
    assert report["resume"]["fixes"][0].startswith("lower --device_batch_size (8 -> 4 -> 2)")


def test_report_lines_in_a_long_logs_tail_name_the_era_that_still_has_a_report(tmp_path, cli):
    # a no-mid era run (same log grammar as current master, which has no report.py): 3,000 steps put the
    # report generation far past the head (256 KiB); it was called "current" and its report step not part of the era
    step = (
        "step {:05d}/03000 ({:.2f}%) | loss: 3.100000 | lrm: 1.00 | dt: 900.00ms | tok/sec: 500,000 | "
        "bf16_mfu: 40.00 | epoch: 1 | total time: {:.2f}m\n"
    )
    log = tmp_path / "run.out"
    log.write_text(
        "Model config:\n{'sequence_len': 2048, 'n_layer': 4}\n"
        + "".join(step.format(n, 100 * n / 3000, n / 60) for n in range(3000))
        + _save(3000)
        + "Generating report to /c/report/report.md\nCopying report.md to current directory for convenience\n"
    )
    assert log.stat().st_size > 300_000  # beyond the head that era signs were read from
    report, _checks, phases = _verify(cli, log)
    assert report["profile"]["name"] == "no-mid", report["profile"]
    assert phases["report"]["cause"].startswith("the log shows report.md generated"), phases["report"]
    # the same log without the report lines: its grammar fits both eras, and its save is dated 2026-03-02, before
    # the current era began (2026-07-02): no-mid, by its date
    log.write_text(log.read_text().split("Generating report")[0])
    report, _checks, _phases = _verify(cli, log)
    assert report["profile"]["name"] == "no-mid", report["profile"]
    assert "its log is dated 2026-03-02, before the current era (from 2026-07-02)" in report["profile"]["reason"]
    # dated after it, or not dated at all: what its grammar says first (current master)
    log.write_text(log.read_text().replace("2026-03-02 18:32:51,834", "2026-07-20 18:32:51,834"))
    report, _checks, _phases = _verify(cli, log)
    assert report["profile"]["name"] == "current", report["profile"]


def test_a_run_that_ends_in_nan_failed_and_an_eval_banner_after_base_does_not_undo_it(tmp_path, cli):
    # a public end-to-end log: base saved its last step, a `=== Step 4: Evaluate base model ===` banner, then SFT
    # went NaN at step 6 and logged NaN to its end. It was "base partial (stops at step ?)" and "sft done"
    sft = "step {:05d} ({:.2f}%) | loss: {} | lrm: 1.00 | dt: 316.78ms | tok/sec: 103,440 | mfu: 0.00 | epoch: 1\n"
    log = tmp_path / "run.out"
    log.write_text(
        "=== Step 3: Pretrain base model ===\nCOMPUTE_DTYPE: torch.bfloat16\n"
        + "".join(_step(n, total=50) for n in range(40, 50))
        + _save(50)
        + "Minimum validation bpb: 0.990973\n=== Step 4: Evaluate base model ===\n"
        + "=== Step 6: SFT ===\n+ python -m scripts.chat_sft --device-batch-size=4\n"
        + "".join(sft.format(n, n / 1.88, "1.260000" if n < 6 else "nan") for n in range(0, 188))
        + _save(188).replace("base_checkpoints", "chatsft_checkpoints")
    )
    report, checks, phases = _verify(cli, log)
    assert phases["base"]["status"] == "done", phases["base"]
    assert phases["sft"]["status"] == "failed" and phases["sft"]["cause"].startswith("training diverged"), phases
    assert report["resume"]["phase"] == "sft"
    (nan,) = checks["LOG007"]["findings"]
    assert nan["fix"] == "rerun sft from its start with a lower learning rate: it saved nothing before the NaN"


def test_an_out_of_memory_line_pasted_alone_is_a_crash(tmp_path, cli):
    # a blog post quotes the error first and a frame after it; the OOM line alone gave no finding at all
    log = tmp_path / "run.out"
    log.write_text(
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.51 GiB.\n"
        "GPU 0 has a total capacity of 11.56 GiB of which 1.16 GiB is free.\n"
    )
    _report, checks, _phases = _verify(cli, log)
    (crash,) = checks["LOG002"]["findings"]
    assert "crashed (out of memory): torch.OutOfMemoryError: CUDA out of memory" in crash["message"], crash


def test_a_crash_in_base_trains_core_evaluation_is_not_a_setup_crash(tmp_path, cli):
    # a thread quotes rank 7's traceback from the step-2000 CORE evaluation, cut before its HTTPError line: it was
    # "died during setup (other)" with "read the traceback"
    frame = '[rank7]:   File "{}", line {}, in {}\n[rank7]:     {}\n'
    log = tmp_path / "run.out"
    log.write_text(
        "Downloading https://example.org/eval_bundle.zip...\n[rank7]: Traceback (most recent call last):\n"
        + frame.format("/home/u/nanochat/scripts/base_train.py", 243, "<module>", "results = evaluate_model(m, t, d)")
        + frame.format("/home/u/nanochat/scripts/base_eval.py", 58, "evaluate_model", "download_file_with_lock(URL)")
        + frame.format("/home/u/nanochat/nanochat/common.py", 83, "download_file_with_lock", "with urlopen(url) as r:")
    )
    _report, checks, phases = _verify(cli, log)
    assert phases["base"]["cause"].startswith("crashed in its CORE evaluation (offline download)"), phases["base"]
    (crash,) = checks["LOG002"]["findings"]
    assert "eval_bundle" in crash["fix"] and "pre-download" in crash["fix"], crash["fix"]


def test_an_optional_phase_whose_checkpoint_was_loaded_ran(tmp_path, cli):
    # a fork's chat_eval of its RL model: every phase before rl was "done (rl's checkpoint was loaded)", rl not-run
    log = tmp_path / "run.out"
    log.write_text(
        "Autodetected device type: cuda\n"
        "2026-04-21 21:58:01,270 - nanochat.checkpoint_manager - INFO - Loading model from "
        "/c/chatrl_checkpoints/d32 with step 120\nARC-Easy accuracy: 70.12%\n"
    )
    _report, _checks, phases = _verify(cli, log)
    assert phases["rl"]["status"] == "done" and "step-120 checkpoint was loaded" in phases["rl"]["cause"], phases


def test_a_resume_takes_the_settings_base_train_printed_when_no_flags_were_logged(tmp_path, cli):
    # a d24 run stopped at step 208 (argparse era: no Overriding lines, no command in the log); the resume was a
    # bare `python -m scripts.base_train`, which trains a d20 of another horizon
    log = tmp_path / "run.out"
    log.write_text(
        'COMPUTE_DTYPE: torch.bfloat16\nModel config:\n{\n  "sequence_len": 2048,\n  "n_layer": 24,\n  "n_embd": 1536\n}\n'
        "Using user-provided number of iterations: 29,000\nTokens / micro-batch / rank: 32 x 2048 = 65,536\n"
        + "".join(_step(n, total=29000) for n in range(200, 209))
    )
    report, _checks, _phases = _verify(cli, log)
    train = next(c for c in report["resume"]["commands"] if "scripts.base_train" in c)
    for flag in ("--depth=24", "--num-iterations=29000", "--device-batch-size=32", "--max-seq-len=2048"):
        assert flag in train, train
    # the older print of the depth: `num_layers: 24`
    log.write_text(
        "num_layers: 24\nTokens / micro-batch / rank: 8 x 2048 = 16,384\n"
        + "".join(_step(n, total=29000) for n in range(200, 209))
    )
    report, _checks, _phases = _verify(cli, log)
    train = next(c for c in report["resume"]["commands"] if "scripts.base_train" in c)
    assert "--depth=24" in train and "--device_batch_size=8" in train, train


def test_an_nccl_watchdog_after_the_last_step_is_named_and_a_run_without_saves_is_rerun(tmp_path, cli):
    # a thread's 8-GPU log: step 1998 of 7226, then rank 6's NCCL watchdog lines (no traceback); the cause was only
    # "log stops at step 1998" and the fix "resume from the last checkpoint", of which there was none
    log = tmp_path / "run.out"
    log.write_text(
        "COMPUTE_DTYPE: torch.bfloat16\n"
        + "".join(_step(n, total=7226) for n in range(1990, 1999))
        + "[rank6]:[E222 18:40:45.627415948 ProcessGroupNCCL.cpp:1362] [PG ID 0 PG GUID 0(default_pg) Rank 6] "
        "Future for ProcessGroup abort timed out after 600000 ms\n"
    )
    _report, checks, phases = _verify(cli, log)
    assert "then NCCL's watchdog gave up on a collective (line 11)" in phases["base"]["cause"], phases["base"]
    (early,) = checks["LOG008"]["findings"]
    assert early["fix"].startswith("rerun the phase (these logs show no checkpoint of it"), early["fix"]


GUESS = (
    "2026-02-17 21:19:02,572 - nanochat.checkpoint_manager - INFO - No model tag provided, guessing model tag: d16\n"
)


def _guess_then_load(ckpt_dir):
    return GUESS + (
        "2026-02-17 21:19:02,573 - nanochat.checkpoint_manager - INFO - "
        f"Loading model from {ckpt_dir}/d16 with step 4000\n"
    )


def test_a_guessed_model_tag_among_other_models_is_a_warning_naming_them(tmp_path, cli):
    # karpathy/nanochat#542: runs at depths 8 and 16 in one base dir; chat_sft without --model-tag took d16
    ckpt = tmp_path / "base" / "base_checkpoints"
    for tag in ("d16", "d8"):
        (ckpt / tag).mkdir(parents=True)
    log = tmp_path / "sft.out"
    log.write_text(
        "Autodetected device type: cuda\n" + _guess_then_load(ckpt) + "Step 00000/00650 | Training loss: 1.9\n"
    )
    _, checks, _ = _verify(cli, log)
    (f,) = checks["LOG011"]["findings"]
    assert f["severity"] == "warning" and f"{ckpt} holds d16, d8" in f["message"]
    assert "guessed base's d16" in f["message"] and "dN) to every phase that loads a checkpoint" in f["fix"]


def test_a_guessed_model_tag_unreadable_here_is_a_note_and_the_only_model_nothing(tmp_path, cli):
    log = tmp_path / "sft.out"
    log.write_text(GUESS)  # the one line quoted in #542
    _, checks, _ = _verify(cli, log)
    (f,) = checks["LOG011"]["findings"]
    assert f["severity"] == "info" and "guessed d16" in f["message"] and "-g/--model-tag dN" in f["fix"]
    (tmp_path / "base_checkpoints" / "d16").mkdir(parents=True)
    log.write_text(_guess_then_load(tmp_path / "base_checkpoints"))
    _, checks, _ = _verify(cli, log)
    assert checks["LOG011"]["status"] == "pass"


def test_a_later_phase_on_another_model_than_the_job_trained_is_an_error(tmp_path, cli):
    save = _save(21400)
    log = tmp_path / "run.out"
    log.write_text(_step(21399) + save + _guess_then_load("/home/u/.cache/nanochat/base_checkpoints"))
    _, checks, _ = _verify(cli, log)
    (f,) = checks["LOG011"]["findings"]
    assert (
        f["severity"] == "error"
        and "loaded base's d16" in f["message"]
        and "not the d20 this job's base saved" in f["message"]
    )
    assert "=d20" in f["fix"]


def test_a_logged_window_pattern_is_a_post_configurator_era(tmp_path, cli):
    # an SFT model evaluated alone by a 2026 fork (16 ranks): its model config carries window_pattern, which no
    # configurator-era model has; dated 2026-04-21, it ran before upstream deleted the report (2026-07-02): the
    # no-mid era, whose report this log cannot show (no base dir to read report.md from)
    log = tmp_path / "eval.out"
    log.write_text(
        "Autodetected device type: cuda\n"
        "2026-04-21 21:23:51,491 - nanochat.common - INFO - Distributed world size: 16\n"
        "2026-04-21 21:23:51,494 - nanochat.checkpoint_manager - INFO - Loading model from "
        "/s/chatsft_checkpoints/d32 with step 847\n"
        "2026-04-21 21:23:54,348 - nanochat.checkpoint_manager - INFO - Building model with config: "
        "{'sequence_len': 2048, 'vocab_size': 32768, 'n_layer': 32, 'n_head': 16, 'n_kv_head': 16, "
        "'n_embd': 2048, 'window_pattern': 'L'}\n"
        "ARC-Easy accuracy: 48.74%\n"
    )
    args = ["postflight", "verify", "--log", str(log), "--format", "json"]
    proc = cli(*args, cwd=tmp_path)
    report = json.loads(proc.stdout)
    phases = {p["name"]: p for p in report["phases"]}
    assert report["profile"]["name"] == "no-mid" and "window_pattern" in report["profile"]["reason"]
    assert phases["mid"]["status"] == "not-run" and phases["sft"]["status"] == "done"
    assert phases["report"]["cause"] == "report.md not checked: no base dir and no ./report.md: pass --base-dir"
    assert "expected phases could not be judged (counted as not done): report" in proc.stderr, proc.stderr
    assert proc.returncode == 1

    # a report.md in the working directory that was reset months after these logs end is another run's: it is not
    # read as this run's (its MID column and missing sections were reported as this run's defects)
    (tmp_path / "report.md").write_text(
        "# nanochat training report\n\nGenerated: 2026-12-07 02:57:09\n\nRun started: 2026-12-07 02:57:09\n\n---\n\n"
        "## Summary\n\n| Metric | BASE | MID | SFT | RL |\n|--------|------|-----|-----|----|\n| CORE | 0.0101 | - | - | - |\n"
    )
    proc = cli(*args, cwd=tmp_path)
    report = json.loads(proc.stdout)
    phases = {p["name"]: p for p in report["phases"]}
    assert phases["report"]["status"] == "not-run", phases["report"]
    assert phases["report"]["cause"] == (
        "report.md not checked: ./report.md is a later run's (started 2026-12-07 02:57:09; these logs end "
        "2026-04-21): pass --base-dir"
    )
    rpt = {c["code"]: c for c in report["checks"] if c["code"].startswith("RPT")}
    assert {c["status"] for c in rpt.values()} == {"skip"} and "a later run's" in rpt["RPT002"]["reason"], rpt
