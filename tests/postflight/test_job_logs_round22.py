"""Job logs of a twenty-second round of real evidence, as shapes written here in our own words: a learner's rewrite
of nanochat (its own lower-case wording, entry points renamed my_*), a log that ends with no error and no job to ask,
and a run whose model tag is its own name."""

from __future__ import annotations

import os
import time

from tests.clirun import verify_logs

RL_SETUP = [
    "overriding model_tag = d8",
    "overriding source = sft",
    "overriding examples_per_step = 4",
    "Autodetected device type: cuda",
    "This process is ddp_rank: 0, ddp_local_rank: 0, ddp_world_size: 2",
    "loading the model from /home/u/mine/chatsft_checkpoints/d8 with step 700",
    "Calculated number of steps: 12",
]


def _rl_steps(last: int, total: int = 12) -> list[str]:
    return [f"Step {s}/{total} | Average reward: 0.25 | Average sequence length: 170.0" for s in range(last + 1)]


def test_a_rewrites_own_wording_is_read_its_finished_rl_is_done_and_its_settings_resume(tmp_path, cli):
    # "saved model to .../chatrl_checkpoints/d8/model_000011.pt" after the last step: the run ended and saved; it was
    # "stopped ... without saving", and the plan trained RL again
    log = tmp_path / "rl.out"
    saves = [
        "saved model to /home/u/mine/chatrl_checkpoints/d8/model_000011.pt",
        "saved metadata to /home/u/mine/chatrl_checkpoints/d8/meta_000011.json",
    ]
    log.write_text("\n".join([*RL_SETUP, *_rl_steps(11), *saves]) + "\n")
    report, _checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["rl"]["status"] == "done", phases["rl"]
    assert report["resume"]["phase"] == "report", report["resume"]

    # the same run stopped by Ctrl-C at step 4: its lower-case `overriding` lines are its flags, its world size 2
    log.write_text(
        "\n".join([*RL_SETUP, *_rl_steps(4), "Traceback (most recent call last):", "KeyboardInterrupt"]) + "\n"
    )
    report, _checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["rl"]["status"] == "failed", phases["rl"]
    assert report["resume"]["commands"][0] == (
        "torchrun --standalone --nproc_per_node=2 -m scripts.chat_rl -- --model_tag=d8 --source=sft "
        "--examples_per_step=4"
    ), report["resume"]


def test_a_crash_in_a_renamed_entry_point_is_its_phases(tmp_path, cli):
    # the last lines of a base_train crash (an excerpt: no start, no step line) from a fork whose entry point is
    # scripts/my_base_train.py: the process was "unknown" and the plan retrained the tokenizer
    log = tmp_path / "tail.out"
    log.write_text(
        "[rank3]: Traceback (most recent call last):\n"
        '[rank3]:   File "/home/u/learn/scripts/my_base_train.py", line 205, in <module>\n'
        "[rank3]:     results = evaluate_model(model, tokenizer, device)\n"
        '[rank3]:   File "/usr/lib/python3.10/urllib/request.py", line 643, in http_error_default\n'
        "[rank3]:     raise HTTPError(req.full_url, code, msg, hdrs, fp)\n"
        "[rank3]: urllib.error.HTTPError: HTTP Error 403: Forbidden\n"
    )
    report, _checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["base"]["status"] == "failed" and "HTTP Error 403" in phases["base"]["cause"], phases["base"]
    assert report["resume"]["phase"] == "base", report["resume"]
    assert not any("tok_train" in c for c in report["resume"]["commands"]), report["resume"]


BASE_RUN = [
    "Overriding: depth = 4",
    "Overriding: model_tag = d4_fp8",
    "Autodetected device type: cuda",
    "Distributed world size: 1",
    "Calculated number of iterations from target data:param ratio: 100",
] + [
    f"step {s:05d}/00100 ({s:.2f}%) | loss: 9.000000 | lrm: 1.00 | dt: 100.00ms | tok/sec: 5,000 | mfu: 1.00 | "
    "total time: 0.10m"
    for s in range(50)
]


