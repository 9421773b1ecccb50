"""Start-up stays light: --help and a torch-free check never import torch, pyarrow or jsonschema."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HEAVY = ("torch", "pyarrow", "jsonschema", "numpy", "pydantic")


def _modules_after(tmp_path, tool, *args, cwd=None, env=None):
    out = tmp_path / "modules.txt"
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(out)!r}, 'w').write('\\n'.join(sorted(sys.modules))))\n"
        f"sys.argv[0] = {tool!r}\n"
        f"from preflight.cli import {tool}_main\n"
        f"{tool}_main()\n"
    )
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd or tmp_path,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )
    return proc, set(out.read_text().split())


@pytest.mark.parametrize("tool,args", [("preflight", ["--help"]), ("postflight", ["--help"]), ("preflight", ["list"])])
def test_help_imports_nothing_heavy(tmp_path, tool, args):
    proc, modules = _modules_after(tmp_path, tool, *args)
    assert proc.returncode == 0, proc.stderr
    assert not [m for m in HEAVY if m in modules]


def test_torch_free_check_imports_nothing_heavy(tmp_path):
    script = tmp_path / "job.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --time=01:00:00\nset -euo pipefail\n"
        "export NANOCHAT_BASE_DIR=$PWD/base\nexport OMP_NUM_THREADS=1\n"
        "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20\n"
    )
    (tmp_path / "base").mkdir()
    proc, modules = _modules_after(
        tmp_path, "preflight", "check", str(script), "--base-dir", str(tmp_path / "base"), env={"HOME": str(tmp_path)}
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not [m for m in HEAVY if m in modules], [m for m in HEAVY if m in modules]
