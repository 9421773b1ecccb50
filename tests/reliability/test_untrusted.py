"""Untrusted data and external tools: no shell, no unpickling, safe YAML, bounded waits, masked secrets.

Static part: an `ast` scan of preflight/ (checks included) for the dangerous calls. Dynamic part: the
hostile pickles of the corpus go through every command that reads checkpoints and tokenizers
(test_corpus_*), here the hung tools and the secrets in every output format.
"""

from __future__ import annotations

import ast
import json
import os
import stat
import time
from pathlib import Path

import factories
import pytest
import rel_corpus as corpus
from rel_helpers import check_survived, run_bounded, snapshot

ROOT = Path(__file__).resolve().parents[2]
SCANNED = sorted(ROOT.glob("preflight/**/*.py"))


def _calls(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def _kw(node: ast.Call, name: str):
    return next((k.value for k in node.keywords if k.arg == name), None)


def test_no_shell_and_no_os_system():
    bad = []
    for path in SCANNED:
        for node, func in _calls(path):
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            shell = _kw(node, "shell")
            if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
                bad.append(f"{where}: {func}(shell=...)")
            if func in (
                "os.system",
                "os.popen",
                "os.execl",
                "os.execlp",
                "os.spawnl",
                "commands.getoutput",
                "subprocess.getoutput",
                "subprocess.getstatusoutput",
                "eval",
                "exec",
            ):
                bad.append(f"{where}: {func}()")
            if func.startswith("subprocess.") and node.args and isinstance(node.args[0], (ast.Constant, ast.JoinedStr)):
                bad.append(f"{where}: {func} with a command string")
    assert not bad, "\n".join(bad)


def test_external_tools_have_timeouts():
    """Every subprocess call that names an external tool (["sacct", ...]) passes a timeout. Calls that run
    this interpreter (sys.executable: our own commands, the demo's training) may run as long as they need."""
    bad = []
    for path in SCANNED:
        for node, func in _calls(path):
            args = node.args[0] if node.args else None
            external = isinstance(args, ast.List) and args.elts and isinstance(args.elts[0], ast.Constant)
            if (
                func
                in (
                    "subprocess.run",
                    "subprocess.check_output",
                    "subprocess.call",
                    "subprocess.check_call",
                )
                and external
                and _kw(node, "timeout") is None
            ):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {func} without timeout")
    assert not bad, "\n".join(bad)


def test_no_unpickling_and_safe_yaml_and_weights_only():
    bad = []
    for path in SCANNED:
        text = path.read_text(encoding="utf-8")
        for node, func in _calls(path):
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if func in (
                "pickle.load",
                "pickle.loads",
                "pickle.Unpickler",
                "cPickle.load",
                "dill.load",
                "marshal.loads",
                "numpy.load",
                "np.load",
                "joblib.load",
                "shelve.open",
            ):
                bad.append(f"{where}: {func}()")
            if func in ("yaml.load", "yaml.load_all"):
                loader = _kw(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
                src = ast.unparse(loader) if loader is not None else ""
                if isinstance(loader, ast.Name):  # loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
                    assigned = [
                        ast.unparse(a.value)
                        for a in ast.walk(ast.parse(text))
                        if isinstance(a, ast.Assign) and any(getattr(t, "id", None) == loader.id for t in a.targets)
                    ]
                    src = " ".join(assigned)
                if "Safe" not in src or "Unsafe" in src:
                    bad.append(f"{where}: {func} with Loader={src or 'default'}")
            if func in ("yaml.unsafe_load", "yaml.full_load", "yaml.load_all"):
                bad.append(f"{where}: {func}()")
            if func == "torch.load":
                wo = _kw(node, "weights_only")
                if not (isinstance(wo, ast.Constant) and wo.value is True):
                    bad.append(f"{where}: torch.load without weights_only=True")
    assert not bad, "\n".join(bad)


def _restricted_unpicklers(path: Path) -> set[str]:
    """Classes of the file that subclass pickle.Unpickler and override find_class (an allowlist)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any(ast.unparse(b) == "pickle.Unpickler" for b in node.bases)
        and any(isinstance(f, ast.FunctionDef) and f.name == "find_class" for f in node.body)
    }


def test_tokenizer_pkl_only_through_restricted_unpickler():
    """Every place that opens tokenizer.pkl in the tool goes through nanochat.tokenizer.load_tokenizer_pkl, or
    (the smoke test's child, which runs in the user's Python without this package) an Unpickler of its own
    whose find_class admits only what a tokenizer holds."""
    offenders = []
    for path in SCANNED:
        text = path.read_text(encoding="utf-8")
        if "tokenizer.pkl" in text or "tokenizer_pkl" in text:
            allowed = _restricted_unpicklers(path)
            for node, func in _calls(path):
                if func.endswith(".load") and "pickle" in func and func.split("(")[0] not in allowed:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


# -- hung external tools ------------------------------------------------------------------------------
HUNG_TOOLS = ("sacct", "scontrol", "squeue", "sinfo", "sbatch", "nvidia-smi")


def _fake_tools(bin_dir: Path, style: str) -> None:
    """Fake SLURM/GPU tools that never answer. "exec": the tool itself sleeps; "child": a wrapper script whose
    sleeping child inherits stdout (a killed wrapper leaves the pipe open)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    body = "exec sleep 600\n" if style == "exec" else "sleep 600\necho never\n"
    for tool in HUNG_TOOLS:
        p = bin_dir / tool
        p.write_text("#!/bin/sh\n" + body)
        p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _env_with(bin_dir: Path) -> dict[str, str]:
    # an existing (empty) client config: with a missing one the probe rightly says "SLURM not configured"
    # before any tool runs (real clients would retry for 60 s), and the hung tools would never be asked
    conf = bin_dir / "slurm.conf"
    conf.write_text("")
    return {"PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "SLURM_CONF": str(conf)}


def _statuses(proc) -> dict[str, str]:
    data = json.loads(proc.stdout)
    return {c["code"]: c["status"] for c in data["checks"]}


@pytest.mark.parametrize("style", ["exec", "child"])
def test_hung_tools_preflight_check(style, tmp_path, cli, tally):
    _fake_tools(tmp_path / "bin", style)
    # per-check timeout above nvidia-smi's own 10 s: the tool timeout, not the runner's, must make the error
    (tmp_path / "preflight.yaml").write_text("slurm-timeout: 2\ntimeout: 15\n")
    script = tmp_path / "job.sh"
    script.write_text(corpus.GOOD_SCRIPT)
    tally.fault(f"hung tool ({style})", len(HUNG_TOOLS))
    start = time.monotonic()
    proc = run_bounded(
        cli,
        tally,
        "hung tools",
        "preflight",
        "check",
        str(script),
        "--base-dir",
        str(tmp_path / "b"),
        "--format",
        "json",
        cwd=tmp_path,
        env=_env_with(tmp_path / "bin"),
        timeout=90,
    )
    elapsed = time.monotonic() - start
    check_survived(tally, "hung tools", proc, allowed=(1, 2), check_errors_ok=True)
    st_ = _statuses(proc)
    gpu = {k: v for k, v in st_.items() if k in ("GPU002", "GPU003", "GPU004")}
    assert st_.get("SB014") == "error", f"a hung sbatch --test-only must be an error, not {st_.get('SB014')}"
    assert gpu and all(v == "error" for v in gpu.values()), f"a hung nvidia-smi must be an error: {gpu}"
    assert elapsed < 40, f"preflight check took {elapsed:.0f}s with hung tools (timeouts 2 s / 6 s)"


@pytest.mark.parametrize("style", ["exec", "child"])
def test_hung_tools_postflight_verify(style, tmp_path, cli, tally):
    _fake_tools(tmp_path / "bin", style)
    (tmp_path / "preflight.yaml").write_text("slurm-timeout: 2\ntimeout: 6\n")
    tally.fault(f"hung tool ({style})", len(HUNG_TOOLS))
    start = time.monotonic()
    proc = run_bounded(
        cli,
        tally,
        "hung tools",
        "postflight",
        "verify",
        "424242",
        "--no-smoke",
        "--format",
        "json",
        cwd=tmp_path,
        env=_env_with(tmp_path / "bin"),
        timeout=90,
    )
    elapsed = time.monotonic() - start
    check_survived(tally, "hung tools", proc, allowed=(1, 2), check_errors_ok=True)
    if proc.stdout.strip().startswith("{"):
        st_ = _statuses(proc)
        job_checks = {k: v for k, v in st_.items() if k.startswith("JOB")}
        assert job_checks and all(v in ("error", "skip") for v in job_checks.values()), job_checks
        assert any(v == "error" for v in job_checks.values()), (
            f"a hung sacct must be an error, not a skip: {job_checks}"
        )
    assert elapsed < 40, f"postflight verify took {elapsed:.0f}s with hung tools"


def test_run_tool_kills_a_hung_tool(tmp_path):
    from preflight.proc import ToolTimeout, run_tool

    _fake_tools(tmp_path / "bin", "child")
    start = time.monotonic()
    with pytest.raises(ToolTimeout):
        run_tool([str(tmp_path / "bin" / "sacct")], timeout=1)
    assert time.monotonic() - start < 10, "run_tool waited for the hung tool's child to close the pipe"


# -- secrets masked in every format ----------------------------------------------------------------------
SECRETS = {
    "WANDB_API_KEY": "f3a9c0ffee1234567890abcdef1234567890abcd",
    "HF_TOKEN": "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "OPENAI_API_KEY": "sk-proj-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0",
}
FORMATS = ["text", "json", "jsonl", "junit", "sarif", "github", "markdown"]


def _secret_script(tmp: Path) -> Path:
    lines = ["#!/bin/bash", "#SBATCH --gres=gpu:8", "set -euo pipefail"]
    lines += [f"export {k}={v}" for k, v in SECRETS.items()]
    lines += [
        f"wandb login {SECRETS['WANDB_API_KEY']}",
        f'huggingface-cli login --token "{SECRETS["HF_TOKEN"]}"',
        "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20 --run=x",
    ]
    p = tmp / "job.sh"
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize("fmt", FORMATS)
def test_secrets_masked_in_every_format(fmt, tmp_path, cli, tally):
    script = _secret_script(tmp_path)
    summary = tmp_path / "summary.md"
    out_file = tmp_path / f"out.{fmt}"
    proc = cli(
        "preflight",
        "check",
        str(script),
        "--format",
        fmt,
        "--base-dir",
        str(tmp_path / "b"),
        cwd=tmp_path,
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    proc2 = cli(
        "preflight",
        "check",
        str(script),
        "--format",
        fmt,
        "--output-file",
        str(out_file),
        "--verbose",
        "--base-dir",
        str(tmp_path / "b"),
        cwd=tmp_path,
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    tally.tried("secret masking", 2)
    outputs = proc.stdout + proc.stderr + proc2.stdout + proc2.stderr
    outputs += out_file.read_text() if out_file.exists() else ""
    outputs += summary.read_text() if summary.exists() else ""
    for name, value in SECRETS.items():
        assert value not in outputs, f"{fmt}: the full {name} appears in the output"
        assert value[8:] not in outputs, f"{fmt}: most of {name} appears in the output"
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-1000:]
    assert "SB009" in outputs or "secret-in-script" in outputs, f"{fmt}: no secret finding"
    masked = [v[:4] for v in SECRETS.values() if v[:4] in outputs]
    assert masked, f"{fmt}: no masked secret (first 4 characters) shown"


def test_secret_in_log_not_echoed_by_postflight(tmp_path, cli, tally):
    """postflight reports echo log lines: a secret printed into the log must not be repeated whole."""
    base = tmp_path / "base"
    factories.write_run(base, world_size=2)
    text = factories.run_log(
        base=str(base),
        per_phase={"base": {"crash": ("wandb.errors.CommError", f"invalid api key {SECRETS['WANDB_API_KEY']}")}},
    )
    log = factories.write_log(tmp_path / "logs" / "run.out", text)
    before = snapshot(tmp_path)
    proc = run_bounded(
        cli,
        tally,
        "secret masking",
        "postflight",
        "verify",
        "--log",
        str(log),
        "--base-dir",
        str(base),
        "--no-smoke",
        "--format",
        "json",
        cwd=tmp_path,
    )
    check_survived(tally, "secret masking", proc, allowed=(1,), before=before, root=tmp_path)
    assert SECRETS["WANDB_API_KEY"] not in proc.stdout + proc.stderr, "a wandb key from the log is echoed whole"


# -- output injection: file names and log text must not forge annotations or terminal escapes ----------------
def test_github_annotations_cannot_be_forged(tmp_path, cli, tally):
    name = "job\n::warning title=x::FORGED.sh"
    script = tmp_path / name
    script.write_text(corpus.GOOD_SCRIPT)
    base = tmp_path / "base"
    factories.write_run(base, world_size=2)
    log = factories.write_log(
        tmp_path / "logs" / "run.out",
        factories.run_log(
            base=str(base),
            per_phase={"sft": {"crash": ("RuntimeError", "boom\r::error title=y::FORGED\r%0A::error::FORGED")}},
        ),
    )
    pre = cli("preflight", "check", str(script), "--format", "github", "--base-dir", str(base), cwd=tmp_path)
    post = cli(
        "postflight",
        "verify",
        "--log",
        str(log),
        "--base-dir",
        str(base),
        "--no-smoke",
        "--format",
        "github",
        cwd=tmp_path,
    )
    tally.tried("output injection", 2)
    for proc in (pre, post):
        import re

        for line in proc.stdout.splitlines():
            assert not re.match(r"^::[a-z-]+( [^:]*)?::FORGED", line), f"a forged annotation: {line!r}"
            assert line.startswith("::") or "::" not in line, f"an annotation command mid-line: {line!r}"
        assert "\r" not in proc.stdout, "a raw carriage return reaches the workflow log"


def test_terminal_escapes_from_logs_not_replayed(tmp_path, cli, tally):
    base = tmp_path / "base"
    factories.write_run(base, world_size=2)
    evil = "boom \x1b]0;pwned\x07\x1b[2J\x1b[31mred"
    log = factories.write_log(
        tmp_path / "logs" / "run.out",
        factories.run_log(base=str(base), per_phase={"sft": {"crash": ("RuntimeError", evil)}}),
    )
    proc = cli("postflight", "verify", "--log", str(log), "--base-dir", str(base), "--no-smoke", cwd=tmp_path)
    tally.tried("output injection")
    assert "boom" in proc.stdout, "the crash is not reported"
    assert "\x1b]" not in proc.stdout and "\x07" not in proc.stdout and "\x1b[2J" not in proc.stdout, (
        "escape sequences from the log are replayed to the terminal"
    )
