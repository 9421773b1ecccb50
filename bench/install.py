"""Install size and time in fresh venvs: the light package against the same package with [torch].

    python -m bench --only install

Builds the wheel from this checkout, then, for each variant, creates a fresh venv and times
``pip install <wheel>`` / ``pip install "<wheel>[torch]"`` with pip's cache off, and measures the
venv's size minus a bare venv's. pip resolves from the indexes this machine's pip is configured
with (here: mostly local file indexes, so the times are mostly install time; downloads come on
top elsewhere, in proportion to the sizes). [torch] is what pip resolves for ``torch>=2.4`` on
Linux x86_64: PyPI's default build, with its CUDA libraries.
With ``--tiny`` the torch variant is left out (it is the slow part).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _wheel(tmp: Path) -> Path:
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "preflight", src / "preflight", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    return next((tmp / "dist").glob("*.whl"))


def _size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def _venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True)
    return path / "bin" / "python"


def measure(wheel: Path, extra: str, tmp: Path, bare: int) -> tuple[float, int, list[str]]:
    py = _venv(tmp / f"venv{extra or '-light'}")
    target = f"{wheel}[{extra}]" if extra else str(wheel)
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1"}
    start = time.perf_counter()
    p = subprocess.run([str(py), "-m", "pip", "install", "-q", target], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        raise RuntimeError(f"pip install {target} failed: {p.stderr[-500:]}")
    frozen = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True).stdout.split()
    return wall, _size(tmp / f"venv{extra or '-light'}") - bare, frozen


def bench(tiny: bool = False) -> list:
    from bench.common import Row

    with tempfile.TemporaryDirectory(prefix="pf_install_") as d:
        tmp = Path(d)
        wheel = _wheel(tmp)
        _venv(tmp / "bare")
        bare = _size(tmp / "bare")
        light_t, light_b, light_pkgs = measure(wheel, "", tmp, bare)
        heavy = None if tiny else measure(wheel, "torch", tmp, bare)
    names = {p.split("==")[0].lower() for p in light_pkgs}
    assert not names & {"torch", "tiktoken", "rustbpe"}, (
        f"the light install pulled {names & {'torch', 'tiktoken', 'rustbpe'}}"
    )
    heavy_what = "the same with [torch]"
    if heavy:
        torch = next((p.split("==")[1] for p in heavy[2] if p.lower().startswith("torch==")), "?")
        cuda = sum(p.lower().startswith(("nvidia-", "cuda-")) for p in heavy[2])
        heavy_what += f": torch {torch} + {cuda} CUDA packages"
    rows = [
        Row(
            what="install: pip install nanochat-preflight (fresh venv): size",
            ours=float(light_b),
            unit="B",
            baseline=float(heavy[1]) if heavy else None,
            baseline_what=heavy_what,
            note=f"{len(light_pkgs)} packages, no torch/tiktoken/rustbpe",
        ),
        Row(
            what="install: pip install nanochat-preflight (fresh venv): time",
            ours=light_t,
            unit="s",
            baseline=heavy[0] if heavy else None,
            baseline_what=heavy_what,
            note="pip cache off, wheels from local indexes",
        ),
    ]
    return rows
