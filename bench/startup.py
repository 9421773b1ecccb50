"""Start-up time of the CLI next to a bare interpreter.

    python bench/startup.py [--repeat 15]
    python bench/startup.py --against /path/to/other/checkout [--repeat 25]   # A/B, alternating

Prints median and min-max wall time of: `python -c pass`, `preflight --help`,
`postflight --help`, a torch-free `preflight check` of a small script, the same in a project with a
preflight.yaml (validated by the warming run, see preflight/config_cache.py), plus whether
torch was imported (it must not be). Runs each command through this interpreter, so
shell shims (pyenv, conda) are not counted.

--against DIR: the torch-free check of this checkout and of another checkout of the project (an older
commit, a branch), alternating run by run so that both see the same machine load; median and min-max
wall time, and CPU time (user + system, children included) of each.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SCRIPT = """#!/bin/bash
#SBATCH --gres=gpu:8
#SBATCH --time=01:00:00
#SBATCH --signal=USR1@300
set -euo pipefail
export NANOCHAT_BASE_DIR=$PWD/base
export OMP_NUM_THREADS=1
torchrun --standalone --nproc_per_node=8 -m scripts.base_train -- --depth=20 --run=dummy
"""


CONFIG = """\
fail-on: warning
network: offline
ignore: [ENV003]
gpu:
  type: H100 SXM
"""


def cli(tool: str, *args: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        f"import sys; sys.argv[0]={tool!r}; from preflight.cli import {tool}_main; {tool}_main()",
        *args,
    ]


def ran(cmd: list[str], cwd: str, env: dict) -> None:
    """Run ``cmd`` once (this warms the page cache and writes bytecode) and stop the bench if it did not work:
    exit 2 and up is a usage or internal error (a missing dependency, say), whose start-up is not the CLI's."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        sys.exit(f"startup: {' '.join(cmd[-4:])} exited {proc.returncode}, not timed:\n  " + "\n  ".join(tail))


