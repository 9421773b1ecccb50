"""Job logs of a public fork's SLURM runs (a ninth round of real evidence), as shapes written here in our own words:
a trainer killed before it named itself and the evaluation that then found nothing, ranks whose tracebacks
interleave, slurmstepd's own spelling of a cancel's reason."""

from __future__ import annotations

from tests.clirun import verify_logs

TORCHRUN_KILLED = (
    "E0212 13:50:27.217000 3089478 torch/distributed/elastic/multiprocessing/api.py:882] failed (exitcode: -9) "
    "local_rank: 2 (pid: 3089574) of binary: /s/nanochat/.venv/bin/python\n"
    "Traceback (most recent call last):\n"
    '  File "/s/nanochat/.venv/bin/torchrun", line 10, in <module>\n'
    "    sys.exit(main())\n"
    '  File "/s/nanochat/.venv/lib/python3.10/site-packages/torch/distributed/launcher/api.py", line 293, in launch_agent\n'
    "    raise ChildFailedError(\n"
    "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n"
    "========================================================\n"
    "scripts.base_train FAILED\n"
    "--------------------------------------------------------\n"
    "Root Cause (first observed failure):\n[0]:\n"
    "  time      : 2026-02-12_13:50:26\n  host      : login-0.example.org\n  rank      : 2 (local_rank: 2)\n"
    "  exitcode  : -9 (pid: 3089574)\n  error_file: <N/A>\n  traceback : Signal 9 (SIGKILL) received by PID 3089574\n"
    "========================================================\n"
)
MISSING = "FileNotFoundError: [Errno 2] No such file or directory: '/s/nanochat/cache/base_checkpoints'\n"


def _eval_frames(indent_call: bool = True) -> list[str]:
    return [
        '  File "/s/nanochat/scripts/base_eval.py", line 213, in main\n',
        '    model, tokenizer, meta = load_model("base", device, phase="eval")\n',
        '  File "/s/nanochat/nanochat/checkpoint_manager.py", line 120, in find_largest_model\n',
        "    model_tags = [f for f in os.listdir(checkpoints_dir)]\n",
    ]


def test_a_trainer_killed_in_setup_is_the_cause_not_the_evaluation_that_found_nothing(tmp_path, cli):
    # the whole pipeline run on a login node: base_train's rank 2 SIGKILLed right after its model config, then base_eval
    # found no base checkpoint (one traceback per rank, printed at once, interleaved)
    frames = _eval_frames()
    interleaved = "".join(f for pair in zip(frames, frames, strict=True) for f in pair)
    log = tmp_path / "run.log"
    log.write_text(
        'Autodetected device type: cpu\nVocab size: 32,768\nModel config:\n{\n  "n_layer": 26\n}\n'
        + TORCHRUN_KILLED
        + "Evaluating base model...\n"
        + "Traceback (most recent call last):\nTraceback (most recent call last):\n"
        + interleaved
        + MISSING
        + MISSING
    )
    _report, checks, phases = verify_logs(cli, tmp_path, log)
    base = phases["base"]
    assert "killed by SIGKILL (exit -9) during setup" in base["cause"], base  # was "base_eval crashed (missing ...)"
    assert not checks["LOG002"]["findings"], checks["LOG002"]  # was "the traceback is cut off before its exception"
    assert len(checks["LOG004"]["findings"]) == 1, checks["LOG004"]  # one per process, not one per interleaved copy


def test_slurmstepds_own_spelling_of_a_cancels_reason_is_read(tmp_path, cli):
    err = tmp_path / "job.err"
    err.write_text(
        "[2026-02-23T18:32:58.125] error: *** JOB 366189 ON h100-1 CANCELLED AT 2026-02-23T18:32:58 DUE to SIGNAL "
        "Terminated ***\n"
    )
    out = tmp_path / "job.out"
    out.write_text(
        "python -m scripts.base_train --depth=4\n"
        + "".join(
            f"step {s:05d}/04357 ({s / 43.57:.2f}%) | loss: 5.8 | lrm: 1.00 | dt: 4974.33ms | tok/sec: 210,797 | "
            "mfu: 40.0 | total time: 1.00m\n"
            for s in range(0, 60)
        )
    )
    _report, _checks, phases = verify_logs(cli, tmp_path, out, err)
    assert phases["base"]["cause"].startswith("cancelled by SLURM due to signal terminated"), phases["base"]


