"""The runner: selection, severity re-grading, skip/error/timeout, suppressions."""

from __future__ import annotations

import time

import pytest

from preflight.config import load_config
from preflight.context import Context, RunInputs
from preflight.facts import FactUnavailable, Skip, fact
from preflight.model import Finding, Severity, Status
from preflight.registry import Registry, check
from preflight.runner import Selection, SelectionError, is_selected, run_checks

DOC = """
What it checks: x.
Why it matters: y.
Example:
    z
How to fix: w.
"""


@fact("test_script_lines")
def _script_lines(ctx):
    if ctx.inputs.script is None:
        raise FactUnavailable("no script given")
    return ctx.inputs.script.read_text().splitlines()


@check("TT001", "flags-torchrun", severity="error")
def flags_torchrun(test_script_lines):
    for i, line in enumerate(test_script_lines, 1):
        if "torchrun" in line:
            yield Finding("torchrun seen", path=None, line=i, fix="f")


@check("TT002", "always-warns", severity="warning", requires=())
def always_warns():
    return [Finding("a warning", fix="f")]


@check("TT003", "crashes", requires=())
def crashes():
    raise RuntimeError("boom")


@check("TT004", "hangs", requires=())
def hangs():
    time.sleep(5)
    return []


@check("TT005", "skips-itself", requires=())
def skips_itself():
    raise Skip("not on a login node")


@check("TT006", "info-only", severity="info", requires=())
def info_only():
    yield Finding("just so you know", fix="nothing")


SPECS = [f.__preflight_check__ for f in (flags_torchrun, always_warns, crashes, hangs, skips_itself, info_only)]


def _registry():
    reg = Registry()
    for spec in SPECS:
        reg.add(spec)
    from preflight.checks import core

    reg.add_module(core)
    return reg


def _run(tmp_path, script_text=None, select=("TT001", "TT002", "TT005", "TT006"), config=None, **kw):
    script = None
    if script_text is not None:
        script = tmp_path / "job.sbatch"
        script.write_text(script_text)
    cfg = load_config(config or {}, environ={}, search=False)
    ctx = Context(cfg, inputs=RunInputs(script=script), environ={})
    return run_checks(_registry(), ctx, "pre", selection=Selection(list(select), list(kw.pop("ignore", []))), **kw)


def _by_code(result):
    return {c.code: c for c in result.checks}


def test_statuses(tmp_path):
    res = _by_code(_run(tmp_path, "torchrun x\n", select=["TT"], timeout=0.5))
    assert res["TT001"].status is Status.FAIL
    assert res["TT002"].status is Status.WARN
    assert res["TT003"].status is Status.ERROR and "boom" in res["TT003"].reason
    assert res["TT004"].status is Status.ERROR and "timed out" in res["TT004"].reason
    assert res["TT005"].status is Status.SKIP and res["TT005"].reason == "not on a login node"
    assert res["TT006"].status is Status.PASS and res["TT006"].findings


def test_timeout_does_not_block_the_run(tmp_path):
    start = time.monotonic()
    _run(tmp_path, "x\n", select=["TT004"], timeout=0.3)
    assert time.monotonic() - start < 3  # the hung check is abandoned, not awaited


def test_missing_fact_skips_with_reason(tmp_path):
    res = _by_code(_run(tmp_path, None, select=["TT001"]))
    assert res["TT001"].status is Status.SKIP and res["TT001"].reason == "no script given"


def test_verdict_and_threshold(tmp_path):
    result = _run(tmp_path, "torchrun\n")
    assert result.verdict == "fail" and len(result.failing()) == 1
    result = _run(tmp_path, "echo\n")
    assert result.verdict == "warn" and result.failing() == []
    result = _run(tmp_path, "echo\n", config={"fail-on": "warning"})
    assert [f.code for f in result.failing()] == ["TT002"]


