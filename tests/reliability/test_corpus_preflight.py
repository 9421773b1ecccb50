"""Malformed inputs through `preflight check` as a user runs it: scripts, shards, configs, tokenizers, dirs.

Each case: build the hostile tree in a tmp dir, hash it, run the CLI, then prove it survived
(exit code, no traceback, no payload marker, no user file touched) and count it in the tally.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import factories
import pytest
import rel_corpus as corpus
from rel_helpers import check_survived, run_bounded, snapshot

# a valid script preflight must pass or warn on; only-shebang is one sbatch accepts and runs as nothing (its
# findings are warnings: no nanochat phase runs, so nothing loads a tokenizer or a shard)
SCRIPT_OK = {"heredocs", "long-line-1MB", "many-lines-200k", "brace-bomb", "self-include", "latin1", "only-shebang"}


def _setup_base(tmp: Path, shards: int = 2) -> Path:
    base = tmp / "base"
    data = base / "base_data"
    data.mkdir(parents=True)
    good = corpus.valid_shard_bytes()
    for i in range(shards):
        (data / f"shard_{i:05d}.parquet").write_bytes(good)
    return base


def _script(tmp: Path, base: Path) -> Path:
    s = tmp / "job.sh"
    s.write_text(
        corpus.GOOD_SCRIPT.replace("set -euo pipefail\n", f"set -euo pipefail\nexport NANOCHAT_BASE_DIR={base}\n")
    )
    return s


# -- batch scripts --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(corpus.script_corpus()))
def test_hostile_script(name, tmp_path, cli, tally):
    corpus.script_corpus()[name](tmp_path / "job.sh")
    base = _setup_base(tmp_path)
    before = snapshot(tmp_path)
    # a hang is the subprocess timeout; speed is a bench row, not an assertion on a shared machine
    proc = cli("preflight", "check", "job.sh", "--base-dir", str(base), cwd=tmp_path, timeout=120)
    allowed = (0, 1, 2) if name in SCRIPT_OK else (1, 2)
    check_survived(tally, "batch script", proc, allowed=allowed, before=before, root=tmp_path)


# -- parquet shards -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(corpus.SHARDS))
def test_malformed_shard(name, tmp_path, cli, tally):
    base = _setup_base(tmp_path, shards=3)
    corpus.SHARDS[name](base / "base_data" / "shard_00001.parquet")
    script = _script(tmp_path, base)
    before = snapshot(tmp_path)
    proc = cli("preflight", "check", str(script), "--base-dir", str(base), cwd=tmp_path)
    check_survived(tally, "parquet shard", proc, allowed=(1, 2), before=before, root=tmp_path)
    if name not in ("empty-row-groups",):
        assert "shard_00001" in proc.stdout, f"{name}: the bad shard is not named in the report:\n{proc.stdout[-2000:]}"


@pytest.mark.parametrize("name", sorted(corpus.SHARDS))
def test_malformed_shard_deep(name, tmp_path, cli, tally):
    """--deep reads shards with pyarrow: pyarrow's own errors must become findings too."""
    base = _setup_base(tmp_path, shards=2)
    corpus.SHARDS[name](base / "base_data" / "shard_00001.parquet")
    script = _script(tmp_path, base)
    before = snapshot(tmp_path)
    proc = cli("preflight", "check", str(script), "--base-dir", str(base), "--deep", "--select", "DS", cwd=tmp_path)
    check_survived(tally, "parquet shard (--deep)", proc, allowed=(1, 2), before=before, root=tmp_path)


def test_footer_reader_handles_every_shard(tmp_path, tally):
    """The hand-written thrift footer reader returns a problem string for each malformed shard; never raises."""
    from preflight.parquet_footer import read_footer

    for name, writer in corpus.SHARDS.items():
        p = tmp_path / f"{name}.parquet"
        writer(p)
        footer, problem, _ = read_footer(p)
        tally.tried("parquet footer reader")
        if name not in ("wrong-column", "empty-row-groups"):
            assert footer is None and problem, f"{name}: read as valid: {footer}"


# -- config files ---------------------------------------------------------------------------------
CONFIG_OK = {"empty", "only-comment", "duplicate-keys", "plugins-nonexistent"}


