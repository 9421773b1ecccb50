"""A process that loaded a phase's checkpoint and set up a trainer, then hung or died before its first step.

The shape is karpathy/nanochat issue 92, in our own words: the log of a midtraining run that printed only
its setup (no echo header, no step line) and then nothing for 12 hours. Its one line of phase evidence is
nanochat's own "Loading model from .../base_checkpoints/d20 with step 21400", followed by lines only a
trainer prints: so it is midtraining (the phase the era trains on base's checkpoint), base and the tokenizer
were done before this log, and the run resumes at mid, not at the tokenizer."""

from __future__ import annotations

import json
import os
from datetime import datetime

LOAD = (
    "{t} - nanochat.checkpoint_manager - INFO - No model tag provided, guessing model tag: d20\n"
    "{t} - nanochat.checkpoint_manager - INFO - Loading model from {base}/{src}_checkpoints/d20 with step 21400\n"
    "{t} - nanochat.checkpoint_manager - INFO - Building model with config: {{'n_layer': 20, 'n_embd': 1280}}\n"
)
TRAINER_SETUP = (
    "Tokens / micro-batch / rank: 32 x 2048 = 65,536\n"
    "Total batch size 524,288 => gradient accumulation steps: 1\n"
    "Muon: Grouping 20 params of shape torch.Size([5120, 1280]), device cuda:0, dtype torch.float32\n"
)
CANCEL = "slurmstepd: error: *** JOB 4242 ON gpu01 CANCELLED AT {at} DUE TO TIME LIMIT ***\n"


def _verify(cli, log):
    proc = cli("postflight", "verify", "--log", str(log), "--format", "json", cwd=log.parent)  # no checkout here
    report = json.loads(proc.stdout)
    return report, {c["code"]: c for c in report["checks"]}, {p["name"]: p for p in report["phases"]}


def test_issue_92s_log_is_midtraining_that_hung_after_base_was_done(tmp_path, cli):
    log = tmp_path / "slurm-4242.out"
    load = LOAD.format(t="2025-10-16 19:59:50,381", base="/root/.cache/nanochat", src="base")
    log.write_text("Overriding: run = d20-mid\n" + load + TRAINER_SETUP + CANCEL.format(at="2025-10-17T08:00:02"))
    report, checks, phases = _verify(cli, log)
    (hung,) = [f["message"] for f in checks["LOG010"]["findings"]]
    assert hung.startswith("mid wrote nothing for the last 12h00m before the time limit before its first step"), hung
    assert phases["mid"]["status"] == "failed" and phases["mid"]["cause"].endswith("hung")
    # not "died during setup; the traceback is in the .err": it hung, and LOG010 says so
    assert not checks["LOG003"]["findings"]
    base = phases["base"]
    assert base["status"] == "done" and base["evidence"] == [f"{log}:3"]
    assert base["cause"] == (
        "done before these logs: its step-21400 checkpoint was loaded (/root/.cache/nanochat/base_checkpoints/d20)"
    )
    assert phases["tokenizer"]["status"] == "done"
    (process,) = report["timeline"]["processes"]
    assert (process["phase"], process["placed_by"]) == ("mid", "checkpoint load")
    # python logging's lines (they go to stderr) are in the .out: SLURM's default merged both, no .err to look for
    streams = report["timeline"]["streams"]
    assert streams["merged"] is True and streams["stderr_hint"] is None, streams
    assert report["resume"]["phase"] == "mid"
    # the HTML page draws mid (it stopped before its first step), not the phases done before this log
    page = tmp_path / "report.html"
    cli("postflight", "verify", "--log", str(log), "--format", "html", "-o", str(page), cwd=tmp_path)
    curves = page.read_text().split("Training curves", 1)[1]
    assert "mid" in curves and "step-21400 checkpoint was loaded" not in curves
    assert (
        report["resume"]["commands"][0]
        == "torchrun --standalone --nproc_per_node=8 -m scripts.mid_train -- --run=d20-mid --model_tag=d20"
    )


