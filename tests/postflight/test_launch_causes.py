"""Causes of a phase that never got going, from the real text of each failure: a module python cannot
find (the job outside the checkout: one line, no traceback), no compiler for torch.compile, a torch
build without kernels for the GPU."""

from __future__ import annotations

import subprocess
import sys

import pytest

from preflight.causes import classify_text, fix_for
from preflight.logindex import index_log


def test_python_m_outside_the_checkout_is_the_phases_crash_at_setup(tmp_path):
    # what python itself prints for `python -m scripts.base_train` in a directory without scripts/
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.base_train", "--depth=4"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    log = tmp_path / "job.err"
    log.write_text("starting\n" + proc.stderr)
    ix = index_log(str(log))
    (tb,) = [t for seg in ix.segments for t in seg.tracebacks]
    assert (tb.phase, tb.exc_type, tb.line) == ("base", "ModuleNotFoundError", 2)
    cause = classify_text(tb.chain_text)
    assert cause.name == "missing module" and "did not run in the nanochat checkout" in cause.detail
    assert "cd to it in the script" in fix_for(cause)


def test_a_package_the_environment_lacks():
    cause = classify_text("ModuleNotFoundError: No module named 'rustbpe'")
    assert cause.name == "missing module" and "has no module rustbpe" in cause.detail


def test_torch_compile_without_a_compiler_on_the_node(tmp_path):
    pytest.importorskip("torch")
    code = "import torch\nf = torch.compile(lambda x: (x * 2).sin())\nf(torch.ones(3))\n"
    env = {"PATH": "/usr/bin:/bin", "CXX": str(tmp_path / "no-such-g++"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0 and "Traceback" in proc.stderr, proc.stderr[-2000:]
    log = tmp_path / "job.err"
    log.write_text(proc.stderr)
    (tb,) = [t for seg in index_log(str(log)).segments for t in seg.tracebacks][-1:]
    cause = classify_text(tb.chain_text)
    assert cause.name == "no compiler", tb.chain_text
    assert "module load gcc" in fix_for(cause)


def test_a_gpu_the_torch_build_has_no_kernels_for():
    # a fault that cannot be caused without such a GPU: CUDA's own message
    text = (
        "torch.AcceleratorError: CUDA error: no kernel image is available for execution on the device\n"
        "CUDA kernel errors might be asynchronously reported at some other API call"
    )
    assert classify_text(text).name == "GPU not supported by this build"