def test_a_log_that_ends_without_an_error_is_stopped_and_the_plan_keeps_the_runs_model_tag(tmp_path, cli):
    # no error, no save, no job to ask: a killed or hung run and one still going read the same; it was "failed"
    log = tmp_path / "base.out"
    log.write_text("\n".join(BASE_RUN) + "\n")
    report, checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["base"]["status"] == "stopped", phases["base"]
    assert "was last written" in phases["base"]["cause"], phases["base"]  # just now: it may be a live log
    assert phases["mid"]["cause"] == "not reached: base stopped first", phases["mid"]
    assert checks["LOG008"]["status"] == "warn"
    plan = report["resume"]
    assert "first make sure base's run is over" in plan["note"], plan
    # the later phases load the run's own tag (with none they load the largest dN, maybe another run's model)
    assert "python -m scripts.mid_train --model_tag=d4_fp8" in plan["commands"], plan
    assert "python -m scripts.chat_sft --model_tag=d4_fp8" in plan["commands"], plan
    assert "python -m scripts.chat_eval -i mid --model-tag=d4_fp8" in plan["commands"], plan
    # classic's base_eval takes no tag: the plan says what it loads instead
    assert "python -m scripts.base_eval" in plan["commands"], plan
    assert "base_eval takes no model tag in this era" in plan["note"], plan

    # an old copy of the log: no word on its age
    old = time.time() - 3 * 3600
    os.utime(log, (old, old))
    _report, _checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["base"]["status"] == "stopped" and "last written" not in phases["base"]["cause"], phases["base"]


def _rank_tb(rank: int) -> list[str]:
    return [
        f"[rank{rank}]: Traceback (most recent call last):",
        f'[rank{rank}]:   File "/home/u/nc/scripts/mid_train.py", line 98, in <module>',
        f"[rank{rank}]:     train_dataset = TaskMixture([CustomJSON(filepath=identity_path)])",
        f"[rank{rank}]: FileNotFoundError: [Errno 2] No such file or directory: '/home/u/nc/identity_conversations.jsonl'",
    ]


def test_ranks_that_each_hit_the_same_error_are_not_one_that_failed_first(tmp_path, cli):
    # 8 ranks each missing the same file print in any order: LOG020 named the first printed ("rank 5 failed first")
    # while torchrun's own root cause said rank 3, and told the user the other ranks need no fix
    log = tmp_path / "mid.out"
    lines = ["Autodetected device type: cuda", "Distributed world size: 3"]
    for r in (2, 0, 1):
        lines += _rank_tb(r)
    lines += [
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:",
        "============================================================",
        "scripts.mid_train FAILED",
        "------------------------------------------------------------",
        "Root Cause (first observed failure):",
        "[0]:",
        "  time      : 2025-11-19_13:03:10",
        "  host      : node-7",
        "  rank      : 1 (local_rank: 1)",
        "  exitcode  : 1 (pid: 240431)",
        "  error_file: <N/A>",
        "  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html",
        "============================================================",
    ]
    log.write_text("\n".join(lines) + "\n")
    _report, checks, _phases = verify_logs(cli, tmp_path, log)
    (found,) = checks["LOG020"]["findings"]
    assert found["message"].startswith(
        "ranks 0-2 on node-7 each failed on their own with the same error in mid_train (line 11, rank 1's: the first "
        "torchrun saw): FileNotFoundError"
    ), found["message"]
    assert found["fix"].endswith("every one of these ranks hit it: one fix serves them all"), found["fix"]


def test_a_speedrun_log_that_ends_in_the_tokenizers_merge_loop_is_the_tokenizer_stopped(tmp_path, cli):
    # a `screen -L` log of a run caught during tok_train: every phase read "not-run" with no cause
    log = tmp_path / "speedrun.log"
    log.write_text(
        "Done! Downloaded: 171/171 shards to /home/u/.cache/nanochat/base_data_climbmix\n"
        "2026-06-04 23:57:45,531 - rustbpe - INFO - Processing sequences from iterator (buffer_size: 8192)\n"
        "2026-06-04 23:58:24,751 - rustbpe - INFO - Starting BPE training: 32503 merges to compute\n"
        "2026-06-04 23:58:25,967 - rustbpe - INFO - Starting merge loop\n"
    )
    report, _checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["tokenizer"]["status"] == "stopped", phases["tokenizer"]
    assert phases["tokenizer"]["cause"].startswith("tok_train began training (speedrun.log:2)"), phases["tokenizer"]
    assert phases["base"]["cause"] == "not reached: tokenizer stopped first", phases["base"]
    assert "first make sure tokenizer's run is over" in report["resume"]["note"], report["resume"]


