"""The wheel as pip installs it: one top-level package, no torch in a plain install, the catalogue inside.

The slow test installs it into a fresh venv next to an upstream-shaped ``nanochat`` package and
checks that each side imports its own modules.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"torch", "tiktoken", "rustbpe"}


def _build_wheel(out: Path) -> Path:
    """Build from a copy of what the sdist would hold, so the checkout gets no build/ or egg-info."""
    src = out / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "preflight", src / "preflight", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "nanochat", src / "nanochat", ignore=shutil.ignore_patterns("__pycache__"))
    return _pip_wheel(src, out / "dist")


def _pip_wheel(src: Path, dist: Path) -> Path:
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(dist),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    (wheel,) = dist.glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(z.read(name))


def test_wheel_installs_only_the_preflight_package(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"preflight"}, f"top-level names in the wheel: {sorted(top)}"
    assert "preflight/checks.md" in names  # help_uri's target when no project URL is declared
    assert "preflight/schemas/profiles/compiled.json" in names and "preflight/checks/checkpoints.py" in names
    assert not any(n.startswith(("nanochat/", "checks/", "schemas/")) for n in names)


def test_plain_install_requires_no_torch(wheel):
    meta = _metadata(wheel)
    plain, extras = set(), {}
    for req in meta.get_all("Requires-Dist") or []:
        name = req.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].split("!")[0].strip().lower()
        if "extra ==" in req:
            extra = req.split("extra ==")[1].strip().strip("'\"")
            extras.setdefault(extra, set()).add(name)
        else:
            plain.add(name)
    assert not plain & HEAVY, f"a plain install pulls {sorted(plain & HEAVY)}"
    assert {"typer", "rich", "pyyaml", "jsonschema", "pyarrow", "numpy"} <= plain
    assert extras["torch"] == {"torch"}
    assert extras["trainer"] == HEAVY
    assert {"pytest", "ruff"} <= extras["test"] and "matplotlib" in extras["plot"]


def test_help_uri_points_at_the_installed_catalogue():
    from preflight.registry import CATALOGUE, Registry, help_uri_base

    spec = Registry.default(entry_points=False).get("CK005")
    assert CATALOGUE.is_file()
    if help_uri_base().startswith("file:"):  # no [project.urls] declared: the copy inside the package
        assert spec.help_uri == CATALOGUE.as_uri() + "#ck005-checkpoint-unloadable"
    anchor = "## CK005 checkpoint-unloadable"
    assert anchor in CATALOGUE.read_text(encoding="utf-8")
    assert (ROOT / "docs" / "checks.md").read_text(encoding="utf-8") == CATALOGUE.read_text(encoding="utf-8")


# -- a fresh venv next to the user's own nanochat ------------------------------------------------
UPSTREAM_PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "nanochat"
version = "0.1.0"

[tool.setuptools]
packages = ["nanochat"]
"""
PROBE = """
import sys, nanochat.gpt, preflight.ckpt, preflight.cli
print(nanochat.gpt.__file__)
print(getattr(nanochat.gpt, "UPSTREAM", False))
print(preflight.ckpt.__file__)
print("torch" in sys.modules)
"""


@pytest.mark.slow
def test_fresh_venv_beside_an_upstream_nanochat(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    # the dependencies come from this interpreter's site-packages (a path line: its .pth files,
    # including any editable install of this checkout, are not processed); torch is hidden below
    site = Path(
        subprocess.check_output(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
        ).strip()
    )
    host = [sysconfig.get_path("purelib")] + [  # and the system's, when this is a --system-site-packages venv
        d for d in sys.path if d.endswith(("site-packages", "dist-packages")) and d != sysconfig.get_path("purelib")
    ]
    (site / "zz_host_deps.pth").write_text("".join(d + "\n" for d in host))
    upstream = tmp_path / "upstream"
    (upstream / "nanochat").mkdir(parents=True)
    (upstream / "pyproject.toml").write_text(UPSTREAM_PYPROJECT)
    (upstream / "nanochat" / "__init__.py").write_text("")
    (upstream / "nanochat" / "gpt.py").write_text("UPSTREAM = True\n")
    # without PYTHONPATH (`./run tests` points it at the checkout, whose egg-info would make pip call the
    # wheel "already satisfied" and install nothing)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PREFLIGHT_DEBUG")}
    env["NO_COLOR"] = "1"
    for target in (_pip_wheel(upstream, tmp_path / "upstream-dist"), wheel):
        p = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(target)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert p.returncode == 0, p.stderr[-2000:]
    assert (site / "preflight" / "cli.py").is_file() and (site / "nanochat" / "gpt.py").is_file()
    blocked = subprocess.run(
        [str(py), "-c", "from preflight.testing import WITHOUT_TORCH; print(WITHOUT_TORCH)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    ).stdout
    (site / "zz_no_torch.py").write_text(blocked)
    (site / "zz_no_torch.pth").write_text("import zz_no_torch\n")

    out = subprocess.run([str(py), "-c", PROBE], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    gpt_file, upstream_flag, ckpt_file, torch_loaded = out.stdout.split()
    assert gpt_file.startswith(str(site))
    assert upstream_flag == "True", "the user's nanochat must not be shadowed by ours"
    assert ckpt_file.startswith(str(site)) and torch_loaded == "False"

    # the bundled trainer still runs from this repository's root, as upstream's does from its own
    # (found, not imported: it needs torch, which this venv hides)
    ours = subprocess.run(
        [str(py), "-c", "import importlib.util as u; print(u.find_spec('nanochat.gpt').origin)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert ours.stdout.strip() == str(ROOT / "nanochat" / "gpt.py")

    # both console scripts work in the light install, torch-free (on a script that runs in the user's checkout)
    (upstream / "scripts").mkdir()
    (upstream / "scripts" / "tok_train.py").write_text("")
    script = tmp_path / "job.sbatch"
    script.write_text(
        "#!/bin/bash\n#SBATCH --time=00:10:00\nset -euo pipefail\nexport OMP_NUM_THREADS=1\n"
        f"cd {upstream}\npython -m scripts.tok_train\n"
    )
    pre = subprocess.run(
        [str(venv / "bin" / "preflight"), "check", str(script), "--select", "SB"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert pre.returncode == 0, pre.stdout[-2000:] + pre.stderr[-2000:]
    assert pre.stdout.rstrip().splitlines()[-1].startswith("PASS")
    post = subprocess.run(
        [str(venv / "bin" / "postflight"), "verify", "--base-dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert post.returncode == 1 and "Traceback" not in post.stderr, post.stderr[-2000:]
    assert "CK001" in post.stdout
