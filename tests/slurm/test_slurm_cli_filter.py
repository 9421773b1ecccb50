"""examples/cli_filter.lua against the real cluster: sbatch itself refuses a script preflight fails.

A client-only slurm.conf (CliFilterPlugins=lua) in a temp dir: the shared cluster's own config is
untouched, so other tests' sbatch calls do not go through the filter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from slurm_helpers import slurm_env, wait_final

pytestmark = pytest.mark.slurm
ROOT = Path(__file__).resolve().parents[2]
PLUGIN = Path("/usr/lib/x86_64-linux-gnu/slurm-wlm/cli_filter_lua.so")


@pytest.fixture
def filtered(slurm, tmp_path):
    if not PLUGIN.exists():
        pytest.skip(f"{PLUGIN} not installed (Debian ships it in slurm-wlm-basic-plugins)")
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    src = Path(slurm_env().get("SLURM_CONF") or "/etc/slurm/slurm.conf")
    text = src.read_text()
    (conf_dir / "slurm.conf").write_text("CliFilterPlugins=lua\n" + text)
    for extra in ("gres.conf",):
        if (src.parent / extra).exists():
            (conf_dir / extra).write_text((src.parent / extra).read_text())
    (conf_dir / "cli_filter.lua").write_text((ROOT / "examples" / "cli_filter.lua").read_text())
    wrapper = tmp_path / "preflight-bin"
    wrapper.write_text(
        f'#!/bin/sh\nexec {sys.executable} -c \'import sys; sys.argv[0] = "preflight"; '
        f'from preflight.cli import preflight_main; preflight_main()\' "$@"\n'
    )
    wrapper.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    (work / "preflight.yaml").write_text("select: [SB004]\n")  # site policy: only output-dir-missing
    env = {
        **slurm_env(),
        "SLURM_CONF": str(conf_dir / "slurm.conf"),
        "PREFLIGHT_CLI_FILTER_BIN": str(wrapper),
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "NO_COLOR": "1",
    }
    return work, env


def _sbatch(work: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sbatch", "--parsable", *args], cwd=work, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_filter_rejects_failing_script(filtered):
    work, env = filtered
    (work / "bad.sbatch").write_text("#!/bin/bash\n#SBATCH --output=nodir/%j.out\nset -euo pipefail\necho hi\n")
    res = _sbatch(work, env, "bad.sbatch")
    assert res.returncode == 1 and res.stdout.strip() == ""
    assert "SB004 output-dir-missing" in res.stderr and "cli_filter plugin terminated with error" in res.stderr


def test_cli_filter_lets_clean_script_through(filtered):
    work, env = filtered
    (work / "good.sbatch").write_text("#!/bin/bash\n#SBATCH --output=%x_%j.out\nset -euo pipefail\necho hi\n")
    res = _sbatch(work, env, "good.sbatch")
    assert res.returncode == 0, res.stderr
    info = wait_final(res.stdout.strip().split(";")[0])
    assert info.state == "COMPLETED"


def test_cli_filter_skip_and_missing_preflight_let_the_job_through(filtered):
    work, env = filtered
    (work / "bad.sbatch").write_text("#!/bin/bash\n#SBATCH --output=nodir/%j.out\necho hi\n")
    skipped = _sbatch(work, {**env, "PREFLIGHT_CLI_FILTER_SKIP": "1"}, "--test-only", "bad.sbatch")
    assert skipped.returncode == 0 and "skipped" in skipped.stderr
    missing = _sbatch(work, {**env, "PREFLIGHT_CLI_FILTER_BIN": str(work / "nope")}, "--test-only", "bad.sbatch")
    assert missing.returncode == 0 and "not found; the script was not checked" in missing.stderr
