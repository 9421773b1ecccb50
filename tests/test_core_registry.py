"""The registry: declaration rules, duplicates, and the three registration paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preflight.registry import DOC_SECTIONS, RegistrationError, Registry, check, doc_sections

DOC = """
    What it checks: a thing.
    Why it matters: it breaks.
    Example:
        bad
    How to fix: do it right.
"""


def _plugin(directory: Path, name: str, code: str, check_name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(
        "from preflight.registry import check\n"
        "from preflight.model import Finding\n\n\n"
        f'@check("{code}", "{check_name}", stage="pre", severity="error", requires=())\n'
        "def _c():\n"
        f'    """{DOC}"""\n'
        '    yield Finding("site rule fired", fix="obey the site rule")\n'
    )
    return path


def test_builtin_checks_load_with_metadata():
    reg = Registry.default(entry_points=False)
    assert len(reg) >= 1
    for spec in reg:
        assert spec.stage in ("pre", "post")
        assert spec.origin and ":" in spec.origin
    assert reg.get("SB900").name == "unused-suppression"
    assert reg.get("unused-suppression").code == "SB900"


@pytest.mark.parametrize(
    "code,name,message",
    [
        ("sb001", "ok-name", "must match"),
        ("SB01", "ok-name", "must match"),
        ("SB001", "Not_Kebab", "kebab-case"),
    ],
)
def test_invalid_declarations_are_rejected(code, name, message):
    with pytest.raises(RegistrationError, match=message):

        @check(code, name)
        def _c():
            """x"""


def test_undeclared_parameter_is_rejected():
    with pytest.raises(RegistrationError, match="not declared in requires"):

        @check("ZZ901", "undeclared-param", requires=("script",))
        def _c(script, plan):
            """x"""


def test_requires_defaults_to_parameter_names():
    @check("ZZ902", "param-names", stage="post")
    def _c(script, ctx, plan):
        """x"""

    spec = _c.__preflight_check__
    assert spec.requires == ("script", "plan") and spec.wants_ctx


def test_duplicate_code_names_both_places(tmp_path):
    _plugin(tmp_path / "a", "first", "ZZ100", "first-rule")
    _plugin(tmp_path / "b", "second", "ZZ100", "second-rule")
    reg = Registry().load_plugin_dir(tmp_path / "a")
    with pytest.raises(RegistrationError) as err:
        reg.load_plugin_dir(tmp_path / "b")
    msg = str(err.value)
    assert "duplicate check code ZZ100" in msg and "first.py" in msg and "second.py" in msg


def test_duplicate_name_names_both_places(tmp_path):
    _plugin(tmp_path / "a", "one", "ZZ101", "same-name")
    _plugin(tmp_path / "b", "two", "ZZ102", "same-name")
    reg = Registry().load_plugin_dir(tmp_path / "a")
    with pytest.raises(
        RegistrationError,
        match=r"duplicate check name 'same-name'.*one\.py.*two\.py|duplicate check name 'same-name'.*two\.py.*one\.py",
    ):
        reg.load_plugin_dir(tmp_path / "b")


def test_plugin_dir_from_config_runs_through_cli(tmp_path, cli):
    _plugin(tmp_path / "site_checks", "site", "ZZ200", "site-rule")
    (tmp_path / "preflight.yaml").write_text("plugins: [./site_checks]\nselect: [ZZ]\n")
    listed = cli("preflight", "list", "--format", "json", "--trust-config", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert any(row["code"] == "ZZ200" for row in json.loads(listed.stdout))
    ran = cli("preflight", "check", "--format", "json", "--trust-config", cwd=tmp_path)
    assert ran.returncode == 1
    doc = json.loads(ran.stdout)
    assert [c["code"] for c in doc["checks"]] == ["ZZ200"]
    assert doc["checks"][0]["findings"][0]["message"] == "site rule fired"


def test_entry_point_plugin_is_loaded(tmp_path, cli):
    """A third-party package advertises checks through the `preflight.checks` entry-point group."""
    site = tmp_path / "site"
    _plugin(site, "thirdparty_checks", "ZZ300", "third-party-rule")
    dist = site / "thirdparty_checks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-checks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[preflight.checks]\nthirdparty = thirdparty_checks\n")
    result = cli("preflight", "explain", "ZZ300", cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    assert "third-party-rule" in result.stdout and "How to fix" in result.stdout


def test_broken_plugin_is_a_clear_error(tmp_path, cli):
    (tmp_path / "site_checks").mkdir()
    (tmp_path / "site_checks" / "bad.py").write_text("import does_not_exist_anywhere\n")
    (tmp_path / "preflight.yaml").write_text("plugins: [./site_checks]\n")
    result = cli("preflight", "check", cwd=tmp_path, env={"PREFLIGHT_TRUST_CONFIG": "1"})
    assert result.returncode == 2
    assert "bad.py failed to import" in result.stderr and "Traceback" not in result.stderr


def test_doc_sections_parse():
    sections = doc_sections(DOC)
    assert list(sections) == list(DOC_SECTIONS)
    assert sections["Example"] == "bad"
