"""Hostile input, round two: what reaches the reader and CI (issue 14).

Every machine format still parses, nothing user-controlled starts a GitHub workflow command on
either stream, controls/bidi overrides/raw HTML are shown as escapes, secrets are masked in all 7
formats and in config errors, and writes (`init`, `-o`, the step summary) never go through a link
or into a FIFO.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import factories
import pytest
from rel_helpers import check_survived, run_bounded

FORMATS = ("text", "json", "jsonl", "junit", "sarif", "github", "markdown")
SECRETS = {
    "dict repr": ("{'WANDB_API_KEY': 'Zq8Zq8Zq8Zq8Zq8Zq8'}", "Zq8Zq8Zq8Zq8"),
    "token in a URL": ("https://oauth2:glpat-AbCdEfGhIjKlMnOpQrSt@gitlab.com/x.git", "glpat-AbCdEf"),
    "bare AWS secret": ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "bPxRfiCYEXAMPLE"),
    "Slack token": ("xoxb-123456789012-AbCdEfGhIjKl", "123456789012-AbCd"),
}
# what we write as a command: ::error|warning|notice file=...,line=N,title=CODE name::message
OUR_COMMAND = re.compile(r"^::(error|warning|notice) (file=[^,:\r\n]*,)?(line=\d+,)?title=[^,:\r\n]*::[^\r\n]*$")
UNSAFE_CHARS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)


def _hostile_run(tmp_path: Path, dir_name: str, message: str) -> tuple[Path, Path]:
    base = tmp_path / "base"
    factories.write_run(base, world_size=2)
    log = factories.write_log(
        tmp_path / dir_name / "run.out",
        factories.run_log(base=str(base), per_phase={"sft": {"crash": ("RuntimeError", message)}}),
    )
    return base, log


def assert_parses(fmt: str, out: str) -> None:
    """The document a CI consumer reads is valid for its format."""
    if fmt == "json":
        json.loads(out)
    elif fmt == "jsonl":
        for line in out.splitlines():
            json.loads(line)
    elif fmt == "junit":
        ET.fromstring(out.encode("utf-8"))
    elif fmt == "sarif":
        doc = json.loads(out)
        for res in doc["runs"][0]["results"]:
            for loc in res.get("locations", []):
                uri = loc["physicalLocation"]["artifactLocation"]["uri"]
                assert re.fullmatch(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+", uri), f"not a URI: {uri!r}"


def assert_no_forged_commands(stdout: str, stderr: str, fmt: str) -> None:
    for line in stderr.splitlines():
        assert not line.lstrip(" \t").startswith(("::", "##[")), f"a workflow command on stderr: {line!r}"
    for line in stdout.splitlines():
        if line.lstrip(" \t").startswith(("::", "##[")):
            assert fmt == "github" and OUR_COMMAND.match(line), f"a forged workflow command on stdout: {line!r}"
            props = dict(p.split("=", 1) for p in line.split("::")[1].split(" ", 1)[1].split(","))
            assert set(props) <= {"file", "line", "title"}, f"a forged command property: {line!r}"
            assert re.fullmatch(r"[A-Z]+\d+ [a-z0-9-]+|nanochat-preflight", props["title"]), line


@pytest.mark.parametrize("fmt", FORMATS)
def test_machine_formats_survive_hostile_names_and_messages(fmt, tmp_path, cli, tally):
    """A directory name and a crash message that carry workflow commands, a line break, bidi and C1
    controls, raw HTML and four kinds of secret: every format parses, nothing is forged or leaked."""
    payload = " ".join(text for text, _ in SECRETS.values())
    message = f"boom \u202eevil\u202c \x9b31m </details><img src=x onerror=alert(1)> {payload}"
    base, log = _hostile_run(
        tmp_path, "logs\n::error title=FORGED::x\n::stop-commands::tok\u202e\x9b</details>", message
    )
    proc = run_bounded(
        cli,
        tally,
        "output injection",
        "postflight",
        "verify",
        "--log",
        str(log),
        "--base-dir",
        str(base),
        "--no-smoke",
        "--format",
        fmt,
        cwd=tmp_path,
        timeout=60,
    )
    check_survived(tally, "output injection", proc, allowed=(1,))
    assert "boom" in proc.stdout, "the crash is not reported"
    assert_parses(fmt, proc.stdout)
    assert_no_forged_commands(proc.stdout, proc.stderr, fmt)
    for stream in (proc.stdout, proc.stderr):
        bad = UNSAFE_CHARS.findall(stream)
        assert not bad, f"raw control/bidi characters reach the reader: {sorted(set(map(repr, bad)))}"
        for kind, (_, secret) in SECRETS.items():
            assert secret not in stream, f"{kind} shown in full in --format {fmt}"
    if fmt == "markdown":
        assert "<img" not in proc.stdout and "</details><" not in proc.stdout, "raw HTML from a log in markdown"


@pytest.mark.parametrize("fmt", ("json", "junit", "sarif", "github", "text"))
def test_undecodable_file_name_and_ascii_locale(fmt, tmp_path, cli, tally):
    """A log under a non-UTF-8 directory name, printed to an ASCII stdout and written with -o."""
    name = os.fsdecode(b"logs-\xff\xfe-\xe9")
    base, log = _hostile_run(tmp_path, name, "boom")
    out = tmp_path / f"report.{fmt}"
    for extra, env in (([], {"PYTHONIOENCODING": "ascii"}), (["-o", str(out)], {})):
        proc = run_bounded(
            cli,
            tally,
            "output encoding",
            "postflight",
            "verify",
            "--log",
            str(log),
            "--base-dir",
            str(base),
            "--no-smoke",
            "--format",
            fmt,
            *extra,
            cwd=tmp_path,
            env=env,
            timeout=60,
        )
        check_survived(tally, "output encoding", proc, allowed=(1,))
        text = out.read_text(encoding="utf-8") if extra else proc.stdout
        assert "boom" in text
        assert_parses(fmt, text)


def test_sarif_uris_are_percent_encoded(tmp_path, cli, tally):
    base, log = _hostile_run(tmp_path, "my logs #1 %20 ü", "boom")
    proc = run_bounded(
        cli,
        tally,
        "output injection",
        "postflight",
        "verify",
        "--log",
        str(log),
        "--base-dir",
        str(base),
        "--no-smoke",
        "--format",
        "sarif",
        cwd=tmp_path,
        timeout=60,
    )
    check_survived(tally, "output injection", proc, allowed=(1,))
    assert_parses("sarif", proc.stdout)
    assert "my%20logs%20%231%20%2520%20%C3%BC/run.out" in proc.stdout


def test_github_step_summary_fifo_does_not_block(tmp_path, cli, tally):
    base, log = _hostile_run(tmp_path, "logs", "boom")
    fifo = tmp_path / "summary"
    os.mkfifo(fifo)
    proc = run_bounded(
        cli,
        tally,
        "output injection",
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
        env={"GITHUB_STEP_SUMMARY": str(fifo)},
        timeout=30,
    )
    check_survived(tally, "output injection", proc, allowed=(1,))
    assert "cannot write GITHUB_STEP_SUMMARY" in proc.stdout


@pytest.mark.parametrize(
    "config, secret",
    [
        ("select: hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789\n", "hf_AbCdEfGhIjKlMnOpQrSt"),
        ("severity:\n  WANDB_API_KEY: Zq8Zq8Zq8Zq8Zq8Zq8\n", "Zq8Zq8Zq8Zq8"),
    ],
)
def test_config_error_does_not_echo_a_secret(config, secret, tmp_path, cli, tally):
    (tmp_path / "preflight.yaml").write_text(config)
    proc = run_bounded(cli, tally, "config", "preflight", "check", cwd=tmp_path, timeout=60)
    check_survived(tally, "config", proc, allowed=(2,))
    assert "config error" in proc.stderr and secret not in proc.stderr + proc.stdout


@pytest.mark.parametrize("where", ["file", "env"])
@pytest.mark.parametrize("value", [".nan", ".inf", "-1"])
def test_timeout_cannot_be_disabled(where, value, tmp_path, cli, tally):
    env = {}
    if where == "file":
        (tmp_path / "preflight.yaml").write_text(f"timeout: {value}\n")
    else:
        env["PREFLIGHT_TIMEOUT"] = value.lstrip(".")
    proc = run_bounded(cli, tally, "config", "preflight", "check", cwd=tmp_path, env=env, timeout=60)
    check_survived(tally, "config", proc, allowed=(2,))
    assert "config error" in proc.stderr and ("finite" in proc.stderr or "timeout" in proc.stderr), proc.stderr


@pytest.mark.parametrize("command", [["init"], ["init", "--force"], ["check", "-o", "preflight.sarif", "-f", "sarif"]])
def test_writes_never_follow_a_link_out_of_the_tree(command, tmp_path, cli, tally):
    """A checked-out tree's preflight.yaml / report name that is a (dangling) link to a file elsewhere."""
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    name = "preflight.sarif" if "-o" in command else "preflight.yaml"
    (repo / name).symlink_to(outside / "planted")
    proc = run_bounded(cli, tally, "write target", "preflight", *command, cwd=repo, timeout=60)
    check_survived(tally, "write target", proc, allowed=(2,))
    assert not (outside / "planted").exists(), "wrote through a dangling link to a file outside the tree"
    assert "symbolic link" in proc.stderr
    assert (repo / name).is_symlink()


def test_redaction_is_linear_on_worst_cases(tmp_path):
    """The masker's old `\\s*(?:[:=]|\\bis\\b)?\\s*` backtracked quadratically on long blank runs (it holds
    the GIL: no timeout fires). Each worst case must finish well inside the bound."""
    code = (
        "from preflight.redact import redact\n"
        "n = 400_000\n"
        "for s in ['token' + ' ' * n + '!', 'password' + '\\t' * n, 'A' * n + '=', 'a://' + 'x:' * n,\n"
        "          ('WANDB_API_KEY' + ' ' * 50) * (n // 60), 'x=' * n, '/' * n, 'aGZf' * n]:\n"
        "    redact(s)\n"
        "print('ok')\n"
    )
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("redact() backtracks: a worst case did not finish within 15 s")
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]
