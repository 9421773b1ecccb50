"""Job logs of a thirteenth round of real evidence, as shapes written here in our own words: a sweep whose attempts
crashed one after another, and a log that begins with a later phase."""

from __future__ import annotations

from tests.clirun import verify_logs
from tests.postflight.logshapes import _log


def _attempt(exception: str) -> list[str]:
    return [
        _log("nanochat.common", "Distributed world size: 1"),
        "Overriding: depth = 4",
        "Overriding: device_batch_size = 32",
        "Traceback (most recent call last):",
        '  File "/h/nanochat/scripts/base_train.py", line 300, in <module>',
        "    loss = model(x, y)",
        exception,
    ]


def test_the_fix_is_for_the_last_attempts_crash_not_an_earlier_one(tmp_path, cli):
    # a sweep: the first attempt ran out of memory, the user lowered the batch, the last one died of its own error;
    # the resume said "first: lower --device_batch_size (32 -> 16 -> 8)" from the first
    log = tmp_path / "sweep.log"
    lines = _attempt("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
    lines += _attempt("AttributeError: 'GPT' object has no attribute 'blocks'")
    log.write_text("\n".join(lines) + "\n")
    report, checks, phases = verify_logs(cli, tmp_path, log)
    assert "AttributeError" in phases["base"]["cause"], phases["base"]
    resume = report["resume"]
    assert not any("device_batch_size" in f for f in resume["fixes"]), resume["fixes"]
    train = next(c for c in resume["commands"] if "scripts.base_train" in c)
    assert "--device_batch_size=32" in train, train  # not halved for the earlier attempt's out-of-memory
    # the out-of-memory of the last attempt is still what the plan answers
    log.write_text("\n".join(_attempt("ValueError: x") + _attempt("torch.OutOfMemoryError: CUDA out of memory.")))
    report, checks, phases = verify_logs(cli, tmp_path, log)
    assert any("device_batch_size (32 -> 16 -> 8)" in f for f in report["resume"]["fixes"]), report["resume"]


def test_phases_before_the_logs_are_not_listed_as_not_done(tmp_path, cli):
    # a log of base_train refusing its command line: the tokenizer is outside it, and the resume plan takes it as
    # done; the verdict line listed it as "not done" beside that plan
    log = tmp_path / "base.out"
    log.write_text(
        "usage: base_train.py [-h] [--run RUN] [--depth DEPTH]\n"
        "base_train.py: error: unrecognized arguments: --models base\n"
    )
    proc = cli("postflight", "verify", "--log", str(log), "--profile", "classic", cwd=tmp_path)
    verdict = proc.stdout.strip().splitlines()[-1]
    assert "tokenizer: not in these logs, taken as done" in proc.stdout, proc.stdout
    assert verdict.split("not done: ")[1].startswith("base, mid, sft, report "), verdict  # was "tokenizer, base, ..."


def test_a_log_with_nothing_nanochat_prints_quotes_its_last_error_line(tmp_path, cli):
    # a site's job wrapper found no Python environment and stopped; its epilogue followed. LOG009 said the log held
    # nothing it could read, and the error the job died of was shown nowhere
    log = tmp_path / "slurm-77.out"
    log.write_text(
        "=== Starting TaskPrologue of job 77 ===\nJob-ID: 77\n\x1b[31mERROR: No Python environment found\x1b[0m\n"
        "=== Epilogue ===\nElapsed runtime 00:00:15\ngpu_name, gpu_bus_id, pid, max_memory_usage [MiB]\n"
    )
    _report, checks, _phases = verify_logs(cli, tmp_path, log)
    (finding,) = checks["LOG009"]["findings"]
    assert "its last error line: 'ERROR: No Python environment found'" in finding["message"], finding["message"]