def test_in_an_era_without_midtraining_the_same_shape_is_sft(tmp_path, cli):
    # chat_sft of 2026 (no midtraining) loads base's checkpoint; its own lines name the era
    log = tmp_path / "sft.out"
    era = "COMPUTE_DTYPE: torch.bfloat16 (auto-detected)\nInherited max_seq_len=2048 from pretrained checkpoint\n"
    load = LOAD.format(t="2026-07-05 10:00:01,200", base="/scratch/nc", src="base")
    log.write_text(era + load + TRAINER_SETUP + CANCEL.format(at="2026-07-05T14:00:02"))
    report, checks, phases = _verify(cli, log)
    assert report["profile"]["name"] == "current", report["profile"]
    assert phases["sft"]["status"] == "failed" and phases["mid"]["status"] == "not-run"
    assert [f["message"][:4] for f in checks["LOG010"]["findings"]] == ["sft "]
    assert report["resume"]["phase"] == "sft"


def test_an_evaluation_that_loads_a_checkpoint_is_not_a_trainer(tmp_path, cli):
    # chat_eval -i mid loads mid's checkpoint but sets up no trainer: it is not SFT, and mid was done before
    log = tmp_path / "eval.out"
    load = LOAD.format(t="2025-10-16 19:59:50,381", base="/scratch/nc", src="mid")
    log.write_text(load + CANCEL.format(at="2025-10-17T08:00:02"))
    report, _checks, phases = _verify(cli, log)
    assert phases["sft"]["status"] == "not-run"
    assert phases["mid"]["status"] == "done" and phases["base"]["status"] == "done"
    assert not any(p["phase"] == "sft" for p in report["timeline"]["processes"])


def test_with_separate_streams_the_setup_and_the_load_are_paired(tmp_path, cli):
    # the same job with #SBATCH --error: python logging (the load line) went to the .err, the trainer's
    # prints to the .out; SLURM's cancel line to the .err
    out, err = tmp_path / "mid-4242.out", tmp_path / "mid-4242.err"
    out.write_text("Overriding: run = d20-mid\nAutodetected device type: cuda\n" + TRAINER_SETUP)
    load = LOAD.format(t="2025-10-16 19:59:50,381", base="/root/.cache/nanochat", src="base")
    err.write_text(load + CANCEL.format(at="2025-10-17T08:00:02"))
    at = datetime.fromisoformat("2025-10-16T19:59:52").timestamp()
    os.utime(out, (at, at))
    report, checks, phases = _verify(cli, out)
    assert phases["mid"]["status"] == "failed" and phases["base"]["status"] == "done"
    (hung,) = [f["message"] for f in checks["LOG010"]["findings"]]
    assert hung.startswith("mid wrote nothing for the last 12h00m before the time limit"), hung
    (cancel,) = checks["LOG006"]["findings"]
    assert cancel["message"].startswith("job cancelled at the time limit during mid;"), cancel["message"]
    assert report["resume"]["phase"] == "mid"
    placed = {(p["log"].rsplit(".", 1)[-1], p["phase"], p["placed_by"]) for p in report["timeline"]["processes"]}
    assert ("out", "mid", "stream pair") in placed, placed
    # an .err whose loads name two phases (a speedrun's evaluations and trainers) pairs nothing
    err.write_text(load + load.replace("base_checkpoints", "mid_checkpoints") + CANCEL.format(at="2025-10-17T08:00:02"))
    _report, checks, phases = _verify(cli, out)
    assert phases["mid"]["status"] != "failed"
    assert [f["message"][:9] for f in checks["LOG010"]["findings"]] == ["the job w"]


def test_a_trainer_that_loads_a_checkpoint_and_then_logs_its_steps_is_named_by_them(tmp_path, cli):
    # a fork's base_train that warm-starts from a base checkpoint: its own step lines say base, not mid
    log = tmp_path / "warm.out"
    load = LOAD.format(t="2025-10-16 19:59:50,381", base="/scratch/nc", src="base")
    steps = "".join(f"step {i:05d}/00003 ({i * 33.3:.2f}%) | loss: 3.0 | lrm: 1.00 | dt: 500.00ms\n" for i in range(3))
    log.write_text(load + TRAINER_SETUP + steps)
    report, checks, phases = _verify(cli, log)
    assert [p["phase"] for p in report["timeline"]["processes"]] == ["base"]
    assert phases["mid"]["status"] == "not-run" and not checks["LOG003"]["findings"]