def test_ctrl_c_under_torchrun_is_one_interruption_not_a_second_crash(tmp_path, cli):
    # the rank's KeyboardInterrupt and then torchrun's own "SignalException: Process N got signal: 2": two LOG002
    # findings, the second "crashed (other)" with "read the traceback"
    log = tmp_path / "base.out"
    lines = [*BASE_RUN[:20]]
    lines += [
        "Traceback (most recent call last):",
        '  File "/home/u/nc/scripts/base_train.py", line 263, in <module>',
        "    loss.backward()",
        "KeyboardInterrupt",
        "Traceback (most recent call last):",
        '  File "/home/u/nc/.venv/bin/torchrun", line 10, in <module>',
        "    sys.exit(main())",
        '  File "/home/u/nc/.venv/lib/python3.10/site-packages/torch/distributed/elastic/multiprocessing/api.py", '
        "line 84, in _terminate_process_handler",
        '    raise SignalException(f"Process {os.getpid()} got signal: {sigval}", sigval=sigval)',
        "torch.distributed.elastic.multiprocessing.api.SignalException: Process 16791 got signal: 2",
    ]
    log.write_text("\n".join(lines) + "\n")
    _report, checks, phases = verify_logs(cli, tmp_path, log)
    (crash,) = checks["LOG002"]["findings"]
    assert "crashed (interrupted)" in crash["message"] and "KeyboardInterrupt" in crash["message"], crash
    assert "Ctrl-C" in crash["fix"], crash["fix"]
    assert phases["base"]["status"] == "failed", phases["base"]


def test_a_row_longer_than_the_rotary_cache_is_named(tmp_path, cli):
    # a fork's bare `assert T < self.cos.size(1)` in the model's forward, SFT on a model built with sequence_len 128:
    # "died during setup (other)" with "read the traceback"
    log = tmp_path / "sft.out"
    log.write_text(
        "Autodetected device type: mps\n"
        "loading the model from /u/.cache/nc/mid_checkpoints/d4 with step 9\n"
        "Building model with config: {'sequence_len': 128, 'vocab_size': 65536, 'n_layer': 4}\n"
        "Traceback (most recent call last):\n"
        '  File "/u/nc/scripts/chat_sft.py", line 130, in <module>\n'
        "    loss = model(inputs, targets)\n"
        '  File "/u/nc/nanochat/gpt.py", line 221, in forward\n'
        "    assert T < self.cos.size(1)\n"
        "AssertionError\n"
    )
    _report, checks, phases = verify_logs(cli, tmp_path, log)
    (crash,) = checks["LOG002"]["findings"]
    assert "(sequence too long): AssertionError" in crash["message"], crash["message"]
    assert crash["fix"].startswith("a row reached the model longer than its rotary cache"), crash["fix"]


def test_a_gpu_another_process_holds_is_named_by_torchruns_local_rank(tmp_path, cli):
    # every launch of a speedrun died in torch.cuda.set_device on the same GPU (a stale process held it): the fix
    # said "leave that GPU out" without saying which; torchrun's root cause names it
    log = tmp_path / "speedrun.log"
    log.write_text(
        "Overriding: run = dummy\n"
        "Traceback (most recent call last):\n"
        '  File "/home/u/nc/scripts/base_train.py", line 71, in <module>\n'
        "    ddp, ddp_rank, ddp_local_rank, ddp_world_size, device = compute_init(device_type)\n"
        '  File "/home/u/nc/nanochat/common.py", line 165, in compute_init\n'
        "    torch.cuda.set_device(device)\n"
        "torch.AcceleratorError: CUDA error: out of memory\n"
        "============================================================\n"
        "scripts.base_train FAILED\n"
        "------------------------------------------------------------\n"
        "Root Cause (first observed failure):\n"
        "[0]:\n"
        "  time      : 2025-11-11_08:41:22\n"
        "  host      : gpu-box\n"
        "  rank      : 4 (local_rank: 4)\n"
        "  exitcode  : 1 (pid: 86036)\n"
        "============================================================\n"
    )
    _report, checks, _phases = verify_logs(cli, tmp_path, log)
    (crash,) = checks["LOG002"]["findings"]
    assert "(GPU occupied)" in crash["message"] and "[rank 4; exit code 1;" in crash["message"], crash["message"]
    assert crash["fix"].startswith("GPU 4 (torchrun's local rank 4 failed): the GPU was full"), crash["fix"]


