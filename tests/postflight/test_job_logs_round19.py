"""Job logs of a nineteenth round of real evidence, as shapes written here in our own words: a midtraining run that
finished, then its chat_eval died on a debugger breakpoint left in the code (a batch job has no terminal)."""

from __future__ import annotations

import json

from tests.clirun import verify_logs
from tests.postflight.logshapes import _log, child_failed, ranked

BASE = "/home/u/.cache/nanochat"


def _mid_then_eval_at_a_breakpoint() -> list[str]:
    mid = f"{BASE}/mid_checkpoints/d20"
    out = [
        "Overriding: run = dummy",
        "Overriding: device_batch_size = 8",
        "Autodetected device type: cuda",
        _log("nanochat.common", "Distributed world size: 2"),
        _log("nanochat.checkpoint_manager", f"Loading model from {BASE}/base_checkpoints/d20 with step 21400"),
    ]
    for s in range(0, 41):
        out.append(
            f"step {s:05d} ({100 * s / 40:.2f}%) | loss: {1.9 - s * 0.01:.6f} | lrm: 1.00 | dt: 2000.00ms | "
            "tok/sec: 250,000 | mfu: 45.00 | total time: 1.00m"
        )
    out += [
        "Step 00040 | Validation bpb: 0.4100",
        _log("nanochat.checkpoint_manager", f"Saved model parameters to: {mid}/model_000040.pt"),
        _log("nanochat.checkpoint_manager", f"Saved metadata to: {mid}/meta_000040.json"),
        "Peak memory usage: 28000.00MiB",
        "Total training time: 1.40m",
        "Minimum validation bpb: 0.4100",
        # chat_eval -i mid: it loads mid's checkpoint, then stops at a pdb prompt that reads end-of-input
        "Autodetected device type: cuda",
        _log("nanochat.common", "Distributed world size: 2"),
        _log("nanochat.checkpoint_manager", "No model tag provided, guessing model tag: d20"),
        _log("nanochat.checkpoint_manager", f"Loading model from {mid} with step 40"),
        "> /home/u/nanochat/scripts/chat_eval.py(59)run_generative_eval()",
        "-> outcomes = [task.evaluate(conversation, c) for c in completions]",
        "(Pdb) ",
    ]
    chain = [
        [
            "Traceback (most recent call last):",
            '  File "/home/u/nanochat/scripts/chat_eval.py", line 59, in run_generative_eval',
            "    outcomes = [task.evaluate(conversation, c) for c in completions]",
            '  File "/usr/lib/python3.10/bdb.py", line 115, in dispatch_line',
            "    if self.quitting: raise BdbQuit",
            "bdb.BdbQuit",
        ]
    ]
    out += ranked(chain, ranks=2)
    out += [
        x.replace("rank      : 0 (local_rank: 0)", "rank      : 1 (local_rank: 1)")
        for x in child_failed("scripts.chat_eval")
    ]
    return out


def test_chat_evals_breakpoint_after_mid_is_mids_evaluation_to_rerun_not_sfts_start(tmp_path, cli):
    # the plan began at SFT (its own chat_eval would stop at the same breakpoint), LOG020 said rank 1 failed "in mid",
    # and the cause was "other" with a generic fix
    log = tmp_path / "mid_20.out"
    log.write_text("\n".join(_mid_then_eval_at_a_breakpoint()) + "\n")
    report, checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["mid"]["status"] == "failed", phases["mid"]
    assert phases["mid"]["cause"].startswith("chat_eval crashed (debugger breakpoint): bdb.BdbQuit"), phases["mid"]
    assert "only the evaluation is to be rerun" in phases["mid"]["cause"], phases["mid"]
    (rank,) = checks["LOG020"]["findings"]
    assert rank["message"].startswith("rank 1 on gpu01 failed first in chat_eval (line "), rank["message"]
    (crash,) = checks["LOG002"]["findings"]
    assert "breakpoint() or pdb.set_trace()" in crash["fix"], crash["fix"]
    assert report["resume"]["commands"][:2] == [
        "torchrun --standalone --nproc_per_node=2 -m scripts.chat_eval -- -i mid --model-tag=d20",
        "torchrun --standalone --nproc_per_node=2 -m scripts.chat_sft -- --model_tag=d20",
    ], report["resume"]


