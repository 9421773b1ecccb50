"""The chat smoke test picks model code that can run the checkpoint, or says why it cannot.

Real parts: tiny real torch checkpoints, a real tokenizer.pkl, the fixture checkout's own
model code (current nanochat's parameter layout) run in a real child process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from preflight.ckpt import inspect_torch_file
from preflight.model import Status
from preflight.smoke import bundled_fit
from preflight.testing import Scenario, run_scenario
from tests import factories as F
from tests.reliability.rel_helpers import diff, snapshot

SFT_MODEL = Path("base/chatsft_checkpoints/d2/model_000009.pt")


def _verify(tmp_path, **config):
    r = run_scenario(Scenario(stage="post", base_dir="base", env={}, config=config), tmp_path, select=["CHAT"])
    return {c.code: c for c in r.checks}


def test_decision_is_torch_free_and_names_what_differs(tmp_path):
    F.write_current_run(tmp_path / "cur")
    F.write_run(tmp_path / "cls")
    cur = inspect_torch_file(tmp_path / "cur" / "chatsft_checkpoints/d2/model_000009.pt")
    cls = inspect_torch_file(tmp_path / "cls" / "chatsft_checkpoints/d2/model_000009.pt")
    cfg = F.model_config(2, era="current")
    why = bundled_fit(cur.tensors, cfg)
    assert why and "value_embeds" in why and "resid_lambdas" in why
    assert bundled_fit(cls.tensors, F.model_config(2)) is None
    # a sliding window shorter than the smoke test's tokens would attend differently in the bundled GPT
    assert "window" in bundled_fit(cls.tensors, {**F.model_config(2), "sequence_len": 32, "window_pattern": "SSSL"})
    assert bundled_fit(cls.tensors, {**F.model_config(2), "window_pattern": "SSSL"}) is None


def test_current_era_run_without_smoke_is_a_skip_that_says_why(tmp_path):
    F.write_current_run(tmp_path / "base")
    checks = _verify(tmp_path)
    for code in ("CHAT001", "CHAT002"):
        assert checks[code].status is Status.SKIP, (code, checks[code].reason)
    assert "value_embeds" in checks["CHAT001"].reason and "--smoke" in checks["CHAT001"].reason


@pytest.mark.parametrize(
    "setup,expect",
    [
        (lambda root: None, "no nanochat checkout found"),
        (lambda root: F.write_checkout(root / "checkout"), "no .venv/bin/python"),
    ],
)
def test_smoke_without_checkout_or_python_skips(tmp_path, setup, expect):
    F.write_current_run(tmp_path / "base")
    setup(tmp_path)
    config = {"smoke": True}
    if (tmp_path / "checkout").exists():
        config["checkout"] = str(tmp_path / "checkout")
    checks = _verify(tmp_path, **config)
    assert checks["CHAT001"].status is Status.SKIP and expect in checks["CHAT001"].reason
    assert checks["CHAT002"].status is Status.SKIP


def test_current_era_run_answers_from_its_own_code_and_changes_nothing(tmp_path, cli):
    """End to end: `postflight verify --smoke --checkout` with the checkout's .venv; JSON + text report."""
    F.write_current_run(tmp_path / "base")
    checkout = F.write_checkout(tmp_path / "checkout", venv_python=sys.executable)
    before = snapshot(tmp_path)
    args = ("verify", "--base-dir", str(tmp_path / "base"), "--smoke", "--checkout", str(checkout), "--select", "CHAT")
    proc = cli("postflight", *args, "--format", "json", cwd=tmp_path, timeout=300)
    doc = json.loads(proc.stdout)
    status = {c["code"]: c["status"] for c in doc["checks"]}
    assert status == {"CHAT001": "pass", "CHAT002": "pass"}, doc["checks"]
    smoke = doc["chat_smoke"]
    assert smoke["route"] == "checkout" and smoke["ok"] and smoke["phase"] == "sft" and smoke["step"] == 9
    assert smoke["python"].endswith(".venv/bin/python") and len(smoke["tokens"]) == 8 and smoke["seconds"] > 0
    assert "value_embeds" in smoke["why"]
    assert not diff(before, snapshot(tmp_path)), "the smoke test changed files in the checkout or base dir"
    text = cli("postflight", *args, cwd=tmp_path, timeout=300).stdout
    assert "Chat smoke test sft step 9 via " + str(checkout) in text


