"""Job logs of an eleventh round of real evidence, as shapes written here in our own words: a GPU that another process
already filled (out of memory in torch.cuda.set_device), a fork's own log format that holds nothing nanochat prints,
and the rustbpe extension that tok_train could not use."""

from __future__ import annotations

import json

from tests.clirun import verify_logs

_WARN = "/v/lib/python3.10/site-packages/torch/__init__.py:1617: UserWarning: TF32 settings\n"


def _setup_oom(script: str) -> str:
    # every rank selects its GPU first; local rank 3's GPU is already full, so it dies there, before any tensor
    return (
        "Autodetected device type: cuda\n"
        "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3.10/runpy.py", line 196, in _run_module_as_main\n'
        "    return _run_code(code, main_globals, None,\n"
        f'  File "/n/nanochat/scripts/{script}.py", line 60, in <module>\n'
        "    ddp, ddp_rank, ddp_local_rank, ddp_world_size, device = compute_init(device_type)\n"
        '  File "/n/nanochat/nanochat/common.py", line 165, in compute_init\n'
        '    torch.cuda.set_device(device)  # make "cuda" default to this device\n'
        '  File "/v/lib/python3.10/site-packages/torch/cuda/__init__.py", line 567, in set_device\n'
        "    torch._C._cuda_setDevice(device)\n"
        "torch.AcceleratorError: CUDA error: out of memory\n"
        "============================================================\n"
        f"scripts.{script} FAILED\n"
        "------------------------------------------------------------\n"
        "Failures:\n  <NO_OTHER_FAILURES>\n"
        "------------------------------------------------------------\n"
        "Root Cause (first observed failure):\n[0]:\n"
        "  time      : 2026-11-11_08:40:02\n  host      : gpu-box\n  rank      : 3 (local_rank: 3)\n"
        "  exitcode  : 1 (pid: 4242)\n  error_file: <N/A>\n"
        "  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html\n"
        "============================================================\n"
    )


def test_out_of_memory_while_selecting_the_gpu_is_an_occupied_gpu_not_the_batch(tmp_path, cli):
    log = tmp_path / "speedrun.log"
    log.write_text(
        "Saved token_bytes to /n/cache/tokenizer/token_bytes.pt\n"
        + "Overriding: depth = 20\nOverriding: run = dummy\n"
        + _WARN
        + _setup_oom("base_train")
        + _WARN
        + _setup_oom("base_loss")
        + _WARN
        + _setup_oom("base_eval")
    )
    report, checks, phases = verify_logs(cli, tmp_path, log)
    # the trainer's crash is the phase's cause, not the evaluation that crashed after it
    assert phases["base"]["cause"].startswith("died during setup (GPU occupied)"), phases["base"]
    crashes = checks["LOG002"]["findings"]
    assert len(crashes) == 3 and all("(GPU occupied)" in f["message"] for f in crashes), crashes
    assert all("nvidia-smi" in f["fix"] and "batch size is not the cause" in f["fix"] for f in crashes), crashes
    assert not any("--device_batch_size (" in f["fix"] for f in crashes), crashes
    assert not any("device_batch_size (" in fix for fix in report["resume"]["fixes"]), report["resume"]
    # torchrun printed no [rankN]: lines: the skip says what was looked for, not that one process ran
    assert "single process" not in checks["LOG020"].get("reason", ""), checks["LOG020"]


def test_out_of_memory_in_a_batch_still_says_lower_the_batch(tmp_path, cli):
    log = tmp_path / "run.log"
    log.write_text(
        "Overriding: depth = 20\n"
        "step 00000/21400 (0.00%) | loss: 11.090355 | lrm: 1.00 | dt: 1000.00ms | tok/sec: 1,000 | mfu: 1.00 | total time: 0.00m\n"
        "Traceback (most recent call last):\n"
        '  File "/n/nanochat/scripts/base_train.py", line 270, in <module>\n'
        "    loss = model(x, y)\n"
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 4.00 GiB\n"
    )
    _report, checks, _phases = verify_logs(cli, tmp_path, log)
    (crash,) = checks["LOG002"]["findings"]
    assert "(out of memory)" in crash["message"] and "lower --device_batch_size" in crash["fix"], crash


