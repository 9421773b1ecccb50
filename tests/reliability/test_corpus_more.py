"""More readers of user files: the run ledger (`.preflight/jobs/JOBID.json`, read by `postflight verify
JOBID`), the nanochat checkout the script runs from (fingerprinted, configurator keys parsed with ast),
and report.md (read by postflight)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import factories
import pytest
import rel_corpus as corpus
from rel_helpers import check_survived, run_bounded, snapshot

JOB = "777001"


def _ledger_cases(tmp: Path) -> dict[str, object]:
    fifo = tmp / "fifo.out"
    good = {
        "schema_version": 1,
        "job_id": JOB,
        "script": {"path": str(tmp / "job.sh")},
        "cwd": str(tmp),
        "logs": {"stdout": str(tmp / "logs" / "run.out"), "stderr": str(tmp / "logs" / "run.out")},
        "expected": {"phases": ["base", "mid", "sft"], "steps": {"base": 20}},
        "profile": {"name": "classic"},
    }

    def fifo_log(p: Path) -> None:
        os.mkfifo(fifo)
        p.write_text(json.dumps(dict(good, logs={"stdout": str(fifo), "stderr": str(fifo)})))

    raw = {
        "not-json": "{ not json",
        "binary": corpus._rand(3000),
        "a-list": "[1, 2]",
        "no-job-id": json.dumps({"schema_version": 1}),
        "future-version": json.dumps(dict(good, schema_version=99)),
        "wrong-types": json.dumps(dict(good, logs="x", expected=[1], cwd=7, script="s", profile="p")),
        "nested-wrong-types": json.dumps(
            dict(good, logs={"stdout": 5, "stderr": None}, expected={"phases": "base", "steps": {"base": "many"}})
        ),
        "deep-nesting": '{"schema_version": 1, "job_id": "' + JOB + '", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "huge-int": json.dumps(dict(good, schema_version=1)).replace(
            '"schema_version": 1', '"schema_version": ' + "9" * 5000
        ),
        "huge-float": json.dumps(good).replace('"base": 20', '"base": 1e999'),
        "logs-dev-zero": json.dumps(dict(good, logs={"stdout": "/dev/zero", "stderr": "/dev/zero"})),
        "logs-dir": json.dumps(dict(good, logs={"stdout": str(tmp), "stderr": "/"})),
        "profile-bogus": json.dumps(dict(good, profile={"name": "../../etc/passwd"})),
    }
    out: dict[str, object] = {k: v for k, v in raw.items()}
    out["logs-fifo"] = fifo_log
    return out


@pytest.mark.parametrize("name", sorted(_ledger_cases(Path("/nonexistent"))))
def test_bad_ledger(name, tmp_path, cli, tally):
    base = tmp_path / "base"
    factories.write_run(base, world_size=2)
    factories.write_log(tmp_path / "logs" / "run.out", factories.run_log(base=str(base)))
    ledger = tmp_path / ".preflight" / "jobs" / f"{JOB}.json"
    ledger.parent.mkdir(parents=True)
    case = _ledger_cases(tmp_path)[name]
    if callable(case):
        case(ledger)
    else:
        ledger.write_bytes(case.encode() if isinstance(case, str) else case)
    before = snapshot(tmp_path)
    proc = run_bounded(
        cli,
        tally,
        "ledger",
        "postflight",
        "verify",
        JOB,
        "--base-dir",
        str(base),
        "--no-smoke",
        cwd=tmp_path,
        env={"PREFLIGHT_SLURM_TIMEOUT": "3"},
        timeout=60,
    )
    check_survived(tally, "ledger", proc, allowed=(0, 1, 2), before=before, root=tmp_path)


# -- a hostile nanochat checkout (the script's cwd) --------------------------------------------------------
CHECKOUT_SOURCES = {
    "unary-chain": "depth = " + "-" * 200_000 + "1\n",
    "long-sum": "depth = " + "+".join(["1"] * 200_000) + "\n",
    "binary": corpus._rand(5000),
    "nul": "depth = 20\x00\n",
    "latin1": "depth = 20  # caf\xe9\n".encode("latin-1"),
    "syntax-error": "depth = (\n",
    "huge-literal": "depth = " + "9" * 5000 + "\n",
}


@pytest.mark.parametrize("name", sorted(CHECKOUT_SOURCES))
def test_hostile_checkout(name, tmp_path, cli, tally):
    src = CHECKOUT_SOURCES[name]
    for rel in ("nanochat/base_train.py", "nanochat/configurator.py", "scripts/base_train.py"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(src.encode() if isinstance(src, str) else src)
    script = tmp_path / "job.sh"
    script.write_text(
        corpus.GOOD_SCRIPT.replace("-m scripts.base_train -- --depth=20", "-m nanochat.base_train -- --depth=20")
    )
    before = snapshot(tmp_path)
    proc = run_bounded(
        cli,
        tally,
        "nanochat checkout",
        "preflight",
        "check",
        str(script),
        "--base-dir",
        str(tmp_path / "b"),
        cwd=tmp_path,
        timeout=60,
    )
    check_survived(tally, "nanochat checkout", proc, allowed=(1, 2), before=before, root=tmp_path)


# -- report.md -----------------------------------------------------------------------------------------------
REPORTS = {
    "binary": lambda: corpus._rand(20000),
    "empty": lambda: b"",
    "huge-60MB": lambda: (factories.report_text() + "x" * (60 << 20)).encode(),
    "one-long-line": lambda: b"| " * (3 << 20),
    "table-garbage": lambda: factories.report_text().replace("| CORE", "| CORE | | | | | | | | |").encode(),
    "nan-cells": lambda: factories.report_text(cells={"CORE": {"BASE": "nan"}, "GSM8K": {"SFT": "1e999"}}).encode(),
    "invalid-utf8": lambda: factories.report_text().encode().replace(b"Summary", b"Sum\xff\xfemary"),
    "crlf": lambda: factories.report_text().replace("\n", "\r\n").encode(),
}


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_bad_report(name, tmp_path, cli, tally):
    base = tmp_path / "base"
    factories.write_run(base, world_size=2)
    log = factories.write_log(tmp_path / "logs" / "run.out", factories.run_log(base=str(base)))
    (base / "report" / "report.md").write_bytes(REPORTS[name]())
    before = snapshot(tmp_path)
    proc = run_bounded(
        cli,
        tally,
        "report.md",
        "postflight",
        "verify",
        "--log",
        str(log),
        "--base-dir",
        str(base),
        "--no-smoke",
        cwd=tmp_path,
        timeout=60,
    )
    check_survived(tally, "report.md", proc, allowed=(0, 1, 2), before=before, root=tmp_path)
    if name not in ("crlf", "table-garbage"):  # report checks are warnings: a finding, exit 0 is right
        assert "PASS: no findings" not in proc.stdout and "RPT" in proc.stdout, f"{name}: no report finding"
