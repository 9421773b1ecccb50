"""Output formats and exit codes, through the real CLI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from preflight import schemas


def _doc(what: str) -> str:
    return f'''"""
    What it checks: {what}.

    Why it matters: y.

    Example:
        z

    How to fix: w.
    """'''


PLUGIN = f"""
from preflight.model import Finding
from preflight.registry import check


@check("OUT001", "script-error", severity="error", requires=())
def script_error(ctx):
    {_doc("errors")}
    yield Finding("line 3 is wrong, with a comma, a colon: and 100% sure", path=str(ctx.inputs.script), line=3,
                  fix="change line 3")


@check("OUT002", "env-warning", severity="warning", requires=())
def env_warning():
    {_doc("warns")}
    yield Finding("a warning without a location", fix="set VAR=1")


@check("OUT003", "many-infos", severity="info", requires=())
def many_infos():
    {_doc("informs")}
    for i in range(60):
        yield Finding(f"info {{i}}", fix=None)


@check("OUT004", "clean", severity="error", requires=())
def clean():
    {_doc("nothing")}
    return []
"""


@pytest.fixture
def cli(cli):
    """The CLI with this project's own config trusted: its plugins: are the checks these tests render."""

    def run(*args, env=None, **kw):
        return cli(*args, env={"PREFLIGHT_TRUST_CONFIG": "1", **(env or {})}, **kw)

    return run


@pytest.fixture
def project(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "out_checks.py").write_text(PLUGIN)
    (tmp_path / "preflight.yaml").write_text("plugins: [./site]\nselect: [OUT]\n")
    (tmp_path / "job.sbatch").write_text("#!/bin/bash\nset -e\nbad line\n")
    return tmp_path


def test_json_validates_against_schema(project, cli):
    result = cli("preflight", "check", "job.sbatch", "--format", "json", cwd=project)
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, schemas.load_json("results.schema.json"))
    assert doc["schema_version"].startswith("1.") and doc["verdict"] == "fail" and doc["stage"] == "pre"
    codes = {c["code"]: c for c in doc["checks"]}
    finding = codes["OUT001"]["findings"][0]
    assert finding["location"] == {"path": str(project / "job.sbatch"), "line": 3}
    assert finding["fix"] == "change line 3" and finding["name"] == "script-error"
    assert codes["OUT004"]["status"] == "pass"
    # human text goes to stderr when a machine format goes to stdout
    assert "FAIL" in result.stderr


def test_exit_codes(project, cli):
    assert cli("preflight", "check", "job.sbatch", cwd=project).returncode == 1
    assert cli("preflight", "check", "job.sbatch", "--exit-zero", cwd=project).returncode == 0
    assert cli("preflight", "check", "job.sbatch", "--select", "OUT002,OUT003", cwd=project).returncode == 0
    assert (
        cli("preflight", "check", "job.sbatch", "--select", "OUT002", "--fail-on", "warning", cwd=project).returncode
        == 1
    )
    usage = cli("preflight", "check", "job.sbatch", "--select", "NOPE999", cwd=project)
    assert usage.returncode == 2 and "NOPE999" in usage.stderr
    missing = cli("preflight", "check", "nope.sbatch", cwd=project)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert cli("preflight", "check", "--format", "yaml", cwd=project).returncode == 2


def test_text_is_grouped_with_a_verdict(project, cli):
    result = cli("preflight", "check", "job.sbatch", cwd=project)
    out = result.stdout
    assert "OUT001 script-error" in out and "fix: change line 3" in out and f"{project / 'job.sbatch'}:3" in out
    assert out.strip().splitlines()[-1].startswith("FAIL: 1 error, 1 warning, 60 info")
    assert "\x1b[" not in out  # no colour codes in a pipe


def test_jsonl(project, cli):
    result = cli("preflight", "check", "job.sbatch", "--format", "jsonl", cwd=project)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert sum(r["type"] == "finding" for r in rows) == 62
    assert sum(r["type"] == "check" for r in rows) == 4
    assert rows[-1]["type"] == "summary" and rows[-1]["verdict"] == "fail"


def test_sarif(project, cli):
    result = cli("preflight", "check", "job.sbatch", "--format", "sarif", cwd=project)
    doc = json.loads(result.stdout)
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert set(rules) == {"OUT001", "OUT002", "OUT003", "OUT004"}
    from preflight.registry import help_uri_base

    assert rules["OUT001"]["name"] == "script-error"
    assert (
        rules["OUT001"]["helpUri"] == help_uri_base() + "#out001-script-error"
    )  # [project.urls] or the shipped catalogue
    assert rules["OUT001"]["shortDescription"]["text"] == "Errors."
    first = next(r for r in run["results"] if r["ruleId"] == "OUT001")
    loc = first["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "job.sbatch" and loc["region"]["startLine"] == 3
    assert first["level"] == "error"
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels["OUT002"] == "warning" and levels["OUT003"] == "note"
    for r in run["results"]:
        assert run["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"]


def test_junit(project, cli):
    result = cli("preflight", "check", "job.sbatch", "--format", "junit", cwd=project)
    root = ET.fromstring(result.stdout)
    cases = root.findall(".//testcase")
    assert len(cases) == 4
    ids = [(c.get("classname"), c.get("name")) for c in cases]
    assert len(set(ids)) == len(ids)
    by_name = {c.get("name"): c for c in cases}
    assert by_name["OUT001 script-error"].find("failure") is not None
    assert by_name["OUT004 clean"].find("failure") is None
    assert root.get("failures") == "1"


def test_github_annotations_capped_and_summary(project, cli, tmp_path):
    summary = tmp_path / "summary.md"
    result = cli(
        "preflight", "check", "job.sbatch", "--format", "github", cwd=project, env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    lines = result.stdout.splitlines()
    annotations = [ln for ln in lines if ln.startswith("::") and "more findings not shown" not in ln]
    assert len(annotations) == 50
    assert any("more findings not shown" in ln for ln in lines) and "12 more" in result.stdout
    err = next(ln for ln in lines if ln.startswith("::error"))
    assert err.startswith("::error file=job.sbatch,line=3,title=OUT001 script-error::")
    assert "a comma, a colon: and 100%25 sure" in err  # data escaping
    assert "## Preflight: FAIL" in summary.read_text()


def test_markdown_and_output_file(project, cli):
    out = project / "reports" / "pre.md"
    result = cli("preflight", "check", "job.sbatch", "--format", "markdown", "--output-file", str(out), cwd=project)
    assert result.returncode == 1 and result.stdout == ""
    text = out.read_text()
    assert "| error | OUT001 | script-error |" in text
    assert "FAIL" in result.stderr


def test_list_and_explain(project, cli):
    listed = cli("preflight", "list", "--format", "json", cwd=project)
    rows = json.loads(listed.stdout)
    assert {"OUT001", "SB900"} <= {r["code"] for r in rows}
    table = cli("preflight", "list", cwd=project)
    assert "unused-suppression" in table.stdout
    explained = cli("preflight", "explain", "unused-suppression", cwd=project)
    for section in ("What it checks:", "Why it matters:", "Example:", "How to fix:"):
        assert section in explained.stdout
    unknown = cli("preflight", "explain", "XX000", cwd=project)
    assert unknown.returncode == 2 and "no check named" in unknown.stderr
