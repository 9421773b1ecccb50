"""Hostile input, round two: limits that hold (issue 14).

A timed-out check gives its slot back (``timeout: 5`` took 49 s when stuck checks kept their slots and
waiting checks never started their clock), the run has a deadline no config value disables, and one
crafted input cannot flood a report (findings per check are capped with a "... and N more" line).
"""

from __future__ import annotations

import threading

import pytest

from preflight.config import load_config
from preflight.context import Context, RunInputs
from preflight.model import Finding, Severity, Status
from preflight.registry import Registry, check
from preflight.runner import MAX_FINDINGS_PER_CHECK, Selection, run_checks, valid_timeout

STUCK = threading.Event()  # never set: the stuck checks wait on it until the test process ends


@check("TH001", "stuck-one", requires=())
def stuck_one():
    STUCK.wait(60)
    return []


@check("TH002", "stuck-two", requires=())
def stuck_two():
    STUCK.wait(60)
    return []


@check("TH003", "stuck-three", requires=())
def stuck_three():
    STUCK.wait(60)
    return []


def _stuck(code: str):
    def stuck():
        STUCK.wait(60)
        return []

    return check(code, f"stuck-{code.lower()}", requires=())(stuck)


MORE_STUCK = [_stuck(f"TH10{i}") for i in range(6)]


@check("TH004", "quick", requires=())
def quick():
    yield Finding("quick check ran", fix="none")


@check("TH005", "floods", severity="warning", requires=())
def floods():
    for i in range(20_000):
        yield Finding(f"shard_{i:05d}.parquet is corrupt", path=f"/data/shard_{i:05d}.parquet")
    yield Finding("the one error among them", severity=Severity.ERROR)


def _run(select, timeout, jobs):
    reg = Registry()
    for f in (stuck_one, stuck_two, stuck_three, quick, floods, *MORE_STUCK):
        reg.add(f.__preflight_check__)
    cfg = load_config({}, environ={}, search=False)
    ctx = Context(cfg, inputs=RunInputs(), environ={})
    return run_checks(reg, ctx, "pre", selection=Selection(list(select), []), timeout=timeout, jobs=jobs)


def _bounded(fn, seconds=15.0):
    """fn() in a thread; a run that does not end within ``seconds`` fails the test instead of hanging it."""
    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("value", fn()), daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"the run did not end within {seconds:g}s")
    return box["value"]


def test_timed_out_checks_free_their_slots(tally):
    """One slot, three stuck checks, then a quick one: each stuck check times out on its own clock and
    frees the slot, so the quick one runs and the whole run ends (was: 3 x 60 s)."""
    tally.tried("runner deadlines")
    result = _bounded(lambda: _run(["TH001", "TH002", "TH003", "TH004"], timeout=0.5, jobs=1))
    by_code = {c.code: c for c in result.checks}
    for code in ("TH001", "TH002", "TH003"):
        assert by_code[code].status is Status.ERROR and "timed out" in by_code[code].reason
    assert by_code["TH004"].findings and by_code["TH004"].findings[0].message == "quick check ran"


def test_run_deadline_ends_checks_waiting_for_a_slot(tally):
    """Six stuck checks on one slot pass the run's deadline (4 timeouts): the run still ends, and the
    checks that never got a slot are reported as not finished, not as a pass."""
    tally.tried("runner deadlines")
    result = _bounded(lambda: _run(["TH10"], timeout=0.5, jobs=1))
    reasons = {c.code: (c.status, c.reason) for c in result.checks}
    assert len(reasons) == 6 and all(status is Status.ERROR for status, _ in reasons.values()), reasons
    assert any("deadline" in reason for _, reason in reasons.values()), reasons


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 0.0, "nan", None])
def test_timeout_values_that_would_disable_it_fall_back(value):
    assert valid_timeout(value) == 30.0


def test_findings_per_check_are_capped(tally):
    tally.tried("report flooding")
    result = _bounded(lambda: _run(["TH005"], timeout=30, jobs=1))
    findings = result.checks[0].findings
    assert len(findings) == MAX_FINDINGS_PER_CHECK
    assert findings[-1].message == f"... and {20_001 - MAX_FINDINGS_PER_CHECK + 1} more floods findings not shown"
    assert findings[0].message == "the one error among them", "the worst finding must survive the cap"
    assert result.verdict == "fail"


def test_many_distinct_tracebacks_are_not_refolded_each_time(tmp_path, monkeypatch, tally):
    """A log with thousands of distinct tracebacks in one process: the segment was re-folded for every
    traceback past the cap (quadratic; a million took minutes). Folding now happens once per segment."""
    from preflight import logindex, logtracebacks

    tally.tried("log")
    lines = ["Overriding: run = dummy"]
    for i in range(3000):
        lines += [
            "Traceback (most recent call last):",
            f'  File "/x/scripts/base_train.py", line {i}, in <module>',
            "    boom()",
            f"ValueError: distinct failure {i}",
        ]
    log = tmp_path / "run.log"
    log.write_text("\n".join(lines) + "\n")
    folds = []
    real = logindex._Indexer._fold_segment
    monkeypatch.setattr(logindex._Indexer, "_fold_segment", staticmethod(lambda seg: folds.append(1) or real(seg)))
    index = logindex.index_log(log)
    assert len(folds) <= 3, f"the segment was folded {len(folds)} times"
    kept = index.tracebacks
    assert len(kept) <= logtracebacks.MAX_TB_PER_SEGMENT and sum(t.copies for t in kept) >= 3000
