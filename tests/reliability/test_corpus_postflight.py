"""Malformed inputs through `postflight verify --log X --base-dir Y` (no SLURM): checkpoints, meta, logs,
tokenizer.pkl, directories. The safety properties (no traceback, no payload, no user file touched)
are asserted always; the exit code 1 only once the area's checks are registered (the postflight
checks land alongside this suite), so an unfinished area is not reported as a bug here.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import factories
import pytest
import rel_corpus as corpus
from rel_helpers import check_survived, registered, run_bounded, snapshot
from test_corpus_preflight import _probe_caps_dropped, _run_without_caps

STEPS = 20


def _run_tree(tmp: Path, era: str = "classic") -> tuple[Path, Path]:
    base = tmp / "base"
    factories.write_run(base, era=era, world_size=2)
    log = factories.write_log(tmp / "logs" / "run.out", factories.run_log(base=str(base), era=era))
    return base, log


def _verify(cli, tally, reader, tmp, base, log, *extra, timeout=90):
    return run_bounded(
        cli,
        tally,
        reader,
        "postflight",
        "verify",
        "--log",
        str(log),
        "--base-dir",
        str(base),
        *extra,
        cwd=tmp,
        timeout=timeout,
    )


def _expect_findings(prefix: str) -> tuple[int, ...]:
    return (1, 2) if registered(prefix, "post") else (0, 1, 2)


def test_good_run_is_clean(tmp_path, cli, tally):
    """Calibration: the untouched tree verifies clean, so every failure below is due to the corrupt input."""
    if not registered("CK", "post"):
        pytest.skip("the checkpoint checks (CK) are not registered yet")
    base, log = _run_tree(tmp_path)
    proc = _verify(cli, tally, "calibration", tmp_path, base, log, "--no-smoke")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


@pytest.mark.parametrize("target", ["model", "optim"])
@pytest.mark.parametrize("name", sorted(corpus.checkpoint_corpus(Path("/nonexistent"))))
def test_bad_checkpoint_postflight(name, target, tmp_path, cli, tally):
    marker = tmp_path / "MARKER"
    base, log = _run_tree(tmp_path)
    d = base / "base_checkpoints" / "d2"
    path = d / (f"model_{STEPS:06d}.pt" if target == "model" else f"optim_{STEPS:06d}_rank0.pt")
    corpus.checkpoint_corpus(marker)[name](path)
    before = snapshot(tmp_path)
    proc = _verify(cli, tally, f"checkpoint ({target})", tmp_path, base, log, "--deep", "--smoke")
    if name in ("wrong-shapes", "zip-empty-pickle") and target == "optim":
        allowed = (0, 1, 2)  # a well-formed pickle of the wrong content as an optimizer shard: header tier cannot tell
    else:
        allowed = _expect_findings("CK")
    check_survived(tally, f"checkpoint ({target})", proc, allowed=allowed, marker=marker, before=before, root=tmp_path)
    assert not marker.exists()
    if allowed == (1, 2):
        assert path.name in proc.stdout, f"{name}: the report does not name {path.name}:\n{proc.stdout[-2500:]}"


@pytest.mark.parametrize("name", sorted(corpus.meta_corpus()))
def test_bad_meta_postflight(name, tmp_path, cli, tally):
    base, log = _run_tree(tmp_path)
    corpus.meta_corpus()[name](base / "base_checkpoints" / "d2" / f"meta_{STEPS:06d}.json")
    before = snapshot(tmp_path)
    proc = _verify(cli, tally, "meta json", tmp_path, base, log, "--no-smoke")
    check_survived(tally, "meta json", proc, allowed=_expect_findings("CK"), before=before, root=tmp_path)
    if registered("CK", "post"):
        assert f"meta_{STEPS:06d}.json" in proc.stdout, f"{name}: the report does not name the meta file"


LOG_OK = {
    "ansi-noise",
    "crlf",
    "no-trailing-newline",
    "cr-only",
    "nul-bytes",
    "step-line-huge-numbers",
    "single-50MB-line",
    "invalid-utf8",
    "traceback-unterminated",
}
LOG_NEEDS_FINDING = {"random-bytes", "empty"}  # issue 4 §6: a log of random bytes gives a finding


@pytest.mark.parametrize("name", sorted(corpus.log_corpus()))
def test_bad_log_postflight(name, tmp_path, cli, tally):
    base, _ = _run_tree(tmp_path)
    log = tmp_path / "logs" / f"{name}.out"
    corpus.log_corpus()[name](log)
    before = snapshot(tmp_path)
    start = time.monotonic()
    proc = _verify(cli, tally, "log", tmp_path, base, log, "--no-smoke")
    check_survived(tally, "log", proc, allowed=(0, 1, 2), before=before, root=tmp_path)
    if name in LOG_NEEDS_FINDING and registered("LOG", "post"):
        assert "PASS: no findings" not in proc.stdout, f"{name}: a {name} log given with --log yields no finding"
    assert time.monotonic() - start < 60


def test_log_indexer_on_corpus(tmp_path, tally):
    """In-process: the indexer returns an index for each hostile log, with flat memory on the 50 MB line."""
    import resource

    from preflight.logindex import index_log

    for name, writer in corpus.log_corpus().items():
        p = tmp_path / f"{name}.log"
        writer(p)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        idx = index_log(p)
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
        tally.tried("log indexer")
        assert idx.error is None, f"{name}: {idx.error}"
        assert grown_mb < 40, f"{name}: peak memory grew {grown_mb:.0f} MB"
        p.unlink()
    crlf = tmp_path / "crlf.log"
    corpus.log_corpus()["crlf"](crlf)
    lf = tmp_path / "lf.log"
    lf.write_bytes(crlf.read_bytes().replace(b"\r\n", b"\n"))
    a, b = index_log(crlf), index_log(lf)
    assert [s.to_json() for s in a.segments] == [s.to_json() for s in b.segments], "CRLF changes what is indexed"


@pytest.mark.slow
def test_1gb_log(tmp_path, cli, tally):
    base, _ = _run_tree(tmp_path)
    log = tmp_path / "logs" / "big.out"
    corpus.write_big_log(log, 1 << 30)
    before = snapshot(tmp_path)
    start = time.monotonic()
    proc = _verify(cli, tally, "log (1 GB)", tmp_path, base, log, "--no-smoke", timeout=300)
    check_survived(tally, "log (1 GB)", proc, allowed=(0, 1, 2), before=before, root=tmp_path)
    assert time.monotonic() - start < 120


@pytest.mark.parametrize("name", sorted(corpus.tokenizer_corpus(Path("/nonexistent"))))
def test_hostile_tokenizer_postflight(name, tmp_path, cli, tally):
    marker = tmp_path / "MARKER"
    base, log = _run_tree(tmp_path)
    corpus.tokenizer_corpus(marker)[name](base / "tokenizer" / "tokenizer.pkl")
    before = snapshot(tmp_path)
    proc = _verify(cli, tally, "tokenizer.pkl", tmp_path, base, log, "--smoke")
    allowed = (1, 2) if registered("CHAT", "post") else (0, 1, 2)
    check_survived(tally, "tokenizer.pkl", proc, allowed=allowed, marker=marker, before=before, root=tmp_path)


def test_restricted_unpickler_refuses_payloads(tmp_path, tally):
    """nanochat.tokenizer.load_tokenizer_pkl: every hostile tokenizer raises ValueError, nothing runs."""
    from nanochat.tokenizer import load_tokenizer_pkl

    marker = tmp_path / "MARKER"
    for name, writer in corpus.tokenizer_corpus(marker).items():
        p = tmp_path / f"{name}.pkl"
        writer(p)
        tally.tried("restricted unpickler")
        with pytest.raises(ValueError):
            load_tokenizer_pkl(p)
        assert not marker.exists(), f"{name}: payload executed"
    good = factories.write_tokenizer(tmp_path / "ok") / "tokenizer.pkl"
    assert load_tokenizer_pkl(good).n_vocab == factories.TINY_VOCAB


# -- directories -------------------------------------------------------------------------------------
def _dir_case(name: str, tmp: Path) -> tuple[Path, Path]:
    base, log = _run_tree(tmp)
    ck = base / "base_checkpoints"
    if name == "file-as-checkpoints":
        import shutil

        shutil.rmtree(ck)
        ck.write_text("file")
    elif name == "file-as-tag-dir":
        import shutil

        shutil.rmtree(ck / "d2")
        (ck / "d2").write_text("file")
    elif name == "loop-checkpoints":
        import shutil

        shutil.rmtree(ck)
        ck.symlink_to("base_checkpoints")
    elif name == "loop-model-file":
        p = ck / "d2" / f"model_{STEPS:06d}.pt"
        p.unlink()
        p.symlink_to(p.name)
    elif name == "dangling-meta":
        p = ck / "d2" / f"meta_{STEPS:06d}.json"
        p.unlink()
        p.symlink_to("/nonexistent/meta.json")
    elif name == "dir-as-model":
        p = ck / "d2" / f"model_{STEPS:06d}.pt"
        p.unlink()
        p.mkdir()
    elif name == "fifo-as-meta":
        p = ck / "d2" / f"meta_{STEPS:06d}.json"
        p.unlink()
        os.mkfifo(p)
    elif name == "log-is-dir":
        log = tmp / "logs" / "adir.out"
        log.mkdir()
    elif name == "log-fifo":  # e.g. a named pipe nobody writes to: opening it blocks
        log = tmp / "logs" / "pipe.out"
        os.mkfifo(log)
    elif name == "log-missing":
        log = tmp / "logs" / "missing.out"
    elif name == "base-is-file":
        import shutil

        shutil.rmtree(base)
        base.write_text("file")
    elif name == "100k-entries-in-tag-dir":
        for i in range(100_000):
            (ck / "d2" / f"junk_{i}").touch()
    return base, log


DIR_CASES = [
    "file-as-checkpoints",
    "file-as-tag-dir",
    "loop-checkpoints",
    "loop-model-file",
    "dangling-meta",
    "dir-as-model",
    "fifo-as-meta",
    "log-is-dir",
    "log-fifo",
    "log-missing",
    "base-is-file",
    "100k-entries-in-tag-dir",
]


@pytest.mark.parametrize("name", DIR_CASES)
def test_bad_directory_postflight(name, tmp_path, cli, tally):
    base, log = _dir_case(name, tmp_path)
    before = snapshot(tmp_path)
    start = time.monotonic()
    proc = _verify(cli, tally, "directory (postflight)", tmp_path, base, log, "--no-smoke", timeout=60)
    elapsed = time.monotonic() - start
    allowed = (0, 1, 2) if name == "100k-entries-in-tag-dir" or not registered("CK", "post") else (1, 2)
    check_survived(tally, "directory (postflight)", proc, allowed=allowed, before=before, root=tmp_path)
    assert elapsed < 25, f"{name}: {elapsed:.1f}s: something blocked until a timeout"


@pytest.mark.parametrize("what", ["base", "checkpoint-dir", "model", "meta", "log"])
def test_permission_denied_postflight(what, tmp_path, tally):
    _probe_caps_dropped(tmp_path)
    base, log = _run_tree(tmp_path)
    d = base / "base_checkpoints" / "d2"
    target = {
        "base": base,
        "checkpoint-dir": d,
        "model": d / f"model_{STEPS:06d}.pt",
        "meta": d / f"meta_{STEPS:06d}.json",
        "log": log,
    }[what]
    mode = target.stat().st_mode & 0o7777
    target.chmod(0)
    try:
        proc = _run_without_caps(
            "postflight", "verify", "--log", str(log), "--base-dir", str(base), "--no-smoke", cwd=tmp_path
        )
    finally:
        target.chmod(mode)
    tally.fault("permission denied")
    allowed = (1, 2) if registered("CK", "post") and registered("LOG", "post") else (0, 1, 2)
    check_survived(tally, "directory (postflight)", proc, allowed=allowed)


# -- a log appended to while it is read ---------------------------------------------------------------
def test_log_growing_while_indexed(tmp_path, tally):
    from preflight.logindex import index_log

    log = tmp_path / "growing.out"
    lines = factories.phase_log("base", steps=3000, planned=5000, save=False)
    log.write_text("\n".join(lines[:50]) + "\n")
    stop = threading.Event()

    def writer():
        i = 50
        with open(log, "a") as f:
            while not stop.is_set():
                f.write(lines[i % len(lines)] + "\n" if i % 7 else lines[i % len(lines)][:20])  # half lines too
                f.flush()
                i += 1

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    tally.fault("log appended while read")
    try:
        for _ in range(20):
            idx = index_log(log)
            tally.tried("log indexer (growing)")
            assert idx.error is None
            last = [seg.last_step.step for seg in idx.segments if seg.last_step]
            assert all(0 <= s < 5000 for s in last), f"a half-written line was read as step {last}"
    finally:
        stop.set()
        t.join(5)
