"""
The whole tiny pipeline end to end, as a user runs it: `bash scripts/speedrun.sh --tiny` with its own
NANOCHAT_BASE_DIR, then `python -m nanochat.chat_cli -p hi`. Its speed is a bench row (python -m bench
--only trainer_cpu), not an assertion: a loaded machine must not fail it.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nc_helpers import REPO, nc_env


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("speedrun_base")
    cwd = tmp_path_factory.mktemp("speedrun_cwd")
    env = nc_env(base)
    env.pop("WANDB_RUN", None)
    t0 = time.time()
    p = subprocess.run(
        ["bash", str(REPO / "scripts" / "speedrun.sh"), "--tiny"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed = time.time() - t0
    (cwd / "speedrun.log").write_text(p.stdout + p.stderr)
    assert p.returncode == 0, (p.stdout + p.stderr)[-5000:]
    return base, cwd, p.stdout + p.stderr, elapsed


def test_speedrun_tiny_produces_the_classic_layout(tiny_run):
    base, cwd, log, elapsed = tiny_run
    assert (base / "tokenizer" / "tokenizer.pkl").exists() and (base / "tokenizer" / "token_bytes.pt").exists()
    shards = sorted(os.listdir(base / "base_data"))
    assert shards == ["shard_00000.parquet", "shard_00001.parquet", "shard_00002.parquet"]
    for phase in ("base_checkpoints", "mid_checkpoints", "chatsft_checkpoints"):
        files = os.listdir(base / phase / "d2")
        assert any(re.fullmatch(r"model_\d{6}\.pt", f) for f in files), (phase, files)
        assert any(re.fullmatch(r"meta_\d{6}\.json", f) for f in files), (phase, files)
    base_meta = json.load(open(base / "base_checkpoints" / "d2" / "meta_000040.json"))
    assert (
        base_meta["step"] == 40
        and base_meta["model_config"]["n_layer"] == 2
        and base_meta["user_config"]["run"] == "dummy"
    )
    assert (base / "base_checkpoints" / "d2" / "optim_000040_rank0.pt").exists()
    sft_meta_files = [f for f in os.listdir(base / "chatsft_checkpoints" / "d2") if f.startswith("meta_")]
    sft_meta = json.load(open(base / "chatsft_checkpoints" / "d2" / sft_meta_files[0]))
    assert {"step", "val_loss", "mmlu_acc", "arc_easy_acc", "model_config"} <= set(sft_meta)
    # classic log lines the validator keys on
    for pattern in [
        r"Overriding: depth = 2",
        r"Autodetected device type: cpu",
        r"Distributed world size: 1",
        r"Number of parameters: [\d,]+",
        r"step 00039/00040 \(97\.50%\) \| loss: [\d.]+ \| grad norm: [\d.]+ \| lrm: [\d.]+ "
        r"\| dt: [\d.]+ms \| tok/sec: [\d,]+ \| mfu: [\d.]+ \| total time: [\d.]+m",
        r"Step 00040 \| Validation bpb: [\d.]+",
        r"Peak memory usage: [\d.]+MiB",
        r"Minimum validation bpb: [\d.]+",
        r"Saved model parameters to: ",
        r"Saved metadata to: ",
        r"Saved optimizer state to: ",
        r"Step \d{5}/\d{5} \| Training loss: [\d.]+\| lrm: [\d.]+\| num_tokens: [\d,]+",
        r"✅ Saved model checkpoint to ",
        r"Saved tokenizer encoding to ",
        r"Arithmetic accuracy: [\d.]+%",
    ]:
        assert re.search(pattern, log), f"missing log line: {pattern}"
    assert "Traceback" not in log


def test_speedrun_tiny_report(tiny_run):
    base, cwd, log, elapsed = tiny_run
    report = (base / "report" / "report.md").read_text()
    assert (cwd / "report.md").read_text() == report, "report.md is copied to the current directory"
    assert report.startswith("# nanochat training report") and "Run started:" in report and "## Summary" in report
    assert "| Metric          | BASE     | MID      | SFT      | RL       |" in report
    assert "|-----------------|----------|----------|----------|----------|" in report
    for title in (
        "## Tokenizer training",
        "## Base model training",
        "## Midtraining",
        "## Chat evaluation mid",
        "## Chat SFT",
        "## Chat evaluation sft",
    ):
        assert title in report, title
    assert re.search(r"^Total wall clock time: \d+h\d+m$", report.strip().splitlines()[-1])
    assert re.search(r"\| Arithmetic      \| -        \| \d\.\d{4}   \| \d\.\d{4}   \| -        \|", report)


def test_chat_cli_answers_once(tiny_run):
    base, cwd, log, elapsed = tiny_run
    p = subprocess.run(
        [sys.executable, "-m", "nanochat.chat_cli", "-p", "hi"],
        env=nc_env(base),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Assistant:" in p.stdout
    answer = p.stdout.split("Assistant:", 1)[1].strip()
    assert answer, "the model must say something"


def test_missing_jsonl_crashes_the_phase(tiny_run):
    """--data with a missing file is an error (tests of the validator use it to simulate a crashing phase)."""
    base, cwd, log, elapsed = tiny_run
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "nanochat.mid_train",
            "--max_seq_len=256",
            "--device_batch_size=4",
            "--total_batch_size=2048",
            "--task_size=50",
            "--data=/nonexistent/conversations.jsonl",
            "--dry_run=1",
        ],
        env=nc_env(base),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode != 0 and "FileNotFoundError" in p.stderr


def test_postflight_passes_on_the_tiny_run(tiny_run):
    """The project's own validator accepts what the bundled trainer produced (profile detected from the log)."""
    base, cwd, log, elapsed = tiny_run
    code = "import sys; sys.argv[0] = 'postflight'; from preflight.cli import postflight_main; postflight_main()"
    p = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "verify",
            "--log",
            str(cwd / "speedrun.log"),
            "--base-dir",
            str(base),
            "--deep",
            "--smoke",
        ],
        env={**nc_env(base), "NO_COLOR": "1"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "profile bundled" in p.stdout, p.stdout[-3000:]
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