def test_torchrun_refusing_a_trainer_flag_is_a_crash_with_its_cause_and_a_shells_not_found_is_told(tmp_path, cli):
    err = tmp_path / "abl.err"
    err.write_text(
        "usage: torchrun [-h] [--nnodes NNODES] [--nproc-per-node NPROC_PER_NODE]\n"
        "torchrun: error: ambiguous option: --run could match --run-path, --run_path\n"
    )
    report, checks, _phases = verify_logs(cli, tmp_path, err)
    (crash,) = checks["LOG002"]["findings"]  # was PASS: no findings
    assert "torchrun refused a flag meant for the trainer" in crash["message"], crash["message"]
    assert report["verdict"] != "pass", report["verdict"]
    sh = tmp_path / "sh.err"
    sh.write_text("/var/lib/slurm/slurmd/job713551/slurm_script: 4: source: not found\n")
    _report, checks, _phases = verify_logs(cli, tmp_path, sh)
    (dash,) = checks["LOG013"]["findings"]
    assert dash["message"].startswith("slurm_script line 4: `source: not found`: /bin/sh (dash) ran the script")


def test_a_gpu_kernel_fault_in_a_stderr_file_is_the_cause_of_the_phase_its_out_file_shows(tmp_path, cli):
    # a fork's trainer tags its step lines; rank 1's NCCL watchdog then ended the process with a C++ exception
    out = tmp_path / "abl.out"
    out.write_text(
        "".join(
            f"step {s:05d}/02205 ({s / 22.05:.2f}%) [ns3_ftrl] | loss: {11.09 - s * 0.07:.6f} | lrm: 1.00 | "
            "dt: 822.88ms | tok/s: 637,134 | mfu: 36.36 | epoch: 1\n"
            for s in range(0, 79)
        )
    )
    err = tmp_path / "abl.err"
    err.write_text(
        "[rank1]:[E424 21:52:47.098511001 ProcessGroupNCCL.cpp:2057] [PG ID 0 Rank 1] Process group watchdog thread "
        "terminated with exception: CUDA error: an illegal memory access was encountered\n"
        "frame #8: <unknown function> + 0x1268d0 (0x7fb2d2e058d0 in /lib/x86_64-linux-gnu/libc.so.6)\n\n"
        "terminate called after throwing an instance of 'c10::DistBackendError'\n"
        "  what():  [PG ID 0 PG GUID 0(default_pg) Rank 1] Process group watchdog thread terminated with exception: "
        "CUDA error: an illegal memory access was encountered\n"
        "Search for `cudaErrorIllegalAddress' in the CUDA documentation for more information.\n"
    )
    _report, checks, phases = verify_logs(cli, tmp_path, out, err)
    base = phases["base"]  # was not-run: the tagged step lines were no step lines, the crash no phase's
    assert base["status"] == "failed" and base["cause"].startswith("crashed (CUDA fault) after step 78 of 2205"), base
    assert "an illegal memory access" in base["cause"], base
    (crash,) = checks["LOG002"]["findings"]
    assert "CUDA_LAUNCH_BLOCKING=1" in crash["fix"], crash["fix"]


def test_a_stderr_file_that_ends_with_a_save_and_no_error_is_a_finished_run(tmp_path, cli):
    err = tmp_path / "amort.err"
    d = "/s/cache/base_checkpoints/amort_d12"
    err.write_text(
        "fatal: Could not read from remote repository.\n"  # a harmless git line of the job's own
        f"2026-04-27 18:17:37,392 - nanochat.checkpoint_manager - INFO - Saved model parameters to: {d}/model_002205.pt\n"
        f"2026-04-27 18:17:37,405 - nanochat.checkpoint_manager - INFO - Saved metadata to: {d}/meta_002205.json\n"
    )
    report, _checks, phases = verify_logs(cli, tmp_path, err)
    assert phases["base"]["status"] == "done", phases["base"]  # was "went silent during setup", resumed at 2205
    assert phases["base"]["cause"].startswith("its last save in these logs is step 2205"), phases["base"]
    assert not any("base_train" in c for c in report["resume"]["commands"]), report["resume"]