def test_a_log_in_a_forks_own_format_is_not_judged_and_says_so(tmp_path, cli):
    # a fork's trainer logs in its own format: every phase read "not-run" with no cause, and the exit said the phases
    # were "not done", as if the run had failed
    log = tmp_path / "speedrun.log"
    log.write_text(
        "\n".join(
            f"[2026-07-06 04:03:{s:02d}] step {s:06d} | loss {10 - s * 0.1:.6f} | dt_ms 1100.0" for s in range(30)
        )
        + "\n"
    )
    proc = cli("postflight", "verify", "--log", str(log), "--format", "json", cwd=tmp_path)
    report = json.loads(proc.stdout)
    phases = {p["name"]: p for p in report["phases"]}
    assert phases["base"]["cause"] == "not judged: nothing in these logs is in nanochat's formats", phases["base"]
    assert proc.returncode == 1, proc.returncode  # what ran is unknown: not a pass
    assert "expected phases could not be judged (counted as not done): tokenizer, base" in proc.stderr, proc.stderr


def test_an_sft_run_that_continues_an_earlier_sft_model_by_its_tag_is_not_a_wrong_model(tmp_path, cli):
    # chat_sft --model-tag=d12_pretrain: it loads chatsft_checkpoints/d12_pretrain and saves d12_math: LOG011 said the
    # tag was guessed and told the user to rerun SFT on its own output; checkpoint_manager logs its guesses, and
    # there is none
    sft = f"{BASE}/chatsft_checkpoints"
    lines = [
        "Autodetected device type: cuda",
        _log("nanochat.common", "Distributed world size: 1"),
        _log("nanochat.checkpoint_manager", f"Loading model from {sft}/d12_pretrain with step 1000"),
        "Inherited max_seq_len=2048 from pretrained checkpoint",
        *(
            f"step {s:05d} ({100 * s / 33:.2f}%) | loss: {0.8 - s * 0.01:.6f} | lrm: 1.00 | dt: 745.00ms | "
            "tok/sec: 88,000 | mfu: 40.00 | epoch: 1 | total time: 0.20m"
            for s in range(34)
        ),
        _log("nanochat.checkpoint_manager", f"Saved model parameters to: {sft}/d12_math/model_000033.pt"),
        _log("nanochat.checkpoint_manager", f"Saved metadata to: {sft}/d12_math/meta_000033.json"),
        "Peak memory usage: 8794.46MiB",
        "Total training time: 0.29m",
    ]
    log = tmp_path / "d12_math.log"
    log.write_text("\n".join(lines) + "\n")
    _report, checks, _phases = verify_logs(cli, tmp_path, log)
    assert not checks["LOG011"]["findings"], checks["LOG011"]
    # the same load after "No model tag provided, guessing model tag: d12_pretrain" is the mismatch
    guess = _log("nanochat.checkpoint_manager", "No model tag provided, guessing model tag: d12_pretrain")
    log.write_text("\n".join([*lines[:2], guess, *lines[2:]]) + "\n")
    _report, checks, _phases = verify_logs(cli, tmp_path, log)
    (wrong,) = checks["LOG011"]["findings"]
    assert "not the d12_math this job's sft saved" in wrong["message"], wrong["message"]


def test_a_report_reset_after_earlier_phases_says_their_sections_are_gone(tmp_path, cli):
    # an eval-only job that starts with `nanochat.report reset`: its plan's `report generate` would write a report
    # without the sections of the phases done before it, and the plan did not say so
    log = tmp_path / "eval.out"
    log.write_text(
        "\n".join(
            [
                f"Reset report and wrote header to {BASE}/report/header.md",
                "Autodetected device type: cuda",
                _log("nanochat.common", "Distributed world size: 1"),
                _log("nanochat.checkpoint_manager", f"Loading model from {BASE}/chatsft_checkpoints/d20 with step 700"),
                "Final: 737/2376 (31.02%)",
                "ARC-Easy accuracy: 31.02%",
                "Final: 2/100 (2.00%)",
                "GSM8K accuracy: 2.00%",
            ]
        )
        + "\n"
    )
    report, _checks, _phases = verify_logs(cli, tmp_path, log)
    (reset,) = [r for r in report["resume"]["remarks"] if "reset the report" in r]
    assert reset.startswith("the job reset the report (eval.out:1, `nanochat.report reset`) after tokenizer, base"), (
        reset
    )
    assert report["resume"]["commands"][-1] == "python -m nanochat.report generate", report["resume"]
    # how many problems each score was counted on: GSM8K on 100 of its 1,319 (chat_eval -x 100)
    assert _phases["sft"]["cause"].endswith("chat_eval of its checkpoint: ARC-Easy 31.02% of 2,376, GSM8K 2.00% of 100")
