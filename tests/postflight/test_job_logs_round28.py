"""Job logs of a twenty-eighth round of real evidence (logs committed in upstream nanochat's pull requests), as
shapes written here in our own words: an SFT that went NaN because its rows were shorter than the conversations."""

from __future__ import annotations

from tests.clirun import verify_logs

STEP = "step {:05d} (0.00%) | loss: {} | lrm: 1.00 | dt: 5.20ms | tok/sec: 24,595 | mfu: 0.00 | epoch: 1\n"


def _sft_log(tmp_path, seq: int):
    # a tiny base model (max_seq_len 128) fine-tuned on a small GPU: SFT inherits the 128, SmolTalk's conversations
    # do not fit a row of 129 tokens, the best-fit packer's buffer clogs with them, rows of padding only follow, and
    # the loss over zero targets is NaN from step 9 on (progress stays at 0.00%)
    log = tmp_path / "sft_run.log"
    log.write_text(
        "Loading model from /home/u/.cache/nanochat/base_checkpoints/d2 with step 10\n"
        f"Inherited max_seq_len={seq} from pretrained checkpoint\n"
        f"Tokens / micro-batch / rank: 1 x {seq} = {seq:,}\n"
        f"Total batch size {seq} => gradient accumulation steps: 1\n"
        "Training mixture: 1,071,840 rows (MMLU x3, GSM8K x4)\n"
        "Step 00000 | Validation bpb: 3.3084\n"
        + "".join(STEP.format(n, f"{5 + n / 3:.6f}" if n < 9 else "nan") for n in range(1, 134))
    )
    return log


def test_an_sft_nan_on_a_short_inherited_sequence_is_the_packer_not_the_learning_rate(tmp_path, cli):
    report, checks, phases = verify_logs(cli, tmp_path, _sft_log(tmp_path, 128))
    assert phases["sft"]["status"] == "failed", phases["sft"]
    (nan,) = checks["LOG007"]["findings"]
    assert (
        "sft ran with max_seq_len 128 (inherited from the base model unless set): conversations longer than 129 "
        in (nan["message"])
    ), nan
    assert nan["fix"].startswith("rerun sft with --max-seq-len=2048"), nan

    # at 2048 the packer places nearly every conversation: the usual advice stands
    _report, checks, _phases = verify_logs(cli, tmp_path, _sft_log(tmp_path, 2048))
    (nan,) = checks["LOG007"]["findings"]
    assert "max_seq_len" not in nan["message"] and "lower learning rate" in nan["fix"], nan


def test_an_sft_nan_whose_progress_goes_on_is_not_the_packer(tmp_path, cli):
    # a clogged packer stops consuming the data: a run whose progress goes on to its end after the NaN (1024-token
    # rows, SFT from 3% to 100%) went NaN for another reason, and the usual advice stands
    log = tmp_path / "run.log"
    log.write_text(
        "Tokens / micro-batch / rank: 4 x 1024 = 4,096\n"
        + "".join(
            STEP.replace("(0.00%)", f"({n / 1.88:.2f}%)").format(n, "nan" if n >= 6 else "1.26") for n in range(1, 189)
        )
    )
    _report, checks, _phases = verify_logs(cli, tmp_path, log)
    (nan,) = checks["LOG007"]["findings"]
    assert "max_seq_len" not in nan["message"] and "lower learning rate" in nan["fix"], nan


