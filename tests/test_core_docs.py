"""docs/checks.md is generated from the registry and must not go stale."""

from __future__ import annotations

from pathlib import Path

from preflight.docs import generate
from preflight.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


def test_checks_md_is_current():
    current = (ROOT / "docs" / "checks.md").read_text(encoding="utf-8")
    assert current == generate(Registry.default(entry_points=False)), (
        "docs/checks.md is stale: run `preflight docs` and commit the result"
    )


def test_every_check_is_documented():
    text = (ROOT / "docs" / "checks.md").read_text(encoding="utf-8")
    for spec in Registry.default(entry_points=False):
        assert f"## {spec.code} {spec.name}" in text


def test_compiled_profiles_are_current():
    from preflight.profiles import COMPILED, _profiles_dir, compile_profiles

    assert (_profiles_dir() / COMPILED).read_text(encoding="utf-8") == compile_profiles(), (
        "preflight/schemas/profiles/compiled.json is stale: run `preflight docs` and commit the result"
    )


def test_no_product_text_cites_a_document_outside_the_repository():
    """What ships and what users read stands alone: no `facts §4`, `architecture §2.1`, `../shared/...`."""
    import re
    import subprocess

    cited = re.compile(
        r"(?:facts|architecture|classic(?: nanochat)?)[ -]§|\.\./shared|nanochat-(?:facts|architecture)\.md"
    )
    files = subprocess.run(
        [
            "git",
            "ls-files",
            "preflight",
            "nanochat",
            "docs",
            "scripts",
            "bench",
            "examples",
            "README.md",
            "BENCHMARKS.md",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    offenders = [
        f"{f}:{n}"
        for f in files
        if (ROOT / f).is_file() and not (ROOT / f).is_symlink()
        for n, line in enumerate((ROOT / f).read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if cited.search(line)
    ]
    assert offenders == []