def torch_imported(cmd_args: list[str], cwd: str, env: dict) -> bool:
    code = (
        "import atexit, sys\natexit.register(lambda: print('TORCH' if 'torch' in sys.modules else 'NOTORCH', file=sys.stderr))\n"
        "sys.argv[0]='preflight'\nfrom preflight.cli import preflight_main\npreflight_main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *cmd_args], cwd=cwd, env=env, capture_output=True, text=True)
    return "NOTORCH" not in proc.stderr


@contextlib.contextmanager
def workdir() -> Iterator[tuple[str, dict]]:
    """A temporary folder with the script and an empty base dir, and the environment the commands run in."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "job.sbatch").write_text(SCRIPT)
        Path(tmp, "base").mkdir()
        # the same job in a project with a config file (what `preflight init` writes, trimmed)
        project = Path(tmp, "project")
        project.mkdir()
        (project / "job.sbatch").write_text(SCRIPT)
        (project / "base").mkdir()
        (project / "preflight.yaml").write_text(CONFIG)
        env = {**os.environ, "HOME": tmp, "XDG_CACHE_HOME": str(Path(tmp, "cache")), "NO_COLOR": "1"}
        # what users get: bytecode cached after the first run (some sandboxes set this to 1,
        # which recompiles every module on every start)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        yield tmp, env


def measure(repeat: int = 15) -> list[dict]:
    with workdir() as (tmp, env):
        rows = []
        cases = [
            ("python -c pass (baseline)", [sys.executable, "-c", "pass"], None, tmp),
            ("preflight --help", cli("preflight", "--help"), ["--help"], tmp),
            ("postflight --help", cli("postflight", "--help"), None, tmp),
            (
                "preflight check job.sbatch (torch-free)",
                cli("preflight", "check", "job.sbatch", "--base-dir", "base"),
                ["check", "job.sbatch", "--base-dir", "base"],
                tmp,
            ),
            (
                # the first (warming) run validates preflight.yaml; the timed ones find it validated
                "preflight check with a preflight.yaml",
                cli("preflight", "check", "job.sbatch", "--base-dir", "base"),
                ["check", "job.sbatch", "--base-dir", "base"],
                str(Path(tmp, "project")),
            ),
        ]
        for _, cmd, _, cwd in cases:
            ran(cmd, cwd, env)
        # the cases take turns, run by run: a busy second on this machine slows each of them alike
        times: list[list[float]] = [[] for _ in cases]
        for _ in range(repeat):
            for i, (_, cmd, _, cwd) in enumerate(cases):
                start = time.perf_counter()
                subprocess.run(cmd, cwd=cwd, env=env, capture_output=True)
                times[i].append(time.perf_counter() - start)
        for (label, _, torch_args, cwd), ts in zip(cases, times, strict=True):
            rows.append(
                {
                    "what": label,
                    "median_s": statistics.median(ts),
                    "min_s": min(ts),
                    "max_s": max(ts),
                    "torch_imported": torch_imported(torch_args, cwd, env) if torch_args else None,
                }
            )
        return rows


def bench(tiny: bool = False) -> list:
    from bench.common import Row

    rows = measure(3 if tiny else 15)
    base = rows[0]
    out = []
    for r in rows[1:]:
        out.append(
            Row(
                what=f"start-up: {r['what']}",
                ours=r["median_s"],
                unit="s",
                baseline=base["median_s"],
                baseline_what="python -c pass",
                target="≤ 150 ms, torch not imported",
                meets=(r["median_s"] <= 0.150 and not r["torch_imported"])
                if r["torch_imported"] is not None
                else r["median_s"] <= 0.150,
                spread=f"{r['min_s'] * 1000:.0f}–{r['max_s'] * 1000:.0f} ms",
                note=""
                if r["torch_imported"] is None
                else ("torch IMPORTED" if r["torch_imported"] else "torch not imported"),
            )
        )
    return out


def against(other: Path, repeat: int) -> None:
    """This checkout's `preflight check` and another checkout's, alternating (PYTHONPATH picks the code):
    the small script alone, then the same in a project with a preflight.yaml."""
    import resource

    here = Path(__file__).resolve().parents[1]
    trees = {"this checkout": here, str(other): other.resolve()}
    with workdir() as (tmp, env):
        cmd = cli("preflight", "check", "job.sbatch", "--base-dir", "base")
        for title, cwd in (("", tmp), (" with a preflight.yaml", str(Path(tmp, "project")))):
            walls: dict[str, list[float]] = {k: [] for k in trees}
            cpus: dict[str, list[float]] = {k: [] for k in trees}
            for tree in trees.values():
                ran(cmd, cwd, {**env, "PYTHONPATH": str(tree)})
            for i in range(repeat + 1):  # the first round warms caches and writes bytecode
                for label, tree in trees.items():
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    start = time.perf_counter()
                    subprocess.run(cmd, cwd=cwd, env={**env, "PYTHONPATH": str(tree)}, capture_output=True)
                    wall = time.perf_counter() - start
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    if i:
                        walls[label].append(wall)
                        cpus[label].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            print(f"preflight check job.sbatch{title}, {repeat} alternating runs each")
            for label in trees:
                w, c = walls[label], cpus[label]
                print(
                    f"{label:40} wall {statistics.median(w) * 1000:6.0f} ms ({min(w) * 1000:.0f}-{max(w) * 1000:.0f})"
                    f"   cpu {statistics.median(c) * 1000:6.0f} ms"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--against", type=Path, default=None, help="another checkout of the project to A/B with")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.against is not None:
        if not (args.against / "preflight" / "cli.py").is_file():
            parser.error(f"{args.against}: not a checkout of this project (no preflight/cli.py)")
        against(args.against, args.repeat)
        return
    rows = measure(args.repeat)
    print(f"{'command':45} {'median':>8} {'min':>8} {'max':>8}  torch")
    for r in rows:
        torch = "" if r["torch_imported"] is None else ("IMPORTED" if r["torch_imported"] else "no")
        print(
            f"{r['what']:45} {r['median_s'] * 1000:7.0f}ms {r['min_s'] * 1000:7.0f}ms {r['max_s'] * 1000:7.0f}ms  {torch}"
        )


if __name__ == "__main__":
    main()
