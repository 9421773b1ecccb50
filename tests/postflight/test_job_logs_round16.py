"""Job logs of a sixteenth round of real evidence (a fork's runs on another accelerator), as shapes written here in
our own words: a model whose loss fell to nothing, a checkpoint write that filled the disk, SIGTERM from outside
with a helper thread's broken pipe printed first, a helper process's error after a kill, and an argument line that
bash ran as a command."""

from __future__ import annotations

from tests.clirun import verify_logs
from tests.postflight.logshapes import _log


def _start() -> list[str]:
    return [_log("nanochat.common", "Distributed world size: 1"), "Overriding: depth = 12"]


def _steps(first: int, last: int, total: int = 23520, loss=lambda s: 3.5) -> list[str]:
    return [
        f"step {s:05d}/{total:05d} ({100 * s / total:.2f}%) | loss: {loss(s):.6f} | lrm: 1.00 | dt: 750.00ms | "
        "tok/sec: 65,000 | bf16_mfu: 0.00 | epoch: 1 pq: 0 rg: 5 | total time: 1.00m | eta: 289.0m"
        for s in range(first, last + 1)
    ]


def _helper_thread_broken_pipe() -> list[str]:
    return [
        "Exception in thread Thread-1:",
        "Traceback (most recent call last):",
        '  File "/opt/py/lib/python3.10/threading.py", line 1016, in _bootstrap_inner',
        "    self.run()",
        '  File "/opt/py/lib/python3.10/multiprocessing/connection.py", line 368, in _send',
        "    n = write(self._handle, buf)",
        "BrokenPipeError: [Errno 32] Broken pipe",
    ]


def test_a_base_run_whose_loss_fell_to_nothing_is_worthless_not_healthy(tmp_path, cli):
    # validation bpb 3.17 at step 0, then 0.0048: no web-text model gets there; the model reads its targets
    log = tmp_path / "speedrun.log"
    lines = [*_start(), *_steps(0, 0), "Step 00000 | Validation bpb: 3.169614"]
    lines += _steps(1, 250, loss=lambda s: max(0.0071, 10.4 / (1 + s)))
    lines += ["Step 00250 | Validation bpb: 0.004812", *_steps(251, 300, loss=lambda s: 0.0071)]
    log.write_text("\n".join(lines) + "\n")
    report, checks, _phases = verify_logs(cli, tmp_path, log)
    (low,) = checks["LOG016"]["findings"]
    assert low["message"].startswith("base: validation bpb 0.004812 at step 250, below 0.3"), low
    assert "do not use, resume or rerun this configuration" in low["fix"]
    # the resume plan's commands rerun that configuration: the plan says so beside them
    assert any("(loss-impossibly-low): these commands rerun" in r for r in report["resume"]["remarks"]), report
    # a real run's validation (0.81 at the end of a d20) says nothing
    log.write_text("\n".join(lines).replace("0.004812", "0.8123") + "\n")
    _report, checks, _phases = verify_logs(cli, tmp_path, log)
    assert checks["LOG016"]["status"] == "pass", checks["LOG016"]


def test_a_checkpoint_write_that_filled_the_disk_is_a_full_disk(tmp_path, cli):
    # torch.save's zip writer: "file write failed", then "unexpected pos" while the handler closes the file
    log = tmp_path / "probe.log"
    lines = [*_start(), *_steps(0, 4, total=5)]
    lines += [
        "Traceback (most recent call last):",
        '  File "/r/nanochat/nanochat/checkpoint_manager.py", line 48, in save_checkpoint',
        "    torch.save(optimizer_data, optimizer_path)",
        "RuntimeError: [enforce fail at inline_container.cc:858] . PytorchStreamWriter failed writing file data/81: "
        "file write failed",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "/r/nanochat/scripts/base_train.py", line 520, in <module>',
        "    save_checkpoint(",
        '  File "/r/nanochat/nanochat/checkpoint_manager.py", line 48, in save_checkpoint',
        "    torch.save(optimizer_data, optimizer_path)",
        "RuntimeError: [enforce fail at inline_container.cc:664] . unexpected pos 390113600 vs 390113488",
    ]
    log.write_text("\n".join(lines) + "\n")
    report, _checks, phases = verify_logs(cli, tmp_path, log)
    assert "(disk full)" in phases["base"]["cause"], phases["base"]
    (fix,) = report["resume"]["fixes"]
    assert fix.startswith("free space on the disk that filled"), fix


