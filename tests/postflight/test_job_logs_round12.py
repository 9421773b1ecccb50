"""Job logs of a twelfth round of real evidence, as shapes written here in our own words: an evaluation that crashed
after its phase's training had finished (in the same job, or a separate evaluation job on a finished checkpoint)."""

from __future__ import annotations

from tests.clirun import verify_logs
from tests.postflight.logshapes import _log, current_base

_BASE = "/h/.cache/nanochat"


def _eval_crash(step: int, exception: str) -> list[str]:
    # base_eval loads the finished checkpoint, then dies in its own code
    return [
        "Autodetected device type: cuda",
        _log("nanochat.checkpoint_manager", f"Loading model from {_BASE}/base_checkpoints/d2 with step {step}"),
        f"Evaluating model: base_model (step {step})",
        "Traceback (most recent call last):",
        '  File "<frozen runpy>", line 198, in _run_module_as_main',
        '  File "/h/nanochat/scripts/base_eval.py", line 230, in <module>',
        "    main()",
        '  File "/h/nanochat/nanochat/core_eval.py", line 226, in evaluate_example',
        "    raise ValueError(msg)",
        exception,
    ]


def test_an_evaluation_that_crashed_after_training_finished_reruns_the_evaluation_not_the_training(tmp_path, cli):
    # base_train ran to its end and saved step 30; base_eval then died: retraining would redo a finished run
    log = tmp_path / "job.out"
    lines = current_base(_BASE, 30) + _eval_crash(30, "urllib.error.URLError: <urlopen error [Errno -2] Name unknown>")
    log.write_text("\n".join(lines) + "\n")
    report, checks, phases = verify_logs(cli, tmp_path, log)
    base = phases["base"]
    assert base["status"] == "failed" and base["cause"].startswith("base_eval crashed"), base
    assert "its training was done (base_train ended and saved its step-30 checkpoint)" in base["cause"], base
    assert base["trained"] == 30, base
    commands = report["resume"]["commands"]
    assert not any("scripts.base_train" in c for c in commands), commands  # was: base_train first
    assert "scripts.base_eval" in commands[0], commands


def test_a_separate_evaluation_job_on_a_finished_checkpoint_keeps_the_training(tmp_path, cli):
    # an evaluation job alone: it loaded base's step-200000 checkpoint, then its CORE task raised
    log = tmp_path / "eval.out"
    log.write_text("\n".join(_eval_crash(200000, "ValueError: example exceeds max sequence length")) + "\n")
    report, checks, phases = verify_logs(cli, tmp_path, log)
    base = phases["base"]
    assert "base_eval loaded its step-200000 checkpoint" in base["cause"], base
    commands = report["resume"]["commands"]
    assert not any("scripts.base_train" in c for c in commands), commands
    assert "scripts.base_eval" in commands[0], commands


def test_a_training_cut_short_before_its_evaluation_crashed_is_retrained(tmp_path, cli):
    # base_train saved only an early checkpoint of 30 steps (no end lines), then the evaluation crashed
    log = tmp_path / "job.out"
    lines = current_base(_BASE, 30, steps=12) + _eval_crash(10, "ValueError: boom")
    log.write_text("\n".join(lines) + "\n")
    report, checks, phases = verify_logs(cli, tmp_path, log)
    assert "trained" not in phases["base"], phases["base"]
    assert any("scripts.base_train" in c for c in report["resume"]["commands"]), report["resume"]