def test_user_code_error_is_a_finding_with_its_traceback(tmp_path):
    F.write_current_run(tmp_path / "base")
    F.write_checkout(tmp_path / "checkout", variant="load-error")
    checks = _verify(tmp_path, smoke=True, checkout=str(tmp_path / "checkout"), python=sys.executable)
    assert checks["CHAT001"].status is Status.SKIP and "CHAT002" in checks["CHAT001"].reason
    (f,) = checks["CHAT002"].findings
    assert "RuntimeError" in f.message and "backout_lambda" in f.message
    assert "load_state_dict" in f.message  # the traceback's last lines
    assert f.data["tail"] and f.data["seconds"] > 0


def test_missing_dependency_in_the_users_python_is_a_skip(tmp_path):
    F.write_current_run(tmp_path / "base")
    F.write_checkout(tmp_path / "checkout", variant="missing-dep")
    checks = _verify(tmp_path, smoke=True, checkout=str(tmp_path / "checkout"), python=sys.executable)
    for code in ("CHAT001", "CHAT002"):
        assert checks[code].status is Status.SKIP
        assert "No module named 'flash_attn_for_this_test_is_absent'" in checks[code].reason


def test_time_limit_is_a_skip(tmp_path):
    F.write_current_run(tmp_path / "base")
    F.write_checkout(tmp_path / "checkout")
    checks = _verify(
        tmp_path, smoke=True, checkout=str(tmp_path / "checkout"), python=sys.executable, **{"smoke-timeout": 0.05}
    )
    assert checks["CHAT002"].status is Status.SKIP and "did not finish within 0.05s" in checks["CHAT002"].reason


def test_nan_weights_fail_in_the_users_code_too(tmp_path):
    F.write_current_run(tmp_path / "base", nan=True)
    F.write_checkout(tmp_path / "checkout")
    checks = _verify(tmp_path, smoke=True, checkout=str(tmp_path / "checkout"), python=sys.executable)
    assert checks["CHAT001"].status is Status.FAIL and "NaN/Inf" in checks["CHAT001"].findings[0].message
    assert checks["CHAT002"].status is Status.PASS


@pytest.mark.parametrize("era", ["classic", "current"])
def test_wrong_vocab_fails_in_every_era_without_running_code(tmp_path, era):
    (F.write_current_run if era == "current" else F.write_run)(tmp_path / "base")
    import torch  # a tokenizer retrained with another vocab: token_bytes.pt has 300 entries

    torch.save(torch.ones(300, dtype=torch.int32), tmp_path / "base" / "tokenizer" / "token_bytes.pt")
    checks = _verify(tmp_path, smoke=True)  # no checkout: the decision needs none
    (f,) = checks["CHAT001"].findings
    assert "tokenizer vocab 300 != model vocab 265" in f.message


def test_classic_run_uses_the_bundled_gpt_and_reports_time(tmp_path, cli):
    F.write_run(tmp_path / "base")
    proc = cli(
        "postflight",
        "verify",
        "--base-dir",
        str(tmp_path / "base"),
        "--select",
        "CHAT",
        "--format",
        "json",
        cwd=tmp_path,
        timeout=300,
    )
    doc = json.loads(proc.stdout)
    assert doc["chat_smoke"]["route"] == "bundled" and doc["chat_smoke"]["ok"] and doc["chat_smoke"]["seconds"] > 0
    assert {c["code"]: c["status"] for c in doc["checks"]} == {"CHAT001": "pass", "CHAT002": "skip"}


def test_no_smoke_runs_nothing_and_reports_nothing(tmp_path, cli):
    F.write_run(tmp_path / "base")
    proc = cli(
        "postflight",
        "verify",
        "--base-dir",
        str(tmp_path / "base"),
        "--no-smoke",
        "--select",
        "CHAT",
        "--format",
        "json",
        cwd=tmp_path,
    )
    doc = json.loads(proc.stdout)
    assert "chat_smoke" not in doc and {c["status"] for c in doc["checks"]} == {"skip"}


