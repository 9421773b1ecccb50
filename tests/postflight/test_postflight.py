"""Postflight: log index, checkpoint inspection, verdict/resume, hostile inputs (findings, never tracebacks)."""

from __future__ import annotations

import os

import pytest

from preflight.ckpt import inspect_torch_file
from preflight.logindex import index_log
from preflight.model import Status
from preflight.testing import Scenario, run_scenario
from tests import factories as F

OFFLINE = ("requests.exceptions.ConnectionError", "Max retries exceeded (NameResolutionError)")
CASCADE = ("FileNotFoundError", "[Errno 2] No such file or directory: '/base/mid_checkpoints'")


def _post(tmp_path, **kw):
    return Scenario(stage="post", env={}, **kw)


@pytest.mark.parametrize("era", ["classic", "argparse", "current"])
def test_index_finds_phases_steps_saves(tmp_path, era):
    phases = ("base", "sft") if era == "current" else ("base", "mid", "sft")
    log = F.write_log(tmp_path / "run.out", F.run_log(phases=phases, era=era))
    ix = index_log(log, "sft" if era == "current" else "mid")
    by = {s.phase: s for s in ix.segments}
    assert set(phases) <= set(by)
    assert by["base"].last_step.step == 19 and by["base"].planned_steps == 20
    assert by["base"].saved_steps("model") == [20]
    assert "peak_memory" in by["base"].end_markers
    text = log.read_text().splitlines()
    assert text[by["base"].last_step.line - 1].startswith("step 00019/00020")


def test_traceback_attributed_and_line_exact(tmp_path):
    text = F.run_log(
        per_phase={"mid": {"crash": OFFLINE, "crash_at": "setup"}, "sft": {"crash": CASCADE, "crash_at": "setup"}}
    )
    log = F.write_log(tmp_path / "run.out", text)
    tbs = index_log(log).tracebacks
    assert [(t.script, t.exc_type) for t in tbs] == [("mid_train", OFFLINE[0]), ("chat_sft", "FileNotFoundError")]
    assert text.splitlines()[tbs[0].line - 1].startswith("Traceback")


def test_rank_prefixed_tracebacks_deduplicated(tmp_path):
    lines = F.phase_log("base", steps=3, save=False)
    for r in range(4):
        lines += F.traceback_lines("base_train", "torch.OutOfMemoryError", "CUDA out of memory.", prefix=f"[rank{r}]: ")
    ix = index_log(F.write_log(tmp_path / "x.err", "\n".join(lines) + "\n"))
    assert len(ix.tracebacks) == 1 and ix.tracebacks[0].exc_type == "torch.OutOfMemoryError"


def test_ansi_crlf_and_invalid_utf8(tmp_path):
    raw = (
        "Overriding: run = dummy\r\n"
        + F.logger_line("nanochat.common", "Distributed world size: \x1b[1m8\x1b[0m")
        + "\r\n"
    ).encode()
    raw += b"\xff\xfe garbage \xc3\x28\n" + F.step_line("base", 0, 10).encode() + b"\r\n"
    ix = index_log(F.write_log(tmp_path / "x.log", raw))
    seg = ix.segments[0]
    assert seg.world_size == 8 and seg.overrides["run"] == "dummy" and seg.last_step.step == 0


def test_random_bytes_and_empty_log(tmp_path):
    ix = index_log(F.write_log(tmp_path / "r.log", os.urandom(3 << 20)))
    assert ix.error is None and ix.size == 3 << 20
    assert index_log(F.write_log(tmp_path / "e.log", b"")).segments == []


def test_50mb_single_line_memory_flat(tmp_path):
    path = tmp_path / "long.log"
    with open(path, "wb") as f:
        f.write(b"Overriding: run = dummy\n")
        f.write(b"x" * (50 << 20))
        f.write(
            b"\nstep 00001/00010 (10.00%) | loss: 3.0 | lrm: 1.00 | dt: 1.00ms | tok/sec: 1 | mfu: 1.00 | total time: 0.01m\n"
        )
    ix = index_log(path)
    assert ix.long_lines == 1 and ix.lines == 3
    assert ix.segments[0].last_step.step == 1 and ix.segments[0].last_step.line == 3


