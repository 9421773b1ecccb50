"""The step-run finders (regex, numpy, the helper process) give one and the same log index."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import factories as F
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preflight import steplines
from preflight.logindex import index_log

ROOT = Path(__file__).resolve().parents[2]
VAL = "Step 00250 | Validation bpb: 0.8123\n"
PIECES = [
    F.step_line("base", 5, 10) + "\n",
    F.step_line("mid", 5, 10) + "\n",
    F.step_line("sft", 5, 10) + "\n",
    F.step_line("sft", 5, 10) + "\r\n",
    VAL,
    "Step 00005 | Validation loss: 1.2\r\n",
    "Step 00005 | Validation bpb: nan\n",
    "Step 00005 | Validation bpb: 0.5 \n",
    "Step 5 | CORE metric: 0.1\n",
    "Step 1/2 | Training loss\n",
    "Step 5/9 | Training loss: 1.0|\n",
    "Step 0012/00701 | Training loss\n",
    "Step 00012/0070a | Training loss: 1|\n",
    "Step 1/9 | Average reward: 0.25\n",
    "step \n",
    "step",
    "Step ",
    "x\n",
    "\n",
    "\r",
    "\x1b[32m",
    "\xff",
    "Traceback (most recent call last):\n",
    '  File "/x/scripts/base_train.py", line 3, in <module>\n',
    "torch.OutOfMemoryError: CUDA out of memory\n",
    "[rank0]: ",
    "Overriding: run = x\n",
    "Autodetected device type: cuda\n",
    "Saved model parameters to: /b/base_checkpoints/d2/model_000020.pt\n",
    "=== phase: mid ===\n",
]
logs = st.lists(st.sampled_from(PIECES), max_size=120).map(lambda xs: "".join(xs).encode("utf-8", "surrogatepass"))
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(logs, st.sampled_from([1, 2, 3, 1 << 18]), st.integers(0, 3))
def test_regex_and_numpy_finders_agree(data, max_lines, skip_lines):
    start = 0
    for _ in range(skip_lines):  # blocks start at any line
        start = data.find(b"\n", start) + 1 or len(data)
    saved = steplines.MAX_LINES
    steplines.MAX_LINES = max_lines  # tiny windows: runs that go on across a window edge
    try:
        assert steplines.runs_numpy(data, start, len(data)) == steplines.runs_regex(data, start, len(data))
    finally:
        steplines.MAX_LINES = saved


def same_index(a, b) -> bool:
    return json.dumps(a.to_json(), default=str) == json.dumps(b.to_json(), default=str) and (
        a.long_lines,
        a.binary,
        a.error,
    ) == (b.long_lines, b.binary, b.error)


@SETTINGS
@given(logs, st.sampled_from([7, 64, 1000, 4 << 20]))
def test_index_is_the_same_with_numpy(tmp_path_factory, data, chunk):
    path = tmp_path_factory.mktemp("log") / "x.log"
    path.write_bytes(data)
    saved = steplines.CHUNK
    steplines.CHUNK = chunk  # small chunks: lines, runs and tracebacks cut at chunk edges
    try:
        assert same_index(index_log(path, vector=True), index_log(path, vector=False))
    finally:
        steplines.CHUNK = saved


def mixed_log(tmp_path: Path) -> Path:
    """Every era's pipeline, a traceback, a 20 KB line and NaN steps: cut into many 4 KB chunks."""
    parts = [F.run_log(era=era) for era in ("classic", "argparse", "no-mid", "current")]
    parts.insert(
        2,
        'Traceback (most recent call last):\n  File "/x/scripts/mid_train.py", line 9, in <module>\n'
        "torch.OutOfMemoryError: CUDA out of memory\n" + "x" * 20000 + "\n",
    )
    parts.append("\n".join(F.step_line("base", s, 900, loss="nan" if s > 800 else 3.0) for s in range(900)) + "\n")
    return F.write_log(tmp_path / "mixed.log", "".join(parts))


@pytest.fixture
def helper_on(monkeypatch):
    """The helper process for any log, on small chunks; counts the blocks it answered."""
    monkeypatch.setattr(steplines, "CHUNK", 4096)
    monkeypatch.setattr(steplines, "HELPER_MIN_LOG", 0)
    answered = []
    runs = steplines.RunsHelper.runs

    def counting(self, *args):
        found = runs(self, *args)
        answered.append(found is not None)
        return found

    monkeypatch.setattr(steplines.RunsHelper, "runs", counting)
    return answered


