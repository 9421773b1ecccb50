"""Job logs of a fourteenth round of real evidence, as shapes written here in our own words: a full disk under the
Hugging Face cache, a log that holds several attempts, upstream's step lines of March 2026, and torchrun's `--`
left in a `python -m` line."""

from __future__ import annotations

from tests.clirun import verify_logs
from tests.postflight.logshapes import _log, missing_ckpt


def _base_start(world: int = 1) -> list[str]:
    return [_log("nanochat.common", f"Distributed world size: {world}"), "Overriding: depth = 20"]


def _crash(script: str, frame: str, exception: str) -> list[str]:
    return [
        "Traceback (most recent call last):",
        f'  File "/h/nanochat/scripts/{script}.py", line 40, in <module>',
        f"    {frame}",
        exception,
    ]


def _steps(first: int, last: int, total: int = 21400) -> list[str]:
    return [
        f"step {s:05d}/{total:05d} ({100 * s / total:.2f}%) | loss: 3.500000 | lrm: 1.00 | dt: 900.00ms | "
        "tok/sec: 580,000 | mfu: 40.00 | total time: 1.00m"
        for s in range(first, last + 1)
    ]


def test_a_full_disk_under_the_hf_cache_is_fixed_there_not_by_moving_the_base_dir(tmp_path, cli):
    # HF datasets' own space check: the fix was "point NANOCHAT_BASE_DIR at scratch", which leaves the base
    # checkpoints the resume needs behind and does not move the cache that filled
    log = tmp_path / "speedrun.log"
    lines = [*_base_start(), *_steps(0, 21399), "Peak memory usage: 70000.00MiB", "Total training time: 180.00m"]
    lines += ["Overriding: run = speedrun"]
    lines += _crash(
        "mid_train",
        'mmlu = load_dataset("cais/mmlu", "auxiliary_train")',
        "OSError: Not enough disk space. Needed: Unknown size (download: 45.32 MiB, generated: 153.54 MiB)",
    )
    log.write_text("\n".join(lines) + "\n")
    report, checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["mid"]["status"] == "failed" and "(disk full)" in phases["mid"]["cause"], phases["mid"]
    (fix,) = report["resume"]["fixes"]
    assert fix.startswith("the Hugging Face cache's disk is full (HF_HOME"), fix
    assert "keep NANOCHAT_BASE_DIR where it is" in fix and "point NANOCHAT_BASE_DIR at scratch" not in fix, fix
    # an OSError that names the file it could not write: the fix names it, and moving the base dir takes its
    # checkpoints along
    lines[-1] = "OSError: [Errno 28] No space left on device: '/scratch/u/nc/mid_checkpoints/d20/model_000100.pt'"
    log.write_text("\n".join(lines) + "\n")
    report, checks, phases = verify_logs(cli, tmp_path, log)
    (fix,) = report["resume"]["fixes"]
    assert fix.startswith("free space on the disk that filled: /scratch/u/nc/mid_checkpoints/d20/model_000100.pt"), fix
    assert "together with what it holds (base_checkpoints, tokenizer" in fix, fix


def test_an_earlier_attempts_ctrl_c_and_rank_failure_are_not_the_last_runs_cause(tmp_path, cli):
    # one tee'd log, three attempts: 8 processes on a one-GPU desktop (invalid device ordinal), a Ctrl-C, then a
    # one-GPU run that saved at 2000 and stops at 2369 with no error; the resume said "stopped with Ctrl-C" and
    # LOG020 told the user to fix rank 1's first attempt "on that node"
    log = tmp_path / "speedrun.log"
    lines = [*_base_start(8)]
    lines += [
        f"[rank1]: {ln}"
        for ln in _crash(
            "base_train", "torch.cuda.set_device(device)", "RuntimeError: CUDA error: invalid device ordinal"
        )
    ]
    lines += [*_base_start(), "Overriding: device_batch_size = 4"]
    lines += _crash("base_train", "import torch", "KeyboardInterrupt")
    lines += [*_base_start(), "Overriding: device_batch_size = 4", *_steps(0, 2000)]
    lines += ["Saved model parameters to: /h/.cache/nanochat/base_checkpoints/d20/model_002000.pt"]
    lines += _steps(2001, 2369)
    log.write_text("\n".join(lines) + "\n")
    report, checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["base"]["status"] == "partial", phases["base"]
    assert not any("Ctrl-C" in f for f in report["resume"]["fixes"]), report["resume"]["fixes"]
    assert not checks["LOG020"]["findings"], checks["LOG020"]["findings"]
    (stopped,) = checks["LOG008"]["findings"]
    # the log ends on that step with no error and no job to ask: stopped, or still running (round 16)
    assert stopped["message"].startswith("base: last logged step 2369 of 21400: training stopped early, or it is"), (
        stopped
    )
    assert stopped["severity"] == "warning", stopped


