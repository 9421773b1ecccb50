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
