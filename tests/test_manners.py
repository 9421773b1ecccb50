"""A linter's manners: what a user sees at once, in a pipe, in --help, and in the report's order."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from preflight.registry import Registry, doc_sections

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = list(Registry.default(entry_points=False))
SENTENCE_END = (".", "!", "?", ".)", '."', ".``")


@pytest.mark.parametrize("spec", REGISTRY, ids=lambda s: s.code)
def test_every_summary_is_a_whole_sentence(spec):
    summary = spec.summary
    assert summary.endswith(SENTENCE_END), f"{spec.code} summary stops mid-sentence: {summary!r}"
    assert not summary[:1].islower(), f"{spec.code} summary starts in lower case: {summary!r}"
    assert summary.count("(") == summary.count(")") and summary.count("``") % 2 == 0, summary
    body = " ".join(doc_sections(spec.doc)["What it checks"].split())
    assert body[1:].startswith(summary[1:]), "the summary is the section's first sentence, not a rewrite"


def test_list_piped_is_one_line_per_check(cli):
    p = cli("preflight", "list")  # stdout is a pipe here, as in `preflight list | cat`
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == len(REGISTRY)
    for line, spec in zip(lines, REGISTRY, strict=False):
        assert re.match(
            rf"{spec.code} +{re.escape(spec.name)} +{spec.stage} +{spec.severity.value} +{spec.cost} +", line
        )
        assert line.endswith(spec.summary)
    grep = subprocess.run(["grep", "CK005"], input=p.stdout, capture_output=True, text=True)
    assert grep.stdout.count("\n") == 1 and "checkpoint-unloadable" in grep.stdout


def _commands(app):
    import typer.main

    group = typer.main.get_command(app)
    return [[]] + [[name] for name in group.commands]


@pytest.mark.parametrize("tool", ["preflight", "postflight"])
def test_help_has_no_markup_artifacts(cli, tool):
    from preflight import cli as cli_module

    app = getattr(cli_module, f"{tool}_app")
    for cmd in _commands(app):
        p = cli(tool, *cmd, "--help")
        assert p.returncode == 0, (cmd, p.stderr)
        assert "\\[" not in p.stdout and "[/" not in p.stdout, f"{tool} {' '.join(cmd)} --help:\n{p.stdout}"
    p = cli(tool, "verify" if tool == "postflight" else "check", "--help")
    assert "[default: text]" in p.stdout


JOB = """#!/bin/bash
#SBATCH --job-name=nc
#SBATCH --output={tmp}/missing-logs/%j.out
#SBATCH --gres=gpu:8
#SBATCH --time=08:00:00
export OMP_NUM_THREADS=1
python -m nanochat.dataset -n 240
torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20
torchrun --standalone --nproc_per_node=8 -m scripts.mid_train
torchrun --standalone --nproc_per_node=8 -m scripts.chat_sft
"""
MARK = {"✗": 2, "!": 1, "i": 0}


def _check(cli, tmp_path, *args):
    script = tmp_path / "job.sbatch"
    script.write_text(JOB.format(tmp=tmp_path))
    env = {
        "NANOCHAT_BASE_DIR": str(tmp_path / "base"),
        "HOME": str(tmp_path),
        "HF_HOME": str(tmp_path / "hf"),
        "PATH": "/usr/bin:/bin",
    }
    return cli("preflight", "check", str(script), *args, cwd=tmp_path, env=env)


def test_report_order_errors_first_and_what_kills_the_job_at_start_first(cli, tmp_path):
    p = _check(cli, tmp_path)
    heads = [ln for ln in p.stdout.splitlines() if re.match(r"^ [✗!i] [A-Z]+\d{3} ", ln)]
    ranks = [MARK[h[1]] for h in heads]
    assert ranks == sorted(ranks, reverse=True), "errors, then warnings, then info"
    fatal = [i for i, h in enumerate(heads) if h.endswith("fatal at start")]
    assert fatal == list(range(len(fatal))), "what kills the job at start comes first"
    assert any(heads[i].split()[1] == "SB004" for i in fatal)  # missing --output dir (SB014 too when SLURM is up)
    assert {heads[i].split()[1] for i in fatal} <= {"SB004", "SB013", "SB014", "FS001"}
    sections = [ln for ln in p.stdout.splitlines() if re.match(r"^(Errors|Warnings|Info) \(\d+\)$", ln)]
    assert sections[0].startswith("Errors") and len(sections) == len(set(s.split()[0] for s in sections))
    n_errors = int(sections[0].split("(")[1].rstrip(")"))
    assert n_errors == sum(r == 2 for r in ranks)
    # offline downloads: one entry per phase, each with its phase
    net = [ln for ln in p.stdout.splitlines() if ln.startswith(" ✗ NET001")]
    msgs = [m for m in p.stdout.split(" ✗ NET001")[1:]]
    phases = [re.search(r"phase (\w+)", m).group(1) for m in msgs]
    assert net and len(phases) == len(set(phases)), phases


def test_network_assumption_is_stated_once_in_the_header(cli, tmp_path):
    p = _check(cli, tmp_path)
    out = p.stdout
    assert out.count("network offline: compute nodes are assumed to have no internet") == 1
    assert out.index("network offline:") < out.index("Errors (")
    online = _check(cli, tmp_path, "--network", "online").stdout
    assert "network online: compute nodes are assumed to reach the internet" in online
    assert "NET001" not in online.split("skipped:")[0]


def test_json_and_sarif_carry_no_invented_urls(cli, tmp_path):
    p = _check(cli, tmp_path, "--format", "sarif")
    doc = json.loads(p.stdout)
    uris = {r["helpUri"] for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert uris and all(u.split("#")[0] == Registry.default().get("SB004").help_uri.split("#")[0] for u in uris)
    assert not any("github.com/nanochat-preflight" in u for u in uris)


@pytest.mark.skipif(
    not (shutil.which("scontrol") and Path("/etc/slurm/slurm.conf").is_file()),
    reason="needs SLURM's client tools and a slurm.conf (scripts/local-slurm.sh)",
)
def test_skip_reason_quotes_the_tools_meaningful_line(cli, tmp_path):
    """A controller that does not answer: real `scontrol ping` frames its message in rows of '*'."""
    conf = Path("/etc/slurm/slurm.conf").read_text()
    conf = re.sub(r"(?m)^SlurmctldPort=.*$", "", conf) + "\nSlurmctldPort=6999\n"  # nothing listens there
    (tmp_path / "slurm.conf").write_text(conf)
    ping = subprocess.run(
        ["scontrol", "ping"],
        env={"SLURM_CONF": str(tmp_path / "slurm.conf"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "*****" in ping.stdout and "is DOWN" in ping.stdout  # what the tool prints
    script = tmp_path / "job.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --time=00:10:00\nset -e\nexport OMP_NUM_THREADS=1\npython -m scripts.tok_train\n"
    )
    p = cli(
        "preflight",
        "check",
        str(script),
        "--select",
        "SB014",
        "--format",
        "json",
        cwd=tmp_path,
        env={"SLURM_CONF": str(tmp_path / "slurm.conf"), "HOME": str(tmp_path)},
    )
    (result,) = json.loads(p.stdout)["checks"]
    assert result["status"] == "skip"
    assert re.search(r"Slurmctld\(primary\) at \S+ is DOWN$", result["reason"]), result["reason"]
    assert "*" not in result["reason"]


def test_version_and_help_start_without_torch(cli):
    p = subprocess.run(
        [sys.executable, "-c", "import sys; from preflight.cli import preflight_app; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert p.stdout.strip() == "False"