@pytest.mark.parametrize("name", sorted(corpus.config_corpus()))
def test_bad_config_in_cwd(name, tmp_path, cli, tally):
    data = corpus.config_corpus()[name]
    (tmp_path / "preflight.yaml").write_bytes(data.encode() if isinstance(data, str) else data)
    base = _setup_base(tmp_path)
    script = _script(tmp_path, base)
    before = snapshot(tmp_path)
    start = time.monotonic()
    proc = run_bounded(
        cli, tally, "config", "preflight", "check", str(script), "--base-dir", str(base), cwd=tmp_path, timeout=30
    )
    elapsed = time.monotonic() - start
    allowed = (0, 1, 2) if name in CONFIG_OK else (2,)
    check_survived(tally, "config", proc, allowed=allowed, marker=tmp_path / "MARKER", before=before, root=tmp_path)
    if proc.returncode == 2 and name not in CONFIG_OK:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        assert lines and "preflight.yaml" in lines[-1], (
            f"{name}: the error does not name the file: {proc.stderr[-500:]}"
        )
        assert len(lines[-1]) < 2000, f"{name}: the error line is {len(lines[-1])} characters"
    assert elapsed < 30, f"{name}: took {elapsed:.1f}s"


def test_config_loader_refuses_python_tags(tmp_path, tally):
    from preflight.config import ConfigError, load_config

    marker = tmp_path / "MARKER"
    p = tmp_path / "preflight.yaml"
    p.write_text(f"select: !!python/object/apply:os.system ['touch {marker}']\n")
    tally.tried("config loader")
    with pytest.raises(ConfigError):
        load_config({}, config_path=p, environ={})
    assert not marker.exists()


# -- tokenizer.pkl ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(corpus.tokenizer_corpus(Path("/nonexistent"))))
def test_hostile_tokenizer_preflight(name, tmp_path, cli, tally):
    marker = tmp_path / "MARKER"
    base = _setup_base(tmp_path)
    factories.write_tokenizer(base)
    corpus.tokenizer_corpus(marker)[name](base / "tokenizer" / "tokenizer.pkl")
    script = _script(tmp_path, base)
    before = snapshot(tmp_path)
    proc = cli("preflight", "check", str(script), "--base-dir", str(base), "--deep", cwd=tmp_path)
    check_survived(tally, "tokenizer.pkl", proc, allowed=(0, 1, 2), marker=marker, before=before, root=tmp_path)


# -- checkpoints and meta read by preflight (tokenizer-vocab-mismatch reads checkpoint metas) -------
@pytest.mark.parametrize("name", sorted(corpus.meta_corpus()))
def test_bad_meta_preflight(name, tmp_path, cli, tally):
    base = _setup_base(tmp_path)
    factories.write_tokenizer(base)
    d = factories.write_checkpoint(base, "base", 20, factories.model_config(2))
    corpus.meta_corpus()[name](d / "meta_000020.json")
    script = _script(tmp_path, base)
    before = snapshot(tmp_path)
    proc = cli("preflight", "check", str(script), "--base-dir", str(base), cwd=tmp_path)
    check_survived(tally, "meta json (preflight)", proc, allowed=(0, 1, 2), before=before, root=tmp_path)


@pytest.mark.parametrize("name", sorted(corpus.checkpoint_corpus(Path("/nonexistent"))))
def test_bad_checkpoint_preflight(name, tmp_path, cli, tally):
    marker = tmp_path / "MARKER"
    base = _setup_base(tmp_path)
    factories.write_tokenizer(base)
    d = factories.write_checkpoint(base, "base", 20, factories.model_config(2))
    corpus.checkpoint_corpus(marker)[name](d / "model_000020.pt")
    corpus.checkpoint_corpus(marker)[name](d / "optim_000020_rank0.pt")
    script = _script(tmp_path, base)
    before = snapshot(tmp_path)
    proc = cli("preflight", "check", str(script), "--base-dir", str(base), "--deep", cwd=tmp_path)
    check_survived(
        tally, "checkpoint (preflight)", proc, allowed=(0, 1, 2), marker=marker, before=before, root=tmp_path
    )