def test_a_log_with_nothing_nanochat_prints_gets_no_plan_from_the_tokenizer(tmp_path, cli):
    # a fork that logs in its own format: its finished run must not read as "nothing ran, start over"
    log = tmp_path / "speedrun.log"
    log.write_text(
        "[2026-07-06 04:02:18] world_size: 8\n"
        + "".join(f"[2026-07-06 04:03:{i:02d}] step {i:06d} | loss 9.{i:02d} | dt_ms 1100.0\n" for i in range(40))
        + "[2026-07-06 05:37:30] saved checkpoint model_000040 -> /fast/ckpt/pt\n"
        + "[2026-07-06 05:37:31] run complete @ step 40\n"
    )
    report, checks, _phases = verify_logs(cli, tmp_path, log)
    (unusable,) = checks["LOG009"]["findings"]
    assert "has nothing nanochat, torchrun or SLURM prints" in unusable["message"], unusable
    assert "no resume plan" in unusable["message"] and "--base-dir" in unusable["fix"], unusable
    assert report["resume"]["commands"] == [] and report["resume"]["phase"] is None, report["resume"]


def test_a_stderr_file_of_warnings_beside_a_read_log_is_not_unusable(tmp_path, cli):
    out = tmp_path / "job.out"
    out.write_text(
        "Overriding: depth = 4\n"
        "step 00000/00010 (0.00%) | loss: 11.090355 | lrm: 1.00 | dt: 1000.00ms | tok/sec: 1,000 | mfu: 1.00 | total time: 0.00m\n"
    )
    err = tmp_path / "job.err"
    err.write_text(_WARN * 3)
    _report, checks, _phases = verify_logs(cli, tmp_path, out, err)
    assert not checks["LOG009"]["findings"], checks["LOG009"]


def test_rustbpe_without_its_tokenizer_is_named_with_its_build(tmp_path, cli):
    log = tmp_path / "tok.log"
    log.write_text(
        "    tokenizer = rustbpe.Tokenizer()\n                ^^^^^^^^^^^^^^^^^\n"
        "AttributeError: module 'rustbpe' has no attribute 'Tokenizer'\n"
    )
    report, checks, _phases = verify_logs(cli, tmp_path, log)
    (crash,) = checks["LOG002"]["findings"]
    assert "(rustbpe not built)" in crash["message"], crash
    assert "maturin develop" in crash["fix"] and "unset CONDA_PREFIX" in crash["fix"], crash
    proc = cli("postflight", "verify", "--log", str(log), "--profile", "argparse", "--format", "json", cwd=tmp_path)
    (crash,) = [c for c in json.loads(proc.stdout)["checks"] if c["code"] == "LOG002"][0]["findings"]
    assert "uv sync" in crash["fix"] and "maturin" not in crash["fix"], crash  # rustbpe from PyPI in that era
    assert report["resume"]["phase"] == "tokenizer", report["resume"]


def test_a_lone_base_run_is_judged_by_what_its_script_launches(tmp_path, cli):
    # a laptop's d4 base run, finished: with its log alone the era's whole pipeline is expected (and said so); with
    # the script that ran it, only base
    log = tmp_path / "base.log"
    log.write_text(
        "step 09999/10000 (99.99%) | loss: 3.512000 | lrm: 0.01 | dt: 100.00ms | tok/sec: 10,000 | mfu: 1.00 | total time: 16.00m\n"
        "Step 10000 | Validation bpb: 1.944503\n"
        "Saved model parameters to: /h/.cache/nanochat/base_checkpoints/d4/model_010000.pt\n"
        "Minimum validation bpb: 1.944503\n"
    )
    proc = cli("postflight", "verify", "--log", str(log), cwd=tmp_path)
    assert proc.returncode == 1 and "the era's whole pipeline is expected" in proc.stderr, proc.stderr
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/bash\npython -m scripts.base_train --depth=4 --num-iterations=10000\n")
    proc = cli("postflight", "verify", "--log", str(log), "--script", str(script), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