def test_a_missing_file_the_era_downloads_gets_its_download_command(tmp_path, cli):
    # mid_train died on a missing identity_conversations.jsonl (the speedrun curls it; this job never did): the fix
    # was "create the missing file on a login node (dataset shards, tokenizer, eval bundle)"
    log = tmp_path / "mid.out"
    log.write_text(
        "Autodetected device type: cuda\n"
        "Traceback (most recent call last):\n"
        '  File "/home/u/nc/scripts/mid_train.py", line 98, in <module>\n'
        "    CustomJSON(filepath=identity_conversations_filepath),\n"
        '  File "/home/u/nc/tasks/customjson.py", line 12, in __init__\n'
        "    with open(filepath) as f:\n"
        "FileNotFoundError: [Errno 2] No such file or directory: '/home/u/.cache/nanochat/identity_conversations.jsonl'\n"
    )
    _report, checks, _phases = verify_logs(cli, tmp_path, log)
    (crash,) = checks["LOG002"]["findings"]
    assert "curl -L -o $NANOCHAT_BASE_DIR/identity_conversations.jsonl https://" in crash["fix"], crash["fix"]


def test_a_ranks_copy_cut_above_its_frames_is_the_same_error_as_the_others(tmp_path, cli):
    # a `tail -200` of an 8-rank log: rank 2's traceback starts mid-way (no frame of the trainer left), the others
    # are whole; LOG002 said the one error twice, "(other)" for the cut copy
    log = tmp_path / "tail.out"
    frames = [
        "Traceback (most recent call last):",
        '  File "/home/u/nc/scripts/base_train.py", line 205, in <module>',
        "    results = evaluate_model(orig_model, tokenizer, device)",
        '  File "/home/u/nc/nanochat/common.py", line 95, in download_file_with_lock',
        "    with urllib.request.urlopen(url) as response:",
        '  File "/usr/lib/python3.10/urllib/request.py", line 643, in http_error_default',
        "    raise HTTPError(req.full_url, code, msg, hdrs, fp)",
        "urllib.error.HTTPError: HTTP Error 403: Forbidden",
    ]
    lines = [f"[rank2]: {ln}" for ln in frames[5:]]
    lines += ["downloading https://karpathy-public.s3.us-west-2.amazonaws.com/eval_bundle.zip..."]
    lines += [f"[rank0]: {ln}" for ln in frames]
    log.write_text("\n".join(lines) + "\n")
    _report, checks, _phases = verify_logs(cli, tmp_path, log)
    (crash,) = checks["LOG002"]["findings"]
    assert "HTTP Error 403: Forbidden [ranks 0, 2;" in crash["message"], crash["message"]
    assert "(other)" not in crash["message"], crash["message"]


CORE_EVAL = [
    "2026-01-18 09:36:26,122 - nanochat.common - INFO - Distributed world size: 1",
    "2026-01-18 09:36:26,136 - nanochat.checkpoint_manager - INFO - Loading model from "
    "/home/u/.cache/nanochat/base_checkpoints/d26 with step 40640",
    "Autodetected device type: cuda",
    "Evaluating: hellaswag_zeroshot (0-shot, type: multiple_choice)... accuracy: 0.5254 | centered: 0.3672",
    "Evaluating: boolq (10-shot, type: multiple_choice)... accuracy: 0.5942 | centered: -0.0679",
    "================================================================================",
    "Model: base_model (step 40640)",
    "================================================================================",
    "Task                               , Accuracy  , Centered  ",
    "hellaswag_zeroshot                 , 0.525400  , 0.367200  ",
    "CORE                               ,           , 0.270821  ",
]


def test_a_job_that_only_evaluated_base_is_judged_on_its_evaluation(tmp_path, cli):
    # a standalone base_eval that finished with its CORE score: FAIL, exit 1, "not done: mid, sft, report", and base
    # had no row of its own (the process was "unknown")
    log = tmp_path / "eval_d26.log"
    log.write_text("\n".join(CORE_EVAL) + "\n")
    proc = cli("postflight", "verify", "--log", str(log), "--format", "json", cwd=tmp_path)
    import json

    report = json.loads(proc.stdout)
    phases = {p["name"]: p for p in report["phases"]}
    assert phases["base"]["status"] == "done", phases["base"]
    assert phases["base"]["cause"].startswith(
        "trained before these logs: base_eval evaluated its step-40640 checkpoint (line 2) to its end (line 11: CORE"
    ), phases["base"]
    assert not phases["mid"]["expected"] and not phases["sft"]["expected"], phases
    assert proc.returncode == 0, proc.stdout[-500:]

    # cut off before its result: no finished evaluation (base's checkpoint still proves its training)
    log.write_text("\n".join(CORE_EVAL[:5]) + "\n")
    _report, _checks, phases = verify_logs(cli, tmp_path, log)
    assert "to its end" not in phases["base"]["cause"], phases["base"]
