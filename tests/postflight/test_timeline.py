"""Postflight reads the job as a timeline: echo headers place processes in their phase, the stderr
beside a .out is read (or named when it is missing), one finding per crashed process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from preflight.logindex import index_log
from tests.postflight import logshapes as L

ROOT = Path(__file__).resolve().parents[2]


def verify(cwd: Path, *args: str) -> tuple[dict, str, int]:
    """`postflight verify ... --format json` as a user runs it; (report, stderr, exit code)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    env.pop("NANOCHAT_BASE_DIR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "preflight.postflight_entry", "verify", *args, "--format", "json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout), proc.stderr, proc.returncode


def text_report(cwd: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "400"}
    env.pop("NANOCHAT_BASE_DIR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "preflight.postflight_entry", "verify", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def phases(report: dict) -> dict[str, dict]:
    return {p["name"]: p for p in report["phases"]}


def findings(report: dict, code: str) -> list[dict]:
    return [f for c in report["checks"] for f in c.get("findings", []) if f["code"] == code]


def test_seed_out_alone_mid_and_sft_died_during_setup(tmp_path):
    (tmp_path / "76324.out").write_text(L.SEED_OUT)
    report, _, code = verify(tmp_path, "--log", "76324.out")
    ph = phases(report)
    for name in ("mid", "sft"):
        assert ph[name]["status"] == "failed", ph[name]
        assert "died during setup" in ph[name]["cause"]
        assert "76324.err" in ph[name]["cause"]  # where the traceback would be
    assert code == 1
    dummy = findings(report, "LOG001")
    assert sorted(f["data"]["phase"] for f in dummy) == ["mid", "sft"]
    lines = L.SEED_OUT.splitlines()
    assert all(lines[f["location"]["line"] - 1] == "Overriding: run = dummy" for f in dummy)
    assert all("NOT the cause" in f["message"] for f in dummy)


def test_an_earlier_runs_checkpoint_does_not_make_a_crashed_phase_done(tmp_path):
    """Same base dir, second job: mid of this job died during setup, but a complete mid checkpoint of an
    earlier run is on disk. The phase is this job's: failed, and the old checkpoint named as such."""
    from tests import factories as F

    base = tmp_path / "base"
    cfg = F.model_config(depth=2)
    F.write_checkpoint(base, "mid", 10, cfg, optim=False)
    (tmp_path / "76324.out").write_text(L.SEED_OUT)
    report, _, code = verify(tmp_path, "--log", "76324.out", "--base-dir", str(base), "--no-smoke")
    mid = phases(report)["mid"]
    assert mid["status"] == "failed" and "died during setup" in mid["cause"], mid
    assert "step-10 checkpoint" in mid["cause"] and "an earlier run's" in mid["cause"], mid
    assert code == 1


def test_seed_out_and_err_name_the_datasets(tmp_path):
    (tmp_path / "76324.out").write_text(L.SEED_OUT)
    (tmp_path / "76324.err").write_text(L.seed_err())
    report, _, _ = verify(tmp_path, "--log", "76324.out")
    ph = phases(report)
    assert ph["mid"]["status"] == "failed" and "HuggingFaceTB/smol-smoltalk" in ph["mid"]["cause"]
    assert ph["sft"]["status"] == "failed" and "allenai/ai2_arc" in ph["sft"]["cause"]
    assert "ARC-Easy" in ph["sft"]["cause"] and "died during setup" in ph["sft"]["cause"]
    crashed = findings(report, "LOG002")
    assert sorted(f["data"]["phase"] for f in crashed) == ["mid", "sft"]  # one per crashed process
    for f in crashed:
        assert f["data"]["ranks"] == list(range(8)) and f["data"]["exitcode"] == 1
        assert f["data"]["class"] == "offline dataset"
        assert "ranks 0-7" in f["message"]
    sft = next(f for f in crashed if f["data"]["phase"] == "sft")
    assert "load_dataset('allenai/ai2_arc', 'ARC-Easy')" in sft["fix"] and "HF_DATASETS_OFFLINE=1" in sft["fix"]
    cascades = findings(report, "LOG004")
    assert {f["data"]["root_phase"] for f in cascades} == {"mid", "sft"}
    dummy = findings(report, "LOG001")
    assert all(
        "NOT the cause" in f["message"] and "smol-smoltalk" in f["message"]
        for f in dummy
        if f["data"]["phase"] == "mid"
    )
    text = text_report(tmp_path, "--log", "76324.out")
    assert "also read" in text and "76324.err" in text


def test_chained_tok_eval_traceback_is_one_crash(tmp_path):
    (tmp_path / "tok.out").write_text(L.tok_eval_offline())
    report, _, _ = verify(tmp_path, "--log", "tok.out")
    crashed = findings(report, "LOG002")
    assert len(crashed) == 1, [f["message"] for f in crashed]
    f = crashed[0]
    assert f["data"]["phase"] == "tokenizer" and f["data"]["class"] == "offline download"
    assert f["data"]["root"]["type"] == "socket.gaierror"
    assert f["data"]["type"] == "requests.exceptions.ConnectionError"


def test_index_folds_ranks_and_chains(tmp_path):
    p = tmp_path / "x.err"
    p.write_text(L.seed_err())
    ix = index_log(p)
    tbs = [t for t in ix.tracebacks if not t.wrapper]
    assert [(t.script, t.ranks) for t in tbs] == [
        (s, list(range(8))) for s in ("mid_train", "chat_eval", "chat_sft", "chat_eval")
    ]
    assert tbs[0].chain and tbs[0].chain[0][0] == "huggingface_hub.errors.LocalEntryNotFoundError"
    failed = [s.failed_marker.data for s in ix.segments if s.failed_marker]
    assert [d["script"] for d in failed] == ["mid_train", "chat_eval", "chat_sft", "chat_eval"]
    assert all(d["exitcode"] == 1 for d in failed)


@pytest.mark.parametrize(
    "header,phase",
    [
        ("[3/5] Midtraining (teaching conversation format)...", "mid"),
        ("=== SFT ===", "sft"),
        ("## Stage 2: base model pretraining", "base"),
        ("[1/7] Training tokenizer...", "tokenizer"),
        ("===== chat_rl =====", "rl"),
    ],
)
def test_echo_headers_open_their_phase(tmp_path, header, phase):
    p = tmp_path / "h.out"
    p.write_text(f"{header}\nAutodetected device type: cuda\n")
    ix = index_log(p)
    assert [s.phase for s in ix.segments] == [phase]


def test_validation_lines_are_not_headers(tmp_path):
    p = tmp_path / "v.out"
    p.write_text("Step 00250 | Validation bpb: 1.2345\n" + "=" * 80 + "\nModel: base_model (step 21400)\n")
    ix = index_log(p)
    assert all(s.header is None for s in ix.segments)


def test_hostile_stderr_paths_are_not_read(tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    (job / "7.out").write_text(L.SEED_OUT)
    os.mkfifo(job / "7.err")  # a FIFO would block a reader forever
    report, _, _ = verify(job, "--log", "7.out")
    assert phases(report)["mid"]["status"] == "failed"
    (job / "7.err").unlink()
    outside = tmp_path / "secret.err"
    outside.write_text(L.seed_err())
    script = job / "job.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --output=%j.out\n#SBATCH --error=../secret.err\n"
        "torchrun --standalone --nproc_per_node=8 -m scripts.mid_train -- --run=dummy\n"
    )
    report, _, _ = verify(job, "--log", "7.out", "--script", "job.sbatch")
    assert "smol-smoltalk" not in phases(report)["mid"]["cause"]
    streams = report["timeline"]["streams"]
    assert streams["refused"] and "outside" in streams["refused"][0]["why"]


def test_many_identical_tracebacks_fold(tmp_path):
    one = "\n".join(L.missing_ckpt("chat_eval", "chatsft_checkpoints")[0])
    p = tmp_path / "many.err"
    p.write_text((one + "\n") * 10_000 + 'Traceback (most recent call last):\n  File "/x/scripts/chat_sft.py"')
    ix = index_log(p)
    assert len(ix.tracebacks) == 2 and ix.tracebacks[0].copies == 10_000


SEED_SCRIPT = """#!/bin/bash
#SBATCH --job-name=nanochat
#SBATCH --output=logs/%j.out
#SBATCH --error=logs/%j.err
export HF_HOME=/scratch/u/hf
echo "[3/5] Midtraining (teaching conversation format)..."
torchrun --standalone --nproc_per_node=8 -m scripts.mid_train -- --run=$WANDB_RUN
torchrun --standalone --nproc_per_node=8 -m scripts.chat_eval -- -i mid
echo "[4/5] Supervised finetuning..."
torchrun --standalone --nproc_per_node=8 -m scripts.chat_sft -- --run=$WANDB_RUN
torchrun --standalone --nproc_per_node=8 -m scripts.chat_eval -- -i sft
python -m nanochat.report generate
"""


def test_script_gives_steps_stderr_path_and_resume_in_its_own_spelling(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "76324.out").write_text(L.SEED_OUT)
    (tmp_path / "logs" / "76324.err").write_text(L.seed_err())
    (tmp_path / "job.sbatch").write_text(SEED_SCRIPT)
    report, _, _ = verify(tmp_path, "--log", "logs/76324.out", "--script", "job.sbatch")
    tl = report["timeline"]
    assert tl["script_source"] == "--script"
    assert [s["phase"] for s in tl["steps"]] == ["mid", "mid", "sft", "sft", "report"]
    assert tl["streams"]["also_read"][0]["path"].endswith("logs/76324.err")
    assert "--error" in tl["streams"]["also_read"][0]["why"]
    resume = report["resume"]
    assert resume["phase"] == "mid" and resume["source"] == "script"
    assert resume["commands"][0] == "torchrun --standalone --nproc_per_node=8 -m scripts.mid_train -- --run=$WANDB_RUN"
    fix = next(f for f in resume["fixes"] if "load_dataset" in f)
    assert "HF_HOME=/scratch/u/hf" in fix
    assert "load_dataset('HuggingFaceTB/smol-smoltalk')" in fix and "load_dataset('allenai/ai2_arc', 'ARC-Easy')" in fix
    mid = next(p for p in tl["phases"] if p["name"] == "mid")
    assert mid["start"].endswith("76324.out:1") and mid["status"] == "failed"


def test_script_names_stderr_pattern_when_the_err_is_missing(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "76324.out").write_text(L.SEED_OUT)
    (tmp_path / "job.sbatch").write_text(SEED_SCRIPT)
    report, _, _ = verify(tmp_path, "--log", "logs/76324.out", "--script", "job.sbatch")
    assert "logs/76324.err" in phases(report)["mid"]["cause"]


def test_truncated_and_interleaved_tracebacks_give_a_verdict(tmp_path):
    err = L.TORCHRUN_START + L.ranked(L.hf_offline_chain("mid_train", "HuggingFaceTB/smol-smoltalk"), ranks=4)
    cut = err[: len(err) - 7]  # the job was killed while ranks were still printing: no exception line for some
    (tmp_path / "9.out").write_text(L.SEED_OUT)
    (tmp_path / "9.err").write_text("\n".join(cut))  # no final newline either
    report, _, _ = verify(tmp_path, "--log", "9.out")
    assert phases(report)["mid"]["status"] == "failed"
    crashed = findings(report, "LOG002")
    assert len(crashed) <= 2 and all(f["data"]["phase"] == "mid" for f in crashed)


def test_processes_without_headers_take_their_phase_from_the_script_order(tmp_path):
    (tmp_path / "logs").mkdir()
    bare = "\n".join(x for x in L.SEED_OUT.splitlines() if not x.startswith("[")) + "\n"
    (tmp_path / "logs" / "76324.out").write_text(bare)  # nothing but start lines: which phase is which?
    script = SEED_SCRIPT.replace("echo", "# echo")
    (tmp_path / "job.sbatch").write_text(script)
    report, _, _ = verify(tmp_path, "--log", "logs/76324.out")
    assert phases(report)["mid"]["status"] == "not-run"  # no script: nothing says which phase started
    report, _, _ = verify(tmp_path, "--log", "logs/76324.out", "--script", "job.sbatch")
    ph = phases(report)
    assert ph["mid"]["status"] == "failed" and ph["sft"]["status"] == "failed"
    assert "logs/76324.err" in ph["mid"]["cause"]
    placed = [p["placed_by"] for p in report["timeline"]["processes"]]
    assert placed == ["step order", "step order"]


def test_the_offline_fix_fills_the_cache_dir_the_job_reads(tmp_path):
    """The job reads its datasets from HF_DATASETS_CACHE through a mirror: a prefetch into HF_HOME alone
    would leave the rerun as offline as before."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "76324.out").write_text(L.SEED_OUT)
    (tmp_path / "logs" / "76324.err").write_text(L.seed_err())
    script = SEED_SCRIPT.replace(
        "export HF_HOME=/scratch/u/hf\n",
        "export HF_HOME=/scratch/u/hf\nexport HF_DATASETS_CACHE=/scratch/u/hfd\nexport HF_ENDPOINT=https://hf-mirror.com\n",
    )
    (tmp_path / "job.sbatch").write_text(script)
    report, _, _ = verify(tmp_path, "--log", "logs/76324.out", "--script", "job.sbatch")
    fix = next(f for f in report["resume"]["fixes"] if "load_dataset" in f)
    assert "HF_HOME=/scratch/u/hf HF_DATASETS_CACHE=/scratch/u/hfd HF_ENDPOINT=https://hf-mirror.com python -c" in fix
    assert "export HF_HOME=/scratch/u/hf HF_DATASETS_CACHE=/scratch/u/hfd HF_DATASETS_OFFLINE=1" in fix
