"""Parsers for what SLURM prints, on output captured from slurm-wlm 22.05.8 (tests/slurm/captured)."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from preflight import slurm
from preflight.facts import FactUnavailable
from preflight.proc import ToolTimeout
from preflight.submit import parse_parsable

CAPTURED = Path(__file__).resolve().parent / "captured"


def read(name: str) -> str:
    return (CAPTURED / name).read_text()


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("00:00:00", 0),
        ("01:00:00", 3600),
        ("00:05:00", 300),
        ("1-02:03:04", 93784),
        ("2-00", 172800),
        ("3-04:05", 273900),
        ("60", 3600),
        ("10:30", 630),
        ("100:00:00", 360000),
        ("00:01:16.500", 76),
    ],
)
def test_parse_time(text, seconds):
    assert slurm.parse_time(text) == seconds


@pytest.mark.parametrize("text", ["UNLIMITED", "INFINITE", "Partition_Limit", "NONE", "N/A", "Unknown", "", None])
def test_parse_time_no_limit(text):
    assert slurm.parse_time(text) is None


@pytest.mark.parametrize("text", ["1:2:3:4", "abc", "1-", "-5", "12h"])
def test_parse_time_rejects_garbage(text):
    with pytest.raises(ValueError):
        slurm.parse_time(text)


@pytest.mark.parametrize("seconds", [0, 59, 3600, 93784, 86400 * 7 + 1])
def test_format_time_round_trips(seconds):
    assert slurm.parse_time(slurm.format_time(seconds)) == seconds
    assert slurm.format_time(None) == "UNLIMITED"


def test_scontrol_final_states():
    jobs = slurm.parse_scontrol_jobs(read("scontrol_final.txt"))
    got = [(j["JobId"], j["JobName"], j["JobState"], j["ExitCode"], j["Reason"]) for j in jobs]
    assert got == [
        ("8", "comp", "COMPLETED", "0:0", "None"),
        ("9", "fail", "FAILED", "1:0", "NonZeroExitCode"),
        ("10", "nolog", "FAILED", "0:53", "JobLaunchFailure"),
    ]
    nolog = slurm.jobinfo_from_scontrol(jobs[2])
    assert nolog.finished and nolog.exit_status == 0 and nolog.signal == 53
    assert nolog.stdout == "/tmp/cap/missing/nolog_10.out" and nolog.work_dir == "/tmp/cap"
    assert nolog.time_limit_s == 3600 and nolog.elapsed_s == 0 and nolog.reason == "JobLaunchFailure"
    # values holding '=' and keys holding ':' or '/' survive
    assert jobs[0]["TRES"] == "cpu=1,node=1,billing=1"
    assert jobs[0]["AllocNode:Sid"] == "localhost:3690" and jobs[0]["CPUs/Task"] == "1"
    assert jobs[0]["Power"] == "" and slurm.jobinfo_from_scontrol(jobs[0]).reason is None


def test_scontrol_running_and_pending():
    run = slurm.jobinfo_from_scontrol(slurm.parse_scontrol_jobs(read("scontrol_running.txt"))[0])
    assert run.state == "RUNNING" and run.running and not run.finished
    assert run.time_limit_s == 300 and run.raw["TresPerNode"] == "gres:gpu:2"
    pend = slurm.jobinfo_from_scontrol(slurm.parse_scontrol_jobs(read("scontrol_pending.txt"))[0])
    assert pend.state == "PENDING" and pend.reason == "Resources" and pend.start is None


def test_keyvalue_value_with_spaces():
    rec = slurm.parse_keyvalue_line("JobId=5 Command=/home/a b/run.sh WorkDir=/home/a b StdOut=/x")
    assert rec == {"JobId": "5", "Command": "/home/a b/run.sh", "WorkDir": "/home/a b", "StdOut": "/x"}


def test_sacct_rows_and_settling():
    rows = slurm.parse_sacct(read("sacct_X_P.txt"))
    assert [r["State"] for r in rows] == ["COMPLETED", "FAILED", "FAILED", "RUNNING", "PENDING"]
    assert [slurm.sacct_settled(r) for r in rows] == [True, True, True, False, False]
    info = slurm.jobinfo_from_sacct(rows[2])
    assert (info.state, info.exit_code, info.source, info.work_dir) == ("FAILED", "0:53", "sacct", "/tmp/cap")
    assert slurm.jobinfo_from_sacct(rows[4]).time_limit_s is None  # "Partition_Limit"
    unsettled = slurm.parse_sacct(read("sacct_unsettled.txt"))
    # final state already, but JobName=allocation: the record is not complete yet
    assert [slurm.sacct_settled(r) for r in unsettled] == [True, False, False, False]
    assert slurm.normalize_state(unsettled[3]["State"]) == "CANCELLED"


def test_sacct_completion_log_minutes():
    rows = slurm.parse_sacct(read("sacct_completion.txt"))
    by_id = {r["JobID"]: slurm.jobinfo_from_sacct(r, "sacct-completion") for r in rows}
    assert by_id["9"].state == "FAILED" and by_id["9"].exit_code == "1:0"
    assert by_id["10"].time_limit_s == 3600  # Timelimit "60" is minutes in the completion log


def test_partitions():
    (p,) = slurm.parse_partitions(read("partitions.txt"))
    assert (p.name, p.default, p.state, p.max_time_s, p.default_time_s) == ("debug", True, "UP", 3600, None)
    assert (p.total_cpus, p.total_nodes, p.gpus) == (8, 1, 8)


def test_test_only_answers():
    ok = slurm.parse_test_only(0, read("test_only_ok.stderr"))
    assert ok.ok and ok.start == "2026-11-28T23:05:34" and ok.nodes == "vm" and ok.partition == "debug"
    bad = slurm.parse_test_only(1, read("test_only_fail.stderr"))
    assert not bad.ok and "Requested node configuration is not available" in bad.message
    rejected = slurm.parse_test_only(
        1,
        "sbatch: error: Batch job submission failed: Requested time limit is invalid (missing or exceeds some limit)\n",
    )
    assert not rejected.ok and rejected.message.startswith("Batch job submission failed: Requested time limit")


def test_parse_parsable():
    assert parse_parsable("42\n") == ("42", None)
    assert parse_parsable("42;cluster2\n") == ("42", "cluster2")
    assert parse_parsable("sbatch: warning: x\n17\n") == ("17", None)
    assert parse_parsable("") is None


# -- tool failures: quick and explicit, never a hang -----------------------------------------------
def _fake_tool(bindir: Path, name: str, body: str) -> None:
    bindir.mkdir(exist_ok=True)
    p = bindir / name
    p.write_text(f"#!/bin/sh\n{body}\n")
    p.chmod(p.stat().st_mode | stat.S_IEXEC)


def _env(bindir: Path, **extra: str) -> dict[str, str]:
    """Fake tools first, the system's coreutils after them (never the real SLURM tools: they are
    shadowed by the fakes, and probe() needs both sbatch and scontrol)."""
    return {"PATH": f"{bindir}:/usr/bin:/bin", **extra}


def test_no_slurm_on_path_is_unavailable(tmp_path):
    with pytest.raises(FactUnavailable, match="sbatch not found"):
        slurm.probe(env={"PATH": str(tmp_path)})


def test_missing_slurm_conf_fails_fast(tmp_path):
    bindir = tmp_path / "bin"
    for tool in ("sbatch", "scontrol"):
        _fake_tool(bindir, tool, "sleep 60")
    t0 = time.monotonic()
    with pytest.raises(FactUnavailable, match="SLURM_CONF"):
        slurm.probe(env=_env(bindir, SLURM_CONF=str(tmp_path / "nope.conf")))
    assert time.monotonic() - t0 < 2


def test_hung_controller_is_a_timeout_after_the_ping_timeout(tmp_path):
    """A hung controller is not "no SLURM here": ToolTimeout, so the checks needing it become errors (issue 7)."""
    bindir = tmp_path / "bin"
    for tool in ("sbatch", "scontrol"):
        _fake_tool(bindir, tool, "exec sleep 60")
    t0 = time.monotonic()
    with pytest.raises(ToolTimeout, match="did not answer"):
        slurm.probe(env=_env(bindir), timeout=1)
    assert time.monotonic() - t0 < 5


def test_controller_down_is_unavailable(tmp_path):
    bindir = tmp_path / "bin"
    _fake_tool(bindir, "sbatch", "exit 1")
    _fake_tool(bindir, "scontrol", "echo 'Slurmctld(primary) at vm is DOWN'; exit 1")
    with pytest.raises(FactUnavailable, match="is DOWN"):
        slurm.probe(env=_env(bindir))


def test_hung_scontrol_raises_tool_timeout(tmp_path):
    bindir = tmp_path / "bin"
    _fake_tool(bindir, "scontrol", "exec sleep 60")
    with pytest.raises(ToolTimeout):
        slurm.scontrol_job("5", env=_env(bindir), timeout=0.5)


def test_unknown_job_is_none(tmp_path):
    bindir = tmp_path / "bin"
    _fake_tool(bindir, "scontrol", "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1")
    assert slurm.scontrol_job("99999", env=_env(bindir)) is None


def test_sacct_disabled_falls_back_to_completion_log(tmp_path):
    bindir = tmp_path / "bin"
    log = (CAPTURED / "sacct_completion.txt").resolve()
    _fake_tool(
        bindir,
        "sacct",
        f'case "$1" in -c) cat {log} ;; *) echo "Slurm accounting storage is disabled" >&2; exit 1 ;; esac',
    )
    row, source = slurm.sacct_job("9", settle_timeout=5, env=_env(bindir))
    assert source == "sacct-completion" and row["State"] == "FAILED" and row["ExitCode"] == "1:0"


def test_sacct_polls_until_settled(tmp_path):
    bindir = tmp_path / "bin"
    counter = tmp_path / "n"
    counter.write_text("0")
    # the first two answers carry sacct's placeholder name, the third is complete
    _fake_tool(
        bindir,
        "sacct",
        f"""n=$(cat {counter}); echo $((n+1)) > {counter}
echo 'JobID|JobName|State|ExitCode'
if [ "$n" -lt 2 ]; then echo '7|allocation|FAILED|1:0'; else echo '7|fail|FAILED|1:0'; fi""",
    )
    row, source = slurm.sacct_job("7", settle_timeout=10, env=_env(bindir), poll=0.05)
    assert (row["JobName"], source, counter.read_text().strip()) == ("fail", "sacct", "3")