def test_a_report_module_that_crashed_generated_nothing(tmp_path, cli):
    # uv could not install the environment (home quota): report reset and the tokenizer then failed on missing modules
    log = tmp_path / "run.log"
    log.write_text(
        "Initializing report...\nTraceback (most recent call last):\n"
        '  File "/s/nanochat/nanochat/report.py", line 12, in <module>\n    import psutil\n'
        "ModuleNotFoundError: No module named 'psutil'\n"
        "Training tokenizer...\nTraceback (most recent call last):\n"
        '  File "/s/nanochat/scripts/tok_train.py", line 8, in <module>\n    import torch\n'
        "ModuleNotFoundError: No module named 'torch'\n"
    )
    _report, _checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["report"]["status"] == "failed", phases["report"]  # was "the log shows report.md generated"
    assert phases["report"]["cause"] == "nanochat.report crashed: ModuleNotFoundError: No module named 'psutil'"
    assert phases["tokenizer"]["cause"].endswith("ModuleNotFoundError: No module named 'torch'"), phases["tokenizer"]


def test_an_install_failure_names_its_reason_on_its_own_line_or_below(tmp_path, cli):
    pip = tmp_path / "pip.log"
    pip.write_text("ERROR: Could not install packages due to an OSError: [Errno 122] Disk quota exceeded\n")
    _report, checks, _phases = verify_logs(cli, tmp_path, pip)
    (failed,) = checks["LOG014"]["findings"]
    assert failed["message"].endswith("): Disk quota exceeded; the phases after it ran without its packages")
    assert "UV_CACHE_DIR" in failed["fix"], failed["fix"]


def test_a_resume_plan_says_when_the_gpu_count_is_a_guess(tmp_path, cli):
    # round nine: a fork's tokenizer log (its jobs used 2 GPUs) got a resume plan of `--nproc_per_node=8` with nothing
    # saying that 8 was assumed
    crash = (
        "Traceback (most recent call last):\n" + '  File "/s/scripts/base_train.py", line 9, in <module>\n' + MISSING
    )
    log = tmp_path / "base.log"
    log.write_text("Overriding: depth = 12\n" + crash)
    report, _checks, _phases = verify_logs(cli, tmp_path, log)
    plan = report["resume"]
    assert any("--nproc_per_node=8" in c for c in plan["commands"]), plan
    assert "the logs do not say how many GPUs the job ran: --nproc_per_node=8 is assumed" in plan["note"], plan

    log.write_text("Overriding: depth = 12\nDistributed world size: 2\n" + crash)  # the trainer said
    report, _checks, _phases = verify_logs(cli, tmp_path, log)
    plan = report["resume"]
    assert any("--nproc_per_node=2" in c for c in plan["commands"]), plan
    assert "GPUs" not in plan["note"], plan["note"]


def test_step_lines_a_fork_tags_are_step_lines(tmp_path, cli):
    # round ten: a fork's sweep prefixes every step line with its run's tag; a 4-hour base run cancelled at step
    # 2900 of 4357 read as "logged no training step: it died during setup"
    from preflight.logindex import index_log

    steps = "".join(
        f"[clamp_0.100_NO_SN] step {s:05d}/04357 ({s / 43.57:.2f}%) | loss: {5 - s / 1000:.6f} | dt: 4974.33ms\n"
        for s in range(0, 2901, 50)
    )
    log = tmp_path / "clamp.out"
    log.write_text("Autodetected device type: cuda\nDistributed world size: 4\n" + steps)
    for vector in (False, True):  # both step-line finders
        (seg,) = [s for s in index_log(log, vector=vector).segments if s.step_lines]
        assert (seg.step_lines, seg.first_step.step, seg.last_step.step, seg.last_step.total) == (59, 0, 2900, 4357)
    _report, checks, phases = verify_logs(cli, tmp_path, log)
    assert not checks["LOG003"]["findings"], checks["LOG003"]  # was "base started but logged no training step"
    assert "log stops at step 2900 without saving" in phases["base"]["cause"], phases["base"]