def test_sigterm_from_outside_is_not_a_bug_and_a_helper_threads_pipe_is_not_the_crash(tmp_path, cli):
    log = tmp_path / "speedrun.log"
    lines = [*_start(), *_steps(0, 499)]
    lines += [
        "W0315 11:36:12.464000 638669 torch/distributed/elastic/agent/server/api.py:725] Received Signals.SIGTERM "
        "death signal, shutting down workers",
        *_helper_thread_broken_pipe(),
        "Traceback (most recent call last):",
        '  File "/opt/py/bin/torchrun", line 6, in <module>',
        "    sys.exit(main())",
        '  File "/opt/py/lib/python3.10/site-packages/torch/distributed/elastic/multiprocessing/api.py", line 85, in '
        "_terminate_process_handler",
        '    raise SignalException(f"Process {os.getpid()} got signal: {sigval}", sigval=sigval)',
        "torch.distributed.elastic.multiprocessing.api.SignalException: Process 638669 got signal: 15",
    ]
    log.write_text("\n".join(lines) + "\n")
    _report, checks, phases = verify_logs(cli, tmp_path, log)
    assert "crashed (terminated) after step 499" in phases["base"]["cause"], phases["base"]
    (crash,) = checks["LOG002"]["findings"]  # the thread's BrokenPipeError is not a second crash
    assert "got signal: 15" in crash["message"] and "BrokenPipe" not in crash["message"], crash
    assert crash["fix"].startswith("the run was stopped from outside with SIGTERM"), crash["fix"]


def test_a_helper_process_error_after_a_kill_is_not_a_second_crash(tmp_path, cli):
    # bash reports the kill; a compiler daemon then fails to kill the process that is already gone
    log = tmp_path / "speedrun.log"
    lines = [*_start(), *_steps(0, 998, total=35280)]
    lines += [
        "runs/speedrun.sh: line 80: 295970 Killed                  torchrun --standalone --nproc_per_node=1 -m "
        "scripts.base_train -- --depth=12 --save-every=-1",
        "runs/speedrun.sh: line 81: -1: command not found",
        "Process ForkServerProcess-10:",
        "Traceback (most recent call last):",
        '  File "/opt/py/lib/python3.10/multiprocessing/process.py", line 314, in _bootstrap',
        "    self.run()",
        '  File "/opt/toolkit/python/site-packages/tbe/common/utils/common.py", line 110, in daemon_process',
        "    os.kill(mgr_pid, signal.SIGKILL)",
        "ProcessLookupError: [Errno 3] No such process",
    ]
    log.write_text("\n".join(lines) + "\n")
    _report, checks, phases = verify_logs(cli, tmp_path, log)
    (crash,) = checks["LOG002"]["findings"]
    assert "crashed (killed) after step 998" in crash["message"], crash
    (arg,) = checks["LOG013"]["findings"]
    assert "`-1` is not a command but an argument on a line of its own" in arg["message"], arg
    assert "install -1" not in arg["fix"] and "end the line before 81 with `\\`" in arg["fix"], arg


