"""The multi-node row: scripts/speedrun_multinode.slurm's tiny CPU pipeline on two local SLURM nodes,
next to the same script on one node of the same cluster, in the same run. For correctness, not speed:
both "nodes" share this machine's cores, so two nodes cannot be faster than one here.

    python bench/multinode.py --run   # root: starts the two-node cluster, runs both jobs (~6 min), records
    python bench/multinode.py         # print the recorded row

The suite (`python -m bench`) reads the recorded result (bench/multinode_results.json) like the GPU rows;
it never submits jobs itself.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = Path(__file__).resolve().with_name("multinode_results.json")
CONF = "/etc/slurm-2node/slurm.conf"


def _sacct(job: str, env: dict) -> dict[str, str]:
    out = (
        subprocess.run(
            ["sacct", "-X", "-n", "-P", "-j", job, "-o", "State,ElapsedRaw,NodeList"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        .stdout.strip()
        .split("|")
    )
    return {"state": out[0], "elapsed_s": out[1] if len(out) > 1 else "", "nodes": out[2] if len(out) > 2 else ""}


def _job(env: dict, project: Path, nodes: int) -> dict:
    base = project / f"base-{nodes}"
    shutil.copytree(project / "base", base)
    res = subprocess.run(
        [
            "sbatch",
            "--parsable",
            f"--nodes={nodes}",
            "--gres=gpu:1",
            "--time=00:30:00",
            "scripts/speedrun_multinode.slurm",
        ],
        cwd=project,
        env=dict(env, NANOCHAT_BASE_DIR=str(base)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    job = res.stdout.strip().split(";")[0]
    while subprocess.run(["squeue", "-h", "-j", job], env=env, capture_output=True, text=True).stdout.strip():
        time.sleep(2)
    for _ in range(40):
        info = _sacct(job, env)
        if info["state"] not in ("", "RUNNING", "COMPLETING"):
            break
        time.sleep(0.5)
    info["job"] = job
    return info


def run() -> dict:
    subprocess.run([str(ROOT / "scripts" / "local-slurm.sh"), "start", "--two-nodes", "--quiet"], check=True)
    env = dict(os.environ, SLURM_CONF=CONF, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), WANDB_RUN="dummy", TINY="1")
    project = Path.home() / ".cache" / "preflight-bench" / f"multinode-{uuid.uuid4().hex[:8]}"
    (project / "scripts").mkdir(parents=True)
    (project / "logs").mkdir()
    shutil.copy(ROOT / "scripts" / "speedrun_multinode.slurm", project / "scripts")
    (project / "nanochat").symlink_to(ROOT / "nanochat")
    try:
        for args in (
            "nanochat.dataset build --num-shards 3 --chars-per-shard 600000",
            "nanochat.tok_train --max_chars=2000000 --vocab_size=1024",
        ):
            subprocess.run(
                [sys.executable, "-m", *args.split()],
                cwd=ROOT,
                check=True,
                capture_output=True,
                env=dict(env, NANOCHAT_BASE_DIR=str(project / "base")),
            )
        one = _job(env, project, 1)
        two = _job(env, project, 2)
    finally:
        shutil.rmtree(project, ignore_errors=True)
    import torch

    data = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "torch": torch.__version__,
        "command": "python bench/multinode.py --run",
        "one_node": one,
        "two_nodes": two,
        "what": "TINY=1 sbatch --gres=gpu:1 --nodes=N scripts/speedrun_multinode.slurm on the local two-node SLURM",
    }
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    return data


def bench(tiny: bool = False) -> list:
    """The recorded row (``tiny`` changes nothing: nothing is measured in the suite's run)."""
    from bench.common import Row

    if not RESULTS.exists():
        return []
    data = json.loads(RESULTS.read_text())
    one, two = data["one_node"], data["two_nodes"]
    ok = one["state"] == two["state"] == "COMPLETED"
    return [
        Row(
            what="tiny pipeline, 2 local SLURM nodes, CPU/gloo (recorded): wall time",
            ours=float(two["elapsed_s"]),
            unit="s",
            baseline=float(one["elapsed_s"]),
            baseline_what="the same script on 1 node, same run",
            target="completes on 2 nodes (correctness, not speed)",
            meets=ok,
            note=f"{data['date']}, torch {data['torch']}; jobs {two['job']} ({two['nodes']}) and {one['job']} "
            f"({one['nodes']}), both {two['state']}; both nodes share this machine's 2 cores; "
            f"`{data['command']}`",
        )
    ]


def main() -> int:
    if "--run" in sys.argv:
        print(json.dumps(run(), indent=2))
    for r in bench():
        print(f"{r.what}: {r.ours:.0f} s vs {r.baseline:.0f} s ({r.baseline_what}); {r.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
