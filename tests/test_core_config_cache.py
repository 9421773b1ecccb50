"""A config that passed the schema once skips jsonschema on later runs; nothing else changes: invalid
or edited documents are still reported, secrets are never written, a cache nobody can trust is ignored."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from preflight import config_cache
from preflight.config import ConfigError, load_config

GOOD = "fail-on: warning\nnetwork: offline\ngpu:\n  type: H100 SXM\n"


def run_check(project: Path, cache: Path) -> tuple[subprocess.CompletedProcess, bool]:
    """`preflight check` (one check) in ``project`` as a user runs it; also whether jsonschema was imported."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('JSONSCHEMA' if 'jsonschema' in sys.modules else 'NOSCHEMA', file=sys.stderr))\n"
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
    return proc, "JSONSCHEMA" in proc.stderr


@pytest.fixture
def project(tmp_path):
    (tmp_path / "job.sbatch").write_text("#!/bin/bash\n#SBATCH --time=01:00:00\nset -euo pipefail\necho hi\n")
    (tmp_path / "base").mkdir()
    (tmp_path / "preflight.yaml").write_text(GOOD)
    return tmp_path


def test_second_run_with_the_same_config_skips_jsonschema(project, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    first, first_schema = run_check(project, cache)
    second, second_schema = run_check(project, cache)
    assert first.returncode in (0, 1) and second.returncode == first.returncode, first.stderr
    assert first_schema and not second_schema

    def report(proc):  # the same report either way, but for the run's duration
        return re.sub(r" in [0-9.]+s$", "", proc.stdout.strip())

    assert report(first) == report(second)
    stored = (cache / "nanochat-preflight" / "valid-configs").read_text()
    assert re.fullmatch(r"(?:[0-9a-f]{64}\n)+", stored), stored  # digests only
    assert oct((cache / "nanochat-preflight" / "valid-configs").stat().st_mode & 0o777) == "0o600"


def test_an_invalid_edit_after_a_valid_run_is_still_reported(project, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    assert run_check(project, cache)[0].returncode in (0, 1)
    stored = (cache / "nanochat-preflight" / "valid-configs").read_text()
    (project / "preflight.yaml").write_text(GOOD + "jobs: many\n")
    for _ in range(2):  # and not remembered: the second run says it again
        proc, schema = run_check(project, cache)
        assert proc.returncode == 2 and schema
        assert "preflight.yaml: $.jobs: 'many' is not of type 'integer'" in proc.stderr, proc.stderr
    assert (cache / "nanochat-preflight" / "valid-configs").read_text() == stored


def test_a_cache_others_can_write_is_not_believed(tmp_path):
    """A digest planted in a group-writable file (or folder) does not let an invalid document through."""
    bad = {"jobs": "many"}
    environ = {"XDG_CACHE_HOME": str(tmp_path)}
    from preflight import schemas

    key = config_cache.digest(bad, schemas.path("config.schema.json").read_bytes())
    folder = tmp_path / "nanochat-preflight"
    folder.mkdir(mode=0o700)
    planted = folder / "valid-configs"
    planted.write_text(key + "\n")
    planted.chmod(0o620)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "preflight.yaml").write_text("jobs: many\n")
    with pytest.raises(ConfigError, match="is not of type 'integer'"):
        load_config({}, environ=environ, cwd=tmp_path / "p")
    planted.chmod(0o600)
    folder.chmod(0o770)
    with pytest.raises(ConfigError, match="is not of type 'integer'"):
        load_config({}, environ=environ, cwd=tmp_path / "p")
    folder.chmod(0o700)
    assert config_cache.known(key, environ)  # the same file, now private, is believed


def test_an_unwritable_cache_folder_is_no_error(project, tmp_path_factory):
    """A cache that cannot be written (here a file where its folder should be: as root, modes do not stop
    writes) only means validating on every run."""
    cache = tmp_path_factory.mktemp("cache")
    (cache / "nanochat-preflight").write_text("not a folder")
    for _ in range(2):
        proc, schema = run_check(project, cache)
        assert proc.returncode in (0, 1) and schema and "Traceback" not in proc.stderr, proc.stderr
    assert (cache / "nanochat-preflight").read_text() == "not a folder"


def test_documents_that_are_not_plain_json_are_validated_every_time():
    schema = b"{}"
    assert config_cache.digest({"a": [1, 2.5, True, None, "x"]}, schema) is not None
    assert config_cache.digest({1: "integer key"}, schema) is None
    assert config_cache.digest({"when": __import__("datetime").date(2026, 1, 1)}, schema) is None
    assert config_cache.digest({"a": 1}, schema) != config_cache.digest({"a": 1}, b'{"new": "schema"}')
    assert config_cache.digest({"a": 1, "b": 2}, schema) == config_cache.digest({"b": 2, "a": 1}, schema)