def test_the_rerun_repeats_the_command_bash_quoted_when_it_was_killed(tmp_path, cli):
    # an argparse-era trainer prints no Overriding lines; bash's report of the kill quotes the launch: the rerun kept
    # only depth and batch from the settings it printed, so the total batch, the window pattern, the model tag and the
    # environment switch that keeps torch.compile off on that device went missing
    log = tmp_path / "speedrun.log"
    lines = [_log("nanochat.common", "Distributed world size: 1"), *_steps(0, 998, total=35280)]
    lines += [
        "runs/speedrun.sh: line 80: 295970 Killed                  TORCHDYNAMO_DISABLE=1 torchrun --standalone "
        '--nproc_per_node=1 -m scripts.base_train -- --depth=12 --model-tag="d12" --device-batch-size=8 '
        "--total-batch-size=32768 --window-pattern=L --save-every=-1",
    ]
    log.write_text("\n".join(lines) + "\n")
    report, _checks, _phases = verify_logs(cli, tmp_path, log)
    resume = report["resume"]
    assert resume["env"] == {"TORCHDYNAMO_DISABLE": "1"}, resume
    assert resume["commands"][0] == (
        "python -m scripts.base_train --depth=12 --model-tag=d12 --device-batch-size=8 --total-batch-size=32768 "
        "--window-pattern=L --save-every=-1"
    ), resume["commands"]


def test_a_base_run_that_loaded_the_tokenizer_before_dying_shows_it_was_there(tmp_path, cli):
    # base_train prints the vocabulary size once it has loaded the tokenizer; it then died on its batch assert. The
    # tokenizer was "not-run" here, and "done before these logs" in the same job's other logs
    log = tmp_path / "speedrun.log"
    lines = [
        _log("nanochat.common", "Distributed world size: 1"),
        "Vocab size: 32,768",
        "Traceback (most recent call last):",
        '  File "/r/nanochat/scripts/base_train.py", line 410, in <module>',
        "    assert total_batch_size % world_tokens_per_fwdbwd == 0",
        "AssertionError",
    ]
    log.write_text("\n".join(lines) + "\n")
    _report, _checks, phases = verify_logs(cli, tmp_path, log)
    assert phases["tokenizer"]["status"] == "done", phases["tokenizer"]
    assert phases["tokenizer"]["cause"] == "done before these logs: base_train ran on it", phases["tokenizer"]
    assert phases["base"]["status"] == "failed", phases["base"]


def test_an_era_tie_does_not_state_what_one_era_does_as_the_runs_fact(tmp_path, cli):
    # the step lines of March 2026 fit the current era and the no-mid era alike: "the current era writes no
    # report.md" was said of a run whose checkout (no-mid) writes one; what the logs show is that no report ran
    log = tmp_path / "probe.log"
    log.write_text("\n".join([*_start(), "Model config:", *_steps(0, 4, total=5)]) + "\n")
    report, _checks, phases = verify_logs(cli, tmp_path, log)
    assert "alike" in report["profile"]["reason"], report["profile"]
    assert phases["report"]["cause"].startswith("no report step in these logs (the "), phases["report"]
    assert "which the evidence fits as well, does)" in phases["report"]["cause"], phases["report"]


def test_a_log_that_ends_on_a_step_with_no_error_may_be_a_run_still_going(tmp_path, cli):
    # a live capture: the last line is an ordinary step line; with no job to ask, "training stopped early" (an error)
    # asserted what the logs cannot tell
    log = tmp_path / "live.log"
    log.write_text("\n".join([*_start(), *_steps(0, 1437)]) + "\n")
    _report, checks, _phases = verify_logs(cli, tmp_path, log)
    (stopped,) = checks["LOG008"]["findings"]
    assert stopped["severity"] == "warning", stopped
    assert stopped["message"].endswith(
        "training stopped early, or it is still running: the logs end there with no error (they alone cannot tell; "
        "postflight verify JOBID reads the job's state)"
    ), stopped
    # a traceback after it is an end: an error, as before
    log.write_text("\n".join([*_start(), *_steps(0, 1437), *_helper_thread_broken_pipe()[1:]]) + "\n")
    _report, checks, _phases = verify_logs(cli, tmp_path, log)
    (stopped,) = checks["LOG008"]["findings"]
    assert stopped["severity"] == "error" and stopped["message"].endswith("training stopped early"), stopped
