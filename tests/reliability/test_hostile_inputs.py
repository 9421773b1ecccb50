"""Hostile input, round two: files that hang or exhaust a reader (issue 14).

Every case runs as a user would, under a wall-clock bound (a hang fails, it does not block the suite)
and, for the memory cases, under an address-space limit (RLIMIT_AS) set in the child: a reader that
reads a file whole or expands a value without bound dies there instead of passing.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from rel_helpers import check_survived

MEMORY_LIMIT = 1536 * 1024 * 1024  # address space, not RSS: the interpreter and its libraries take ~600 MB


def _run(
    tally,
    reader: str,
    *args: str,
    cwd: Path,
    env: dict | None = None,
    timeout: float = 30,
    memory: int | None = MEMORY_LIMIT,
) -> subprocess.CompletedProcess:
    def limit() -> None:
        if memory:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    full_env.pop("PREFLIGHT_DEBUG", None)
    tool, *rest = args
    code = f"import sys; sys.argv[0] = {tool!r}; from preflight.cli import {tool}_main; {tool}_main()"
    try:
        return subprocess.run(
            [sys.executable, "-c", code, *rest],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=limit,
        )
    except subprocess.TimeoutExpired:
        tally.tried(reader)
        pytest.fail(f"[{reader}] hung: {' '.join(args)[:200]} did not finish within {timeout:g}s")


def _script(path: Path, body: str) -> Path:
    path.write_text(
        "#!/bin/bash\n#SBATCH --gres=gpu:8\nset -euo pipefail\n"
        + body
        + "torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20\n"
    )
    return path


def test_path_appends_do_not_double_the_work(tmp_path, tally):
    """30 `export PATH=$PATH:/opt/x` lines (1.3 KB): each line doubled the evaluation time."""
    script = _script(tmp_path / "job.sh", "export PATH=$PATH:/opt/x\n" * 30)
    proc = _run(tally, "batch script", "preflight", "check", str(script), "--select", "SB", cwd=tmp_path)
    check_survived(tally, "batch script", proc, allowed=(0, 1))


def test_self_doubling_value_is_unknown_not_a_gigabyte(tmp_path, tally):
    """`A=$A$A` forty times is 2^40 characters: the evaluator must give up on the value, not build it."""
    script = _script(tmp_path / "job.sh", "A=x\n" + "A=$A$A\n" * 40 + 'echo "$A" > "$A.log"\n')
    proc = _run(tally, "batch script", "preflight", "check", str(script), "--select", "SB", cwd=tmp_path)
    check_survived(tally, "batch script", proc, allowed=(0, 1))


def test_long_assignment_chain_is_bounded(tmp_path, tally):
    script = _script(
        tmp_path / "job.sh",
        "".join(f"export V{i}=${{V{i - 1}:-x}}$PATH\n" for i in range(1, 2000)) + "export PATH=$PATH:/opt/x\n" * 2000,
    )
    proc = _run(tally, "batch script", "preflight", "check", str(script), "--select", "SB", cwd=tmp_path, timeout=60)
    check_survived(tally, "batch script", proc, allowed=(0, 1))


@pytest.mark.parametrize("kind", ["fifo", "dev-zero-link", "dev-null"])
def test_batch_script_that_is_not_a_file(kind, tmp_path, tally):
    script = tmp_path / "job.sh"
    if kind == "fifo":
        os.mkfifo(script)
    else:
        script.symlink_to("/dev/zero" if kind == "dev-zero-link" else "/dev/null")
    proc = _run(tally, "batch script", "preflight", "check", str(script), cwd=tmp_path)
    check_survived(tally, "batch script", proc, allowed=(2,))
    assert "not a regular file" in proc.stderr


def test_huge_batch_script_is_refused_unread(tmp_path, tally):
    """45 MB of script (sparse: no disk) is reported, not parsed (SLURM itself refuses over 4 MiB)."""
    script = tmp_path / "job.sh"
    with open(script, "wb") as fh:
        fh.write(b"#!/bin/bash\nset -e\n")
        fh.truncate(45 * 1024 * 1024)
    proc = _run(tally, "batch script", "preflight", "check", str(script), "--select", "SB", cwd=tmp_path)
    check_survived(tally, "batch script", proc, allowed=(1, 2))
    assert "MB" in proc.stdout + proc.stderr


@pytest.mark.parametrize("name", ["preflight.yaml", "pyproject.toml"])
@pytest.mark.parametrize("kind", ["fifo", "sparse-3GB"])
def test_config_that_hangs_or_floods(name, kind, tmp_path, tally):
    path = tmp_path / name
    if kind == "fifo":
        os.mkfifo(path)
    else:
        with open(path, "wb") as fh:
            fh.write(b"[tool.preflight]\n" if name == "pyproject.toml" else b"select: [ALL]\n")
            fh.truncate(3 * 1024**3)
    (tmp_path / ".git").mkdir()
    proc = _run(tally, "config", "preflight", "check", "--select", "SB", cwd=tmp_path)
    check_survived(tally, "config", proc, allowed=(0, 1, 2))
    if kind == "sparse-3GB":  # a FIFO is not a config file: not found, or refused
        assert proc.returncode == 2 and "config error" in proc.stderr, proc.stderr
