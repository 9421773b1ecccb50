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


# NCCL's own wording when it cannot create an InfiniBand completion queue at the first collective (a two-node
# base_train whose nodes lock too little memory): the exception message goes on over three more lines, and the
# failing system call is on the last one
NCCL_IBV_FAILURE = """\
[rank13]: Traceback (most recent call last):
[rank13]:   File "/home/u/nanochat/scripts/base_train.py", line 86, in <module>
[rank13]:     ddp, ddp_rank, ddp_local_rank, ddp_world_size, device = compute_init(device_type)
[rank13]:   File "/home/u/nanochat/nanochat/common.py", line 201, in compute_init
[rank13]:     dist.barrier()
[rank13]:   File "/home/u/.venv/lib/python3.10/site-packages/torch/distributed/distributed_c10d.py", line 5030, in barrier
[rank13]:     work = group.barrier(opts=opts)
[rank13]: torch.distributed.DistBackendError: NCCL error in: /pytorch/torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:3780, \
unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.28.9
[rank13]: ncclSystemError: System call (e.g. socket, malloc) or external library call failed or device error.
[rank13]: Last error:
[rank13]: Call to ibv_create_cq failed with error Cannot allocate memory
E0417 10:02:11.000000 771 torch/distributed/elastic/multiprocessing/api.py:874] failed (exitcode: 1) \
local_rank: 5 (pid: 811) of binary: /home/u/.venv/bin/python3
"""


def test_nccl_that_cannot_set_up_infiniband_is_no_timeout(tmp_path):
    log = tmp_path / "job.err"
    log.write_text(NCCL_IBV_FAILURE)
    (tb,) = [t for seg in index_log(str(log)).segments for t in seg.tracebacks]
    assert (tb.phase, tb.ranks, tb.exc_line) == ("base", [13], 8)
    assert tb.detail[-1] == "Call to ibv_create_cq failed with error Cannot allocate memory"
    assert not any("E0417" in d for d in tb.detail)  # torchrun's own line ends the message
    cause = classify_text(tb.chain_text)
    assert cause.name == "NCCL system error", cause  # was "NCCL timeout": any DistBackendError was one
    assert cause.detail.endswith("Call to ibv_create_cq failed with error Cannot allocate memory")
    assert "ulimit -l" in fix_for(cause) and "timeout" not in fix_for(cause)


@pytest.mark.parametrize(
    "text,name",
    [
        (
            "torch.distributed.DistBackendError: [Rank 3] Watchdog caught collective operation timeout: "
            "WorkNCCL(SeqNum=9, OpType=ALLREDUCE) ran for 600000 milliseconds before timing out.",
            "NCCL timeout",
        ),
        ("torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, invalid usage", "NCCL error"),
        (
            "torch.distributed.DistBackendError: NCCL error: unhandled system error\nncclSystemError: ...",
            "NCCL system error",
        ),
    ],
)
def test_nccl_failures_by_their_message(text, name):
    assert classify_text(text).name == name


SETUP_PRINT = 'print("Tokens / micro-batch / rank: 1 x 1024 = 1,024", flush=True)\n'


def _bash_job(tmp_path, trainer: str, command: str) -> str:
    """Run ``command`` (a scripts.base_train whose source is ``trainer``) as a real bash job script; its stdout and
    stderr as one stream, as SLURM's default output file has them."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "base_train.py").write_text(trainer)
    (tmp_path / "job.sh").write_text(f"#!/bin/bash\n{command}\necho after\n")
    proc = subprocess.run(
        ["bash", "job.sh"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60
    )
    return proc.stdout


@pytest.mark.parametrize(
    "signal,cause,fix_says",
    [
        ("SIGSEGV", "native crash", "PYTHONFAULTHANDLER=1 in the job"),
        ("SIGKILL", "killed", "MaxRSS"),
        ("SIGABRT", "native crash", ""),
    ],
)
def test_a_phase_a_signal_killed_is_its_crash_as_bash_reports_it(tmp_path, signal, cause, fix_says):
    # a real bash running a job script whose trainer dies of a signal: no traceback, only bash's own line
    # ("job.sh: line 2: 4242 Segmentation fault      python -m scripts.base_train ...")
    out = _bash_job(
        tmp_path,
        "import os, signal, sys\n" + SETUP_PRINT + "os.kill(os.getpid(), getattr(signal, sys.argv[1]))\n",
        f"{sys.executable} -m scripts.base_train {signal} --depth=4",
    )
    log = tmp_path / "slurm-7.out"
    log.write_text(out)
    assert "job.sh: line 2: " in log.read_text()
    (tb,) = [t for seg in index_log(str(log)).segments for t in seg.tracebacks]
    assert (tb.phase, tb.line) == ("base", 2)
    found = classify_text(tb.chain_text)
    assert found.name == cause and signal in tb.chain_text
    assert fix_says in fix_for(found)


def test_a_phase_a_signal_killed_fails_in_the_verdict(tmp_path, cli):
    log = tmp_path / "slurm-7.out"
    log.write_text(
        "Tokens / micro-batch / rank: 1 x 1024 = 1,024\n"
        "/var/spool/slurmd/job00007/slurm_script: line 56: 31902 Segmentation fault: 11  "
        "python -m scripts.base_train --depth=4 --device_batch_size=1\n"
    )
    proc = cli("postflight", "verify", "--log", str(log), "--format", "json", cwd=tmp_path)
    import json

    doc = json.loads(proc.stdout)
    base = next(p for p in doc["phases"] if p["name"] == "base")
    assert base["status"] == "failed" and "native crash" in base["cause"] and "SIGSEGV" in base["cause"], base
    tok = next(p for p in doc["phases"] if p["name"] == "tokenizer")
    assert tok["status"] == "done" and "base_train ran on it" in tok["cause"]  # base_train got through setup
    assert doc["resume"]["phase"] == "base"


def test_faulthandlers_dump_is_the_crash_with_the_jobs_own_frame(tmp_path):
    # a real native crash under PYTHONFAULTHANDLER=1 (what the native-crash fix asks for): faulthandler's dump
    # ("Fatal Python error: Segmentation fault", the thread's frames most recent first), then bash's own line
    out = _bash_job(
        tmp_path,
        "import ctypes\n" + SETUP_PRINT + "def forward():\n    ctypes.string_at(0)\nforward()\n",
        f"PYTHONFAULTHANDLER=1 {sys.executable} -m scripts.base_train --depth=4",
    )
    assert "Fatal Python error: Segmentation fault" in out and "Segmentation fault" in out.splitlines()[-2]
    log = tmp_path / "slurm-8.out"
    log.write_text(out)
    (tb,) = [t for seg in index_log(str(log)).segments for t in seg.tracebacks]  # one death, told twice
    assert (tb.phase, tb.exc_type, tb.message) == ("base", "Fatal Python error", "Segmentation fault")
    assert tb.code_frame == f"{tmp_path / 'scripts' / 'base_train.py'}:4"  # innermost frame of the job's code
    cause = classify_text(tb.chain_text)
    assert cause.name == "native crash" and "faulthandler" in fix_for(cause)