@pytest.mark.parametrize(
    "select,ignore,expected",
    [
        (["ALL"], [], {"TT001", "TT002", "TT003", "TT004", "TT005", "TT006", "SB900"}),
        (["TT"], ["TT00"], set()),
        (["TT"], ["TT003", "hangs"], {"TT001", "TT002", "TT005", "TT006"}),
        (["TT00"], ["TT"], {"TT001", "TT002", "TT003", "TT004", "TT005", "TT006"}),  # more specific select wins
        (["always-warns"], [], {"TT002"}),
    ],
)
def test_selection(select, ignore, expected):
    sel = Selection(select, ignore)
    assert {s.code for s in _registry() if is_selected(s, sel)} == expected


def test_unknown_selector_is_a_usage_error(tmp_path):
    with pytest.raises(SelectionError, match="XX999"):
        _run(tmp_path, "x", select=["XX999"])


def test_severity_regrade_by_code_and_name(tmp_path):
    result = _run(tmp_path, "x\n", config={"severity": {"always-warns": "error", "TT006": "warning"}})
    res = _by_code(result)
    assert res["TT002"].status is Status.FAIL and res["TT002"].findings[0].severity is Severity.ERROR
    assert res["TT006"].status is Status.WARN


SCRIPT = """#!/bin/bash
# preflight: disable=TT002
#SBATCH --gres=gpu:8
set -e
# preflight: disable=TT001
torchrun --nproc_per_node=8 \\
   -m scripts.base_train
torchrun again
torchrun trailing  # preflight: disable=flags-torchrun
"""


def _findings_with_lines(tmp_path, script_text, select):
    result = _run(tmp_path, script_text, select=select)
    return result


def test_next_command_and_trailing_suppression(tmp_path):
    script = tmp_path / "job.sbatch"
    script.write_text(SCRIPT)

    @check("TT010", "torchrun-lines", severity="error")
    def flagged(test_script_lines, ctx):
        for i, line in enumerate(test_script_lines, 1):
            if line.startswith("torchrun") or line.startswith("   -m"):
                yield Finding("torchrun", path=str(ctx.inputs.script), line=i, fix="f")

    reg = _registry()
    reg.add(flagged.__preflight_check__)
    ctx = Context(load_config({}, environ={}, search=False), inputs=RunInputs(script=script), environ={})
    result = run_checks(reg, ctx, "pre", selection=Selection(["TT010", "TT002", "SB900"], []))
    res = _by_code(result)
    # line 6-7 (continued command) suppressed by the comment on line 5 (TT001 is not TT010: not suppressed)
    assert sorted(f.line for f in res["TT010"].findings) == [6, 7, 8, 9]
    # file-wide suppression before the first command silences TT002 everywhere
    assert res["TT002"].findings == []
    unused = res["SB900"].findings
    assert any("TT001" in f.message for f in unused) is False  # TT001 did not run: not reported as unused
    assert res["SB900"].status is Status.PASS


def test_unused_and_unknown_suppressions_are_reported(tmp_path):
    text = "#!/bin/bash\n# preflight: disable=TT006,QQ123\necho hi\n# preflight: disable=TT001\necho no torchrun here\n"
    result = _run(tmp_path, text, select=["TT001", "TT006", "SB900"])
    res = _by_code(result)
    messages = [f.message for f in res["SB900"].findings]
    assert any("unknown check 'QQ123'" in m for m in messages)
    assert any("TT001" in m and "unused" in m for m in messages)
    assert res["TT006"].findings == []  # file-wide: silences the code for the whole run
    assert {f.line for f in res["SB900"].findings} == {2, 4}


STARTED: list[str] = []


@check("TT007", "cheap-stat", requires=())
def cheap_stat():
    STARTED.append("TT007")
    return []


@check("TT008", "loads-a-file", cost="load", requires=())
def loads_a_file():
    STARTED.append("TT008")
    return []


def test_costliest_checks_start_first(tmp_path):
    """A tool call or file load starts before the cheap checks, so its wait overlaps their work."""
    reg = Registry()
    for func in (cheap_stat, loads_a_file):
        reg.add(func.__preflight_check__)
    cfg = load_config({}, environ={}, search=False)
    STARTED.clear()
    run_checks(reg, Context(cfg, inputs=RunInputs(), environ={}), "pre", selection=Selection(["TT"], []), jobs=1)
    assert STARTED == ["TT008", "TT007"]
