"""postflight without torch: the light install's verdict per phase equals the one with torch.

Each run is a subprocess in which torch (and tiktoken, rustbpe) cannot be imported: a meta-path
finder refuses them, as on a machine where only `pip install nanochat-preflight` ran. The
checkpoints are real ``torch.save`` files written by this (torch-equipped) test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from preflight.testing import WITHOUT_TORCH
from tests import factories as F

ROOT = Path(__file__).resolve().parents[2]
POSTFLIGHT = "sys.argv[0] = 'postflight'; from preflight.cli import postflight_main; postflight_main()"
AUDIT = "\nimport atexit; atexit.register(lambda: print('TORCH_IMPORTED' if 'torch' in sys.modules else 'NO_TORCH', file=sys.stderr))\n"


def postflight(*args: str, torch: bool, cwd: Path) -> subprocess.CompletedProcess:
    code = "import sys\n" + ("" if torch else WITHOUT_TORCH) + AUDIT + POSTFLIGHT
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    env.pop("PREFLIGHT_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-c", code, "verify", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def verdicts(p: subprocess.CompletedProcess) -> list[tuple[str, str, str]]:
    doc = json.loads(p.stdout)
    return [(v["name"], v["status"], v["cause"]) for v in doc["phases"]]


def checks(p: subprocess.CompletedProcess) -> dict[str, dict]:
    return {c["code"]: c for c in json.loads(p.stdout)["checks"]}


def _run(tmp_path: Path, **kw) -> tuple[Path, Path]:
    base = tmp_path / "base"
    F.write_run(base, world_size=1, **kw)
    log = F.write_log(tmp_path / "run.out", F.run_log(base=str(base), world_size=1))
    return base, log


@pytest.fixture
def run_dirs(tmp_path):
    return _run(tmp_path)


def test_same_verdict_without_torch(run_dirs, tmp_path):
    base, log = run_dirs
    args = ("--log", str(log), "--base-dir", str(base), "--format", "json", "--no-smoke")
    light = postflight(*args, torch=False, cwd=tmp_path)
    full = postflight(*args, torch=True, cwd=tmp_path)
    assert "NO_TORCH" in light.stderr and "TORCH_IMPORTED" in full.stderr
    assert light.returncode == full.returncode == 0, light.stdout[-2000:] + light.stderr[-2000:]
    assert verdicts(light) == verdicts(full)
    assert {n: s for n, s, _ in verdicts(light) if n in ("base", "mid", "sft")} == {
        "base": "done",
        "mid": "done",
        "sft": "done",
    }
    ck = checks(light)["CK005"]
    assert ck["status"] == "skip"
    assert "nanochat-preflight[torch]" in ck["reason"] and "3 final model file(s) are sound" in ck["reason"]
    assert checks(full)["CK005"]["status"] == "pass"
    for code in ("CK006", "CK008"):  # header-tier checks run the same either way
        assert checks(light)[code]["status"] == checks(full)[code]["status"] == "pass"


def test_truncated_model_is_caught_without_torch(run_dirs, tmp_path):
    base, log = run_dirs
    model = next((base / "mid_checkpoints" / "d2").glob("model_*.pt"))
    F.truncate(model, keep=0.6)
    p = postflight(
        "--log", str(log), "--base-dir", str(base), "--format", "json", "--no-smoke", torch=False, cwd=tmp_path
    )
    assert p.returncode == 1, p.stderr[-2000:]
    ck = checks(p)["CK005"]
    assert ck["status"] == "fail" and str(model) in ck["findings"][0]["message"]


def test_storage_record_size_mismatch_is_caught_without_torch(run_dirs, tmp_path):
    """A model file patched from two saves: the pickle declares more bytes than the record holds."""
    import zipfile

    base, log = run_dirs
    model = next((base / "base_checkpoints" / "d2").glob("model_*.pt"))
    with zipfile.ZipFile(model) as z:
        entries = [(i, z.read(i)) for i in z.infolist()]
    with zipfile.ZipFile(model, "w") as z:
        for info, data in entries:
            if info.filename.endswith("/data/0"):
                data = data[: len(data) // 2]
            z.writestr(info, data)
    light = postflight(
        "--log", str(log), "--base-dir", str(base), "--format", "json", "--no-smoke", torch=False, cwd=tmp_path
    )
    msg = checks(light)["CK005"]["findings"][0]["message"]
    assert "storage record data/0 holds" in msg and "its pickle declares" in msg


def test_deep_nan_scan_without_torch(tmp_path):
    """--deep finds a NaN in a bf16 tensor from the raw record bytes, as torch does."""
    import torch

    base = tmp_path / "base"
    info = F.write_run(base, world_size=1, phases=("base",))
    log = F.write_log(tmp_path / "run.out", F.run_log(phases=("base",), base=str(base), world_size=1))
    model = base / "base_checkpoints" / "d2" / f"model_{info['steps']['base']:06d}.pt"
    sd = torch.load(model, weights_only=True)
    sd["transformer.h.1.mlp.c_fc.weight"] = sd["transformer.h.1.mlp.c_fc.weight"].to(torch.bfloat16)
    sd["transformer.h.1.mlp.c_fc.weight"][3, 5] = float("nan")
    torch.save(sd, model)
    args = ("--log", str(log), "--base-dir", str(base), "--format", "json", "--no-smoke", "--deep")
    light, full = (postflight(*args, torch=t, cwd=tmp_path) for t in (False, True))
    for p in (light, full):
        ck = checks(p)["CK009"]
        assert ck["status"] == "fail", p.stdout[-1500:]
        assert ck["findings"][0]["message"].endswith("transformer.h.1.mlp.c_fc.weight: NaN values")
    assert verdicts(light) == verdicts(full)


def test_chat_smoke_says_what_it_needs(run_dirs, tmp_path):
    base, log = run_dirs
    p = postflight("--log", str(log), "--base-dir", str(base), "--format", "json", "--smoke", torch=False, cwd=tmp_path)
    chat = checks(p)["CHAT001"]
    assert chat["status"] == "skip" and "torch is not installed" in chat["reason"]
    assert "pip install 'nanochat-preflight[torch]'" in chat["reason"]


@pytest.mark.slow
def test_same_verdict_on_a_real_tiny_run(tmp_path):
    """The bundled trainer's whole tiny pipeline (scripts/speedrun.sh --tiny), then postflight with and
    without torch on what it wrote: the same per-phase verdict, and the same findings but the load tier's."""
    base, cwd = tmp_path / "base", tmp_path / "cwd"
    cwd.mkdir()
    env = {**os.environ, "NANOCHAT_BASE_DIR": str(base), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("WANDB_RUN", None)
    run = subprocess.run(
        ["bash", str(ROOT / "scripts" / "speedrun.sh"), "--tiny"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    log = cwd / "speedrun.log"
    log.write_text(run.stdout + run.stderr)
    args = ("--log", str(log), "--base-dir", str(base), "--format", "json", "--deep", "--no-smoke")
    light, full = (postflight(*args, torch=t, cwd=cwd) for t in (False, True))
    assert "NO_TORCH" in light.stderr and light.returncode == full.returncode == 0, light.stdout[-3000:]
    assert verdicts(light) == verdicts(full)
    assert {n: s for n, s, _ in verdicts(light) if n in ("base", "mid", "sft")} == {
        "base": "done",
        "mid": "done",
        "sft": "done",
    }
    by_light, by_full = checks(light), checks(full)
    assert set(by_light) == set(by_full)
    for code in by_full:
        if code != "CK005":
            assert by_light[code]["status"] == by_full[code]["status"], code
    assert by_light["CK005"]["status"] == "skip" and by_full["CK005"]["status"] == "pass"
    assert by_light["CK009"]["status"] == by_full["CK009"]["status"] == "pass"  # NaN scan with numpy vs torch
