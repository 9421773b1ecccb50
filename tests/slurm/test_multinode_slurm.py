"""The bundled pipeline across two real SLURM nodes, then postflight on it (issue: multi-node).

The cluster is a second local SLURM instance with two slurmd on this host (node1, node2:
`scripts/local-slurm.sh start --two-nodes`), beside the default one-node cluster. The job is
scripts/speedrun_multinode.slurm itself, in its CPU mode (TINY=1, one gloo process per node): srun
starts one torchrun per node, they meet in a c10d rendezvous on the first node, and every phase
runs with a world of 2. Then `postflight verify JOBID` as a user runs it.

The failure run kills rank 1's worker on node2 with SIGKILL (what the out-of-memory killer does)
while base training runs: rank 0 on node1 then dies in its next all-reduce ("Connection closed by
peer"), a consequence. postflight must name rank 1 on node2 as the cause and rank 0 as the cascade.

Costs on the 2-core machine: the full two-node pipeline 3-4 min; the failure run about 1 min.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TWO_CONF = "/etc/slurm-2node/slurm.conf"
JOB_TIMEOUT = 600


@pytest.fixture(scope="module")
def two_nodes() -> dict[str, str]:
    """The environment of the two-node cluster (started here when root; it is cheap when running)."""
    if os.geteuid() != 0 or shutil.which("slurmd") is None:
        msg = "the two-node cluster needs root and slurmd (scripts/local-slurm.sh start --two-nodes)"
        if os.environ.get("PREFLIGHT_REQUIRE_SLURM") == "1":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    res = subprocess.run(
        [str(REPO / "scripts" / "local-slurm.sh"), "start", "--two-nodes", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    env = dict(
        os.environ,
        SLURM_CONF=TWO_CONF,
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(REPO),
        WANDB_RUN="dummy",
        NO_COLOR="1",
        TINY="1",
    )
    env.pop("PREFLIGHT_DEBUG", None)
    return env


@pytest.fixture(scope="module")
def project(two_nodes) -> Path:
    """A job directory and a base dir with data and a tokenizer, on storage both nodes see (not /tmp:
    node-local-path would stop the job at its preflight step, as it should)."""
    root = Path.home() / ".cache" / "preflight-tests" / f"multinode-{uuid.uuid4().hex[:8]}"
    (root / "scripts").mkdir(parents=True)
    (root / "logs").mkdir()
    shutil.copy(REPO / "scripts" / "speedrun_multinode.slurm", root / "scripts")
    (root / "nanochat").symlink_to(REPO / "nanochat")  # the checkout the job runs (postflight reads its era)
    env = dict(two_nodes, NANOCHAT_BASE_DIR=str(root / "base"))
    for args in (
        "nanochat.dataset build --num-shards 3 --chars-per-shard 600000",
        "nanochat.tok_train --max_chars=2000000 --vocab_size=1024",
    ):
        proc = subprocess.run(
            [sys.executable, "-m", *args.split()], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _submit(env: dict, project: Path, base: Path, *extra: str) -> str:
    res = subprocess.run(
        ["sbatch", "--parsable", "--gres=gpu:1", "--time=00:30:00", *extra, "scripts/speedrun_multinode.slurm"],
        cwd=project,
        env=dict(env, NANOCHAT_BASE_DIR=str(base)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.strip().split(";")[0]


def _state(env: dict, job: str) -> str:
    out = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-j", job, "-o", "State"], env=env, capture_output=True, text=True, timeout=30
    ).stdout.split()
    return out[0] if out else ""


def _wait(env: dict, job: str, timeout: float = JOB_TIMEOUT) -> str:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        q = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], env=env, capture_output=True, text=True, timeout=30)
        if not q.stdout.strip():
            for _ in range(40):  # accounting lags the controller by a moment
                state = _state(env, job)
                if state and state not in ("RUNNING", "PENDING", "COMPLETING"):
                    return state
                time.sleep(0.5)
            return _state(env, job)
        time.sleep(2)
    pytest.fail(f"job {job} still running after {timeout:.0f}s")


def _verify(env: dict, project: Path, base: Path, job: str) -> tuple[int, dict, str]:
    run_env = dict(env, NANOCHAT_BASE_DIR=str(base))
    code = "import sys; sys.argv[0] = 'postflight'; from preflight.cli import postflight_main; postflight_main()"
    js = subprocess.run(
        [sys.executable, "-c", code, "verify", job, "--format", "json"],
        cwd=project,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert js.returncode in (0, 1), js.stderr[-3000:]
    text = subprocess.run(
        [sys.executable, "-c", code, "verify", job],
        cwd=project,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return js.returncode, json.loads(js.stdout), text.stdout


def _worker(job: str, rank: int) -> tuple[int, str] | None:
    """(pid, node) of the job's training worker with this RANK (read from /proc: both nodes are this host)."""
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            env = dict(
                kv.split("=", 1)
                for kv in (pid_dir / "environ").read_bytes().decode(errors="replace").split("\0")
                if "=" in kv
            )
            cmd = (pid_dir / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if env.get("SLURM_JOB_ID") == job and env.get("RANK") == str(rank) and "nanochat.base_train" in cmd:
            return int(pid_dir.name), env.get("SLURMD_NODENAME", "")
    return None


def _excerpt(log: str) -> str:
    """What a failed job's log says first (the first error and what led to it), then how it ended."""
    marks = [i for i in (log.find("Traceback"), log.find("terminate called"), log.find("Error")) if i >= 0]
    first = min(marks) if marks else len(log)
    return log[max(0, first - 1500) : first + 2500] + "\n[...]\n" + log[-1500:]


def test_tiny_pipeline_across_two_nodes_then_postflight(two_nodes, project):
    base = project / "base-ok"
    shutil.copytree(project / "base", base)
    job = _submit(two_nodes, project, base)
    state = _wait(two_nodes, job)
    assert state == "COMPLETED", _excerpt((project / "logs" / f"nanochat-multinode_{job}.out").read_text())
    log = (project / "logs" / f"nanochat-multinode_{job}.out").read_text()
    assert "PASS" in log.split("postflight verify")[-1] or "PASS with warnings" in log  # the job's own last step
    # every training phase ran with a world of 2, one worker per node (rank 1's optimizer shard exists)
    assert list((base / "base_checkpoints" / "d2").glob("optim_*_rank1.pt"))
    steps = subprocess.run(
        ["sacct", "-n", "-P", "-j", job, "-o", "JobID,State,NodeList"],
        env=two_nodes,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert f"{job}.0|COMPLETED|node[1-2]" in steps, steps
    rc, doc, text = _verify(two_nodes, project, base, job)
    phases = {p["name"]: p["status"] for p in doc["phases"]}
    assert rc == 0, text
    assert [phases[p] for p in ("tokenizer", "base", "mid", "sft")] == ["done"] * 4, text
    # torchrun's rendezvous noise at shutdown (the first node's agent leaves first) is no crash
    assert not [f for c in doc["checks"] for f in c["findings"] if f["severity"] == "error"], text


def test_rank_killed_on_one_node_is_the_cause_and_the_other_rank_a_cascade(two_nodes, project):
    base = project / "base-crash"
    shutil.copytree(project / "base", base)
    job = _submit(two_nodes, project, base)
    log_path = project / "logs" / f"nanochat-multinode_{job}.out"
    t0 = time.monotonic()
    victim = None
    while time.monotonic() - t0 < 300 and victim is None:
        if log_path.exists() and "step 00003" in log_path.read_text(errors="replace"):
            victim = _worker(job, rank=1)
        time.sleep(1)
    assert victim is not None, log_path.read_text(errors="replace")[-3000:] if log_path.exists() else "no log"
    pid, node = victim
    assert node == "node2" or node == "node1"
    os.kill(pid, signal.SIGKILL)
    assert _wait(two_nodes, job) == "FAILED"
    rc, doc, text = _verify(two_nodes, project, base, job)
    assert rc == 1, text
    (finding,) = [f for c in doc["checks"] if c["name"] == "rank-failure" for f in c["findings"]]
    assert f"rank 1 on {node} failed first in base" in finding["message"], text
    assert "SIGKILL" in finding["message"] and "out-of-memory killer" in finding["message"], text
    assert "rank 0 then failed because of it" in finding["message"], text
    assert finding["data"]["rank"] == 1 and finding["data"]["node"] == node and finding["data"]["cascade_ranks"] == [0]
    # the cascade is not reported as a crash of its own, and torchrun's lost rendezvous is not an offline download
    messages = [f["message"] for c in doc["checks"] for f in c["findings"]]
    assert not [m for m in messages if "Connection closed by peer" in m and "rank-failure" not in m], messages
    assert not [m for m in messages if "RendezvousConnectionError" in m], messages


def test_signal_stops_every_node_at_one_step_then_resume_completes(two_nodes, project):
    """What `#SBATCH --signal=B:USR1@300` does before the time limit, sent now: the batch shell forwards
    SIGTERM to the srun step, srun to torchrun on both nodes, the workers agree on a step (all-reduce),
    save one checkpoint (rank 0's model, each rank's optimizer shard) and exit; the resubmitted job resumes."""
    base = project / "base-signal"
    shutil.copytree(project / "base", base)
    job = _submit(two_nodes, project, base)
    log_path = project / "logs" / f"nanochat-multinode_{job}.out"
    t0 = time.monotonic()
    while time.monotonic() - t0 < 300:
        if log_path.exists() and "step 00005" in log_path.read_text(errors="replace"):
            break
        time.sleep(1)
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], env=two_nodes, check=True, timeout=30)
    assert _wait(two_nodes, job) == "COMPLETED"
    log = log_path.read_text(errors="replace")
    assert "Stopped by a signal during nanochat.base_train" in log, log[-3000:]
    ckpt = base / "base_checkpoints" / "d2"
    steps = sorted(int(p.stem.split("_")[1]) for p in ckpt.glob("model_*.pt"))
    assert steps and steps[-1] < 40, steps  # saved at the stop step, before the end
    stop = steps[-1]
    assert {p.name for p in ckpt.glob(f"optim_{stop:06d}_rank*.pt")} == {
        f"optim_{stop:06d}_rank0.pt",
        f"optim_{stop:06d}_rank1.pt",
    }
    resumed = _submit(dict(two_nodes, RESUME_FROM_STEP=str(stop)), project, base)
    assert _wait(two_nodes, resumed) == "COMPLETED", (
        project / "logs" / f"nanochat-multinode_{resumed}.out"
    ).read_text()[-3000:]
    assert (ckpt / "model_000040.pt").is_file()
    assert (
        f"Resuming optimization from step {stop}"
        in (project / "logs" / f"nanochat-multinode_{resumed}.out").read_text()
    )
    rc, doc, text = _verify(two_nodes, project, base, resumed)
    assert rc == 0 and {p["name"]: p["status"] for p in doc["phases"]}["sft"] == "done", text
