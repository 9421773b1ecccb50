"""Walk the whole registry: every check has full docs and good/bad cases that behave.

Cases live in tests/cases/*.py (see preflight.testing). A bad case must make the check
report at least one finding and only of its own code; a good case must pass, not skip.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from preflight.model import Status
from preflight.registry import DOC_SECTIONS, Registry, doc_sections
from preflight.testing import CASES, run_scenario

CASES_DIR = Path(__file__).resolve().parent / "cases"


def _load_cases() -> None:
    for path in sorted(CASES_DIR.glob("*.py")):
        name = f"cases_{path.stem}"
        if name in globals().get("_LOADED", set()):
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _LOADED.add(name)


_LOADED: set[str] = set()
_load_cases()
REGISTRY = Registry.default(entry_points=False)
SPECS = list(REGISTRY)


def _cases_for(spec, kind):
    return CASES.get(spec.code, {}).get(kind, []) + CASES.get(spec.name, {}).get(kind, [])


def test_every_case_names_a_registered_check():
    unknown = [key for key in CASES if REGISTRY.get(key) is None]
    assert not unknown, f"cases for unknown checks: {unknown}"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.code}-{s.name}")
def test_docstring_has_every_section(spec):
    sections = doc_sections(spec.doc)
    missing = [s for s in DOC_SECTIONS if not sections.get(s)]
    assert not missing, f"{spec.code} {spec.name} ({spec.origin}) lacks: {missing}"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.code}-{s.name}")
def test_has_good_and_bad_cases(spec):
    assert _cases_for(spec, "bad"), f"{spec.code} {spec.name} has no bad case in tests/cases/"
    assert _cases_for(spec, "good"), f"{spec.code} {spec.name} has no good case in tests/cases/"


PARAMS = [(spec, kind, i) for spec in SPECS for kind in ("bad", "good") for i in range(len(_cases_for(spec, kind)))]


@pytest.mark.parametrize("spec,kind,index", PARAMS, ids=lambda v: getattr(v, "code", str(v)))
def test_case(spec, kind, index, tmp_path):
    scenario = _cases_for(spec, kind)[index]()
    result = run_scenario(scenario, tmp_path, select=[spec.code], registry=REGISTRY)
    checks = {c.code: c for c in result.checks}
    assert spec.code in checks, f"{spec.code} did not run (stage {spec.stage} vs scenario {scenario.stage}?)"
    check = checks[spec.code]
    if kind == "bad":
        assert check.status in (Status.FAIL, Status.WARN, Status.PASS), f"{check.status}: {check.reason}"
        assert check.findings, f"bad case produced no finding ({check.status.value}: {check.reason})"
        assert {f.code for f in check.findings} == {spec.code}
        assert all(f.fix for f in check.findings), "every finding needs a fix line"
    else:
        assert check.status is Status.PASS, (
            f"good case: {check.status.value} ({check.reason}) {[f.message for f in check.findings]}"
        )
        assert not check.findings, [f.message for f in check.findings]