def test_a_checkpoint_of_other_code_under_a_guessed_tag_is_named_and_the_plan_uses_the_runs_tag(tmp_path, cli):
    # base trained d24 and could not save (disk quota); base_eval and chat_sft, given no tag, guessed d26 (a
    # leftover of another experiment) and died on its config (`bigram_vocab_multiplier`); the cause was "other"
    # and the resume plan passed --model-tag=d26 to every later phase
    stamp = "2026-03-05 19:16:43,466 - nanochat.checkpoint_manager - INFO - "
    crash = [
        "Traceback (most recent call last):",
        '  File "/p/nanochat/nanochat/checkpoint_manager.py", line 98, in build_model',
        "    model_config = GPTConfig(**model_config_kwargs)",
        "TypeError: GPTConfig.__init__() got an unexpected keyword argument 'bigram_vocab_multiplier'",
    ]
    lines = [
        "Model config:",
        '{"sequence_len": 2048, "vocab_size": 32768, "n_layer": 24, "n_head": 12, "n_kv_head": 12, "n_embd": 1536}',
        *(f"step {n:05d}/00040 ({n * 2.5:.2f}%) | loss: {5 - n / 20:.6f} | lrm: 1.00 | dt: 1.0ms" for n in range(40)),
        "Traceback (most recent call last):",
        '  File "/p/nanochat/scripts/base_train.py", line 470, in <module>',
        "OSError: [Errno 122] Disk quota exceeded: '/home/u/.cache/nanochat/base_checkpoints/d24'",
        "scripts.base_train FAILED",
        "Autodetected device type: cuda",
        stamp + "No model tag provided, guessing model tag: d26",
        stamp + "Loading model from /home/u/.cache/nanochat/base_checkpoints/d26 with step 5",
        *crash,
    ]
    log = tmp_path / "slurm.out"
    log.write_text("\n".join(lines) + "\n")
    report, checks, _phases = verify_logs(cli, tmp_path, log)
    crashed = [f for f in checks["LOG002"]["findings"] if "bigram_vocab_multiplier" in f["message"]]
    assert (
        crashed
        and "(checkpoint from other code): the checkpoint it loaded was written by other code"
        in (crashed[0]["message"])
    ), crashed
    assert crashed[0]["fix"].startswith("load the model this run trained: pass its tag"), crashed[0]
    commands = report["resume"]["commands"]
    assert not any("d26" in c for c in commands), commands
    assert any("--model-tag=d24" in c or "--model_tag=d24" in c for c in commands), commands


def test_a_phase_killed_by_a_signal_before_its_first_step_is_said_to_be_so(tmp_path, cli):
    # `torch.compile mode: reduce-overhead`, then torchrun: "failed (exitcode: -11)", "Signal 11 (SIGSEGV)": LOG003
    # said the phase "went silent: it died, hung or is still running (these logs alone cannot tell)"
    log = tmp_path / "log.txt"
    log.write_text(
        'Autodetected device type: cuda\nModel config:\n{"n_layer": 12}\ntorch.compile mode: reduce-overhead\n'
        "Tokens / micro-batch / rank: 32 x 2048 = 65,536\n"
        "E0304 18:52:10.408000 4161500 torch/distributed/elastic/multiprocessing/api.py:882] failed (exitcode: -11) "
        "local_rank: 0 (pid: 4161621) of binary: /p/.venv/bin/python\n"
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n"
        "============================================================\nscripts.base_train FAILED\n"
        "------------------------------------------------------------\nFailures:\n  <NO_OTHER_FAILURES>\n"
        "------------------------------------------------------------\nRoot Cause (first observed failure):\n[0]:\n"
        "  time      : 2026-03-04_18:52:10\n  host      : d4053\n  rank      : 0 (local_rank: 0)\n"
        "  exitcode  : -11 (pid: 4161621)\n  error_file: <N/A>\n  traceback : Signal 11 (SIGSEGV) received by PID 4161621\n"
        "============================================================\n"
    )
    _report, checks, phases = verify_logs(cli, tmp_path, log)
    (found,) = checks["LOG003"]["findings"]
    assert "killed by SIGSEGV (exit -11) during setup: a crash in native code" in found["message"], found
    assert "cannot tell" not in found["message"] and "reduce-overhead" in found["fix"], found
    assert phases["base"]["status"] == "failed", phases["base"]


def test_a_time_limit_cancel_of_a_phase_that_saved_nothing_says_to_rerun_it_with_periodic_saves(tmp_path, cli):
    # the second of two speedruns in one job, killed at step 3725 of 7226 by the time limit: "set --save_every, then
    # resume from the last checkpoint", in a dash-era run that had saved none
    log = tmp_path / "slurm-compare-4816923.out"
    steps = "".join(
        f"step {n:05d}/07226 ({n / 72.26:.2f}%) | loss: 3.000000 | lrm: 1.00 | dt: 100.00ms | tok/sec: 5,000\n"
        for n in range(3700, 3726)
    )
    log.write_text(
        "Scaling LRs by 1.4142 for batch size 1,048,576\nTokens / micro-batch / rank: 32 x 2048 = 65,536\n"
        + steps
        + "slurmstepd: error: *** JOB 4816923 ON d4052 CANCELLED AT 2026-02-27T22:11:19 DUE TO TIME LIMIT ***\n"
    )
    _report, checks, _phases = verify_logs(cli, tmp_path, log)
    (found,) = checks["LOG006"]["findings"]
    assert "it saved no checkpoint before the limit, so there is nothing to resume from" in found["fix"], found