def test_the_helper_process_gives_the_same_index(tmp_path, helper_on):
    path = mixed_log(tmp_path)
    with_helper = index_log(path, vector=True)
    assert sum(helper_on) > 0.7 * steplines.HELPER_SHARE * (path.stat().st_size // 4096)  # it really answered
    assert same_index(with_helper, index_log(path, vector=False))
    assert with_helper.by_phase("base")[-1].nan_loss is not None


@pytest.mark.parametrize("fault", ["child exits", "chunks do not line up"])
def test_a_failing_helper_only_costs_time(tmp_path, helper_on, monkeypatch, fault):
    path = mixed_log(tmp_path)
    if fault == "child exits":  # a real child that prints nothing and exits: as if numpy were missing
        monkeypatch.setattr(steplines.sys, "executable", "/bin/true")
    else:  # a child that reads other chunks than the indexer: every block is checked before use
        start = steplines.RunsHelper.__init__
        monkeypatch.setattr(steplines.RunsHelper, "__init__", lambda self, p, size: start(self, p, size, chunk=8192))
    closed = []
    close = steplines.RunsHelper.close
    monkeypatch.setattr(steplines.RunsHelper, "close", lambda self: closed.append(self.proc) or close(self))
    assert same_index(index_log(path, vector=True), index_log(path, vector=False))
    assert not any(helper_on)  # the indexer searched every block itself
    assert closed and all(p is None or p.returncode is not None for p in closed)  # no child left behind


@pytest.mark.parametrize("era", ["classic", "argparse", "no-mid", "current"])
def test_era_logs_index_the_same_both_ways(tmp_path, era):
    path = F.write_log(tmp_path / "run.log", F.run_log(era=era))
    assert index_log(path, vector=True).to_json() == index_log(path, vector=False).to_json()


def test_validation_lines_do_not_cut_a_run(tmp_path):
    lines = []
    for s in range(1000):
        if s % 250 == 0:
            lines.append(VAL.rstrip("\n"))
        lines.append(F.step_line("base", s, 1000))
    lines.append("Step 01000 | Validation bpb: 0.8000")
    path = F.write_log(tmp_path / "base.log", "Overriding: depth = 2\n" + "\n".join(lines) + "\n")
    for vector in (False, True):
        idx = index_log(path, vector=vector)
        (seg,) = idx.segments
        assert seg.step_lines == 1000  # validation lines are not steps
        assert (seg.first_step.step, seg.last_step.step) == (0, 999)
        assert seg.last_step.line == 1 + len(lines) - 1  # the last step line, not the validation after it
        assert idx.lines == 1 + len(lines)
        assert steplines.runs_regex(path.read_bytes(), 0, path.stat().st_size) == steplines.runs_numpy(
            path.read_bytes(), 0, path.stat().st_size
        )


def test_a_nan_validation_line_inside_a_run_is_still_found(tmp_path):
    lines = [F.step_line("base", s, 100) for s in range(50)]
    lines.insert(20, "Step 00020 | Validation bpb: nan")
    path = F.write_log(tmp_path / "nan.log", "\n".join(lines) + "\n")
    for vector in (False, True):
        (seg,) = index_log(path, vector=vector).segments
        assert seg.nan_loss is not None and seg.nan_loss.line == 21
        assert seg.step_lines == 50


def test_a_read_error_mid_log_is_a_finding_and_stops_the_helper(tmp_path, helper_on, monkeypatch):
    # an EIO mid-file cannot be caused for real on a local disk: the reader raises it after a few blocks
    path = mixed_log(tmp_path)
    real = steplines.BlockReader.blocks

    def failing(self):
        for n, block in enumerate(real(self)):
            if n == 40:
                raise OSError(5, "Input/output error")
            yield block

    helpers = []
    close = steplines.RunsHelper.close
    monkeypatch.setattr(steplines.RunsHelper, "close", lambda self: helpers.append(self.proc) or close(self))
    monkeypatch.setattr(steplines.BlockReader, "blocks", failing)
    idx = index_log(path, vector=True)
    assert idx.error == f"read error in {path}: Input/output error"
    assert helpers and all(p is None or p.returncode is not None for p in helpers)  # killed and reaped


def test_small_logs_do_not_import_numpy_and_large_ones_do(tmp_path):
    small = F.write_log(tmp_path / "small.log", F.run_log())
    large = tmp_path / "large.log"
    block = F.run_log().encode()
    large.write_bytes(block * (steplines.NUMPY_MIN_LOG // len(block) + 1))
    code = "import sys; from preflight.logindex import index_log; index_log(sys.argv[1]); print('numpy' in sys.modules)"
    seen = [
        subprocess.run(
            [sys.executable, "-c", code, str(p)], capture_output=True, text=True, cwd=ROOT, check=True
        ).stdout.strip()
        for p in (small, large)
    ]
    assert seen == ["False", "True"]