def test_a_resumed_attempt_answers_the_early_stop_before_it(tmp_path, cli):
    # a run got a hangup at step 4623 and was resumed from 4600 in the same log: only the last attempt stopped early
    log = tmp_path / "run.log"
    lines = [*_base_start(), *_steps(4500, 4623), *_base_start(), "Resuming optimization from step 4600"]
    lines += [*_steps(4601, 4845)]
    log.write_text("\n".join(lines) + "\n")
    _report, checks, _phases = verify_logs(cli, tmp_path, log)
    assert [f["message"].split(",")[0] for f in checks["LOG008"]["findings"]] == [
        "base: last logged step 4845 of 21400: training stopped early"
    ]


_NO_MID_STEP = (
    "step 00000/00050 (0.00%) | loss: 6.930000 | lrm: 1.00 | dt: 900.00ms | tok/sec: 9,000 | bf16_mfu: 1.00 | "
    "epoch: 1 pq: 0 rg: 1 | total time: 0.00m"
)


def test_upstreams_march_step_lines_are_not_the_current_era_and_a_tie_says_so(tmp_path, cli):
    # `epoch: 1 pq: 0 rg: 1` from 2026-03-04, while upstream still wrote report.md: the log ran `nanochat.report
    # reset` and the verdict said "the current era writes no report.md" (and the resume dropped the report)
    log = tmp_path / "speedrun.log"
    log.write_text(
        "Reset report and wrote header to /h/.cache/nanochat/report/header.md\n"
        "+ python -m scripts.base_train --depth=4 --num-iterations=50\n" + _NO_MID_STEP + "\n"
    )
    report, _checks, phases = verify_logs(cli, tmp_path, log)
    assert report["profile"]["name"] == "no-mid", report["profile"]
    assert phases["report"]["expected"] is True, phases["report"]
    assert report["resume"]["commands"][-1] == "python -m nanochat.report generate", report["resume"]["commands"]
    # signs both eras print, and nothing that tells them apart: the reason says it is a tie
    log.write_text("COMPUTE_DTYPE: torch.float32\nInherited max_seq_len=128 from pretrained checkpoint\n")
    report, _checks, _phases = verify_logs(cli, tmp_path, log)
    reason = report["profile"]["reason"]
    assert reason.startswith("the run's evidence fits current or no-mid alike (current taken; --profile"), reason


def test_a_bare_double_dash_after_python_m_is_named_in_the_fix(tmp_path, cli):
    # upstream's `torchrun ... -m scripts.base_train -- --depth=20` with python in torchrun's place: the
    # configurator asserts on the `--`; the fix said "compare with the script's --help"
    log = tmp_path / "speedrun.log"
    lines = _crash("base_train", "exec(open(os.path.join('nanochat', 'configurator.py')).read())", "")[:3]
    lines += ['  File "<string>", line 29, in <module>', "AssertionError"]
    lines += [_log("nanochat.common", "Distributed world size: 1"), *missing_ckpt("base_loss", "base_checkpoints")[0]]
    log.write_text("\n".join(lines) + "\n")
    report, checks, phases = verify_logs(cli, tmp_path, log)
    assert "(bad flag)" in phases["base"]["cause"], phases["base"]
    # the cascade names the same cause (it said "other: AssertionError": the configurator's frames were not read)
    (cascade,) = checks["LOG004"]["findings"]
    assert "root cause: base crashed first (bad flag: AssertionError)" in cascade["message"], cascade["message"]
    (fix,) = report["resume"]["fixes"]
    assert "a bare `--` after `python -m scripts.X`" in fix and "remove that `--`" in fix, fix


def test_a_nanochat_from_before_resume_is_rerun_not_resumed(tmp_path, cli):
    # "Saved model file to:" is the wording of base_train before resume existed (2025-11-13): the plan offered
    # --resume_from_step=2000, which that configurator refuses (Unknown config key)
    log = tmp_path / "speedrun.log"
    lines = [*_base_start(), *_steps(0, 2000)]
    lines += [
        "2025-11-11 01:00:51,302 - nanochat.checkpoint_manager - INFO - Saved model file to: "
        "/h/.cache/nanochat/base_checkpoints/d20/model_002000.pt",
        *_steps(2001, 2369),
    ]
    log.write_text("\n".join(lines) + "\n")
    proc = cli("postflight", "verify", "--log", str(log), cwd=tmp_path)
    train = next(ln for ln in proc.stdout.splitlines() if "scripts.base_train" in ln)
    assert "--resume_from_step" not in train, train
    assert "  note: base's saves read `Saved model file to:`, the wording of a nanochat from before 2025-11-13" in (
        proc.stdout
    ), proc.stdout
    # the later wording resumes
    log.write_text("\n".join(lines).replace("Saved model file to:", "Saved model parameters to:") + "\n")
    report, _checks, _phases = verify_logs(cli, tmp_path, log)
    train = next(c for c in report["resume"]["commands"] if "scripts.base_train" in c)
    assert train.endswith("--resume_from_step=2000"), train
    assert "remarks" not in report["resume"], report["resume"]


