"""A config that passed the schema once skips PyYAML and jsonschema on later runs; nothing else changes:
invalid or edited documents are still reported, and a cache that others could write is ignored."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from preflight import config_cache
from preflight.config import ConfigError, load_config

GOOD = "fail-on: warning\nnetwork: offline\ngpu:\n  type: H100 SXM\n"


def run_check(project: Path, cache: Path) -> tuple[subprocess.CompletedProcess, set[str]]:
    """`preflight check` (one check) in ``project`` as a user runs it; also which of jsonschema and yaml
    the run imported."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('IMPORTED', *[m for m in ('jsonschema', 'yaml') if m in sys.modules],"
        " file=sys.stderr))\n"
        "sys.argv[0] = 'preflight'\nfrom preflight.cli import preflight_main\npreflight_main()\n"
    )
    env = {**os.environ, "HOME": str(project), "XDG_CACHE_HOME": str(cache), "NO_COLOR": "1"}
    env.pop("PREFLIGHT_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-c", code, "check", "job.sbatch", "--base-dir", "base", "--select", "SB003"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc, set(proc.stderr.split("IMPORTED", 1)[1].split()) if "IMPORTED" in proc.stderr else {"?"}


@pytest.fixture
def project(tmp_path):
    (tmp_path / "job.sbatch").write_text("#!/bin/bash\n#SBATCH --time=01:00:00\nset -euo pipefail\necho hi\n")
    (tmp_path / "base").mkdir()
    (tmp_path / "preflight.yaml").write_text(GOOD)
    return tmp_path


def cache_doc(cache: Path) -> dict:
    return json.loads((cache / "nanochat-preflight" / config_cache.FILE_NAME).read_text())


def test_second_run_with_the_same_config_skips_yaml_and_jsonschema(project, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    first, first_imported = run_check(project, cache)
    second, second_imported = run_check(project, cache)
    assert first.returncode in (0, 1) and second.returncode == first.returncode, first.stderr
    assert first_imported == {"jsonschema", "yaml"} and second_imported == set()

    def report(proc):  # the same report either way, but for the run's duration
        return re.sub(r" in [0-9.]+s$", "", proc.stdout.strip())

    assert report(first) == report(second)
    entries = dict(cache_doc(cache)["entries"])
    assert entries["yaml:" + GOOD] == {"fail-on": "warning", "network": "offline", "gpu": {"type": "H100 SXM"}}
    assert entries['json:{"select":["SB003"]}'] == {"select": ["SB003"]}  # the command line's values
    assert oct((cache / "nanochat-preflight" / config_cache.FILE_NAME).stat().st_mode & 0o777) == "0o600"


def test_an_invalid_edit_after_a_valid_run_is_still_reported(project, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    assert run_check(project, cache)[0].returncode in (0, 1)
    stored = cache_doc(cache)
    (project / "preflight.yaml").write_text(GOOD + "jobs: many\n")
    for _ in range(2):  # and not remembered: the second run says it again
        proc, imported = run_check(project, cache)
        assert proc.returncode == 2 and "jsonschema" in imported
        assert "preflight.yaml: $.jobs: 'many' is not of type 'integer'" in proc.stderr, proc.stderr
    assert cache_doc(cache) == stored


def plant(tmp_path: Path, text: str, values: dict) -> Path:
    """A cache entry that says ``text`` parsed to ``values`` and passed (what only an earlier run may write)."""
    config_cache.remember("yaml:" + text, values, {"XDG_CACHE_HOME": str(tmp_path)})
    return tmp_path / "nanochat-preflight" / config_cache.FILE_NAME


def test_a_cache_others_can_write_is_not_believed(tmp_path):
    """An entry planted in a group-writable file (or folder) lets no invalid document through and adds
    no values (a cached `plugins:` would load code)."""
    environ = {"XDG_CACHE_HOME": str(tmp_path)}
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "preflight.yaml").write_text("jobs: many\n")
    planted = plant(tmp_path, "jobs: many\n", {"jobs": 4, "plugins": ["/tmp/evil"]})
    planted.chmod(0o620)
    with pytest.raises(ConfigError, match="is not of type 'integer'"):
        load_config({}, environ=environ, cwd=tmp_path / "p")
    planted.chmod(0o600)
    planted.parent.chmod(0o770)
    with pytest.raises(ConfigError, match="is not of type 'integer'"):
        load_config({}, environ=environ, cwd=tmp_path / "p")
    planted.parent.chmod(0o700)
    assert load_config({}, environ=environ, cwd=tmp_path / "p")["jobs"] == 4  # private: believed, as designed


def test_entries_of_another_schema_are_forgotten(tmp_path):
    environ = {"XDG_CACHE_HOME": str(tmp_path)}
    planted = plant(tmp_path, "jobs: many\n", {"jobs": 4})
    doc = json.loads(planted.read_text())
    planted.write_text(json.dumps({**doc, "schema": "0.0.1:crc32:00000000:1"}))
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "preflight.yaml").write_text("jobs: many\n")
    with pytest.raises(ConfigError, match="is not of type 'integer'"):
        load_config({}, environ=environ, cwd=tmp_path / "p")


@pytest.mark.parametrize("content", ["{not json", '{"schema": 1, "entries": 2}', "[]", "x" * 5_000_000])
def test_a_corrupt_cache_only_means_validating_again(tmp_path, content):
    environ = {"XDG_CACHE_HOME": str(tmp_path)}
    folder = tmp_path / "nanochat-preflight"
    folder.mkdir(mode=0o700)
    (folder / config_cache.FILE_NAME).write_text(content)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "preflight.yaml").write_text("jobs: 3\n")
    assert load_config({}, environ=environ, cwd=tmp_path / "p")["jobs"] == 3
    assert config_cache.lookup("yaml:jobs: 3\n", environ) == {"jobs": 3}  # and the cache is whole again


def test_an_unwritable_cache_folder_is_no_error(project, tmp_path_factory):
    """A cache that cannot be written (here a file where its folder should be: as root, modes do not stop
    writes) only means parsing and validating on every run."""
    cache = tmp_path_factory.mktemp("cache")
    (cache / "nanochat-preflight").write_text("not a folder")
    for _ in range(2):
        proc, imported = run_check(project, cache)
        assert proc.returncode in (0, 1) and "jsonschema" in imported and "Traceback" not in proc.stderr, proc.stderr
    assert (cache / "nanochat-preflight").read_text() == "not a folder"


def test_only_plain_json_values_are_remembered(tmp_path):
    environ = {"XDG_CACHE_HOME": str(tmp_path)}
    assert config_cache.json_key({"b": [1, 2.5, True, None, "x"], "a": 1}) == 'json:{"a":1,"b":[1,2.5,true,null,"x"]}'
    assert config_cache.json_key({1: "integer key"}) is None
    assert config_cache.json_key({"when": __import__("datetime").date(2026, 1, 1)}) is None
    config_cache.remember("yaml:when: 2026-01-01\n", {"when": __import__("datetime").date(2026, 1, 1)}, environ)
    config_cache.remember("yaml:" + "x" * (config_cache.MAX_TEXT + 1), {"jobs": 1}, environ)
    assert not (tmp_path / "nanochat-preflight" / config_cache.FILE_NAME).exists()
