"""Hostile input, round two: files that hang or exhaust a reader (issue 14).

Every case runs as a user would, under a wall-clock bound (a hang fails, it does not block the suite)
and, for the memory cases, under an address-space limit (RLIMIT_AS) set in the child: a reader that
reads a file whole or expands a value without bound dies there instead of passing.
"""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest
from clirun import run_cli
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

    try:
        return run_cli(*args, cwd=cwd, env=env, timeout=timeout, preexec_fn=limit)
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


@pytest.mark.parametrize("encoding", ["dictionary", "plain"])
def test_parquet_decompression_bomb_under_deep(encoding, tmp_path, tally):
    """A shard of a few KB that inflates when decoded. Through a dictionary page, one 1 MiB value in all
    1,024 rows is 1 GiB as plain strings: --deep reads it as a dictionary (valid parquet: it passes).
    Plain pages of 130 MiB declared are refused by their declared size (real row groups: a few MiB)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / "base" / "base_data"
    data.mkdir(parents=True)
    value = "a" * ((1 << 20) if encoding == "dictionary" else (130 << 10))
    bomb = pa.table({"text": pa.array([value] * 1024)})
    pq.write_table(
        bomb,
        data / "shard_00000.parquet",
        compression="zstd",
        row_group_size=1024,
        use_dictionary=encoding == "dictionary",
    )
    del bomb
    pq.write_table(pa.table({"text": ["x"] * 1024}), data / "shard_00001.parquet", row_group_size=1024)
    assert (data / "shard_00000.parquet").stat().st_size < 1 << 20
    proc = _run(
        tally, "parquet shard (--deep)", "preflight", "check", "--base-dir", str(tmp_path / "base"), "--deep",
        "--select", "DS002", cwd=tmp_path, timeout=60,
    )  # fmt: skip
    check_survived(tally, "parquet shard (--deep)", proc, allowed=(0,) if encoding == "dictionary" else (1,))
    if encoding == "plain":
        assert "decompression bomb" in proc.stdout and "shard_00000.parquet" in proc.stdout, proc.stdout[-2000:]


def test_sparse_checkout_source_is_not_read_whole(tmp_path, tally):
    """A 3 GB (sparse) scripts/base_train.py in the checkout the job runs: its flags are read from a
    bounded prefix, or the file is reported unreadable; never 3 GB in memory."""
    co = tmp_path / "nanochat-checkout"
    (co / "scripts").mkdir(parents=True)
    (co / "nanochat").mkdir()
    (co / "nanochat" / "__init__.py").write_text("")
    with open(co / "scripts" / "base_train.py", "wb") as fh:
        fh.write(b"import argparse\nparser = argparse.ArgumentParser()\nparser.add_argument('--depth', type=int)\n")
        fh.truncate(3 * 1024**3)
    script = _script(tmp_path / "job.sh", "")
    proc = _run(
        tally, "checkout source", "preflight", "check", str(script), "--checkout", str(co), "--select", "SB010",
        cwd=tmp_path, timeout=60,
    )  # fmt: skip
    check_survived(tally, "checkout source", proc, allowed=(0, 1))


def test_huge_ledger_is_refused_unparsed(tmp_path, tally):
    """A 49 MB run ledger (parsing one took 1.2 GB): refused by its size, with a clear message."""
    jobs = tmp_path / ".preflight" / "jobs"
    jobs.mkdir(parents=True)
    with open(jobs / "4242.json", "w") as fh:
        fh.write('{"job_id": "4242", "pad": [')
        fh.write(",".join(["1.5e300"] * 7_000_000))
        fh.write("]}")
    assert (jobs / "4242.json").stat().st_size > 48 * 1024**2
    proc = _run(tally, "ledger", "postflight", "verify", "4242", "--no-smoke", cwd=tmp_path, timeout=60)
    check_survived(tally, "ledger", proc, allowed=(1, 2))
    assert "4242.json" in proc.stdout + proc.stderr, proc.stdout[-1500:] + proc.stderr[-1500:]