# -- directories ----------------------------------------------------------------------------------
def _dir_cases() -> dict[str, object]:
    def file_as_base(t: Path) -> Path:
        (t / "base").write_text("I am a file")
        return t / "base"

    def file_as_data(t: Path) -> Path:
        base = t / "base"
        base.mkdir()
        (base / "base_data").write_text("file")
        (base / "tokenizer").write_text("file")
        (base / "base_checkpoints").write_text("file")
        return base

    def loop_base(t: Path) -> Path:
        (t / "base").symlink_to(t / "base")
        return t / "base"

    def loop_data(t: Path) -> Path:
        base = t / "base"
        base.mkdir()
        (base / "base_data").symlink_to("base_data")
        (base / "tokenizer").symlink_to("../base/tokenizer")
        return base

    def loop_shard(t: Path) -> Path:
        base = _setup_base(t)
        (base / "base_data" / "shard_00002.parquet").symlink_to("shard_00002.parquet")
        (base / "base_data" / "shard_00003.parquet").symlink_to("/nonexistent/target.parquet")
        return base

    def dir_as_shard(t: Path) -> Path:
        base = _setup_base(t)
        (base / "base_data" / "shard_00002.parquet").mkdir()
        return base

    def fifo_shard(t: Path) -> Path:
        base = _setup_base(t)
        os.mkfifo(base / "base_data" / "shard_00002.parquet")  # opening it for reading would block forever
        return base

    return {
        "file-as-base": file_as_base,
        "file-as-data": file_as_data,
        "loop-base": loop_base,
        "loop-data": loop_data,
        "loop-shard": loop_shard,
        "dir-as-shard": dir_as_shard,
        "fifo-as-shard": fifo_shard,
    }


@pytest.mark.parametrize("name", sorted(_dir_cases()))
def test_bad_directory_preflight(name, tmp_path, cli, tally):
    base = _dir_cases()[name](tmp_path)
    script = _script(tmp_path, base)
    before = snapshot(tmp_path)
    start = time.monotonic()
    proc = run_bounded(
        cli, tally, "directory", "preflight", "check", str(script), "--base-dir", str(base), cwd=tmp_path, timeout=60
    )
    check_survived(tally, "directory", proc, allowed=(1, 2), before=before, root=tmp_path)
    elapsed = time.monotonic() - start
    assert elapsed < 20, f"{name}: {elapsed:.1f}s: a check blocked until the per-check timeout"


def test_100k_entries_in_base_data(tmp_path, cli, tally):
    base = _setup_base(tmp_path, shards=2)
    data = base / "base_data"
    for i in range(100_000):
        (data / f"junk_{i}.bin").touch()
    for i in range(2, 2000):  # plus a long run of zero-byte shards: 1998 findings
        (data / f"shard_{i:05d}.parquet").touch()
    script = _script(tmp_path, base)
    before = snapshot(tmp_path)
    start = time.monotonic()
    proc = cli("preflight", "check", str(script), "--base-dir", str(base), "--format", "json", cwd=tmp_path)
    elapsed = time.monotonic() - start
    check_survived(tally, "directory", proc, allowed=(1,), before=before, root=tmp_path)
    assert elapsed < 30, f"{elapsed:.1f}s for 102k entries"


# -- permission denied (root bypasses permissions: drop every capability for the child) -------------
def _run_without_caps(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv not installed: cannot drop root's DAC override to test permission denied")
    env = dict(os.environ, NO_COLOR="1")
    env.pop("PREFLIGHT_DEBUG", None)
    code = f"import sys; sys.argv[0] = {tool!r}; from preflight.cli import {tool}_main; {tool}_main()"
    return subprocess.run(
        ["setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _probe_caps_dropped(tmp: Path) -> None:
    locked = tmp / "probe"
    locked.mkdir()
    locked.chmod(0)
    r = subprocess.run(
        [
            "setpriv",
            "--bounding-set=-all",
            "--inh-caps=-all",
            sys.executable,
            "-c",
            f"import os; os.listdir({str(locked)!r})",
        ],
        capture_output=True,
        text=True,
    )
    locked.chmod(0o755)
    locked.rmdir()
    if r.returncode == 0:
        pytest.skip("dropping capabilities did not make permissions apply (running in a user namespace?)")


@pytest.mark.parametrize("what", ["base", "base_data", "shard", "tokenizer", "script"])
def test_permission_denied_preflight(what, tmp_path, tally):
    _probe_caps_dropped(tmp_path)
    base = _setup_base(tmp_path, shards=2)
    factories.write_tokenizer(base)
    script = _script(tmp_path, base)
    target = {
        "base": base,
        "base_data": base / "base_data",
        "shard": base / "base_data" / "shard_00001.parquet",
        "tokenizer": base / "tokenizer",
        "script": script,
    }[what]
    mode = target.stat().st_mode & 0o7777
    target.chmod(0)
    try:
        before = snapshot(tmp_path)
        proc = _run_without_caps("preflight", "check", str(script), "--base-dir", str(base), cwd=tmp_path)
        after_ok = (tally, proc, before)
    finally:
        target.chmod(mode)
    tally.fault("permission denied")
    check_survived(after_ok[0], "directory", after_ok[1], allowed=(1, 2), before=None)