def test_missing_named_log_is_a_finding(tmp_path):
    r = run_scenario(_post(tmp_path, logs=["nope.out"]), tmp_path, select=["phase-crashed"])
    assert r.checks[0].status is Status.FAIL and "does not exist" in r.checks[0].findings[0].message


def test_malicious_pickle_never_executed(tmp_path):
    marker = tmp_path / "PWNED"
    F.write_run(tmp_path / "base")
    for p in [
        tmp_path / "base/chatsft_checkpoints/d2/model_000009.pt",
        tmp_path / "base/mid_checkpoints/d2/model_000012.pt",
    ]:
        p.unlink()
    F.malicious_torch_zip(tmp_path / "base/chatsft_checkpoints/d2/model_000009.pt", marker)
    (tmp_path / "base/mid_checkpoints/d2/model_000012.pt").write_bytes(F.malicious_pickle(marker))
    r = run_scenario(
        _post(tmp_path, base_dir="base", config={"deep": True, "smoke": True}), tmp_path, select=["CK", "CHAT"]
    )
    unsafe = next(c for c in r.checks if c.name == "checkpoint-unsafe")
    assert len(unsafe.findings) == 2
    assert not marker.exists()
    assert not [c for c in r.checks if c.status is Status.ERROR]


@pytest.mark.parametrize("damage", ["truncate", "zero", "garbage"])
def test_damaged_checkpoints_are_findings(tmp_path, damage):
    F.write_run(tmp_path / "base")
    p = tmp_path / "base/base_checkpoints/d2/model_000020.pt"
    if damage == "truncate":
        F.truncate(p, 0.3)
    elif damage == "zero":
        p.write_bytes(b"")
    else:
        p.write_bytes(os.urandom(5000))
    assert inspect_torch_file(p).error
    r = run_scenario(_post(tmp_path, base_dir="base"), tmp_path, select=["CK"])
    assert [c.name for c in r.checks if c.findings] == ["checkpoint-unloadable"]
    assert not [c for c in r.checks if c.status is Status.ERROR]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_unreadable_base_dir_is_a_finding(tmp_path):
    F.write_run(tmp_path / "base")
    os.chmod(tmp_path / "base", 0)
    try:
        r = run_scenario(_post(tmp_path, base_dir="base"), tmp_path, select=["CK", "RPT", "CHAT"])
    finally:
        os.chmod(tmp_path / "base", 0o755)
    assert not [c for c in r.checks if c.status is Status.ERROR]
    assert any("permission denied" in f.message for f in r.findings)


def test_verdict_and_resume_after_offline_mid_cascade(tmp_path):
    F.write_run(tmp_path / "base", phases=("base",), report=False)
    text = F.run_log(
        per_phase={"mid": {"crash": OFFLINE, "crash_at": "setup"}, "sft": {"crash": CASCADE, "crash_at": "setup"}}
    )
    F.write_log(tmp_path / "run.out", text)
    ctx = _post(tmp_path, base_dir="base", logs=["run.out"]).context(tmp_path)
    phases = ctx.get("phases")
    status = {v.name: v.status for v in phases.verdicts}
    assert status["tokenizer"] == "done" and status["base"] == "done"
    assert status["mid"] == "failed" and "offline download" in phases.get("mid").cause
    assert status["sft"] == "failed" and "cascade" in phases.get("sft").cause
    plan = ctx.get("resume")
    assert plan.phase == "mid"
    # base saved d2: the later phases load it by its tag, not whatever dN is largest there
    assert (
        plan.commands[0]
        == "torchrun --standalone --nproc_per_node=2 -m scripts.mid_train -- --run=dummy --model_tag=d2"
    )
    assert plan.commands[-1] == "python -m nanochat.report generate"


def test_resume_from_partial_base(tmp_path):
    F.write_run(tmp_path / "base", phases=("base",), report=False)
    F.write_log(
        tmp_path / "run.out", F.run_log(phases=("base",), per_phase={"base": {"planned": 40}}, cancel_after="base")
    )
    ctx = _post(tmp_path, base_dir="base", logs=["run.out"]).context(tmp_path)
    assert ctx.get("phases").get("base").status == "partial"
    cmd = ctx.get("resume").commands[0]
    assert (
        cmd
        == "torchrun --standalone --nproc_per_node=2 -m scripts.base_train -- --run=dummy --depth=2 --resume_from_step=20"
    )
