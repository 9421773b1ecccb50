"""Job logs of a twenty-third round of real evidence, as shapes written here in our own words: a fork's own copy of
base_train (gradient checkpointing) that ran out of memory, and base_loss given its own flags on a small machine."""

from __future__ import annotations

from tests.clirun import verify_logs

BANNER = [
    "Autodetected device type: cuda",
    "Distributed world size: 1",
    "Number of parameters: 560,988,160",
    "Tokens / micro-batch / rank: 8 x 2048 = 16,384",
    "Total batch size 524,288 => gradient accumulation steps: 32",
    "Step 00000 | Validation bpb: 3.1807",
]


def test_a_forks_own_copy_of_base_train_is_the_entry_point_its_resume_plan_launches(tmp_path, cli):
    # a crash inside scripts/base_train_gc.py (a fork's copy that adds gradient checkpointing): the plan reran
    # scripts.base_train, which holds more activations, with the smaller batch meant for the copy
    log = tmp_path / "gc.out"
    log.write_text(
        "\n".join(
            [
                *BANNER,
                "Traceback (most recent call last):",
                '  File "/home/u/nanochat/scripts/base_train_gc.py", line 412, in <module>',
                "    optimizer.step()",
                '  File "/home/u/nanochat/nanochat/muon.py", line 88, in step',
                "    self._step_muon(group)",
                "RuntimeError: CUDA driver error: out of memory",
            ]
        )
        + "\n"
    )
    report, _checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["base"]["status"] == "failed", phases["base"]
    first = report["resume"]["commands"][0]
    assert first.startswith("python -m scripts.base_train_gc "), report["resume"]
    assert "=4" in first and "batch" in first, first  # 8 halved, on the copy that ran


def test_an_evaluations_own_overriding_lines_go_into_its_rerun(tmp_path, cli):
    # base_loss run with `--device_batch_size=1 --split_tokens=4096` on a laptop: its rerun in the plan had neither,
    # and would run with 32 rows a batch
    log = tmp_path / "mps.out"
    log.write_text(
        "\n".join(
            [
                "Overriding: depth = 4",
                "Overriding: num_iterations = 5",
                "Autodetected device type: mps",
                "step 00004/00005 (80.00%) | loss: 9.1 | dt: 900.00ms | tok/sec: 4,000 | mfu: 0.10 | total time: 0.1m",
                "Overriding: device_batch_size = 1",
                "Overriding: split_tokens = 4096",
                "Autodetected device type: mps",
                "Traceback (most recent call last):",
                '  File "/Users/u/nanochat/scripts/base_loss.py", line 30, in <module>',
                '    model, tokenizer, meta = load_model("base", device, phase="eval")',
                '  File "/Users/u/nanochat/nanochat/checkpoint_manager.py", line 146, in load_model',
                "    return load_model_from_dir(checkpoints_dir, *args, **kwargs)",
                "ValueError: bad checkpoint",
            ]
        )
        + "\n"
    )
    report, _checks, _phases = verify_logs(cli, tmp_path, log)
    loss = next(c for c in report["resume"]["commands"] if "scripts.base_loss" in c)
    assert loss.endswith("scripts.base_loss --device_batch_size=1 --split_tokens=4096"), report["resume"]


def test_a_report_after_a_job_that_stopped_at_base_says_sft_did_not_run(tmp_path, cli):
    # a smoke job: base trains to its end, the report is generated, SFT was never in the job; the report's cause said
    # "sft did not finish", which reads as a crash
    log = tmp_path / "smoke.out"
    log.write_text(
        "\n".join(
            [
                "Overriding: depth = 2",
                "Overriding: num_iterations = 3",
                *[
                    f"step {s:05d}/00003 ({s / 3 * 100:.2f}%) | loss: 9.0 | dt: 90.00ms | tok/sec: 4,000 | mfu: 0.10 | "
                    "total time: 0.01m"
                    for s in range(3)
                ],
                "Peak memory usage: 1420.94MiB",
                "Total training time: 0.02m",
                "Minimum validation bpb: 1.2395",
                "Generating report to /scratch/u/cache/report/report.md",
                "Warning: /scratch/u/cache/report/chat-sft.md does not exist, skipping",
                "Copying report.md to current directory for convenience",
            ]
        )
        + "\n"
    )
    _report, _checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["base"]["status"] == "done", phases["base"]
    assert phases["report"]["status"] == "partial", phases["report"]
    cause = phases["report"]["cause"]
    assert "sft did not run: it has no section for them" in cause and "did not finish" not in cause, cause


