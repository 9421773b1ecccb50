"""Start-up stays light: --help and a torch-free check never import torch, pyarrow or jsonschema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "pyarrow", "jsonschema", "numpy", "pydantic")
# light, but imported only where used (a few ms each on a login node): an import at module level undoes that
ONLY_WHERE_USED = ("zipfile", "tempfile", "importlib.resources", "hashlib", "socket", "yaml")


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


def test_check_imports_light_modules_only_where_used(tmp_path):
    """Without site's .pth files (which load importlib.resources, zipfile... in some environments before any
    of our code runs), a check of a small script with no base dir imports none of ONLY_WHERE_USED."""
    import site

    script = tmp_path / "job.sbatch"
    script.write_text("#!/bin/bash\n#SBATCH --time=01:00:00\nset -euo pipefail\npython -m scripts.base_train\n")
    paths = [str(Path(__file__).resolve().parents[1]), *site.getsitepackages()]
    code = (
        f"import sys; sys.path[:0] = {paths[:1]!r}; sys.path += {paths[1:]!r}\n"
        "import atexit\n"
        "atexit.register(lambda: print('MODULES', ' '.join(sys.modules), file=sys.stderr))\n"
        "sys.argv[0] = 'preflight'\nfrom preflight.cli import preflight_main\npreflight_main()\n"
    )
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code, "check", str(script), "--base-dir", str(tmp_path / "base")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode in (0, 1) and "MODULES" in proc.stderr, proc.stderr[-2000:]
    modules = set(proc.stderr.split("MODULES", 1)[1].split())
    assert "preflight.checks.network" in modules  # the checks did load
    assert not [m for m in ONLY_WHERE_USED if m in modules]