def test_era_signs_after_a_megabyte_of_progress_bars_are_read(tmp_path, cli):
    # `uv sync` at the top of a speedrun log: ~1 MB of coloured progress bars hid every sign of the era in the head
    bars = "".join(
        f"\x1b[2K\x1b[1B\x1b[2mtorch{i:>20}\x1b[0m \x1b[32m{'-' * 40}\x1b[0m 12.0 MiB/800.0 MiB\n" for i in range(12000)
    )
    log = tmp_path / "speedrun.log"
    log.write_text(
        "Reset report and wrote header to /h/.cache/nanochat/report/header.md\n"
        + bars
        + _NO_MID_STEP.replace("pq: 0 rg: 1", "").replace("| epoch: 1 ", "")
        + "\n"
        + "".join(f"Map: {i} examples\n" for i in range(8000))  # more than the tail's 64 KiB after it
    )
    report, _checks, _phases = verify_logs(cli, tmp_path, log)
    assert report["profile"]["name"] == "no-mid", report["profile"]
    assert "has '| bf16_mfu:'" in report["profile"]["reason"], report["profile"]


def test_evidence_points_at_where_a_phase_ended_and_the_report_at_its_own_lines(tmp_path, cli):
    # a finished speedrun: "log shows the end of training" cited the phase's first line, and the report row cited the
    # start of chat_eval -i sft, whose output it had swallowed (report generate is a process of its own)
    log = tmp_path / "speedrun.log"
    lines = [*_base_start(), *_steps(0, 21399), "Peak memory usage: 70000.00MiB", "Total training time: 180.00m"]
    lines += [
        _log("nanochat.common", "Distributed world size: 8"),
        "ARC-Easy accuracy: 38.64%",
        "Final: 14/164 (8.54%)",
    ]
    lines += ["Generating report to /h/.cache/nanochat/report/report.md", "Copying report.md to current directory"]
    log.write_text("\n".join(lines) + "\n")
    report, _checks, phases = verify_logs(cli, tmp_path, log)
    end = lines.index("Peak memory usage: 70000.00MiB") + 1
    assert phases["base"]["evidence"] == [f"{log}:{end}"], phases["base"]
    generating = lines.index("Generating report to /h/.cache/nanochat/report/report.md") + 1
    assert phases["report"]["evidence"] == [f"{log}:{generating}"], phases["report"]
    placed = {p["phase"]: p["lines"] for p in report["timeline"]["processes"]}
    assert placed["report"] == [generating, generating + 1], report["timeline"]["processes"]


def test_the_resume_runs_where_the_logged_run_wrote(tmp_path, cli):
    # a run with its own NANOCHAT_BASE_DIR: the resume's commands, run in a shell without it, would look in
    # ~/.cache/nanochat and find nothing of the run
    log = tmp_path / "run.log"
    lines = [*_base_start(), *_steps(0, 500)]
    lines += [
        _log(
            "nanochat.checkpoint_manager",
            "Saved model parameters to: /scratch/u/exp7/base_checkpoints/d20/model_000500.pt",
        )
    ]
    log.write_text("\n".join(lines) + "\n")
    proc = cli(
        "postflight", "verify", "--log", str(log), "--format", "json", cwd=tmp_path, env={"NANOCHAT_BASE_DIR": ""}
    )
    import json

    resume = json.loads(proc.stdout)["resume"]
    assert resume["env"] == {"NANOCHAT_BASE_DIR": "/scratch/u/exp7"}, resume
    assert resume["commands"][0].startswith("python -m scripts.base_train"), resume["commands"]
    text = cli("postflight", "verify", "--log", str(log), cwd=tmp_path, env={"NANOCHAT_BASE_DIR": ""}).stdout
    assert "\n  export NANOCHAT_BASE_DIR=/scratch/u/exp7\n  python -m scripts.base_train" in text, text
    # a shell that names its base dir is where the user means to run
    named = cli(
        "postflight",
        "verify",
        "--log",
        str(log),
        "--format",
        "json",
        cwd=tmp_path,
        env={"NANOCHAT_BASE_DIR": "/elsewhere"},
    )
    assert "env" not in json.loads(named.stdout)["resume"]