def test_a_kernels_own_cuda_error_line_is_the_crash_and_names_flash_attention(tmp_path, cli):
    # FA3 loaded on a Blackwell card, then flash-attn's own abort (no Python traceback): the phase "died during
    # setup; the traceback is in the job's stderr file", with no cause
    log = tmp_path / "fa3.out"
    log.write_text(
        "\n".join(
            [
                "+ torchrun --standalone --nproc_per_node=1 -m scripts.base_train -- --depth=24 --fp8",
                "GPU: NVIDIA GeForce RTX 5090 | Peak FLOPS (BF16): 2.10e+14",
                "COMPUTE_DTYPE: torch.bfloat16 (auto-detected: CUDA SM 120 (bf16 supported))",
                "✓ Using Flash Attention 3: efficient, new and awesome.",
                "Total batch size 1,048,576 => gradient accumulation steps: 256",
                "CUDA error (/build/source/flash-attn/flash_fwd_launch_template.h:192): no kernel image is "
                "available for execution on the device",
            ]
        )
        + "\n"
    )
    _report, checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["base"]["status"] == "failed", phases["base"]
    assert "(attention kernel not built for this GPU): CUDA error: no kernel image" in phases["base"]["cause"]
    (crash,) = checks["LOG002"]["findings"]
    assert "Flash Attention 3 kernel the run loaded has no code for this GPU" in crash["fix"], crash
    assert checks["LOG003"]["status"] == "pass", checks["LOG003"]  # the cause is here, not in a stderr file


def test_an_out_of_memory_at_the_default_batch_halves_the_batch_its_micro_batch_line_shows(tmp_path, cli):
    # base_train OOM at its default --device_batch_size=32 (no Overriding line for it): the plan said "first: lower
    # --device_batch_size (32 -> 16 -> 8)" and then printed the rerun without it
    log = tmp_path / "oom.out"
    log.write_text(
        "\n".join(
            [
                "Overriding: depth = 20",
                "Overriding: run = dummy",
                "Autodetected device type: cuda",
                "Distributed world size: 1",
                "Tokens / micro-batch / rank: 32 x 2048 = 65,536",
                "Step 00000 | Validation bpb: 3.3013",
                "Traceback (most recent call last):",
                '  File "/root/nanochat/scripts/base_train.py", line 272, in <module>',
                "    loss.backward()",
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 160.00 MiB.",
            ]
        )
        + "\n"
    )
    report, _checks, _phases = verify_logs(cli, tmp_path, log)
    commands = report["resume"]["commands"]
    assert commands[0] == "python -m scripts.base_train --depth=20 --run=dummy --device_batch_size=16", commands
    # midtraining runs the same micro-batch (the fix says "same value in mid as in base"): its rerun has it too
    assert "python -m scripts.mid_train --device_batch_size=16" in commands, commands


def test_a_cascade_from_a_phase_not_in_the_logs_says_its_checkpoint_was_not_written(tmp_path, cli):
    # chat_sft's FileNotFoundError for mid_checkpoints, in a log of chat_sft alone: "root cause: mid not-run (not in
    # these logs ...)" read as a mid that had failed
    log = tmp_path / "sft.out"
    log.write_text(
        "\n".join(
            [
                "Traceback (most recent call last):",
                '  File "/root/nanochat/scripts/chat_sft.py", line 66, in <module>',
                '    model, tokenizer, meta = load_model(source, device, phase="train")',
                "FileNotFoundError: [Errno 2] No such file or directory: '/root/.cache/nanochat/mid_checkpoints'",
            ]
        )
        + "\n"
    )
    _report, checks, _phases = verify_logs(cli, tmp_path, log)
    (found,) = checks["LOG004"]["findings"]
    assert "root cause: no mid checkpoint was written there (mid: not in these logs" in found["message"], found