def test_child_has_no_network_no_secrets_and_a_scratch_home(tmp_path, monkeypatch):
    """The probe checkout tries a listening local port and reports its environment."""
    import socket

    from preflight.smoke import _no_network_prefix

    if not _no_network_prefix():
        pytest.skip("unshare -rn is not permitted here: only the offline environment applies")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    monkeypatch.setenv("https_proxy", "http://proxy.invalid:3128")
    monkeypatch.setenv("WANDB_API_KEY", "secret-for-test")
    F.write_current_run(tmp_path / "base")
    F.write_checkout(tmp_path / "checkout", variant="probe", probe_port=server.getsockname()[1])
    try:
        checks = _verify(tmp_path, smoke=True, checkout=str(tmp_path / "checkout"), python=sys.executable)
    finally:
        server.close()
    msg = checks["CHAT002"].findings[0].message
    assert "PROBE NET-BLOCKED" in msg
    assert "'HF_HUB_OFFLINE': '1'" in msg and "'HF_DATASETS_OFFLINE': '1'" in msg
    assert "'https_proxy': None" in msg and "'WANDB_API_KEY': None" in msg and "'PYTHONDONTWRITEBYTECODE': '1'" in msg
    assert "preflight-smoke-" in msg.split("cwd=")[1] and str(tmp_path) not in msg.split("home=")[1]


def test_checkout_from_the_run_ledger_runs_without_flags(tmp_path):
    """`preflight sbatch` recorded the checkout; postflight --smoke finds it and its .venv itself."""
    F.write_current_run(tmp_path / "base")
    checkout = F.write_checkout(tmp_path / "src" / "nanochat", venv_python=sys.executable)
    ledger = {
        "schema_version": 1,
        "job_id": "4242",
        "cwd": str(tmp_path),
        "profile": {"name": "current", "reason": "test", "checkout": str(checkout)},
        "expected": {"base_dir": str(tmp_path / "base"), "phases": ["base", "sft"]},
    }
    (tmp_path / ".preflight" / "jobs").mkdir(parents=True)
    (tmp_path / ".preflight" / "jobs" / "4242.json").write_text(json.dumps(ledger))
    r = run_scenario(Scenario(stage="post", job_id="4242", env={}, config={"smoke": True}), tmp_path, select=["CHAT"])
    checks = {c.code: c for c in r.checks}
    assert checks["CHAT001"].status is Status.PASS and checks["CHAT002"].status is Status.PASS, [
        (c.code, c.status, c.reason) for c in r.checks
    ]


def test_the_scripts_checkout_is_found_and_a_non_checkout_is_refused(tmp_path):
    from preflight.config import load_config
    from preflight.context import Context, RunInputs
    from preflight.smoke import find_checkout, find_python

    checkout = F.write_checkout(tmp_path / "nanochat", venv_python=sys.executable)
    ctx = Context(load_config({}, cwd=checkout), inputs=RunInputs(stage="post", cwd=checkout), environ={})
    assert find_checkout(ctx) == (checkout, "the script's checkout")
    assert find_python(ctx, checkout) == (str(checkout / ".venv/bin/python"), "the checkout's .venv")
    ctx = Context(
        load_config({"checkout": str(tmp_path)}, cwd=tmp_path), inputs=RunInputs(stage="post", cwd=tmp_path), environ={}
    )
    found, why = find_checkout(ctx)
    assert found is None and "has no nanochat/checkpoint_manager.py" in why


def test_a_python_that_cannot_run_is_a_skip(tmp_path):
    F.write_current_run(tmp_path / "base")
    F.write_checkout(tmp_path / "checkout")
    fake = tmp_path / "not-python"
    fake.write_bytes(b"\x7fELF garbage")
    fake.chmod(0o755)
    checks = _verify(tmp_path, smoke=True, checkout=str(tmp_path / "checkout"), python=str(fake))
    assert checks["CHAT002"].status is Status.SKIP and f"cannot run {fake}" in checks["CHAT002"].reason


def test_nan_weights_fail_in_the_bundled_gpt(tmp_path):
    info = F.write_run(tmp_path / "base")
    sd = F.state_dict(info["cfg"])
    sd["lm_head.weight"][3, 0] = float("nan")
    F.write_model(tmp_path / SFT_MODEL, info["cfg"], sd=sd)
    checks = _verify(tmp_path)
    (f,) = checks["CHAT001"].findings
    assert "NaN/Inf" in f.message and f.data["route"] == "bundled"