def _fork_sft(steps: int) -> list[str]:
    # a fork's chat_sft on a base checkpoint (no midtraining), one sequence a micro-batch, mid-style step lines; it saves
    # its best checkpoint at step 50 and runs out of memory in the next step's forward
    out = [
        _log("nanochat.common", "Distributed world size: 1"),
        _log("nanochat.checkpoint_manager", f"Loading model from {_BASE}/base_checkpoints/d24 with step 8000"),
        "Tokens / micro-batch / rank: 1 x 1024 = 1,024",
        "Total batch size 8,192 => gradient accumulation steps: 8",
    ]
    for s in range(1, steps + 1):
        out.append(
            f"step {s:05d} ({s / 3:.2f}%) | loss: 1.5{s:04d} | lrm: 0.02 | dt: 730.00ms | tok/sec: 11,200 | mfu: 3.79 | "
            "epoch: 1 | total time: 0.10m"
        )
        if s == 50:
            out += [
                "Step 00050 | Validation bpb: 0.7015",
                _log(
                    "nanochat.checkpoint_manager",
                    f"Saved model parameters to: {_BASE}/chatsft_checkpoints/r1/best/model_000050.pt",
                ),
                "Saved best checkpoint at step 50 (val_bpb=0.7015)",
            ]
    return out + [
        "Traceback (most recent call last):",
        '  File "/h/nanochat/scripts/chat_sft.py", line 471, in <module>',
        "    loss = model(x, y)",
        '  File "/h/nanochat/nanochat/gpt.py", line 94, in chunked_cross_entropy',
        "    chunk_logits = softcap * torch.tanh(chunk_logits / softcap)",
        "RuntimeError: CUDA driver error: out of memory",
    ]


def test_a_forks_sft_on_a_base_checkpoint_is_one_process_that_crashed_after_its_steps(tmp_path, cli):
    import json

    log = tmp_path / "sft.out"
    log.write_text("\n".join(_fork_sft(51)) + "\n")
    proc = cli("postflight", "verify", "--log", str(log), "--profile", "argparse", "--format", "json", cwd=tmp_path)
    report = json.loads(proc.stdout)
    phases = {p["name"]: p for p in report["phases"]}
    # it read as a mid_train that "stopped at step 51 without saving" and a chat_sft that "died during setup"
    assert phases["sft"]["status"] == "failed", phases["sft"]
    assert "crashed (out of memory) after step 51" in phases["sft"]["cause"], phases["sft"]
    assert phases["mid"]["expected"] is False and "its SFT started from base's checkpoint" in phases["mid"]["cause"]
    assert report["resume"]["phase"] == "sft", report["resume"]
    # its micro-batch was already one sequence: "lower the batch (32 -> 16 -> 8)" is no fix
    (fix,) = report["resume"]["fixes"]
    assert "the micro-batch is already 1 sequence" in fix and "32 -> 16" not in fix, fix


def test_the_resume_command_of_an_out_of_memory_does_not_rerun_the_batch_that_did_not_fit(tmp_path, cli):
    # a base_train of this era (its LR-scaling and parameter lines) that ran out of memory in its first step at a
    # micro-batch of 8: the plan said "lower it (8 -> 4 -> 2)" above a command with --device_batch_size=8 again, in
    # the classic spelling (nothing era-specific was read)
    log = tmp_path / "base.out"
    log.write_text(
        "\n".join(
            [
                _log("nanochat.common", "Distributed world size: 1"),
                "Tokens / micro-batch / rank: 8 x 2048 = 16,384",
                "Scaling LRs by 0.1768 for batch size 16,384 (reference: 524,288)",
                "Parameter counts:",
                "total                   : 910,691,760",
                "Calculated number of iterations from target data:param ratio: 615,173",
                "Step 00000 | Validation bpb: 3.2",
                "Traceback (most recent call last):",
                '  File "/h/nanochat/scripts/base_train.py", line 400, in <module>',
                "    optimizer.step()",
                "RuntimeError: CUDA driver error: out of memory",
            ]
        )
        + "\n"
    )
    report, _checks, _phases = verify_logs(cli, tmp_path, log)
    assert report["profile"]["name"] != "classic", report["profile"]
    train = report["resume"]["commands"][0]
    assert "--device-batch-size=4" in train and "=8" not in train, train
    assert "--device-batch-size 8 -> 4 for the out-of-memory" in report["resume"]["note"], report["resume"]["note"]
