"""Current-era runs (no report.md, no Overriding lines, banner + Model config) read with --log and
--base-dir only: the era comes from the evidence, every phase's status and cause is right, and
nothing is said about phases the era does not have."""

from __future__ import annotations

from tests import factories as F
from tests.postflight import logshapes as L
from tests.postflight.test_timeline import findings, phases, verify

BASE = "/scratch/u/nanochat"


def _base_dir(tmp_path, phases_done=("base", "sft")):
    base = tmp_path / "base"
    (base / "base_data_climbmix").mkdir(parents=True)
    F.write_run(base, era="current", phases=phases_done, report=False, steps={"sft": 9})
    return base


def _no_mid_or_report_findings(report):
    for c in report["checks"]:
        for f in c.get("findings", []):
            assert "mid_checkpoints" not in f["message"] and "report.md" not in f["message"], f


def test_good_current_run(tmp_path):
    base = _base_dir(tmp_path)
    (tmp_path / "run.out").write_text("\n".join(L.current_base(str(base), 20) + L.current_sft(str(base), 9)) + "\n")
    report, _, code = verify(tmp_path, "--log", "run.out", "--base-dir", "base")
    assert report["profile"]["name"] == "current", report["profile"]
    assert "base_data_climbmix" in report["profile"]["reason"]
    ph = phases(report)
    assert ph["base"]["status"] == "done" and ph["sft"]["status"] == "done"
    assert not ph["mid"]["expected"] and not ph["report"]["expected"]
    _no_mid_or_report_findings(report)
    assert not findings(report, "LOG002") and not findings(report, "LOG003")
    sft = next(p for p in report["timeline"]["phases"] if p["name"] == "sft")
    assert sft["steps_logged"] == 9 and sft["last_step"] == 8


def test_current_sft_dies_offline_and_later_steps_cascade(tmp_path):
    base = _base_dir(tmp_path, ("base",))
    (tmp_path / "run.out").write_text("\n".join(L.current_base(str(base), 20) + L.current_start()) + "\n")
    err = L.TORCHRUN_START + L.ranked(L.current_sft_offline()) + L.child_failed("scripts.chat_sft")
    err += (
        L.TORCHRUN_START
        + L.ranked(L.missing_ckpt("chat_eval", "chatsft_checkpoints"))
        + L.child_failed("scripts.chat_eval")
    )
    (tmp_path / "run.err").write_text("\n".join(err) + "\n")
    report, _, code = verify(tmp_path, "--log", "run.out", "--base-dir", "base")
    assert report["profile"]["name"] == "current"
    ph = phases(report)
    assert ph["base"]["status"] == "done"
    assert ph["sft"]["status"] == "failed" and "HuggingFaceTB/smol-smoltalk" in ph["sft"]["cause"]
    assert "died during setup" in ph["sft"]["cause"]
    crashed = findings(report, "LOG002")
    assert (
        len(crashed) == 1 and crashed[0]["data"]["phase"] == "sft" and crashed[0]["data"]["class"] == "offline dataset"
    )
    assert "task_data" in crashed[0]["fix"]
    assert [f["data"]["root_phase"] for f in findings(report, "LOG004")] == ["sft"]
    assert report["resume"]["phase"] == "sft"
    _no_mid_or_report_findings(report)
    assert code == 1


def test_current_base_killed_at_time_limit(tmp_path):
    base = tmp_path / "base"
    (base / "base_data_climbmix").mkdir(parents=True)
    F.write_tokenizer(base)
    lines = L.current_base(str(base), 400, steps=137)
    lines.append(
        "slurmstepd: error: *** JOB 4242 ON gpu-node-01 CANCELLED AT 2026-07-03T12:00:00 DUE TO TIME LIMIT ***"
    )
    (tmp_path / "run.out").write_text("\n".join(lines) + "\n")
    report, _, _ = verify(tmp_path, "--log", "run.out", "--base-dir", "base")
    assert report["profile"]["name"] == "current"
    ph = phases(report)
    assert ph["base"]["status"] == "partial" and "time limit" in ph["base"]["cause"]
    assert "after step 136 of 400" in ph["base"]["cause"]
    assert ph["sft"]["status"] == "not-run"
    assert findings(report, "LOG006")
    _no_mid_or_report_findings(report)


def test_current_sft_under_torchrun_on_cpu(tmp_path):
    base = _base_dir(tmp_path, ("base",))
    out = L.current_base(str(base), 20) + L.current_start(world=1, device="cpu")
    out += L.ranked(L.no_process_group(), ranks=2) + L.child_failed("scripts.chat_sft")
    (tmp_path / "run.out").write_text("\n".join(out) + "\n")
    report, _, _ = verify(tmp_path, "--log", "run.out", "--base-dir", "base")
    ph = phases(report)
    assert ph["sft"]["status"] == "failed" and "no process group" in ph["sft"]["cause"]
    crashed = findings(report, "LOG002")
    assert len(crashed) == 1 and crashed[0]["data"]["ranks"] == [0, 1]
    _no_mid_or_report_findings(report)
