"""Against the real local cluster (scripts/local-slurm.sh): job states, facts, submit, ledger."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from slurm_helpers import sbatch, slurm_env, wait_final

from preflight import slurm as S
from preflight.config import load_config
from preflight.context import Context, RunInputs
from preflight.facts import FactUnavailable
from preflight.ledger import ledger_fact, read_ledger
from preflight.model import CheckResult, Finding, RunResult, Severity, Status
from preflight.submit import SubmitError, submit

pytestmark = pytest.mark.slurm

TINY = "#!/bin/bash\n#SBATCH --job-name=tiny\n#SBATCH --output=logs/%x_%j.out\nset -euo pipefail\necho hello from $SLURM_JOB_ID\n"


def ctx_for(cwd: Path, script: Path | None = None, job_id: str | None = None, **config) -> Context:
    cfg = load_config(dict(config), environ={}, search=False)
    return Context(
        cfg,
        RunInputs(script=script, job_id=job_id, cwd=cwd, stage="pre" if job_id is None else "post"),
        environ=slurm_env(),
    )


def result_with(*findings: Finding) -> RunResult:
    for f in findings:
        f.severity = f.severity or Severity.ERROR
    checks = [
        CheckResult(
            code=f.code,
            name=f.name,
            stage="pre",
            status=Status.FAIL,
            severity=Severity.ERROR,
            duration_ms=1.0,
            findings=[f],
        )
        for f in findings
    ]
    return RunResult(stage="pre", checks=checks)


# -- job states ------------------------------------------------------------------------------------
def test_completed_job(slurm, tmp_path):
    t0 = time.monotonic()
    jid = sbatch("-J", "ok", "--output=%x_%j.out", "--wrap=echo done", cwd=tmp_path)
    info = wait_final(jid)
    print(f"submit -> COMPLETED: {time.monotonic() - t0:.2f}s")
    assert (info.state, info.exit_code, info.source) == ("COMPLETED", "0:0", "scontrol")
    assert info.stdout == str(tmp_path / f"ok_{jid}.out") and info.work_dir == str(tmp_path)
    assert (tmp_path / f"ok_{jid}.out").read_text() == "done\n"
    row, source = S.sacct_job(jid, settle_timeout=20, env=slurm_env())
    assert source == "sacct" and (row["JobName"], row["State"], row["ExitCode"]) == ("ok", "COMPLETED", "0:0")


def test_failed_job(slurm, tmp_path):
    jid = sbatch("-J", "fail", "--output=%x_%j.out", "--wrap=echo bad; exit 1", cwd=tmp_path)
    info = wait_final(jid)
    assert (info.state, info.exit_code, info.exit_status) == ("FAILED", "1:0", 1)
    assert info.reason == "NonZeroExitCode"
    row, _ = S.sacct_job(jid, settle_timeout=20, env=slurm_env())
    assert (row["State"], row["ExitCode"]) == ("FAILED", "1:0")


def test_missing_output_dir_fails_0_53_without_log(slurm, tmp_path):
    jid = sbatch("-J", "nolog", "--output=missing/%x_%j.out", "--wrap=echo hi", cwd=tmp_path)
    info = wait_final(jid)
    assert (info.state, info.exit_code, info.reason, info.signal) == ("FAILED", "0:53", "JobLaunchFailure", 53)
    assert info.stdout == str(tmp_path / "missing" / f"nolog_{jid}.out")
    assert not (tmp_path / "missing").exists() and list(tmp_path.iterdir()) == []
    row, _ = S.sacct_job(jid, settle_timeout=20, env=slurm_env())
    assert (row["State"], row["ExitCode"]) == ("FAILED", "0:53")


@pytest.mark.slow
def test_timeout(slurm, tmp_path):
    """--time has minute granularity and limits are enforced every 30 s: 60-90 s."""
    t0 = time.monotonic()
    jid = sbatch("-J", "slow", "--time=00:00:10", "--output=%x_%j.out", "--wrap=sleep 300", cwd=tmp_path)
    running = S.job_info(jid, env=slurm_env())
    assert running.time_limit_s == 60 and running.state in ("PENDING", "RUNNING")
    info = wait_final(jid, timeout=180)
    print(f"submit -> TIMEOUT: {time.monotonic() - t0:.1f}s")
    assert (info.state, info.reason) == ("TIMEOUT", "TimeLimit")
    row, _ = S.sacct_job(jid, settle_timeout=20, env=slurm_env())
    assert row["State"] == "TIMEOUT" and S.parse_time(row["Elapsed"]) >= 60


def test_running_job_is_reported_running_then_cancelled(slurm, tmp_path):
    jid = sbatch("-J", "run", "--output=%x_%j.out", "--wrap=sleep 120", cwd=tmp_path)
    try:
        info = S.wait_for_job(jid, timeout=1.5, poll=0.25, env=slurm_env())
        assert info is not None and info.running and not info.finished
    finally:
        S._run(["scancel", jid], slurm_env(), 10)
    assert wait_final(jid).state == "CANCELLED"


def test_unknown_job(slurm):
    assert S.job_info("999999999", env=slurm_env(), settle_timeout=1) is None


# -- facts ---------------------------------------------------------------------------------------
def test_slurm_fact_and_partitions(slurm, tmp_path):
    info = ctx_for(tmp_path).get("slurm")
    assert info.version.startswith("slurm") and " is UP" in info.controller
    part = info.default_partition
    assert part is not None and part.max_time_s and part.max_time_s > 0
    assert [p.name for p in S.partitions(env=slurm_env())] == [p.name for p in info.partitions]


def test_job_fact(slurm, tmp_path):
    jid = sbatch("-J", "fact", "--output=%x_%j.out", "--wrap=true", cwd=tmp_path)
    wait_final(jid)
    job = ctx_for(tmp_path, job_id=jid).get("job")
    assert (job.job_id, job.state, job.name) == (jid, "COMPLETED", "fact")
    with pytest.raises(FactUnavailable, match="no job id"):
        ctx_for(tmp_path).get("job")
    with pytest.raises(FactUnavailable, match="knows no job"):
        ctx_for(tmp_path, job_id="999999998").get("job")


def test_test_only_answers_on_stderr(slurm, tmp_path):
    script = tmp_path / "t.sbatch"
    script.write_text(TINY)
    ok = S.test_only(script, ["--gres=gpu:8"], env=slurm_env(), cwd=tmp_path)
    assert ok.ok and ok.start and ok.partition
    too_many = S.test_only(script, ["--gres=gpu:99"], env=slurm_env(), cwd=tmp_path)
    assert not too_many.ok and too_many.returncode != 0 and too_many.message
    too_long = S.test_only(script, ["--time=99:00:00"], env=slurm_env(), cwd=tmp_path)
    assert not too_long.ok and "time limit" in too_long.message.lower()


# -- submit + ledger -----------------------------------------------------------------------------
def test_submit_writes_ledger_and_job_completes(slurm, tmp_path):
    script = tmp_path / "tiny.sbatch"
    script.write_text(TINY)
    (tmp_path / "logs").mkdir()
    ctx = ctx_for(tmp_path, script)
    out = submit(script, ["--time=00:05:00"], run_result=result_with(), ctx=ctx)
    assert out.exit_code == 0 and out.job_id and not out.refused and not out.forced
    doc = json.loads(out.ledger_path.read_text())
    assert out.ledger_path == tmp_path / ".preflight" / "jobs" / f"{out.job_id}.json"
    assert doc["schema_version"] == 1 and doc["job_id"] == out.job_id and doc["forced"] is False
    assert doc["sbatch_args"] == ["--time=00:05:00"] and doc["cwd"] == str(tmp_path)
    assert doc["script"]["path"] == str(script) and len(doc["script"]["sha256"]) == 64
    assert doc["logs"] == {
        "stdout": str(tmp_path / "logs" / f"tiny_{out.job_id}.out"),
        "stderr": str(tmp_path / "logs" / f"tiny_{out.job_id}.out"),
    }
    assert doc["preflight"]["verdict"] == "pass" and doc["config"]["ledger-dir"] == ".preflight/jobs"
    info = wait_final(out.job_id)
    assert info.stdout == doc["logs"]["stdout"]  # the ledger predicted what SLURM resolved
    assert Path(doc["logs"]["stdout"]).read_text().strip() == f"hello from {out.job_id}"
    led = ledger_fact(ctx_for(tmp_path, job_id=out.job_id))
    assert led.job_id == out.job_id and led.logs == doc["logs"]
    with pytest.raises(FactUnavailable, match="no ledger"):
        ledger_fact(ctx_for(tmp_path, job_id="424242"))


def test_submit_command_line_overrides_directives(slurm, tmp_path):
    script = tmp_path / "tiny.sbatch"
    script.write_text(TINY)
    (tmp_path / "out").mkdir()
    out = submit(
        script,
        ["-J", "renamed", "-o", "out/%x-%j.log", "--error=out/%u_%5j.err"],
        run_result=result_with(),
        ctx=ctx_for(tmp_path, script),
    )
    info = wait_final(out.job_id)
    doc = read_ledger(out.ledger_path).data
    assert doc["logs"]["stdout"] == info.stdout == str(tmp_path / "out" / f"renamed-{out.job_id}.log")
    # scontrol leaves a padded %5j unexpanded; the file SLURM writes (and the ledger) has it expanded
    assert doc["logs"]["stderr"] == str(tmp_path / "out" / f"root_{int(out.job_id):05d}.err")
    assert Path(doc["logs"]["stderr"]).exists() and info.stderr.endswith("root_%5j.err")


def test_submit_refuses_on_errors_unless_forced(slurm, tmp_path):
    script = tmp_path / "tiny.sbatch"
    script.write_text(TINY)  # logs/ does not exist: the real job would fail 0:53
    finding = Finding(
        "--output directory logs does not exist",
        path=str(script),
        line=3,
        fix="mkdir -p logs",
        code="SB004",
        name="output-dir-missing",
    )
    out = submit(script, [], run_result=result_with(finding), ctx=ctx_for(tmp_path, script))
    assert out.refused and out.exit_code == 1 and out.job_id is None and "SB004 output-dir-missing" in out.message
    assert not (tmp_path / ".preflight").exists()
    forced = submit(script, [], force=True, run_result=result_with(finding), ctx=ctx_for(tmp_path, script))
    assert forced.job_id and forced.forced and forced.exit_code == 0
    doc = read_ledger(forced.ledger_path).data
    assert doc["forced"] is True and doc["preflight"]["verdict"] == "fail"
    info = wait_final(forced.job_id)
    assert (info.state, info.exit_code) == ("FAILED", "0:53") and not Path(doc["logs"]["stdout"]).exists()


def test_submit_test_only_writes_no_ledger(slurm, tmp_path):
    script = tmp_path / "tiny.sbatch"
    script.write_text(TINY)
    out = submit(script, ["--gres=gpu:8"], test_only=True, run_result=result_with(), ctx=ctx_for(tmp_path, script))
    assert out.test_only and out.exit_code == 0 and out.job_id is None and "to start at" in out.message
    bad = submit(script, ["--gres=gpu:99"], test_only=True, run_result=result_with(), ctx=ctx_for(tmp_path, script))
    assert bad.exit_code != 0
    assert not (tmp_path / ".preflight").exists()


def test_sbatch_rejection_is_a_submit_error(slurm, tmp_path):
    script = tmp_path / "tiny.sbatch"
    script.write_text(TINY)
    with pytest.raises(SubmitError, match="Requested time limit is invalid") as exc:
        submit(script, ["--time=99:00:00"], run_result=result_with(), ctx=ctx_for(tmp_path, script))
    assert exc.value.exit_code == 1 and not (tmp_path / ".preflight").exists()


def test_concurrent_submits_write_separate_ledgers(slurm, tmp_path):
    script = tmp_path / "tiny.sbatch"
    script.write_text(TINY)
    (tmp_path / "logs").mkdir()
    outcomes, errors = [], []
    barrier = threading.Barrier(4)

    def one():
        try:
            barrier.wait()
            outcomes.append(submit(script, [], run_result=result_with(), ctx=ctx_for(tmp_path, script)))
        except Exception as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    ids = sorted(o.job_id for o in outcomes)
    assert len(set(ids)) == 4
    files = sorted((tmp_path / ".preflight" / "jobs").iterdir())
    assert [f.name for f in files] == sorted(f"{i}.json" for i in ids)  # no temp files left behind
    assert sorted(read_ledger(f).job_id for f in files) == ids
    for jid in ids:
        assert wait_final(jid).state == "COMPLETED"


def test_one_partition_query_per_run(slurm, tmp_path):
    """The plan (a GPU model from the partition) and the slurm fact share one `scontrol show partition`;
    `scontrol --version` runs only when the version is read. Counted with a shim in front of the real tool."""
    import shutil

    calls = tmp_path / "calls.log"
    shim = tmp_path / "bin"
    shim.mkdir()
    real = shutil.which("scontrol", path=slurm_env().get("PATH"))
    (shim / "scontrol").write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real} "$@"\n')
    (shim / "scontrol").chmod(0o755)
    script = tmp_path / "job.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time=01:00:00\ntorchrun --nproc_per_node=8 -m scripts.base_train\n"
    )
    env = {**slurm_env(), "PATH": f"{shim}:{slurm_env().get('PATH', '')}"}
    ctx = Context(load_config({}, environ={}, search=False), RunInputs(script=script, cwd=tmp_path), environ=env)
    ctx.get("plan")
    info = ctx.get("slurm")
    asked = calls.read_text().splitlines()
    assert asked.count("show partition -o") == 1 and "--version" not in asked, asked
    assert info.partitions and info.version.startswith("slurm")
    assert calls.read_text().splitlines().count("--version") == 1


def test_a_controller_that_is_down_costs_the_plan_no_partition_query(slurm, tmp_path):
    """A real scontrol against a controller nobody answers for (this cluster's config, another port): `ping` says
    DOWN at once, while `show partition` retries for seconds; the plan's partition fact asks `ping` first."""
    import os

    conf = Path(slurm_env().get("SLURM_CONF") or "/etc/slurm/slurm.conf")
    lines = [ln for ln in conf.read_text().splitlines() if not ln.startswith("SlurmctldPort=")]
    down = tmp_path / "slurm.conf"
    down.write_text("\n".join([*lines, "SlurmctldPort=6899"]) + "\n")
    for name in ("gres.conf", "cgroup.conf", "plugstack.conf"):  # slurm.conf's siblings, read from its directory
        if (conf.parent / name).exists():
            os.symlink(conf.parent / name, tmp_path / name)
    env = {**slurm_env(), "SLURM_CONF": str(down)}
    ctx = Context(load_config({}, environ={}, search=False), RunInputs(cwd=tmp_path), environ=env)
    with pytest.raises(FactUnavailable, match=r"does not answer: Slurmctld\(primary\) at \S+ is DOWN"):
        ctx.get("slurm_partitions")
