"""The demo: the whole loop on the bundled trainer at tiny scale, on this machine.

    ./run demo                 # (or: python -m preflight.demo)
    ./run demo --no-slurm      # run the pipeline directly even if a SLURM cluster answers

1. writes a batch script for the tiny pipeline (CPU) into ./demo-run/
2. `preflight check` it and shows the plan
3. submits it with `preflight sbatch` when a SLURM controller answers, else runs it directly
4. shows progress (phase, step) while it trains
5. `postflight verify` the run: one verdict per phase, and the exit code of that verdict
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PHASE_RE = re.compile(r"^==> (?:phase: )?(.+?)\s*$")
STEP_RE = re.compile(r"\b[Ss]tep (\d+)(?:/(\d+))?")

SCRIPT = """#!/bin/bash
#SBATCH --job-name=nanochat-demo
#SBATCH --output={logs}/%x_%j.out
#SBATCH --time=00:30:00
#SBATCH --cpus-per-task=2
#SBATCH --signal=B:USR1@60
# The tiny nanochat pipeline on CPU, phase by phase (what scripts/speedrun.sh --tiny runs).
set -euo pipefail
export NANOCHAT_BASE_DIR={base}
export OMP_NUM_THREADS=1
export WANDB_RUN=dummy
cd {repo}

# 60 s before the time limit SLURM sends USR1 to this shell only (B:): pass it to the training phase, which
# saves a checkpoint and exits. Training runs in the background because bash runs a trap only between commands.
PHASE=""
STOPPED=""
trap 'STOPPED=1; [ -z "$PHASE" ] || kill -USR1 "$PHASE"' USR1
finish() {{  # wait for the phase just started (a trapped USR1 ends the first wait early); stop after a signal
    PHASE=$!
    wait "$PHASE" || wait "$PHASE"
    PHASE=""
    if [ -n "$STOPPED" ]; then echo "stopped by USR1 before the time limit; the checkpoint is saved"; exit 0; fi
}}

echo "==> phase: data"
{python} -m nanochat.report reset
{python} -m nanochat.dataset build --num-shards 3 --chars-per-shard 600000
echo "==> phase: tokenizer"
{python} -m nanochat.tok_train --max_chars=2000000 --vocab_size=1024
echo "==> phase: base"
{python} -m nanochat.base_train --run=$WANDB_RUN --device_type=cpu --depth=2 --max_seq_len=256 --device_batch_size=4 \\
    --total_batch_size=2048 --num_iterations=40 --eval_every=20 --eval_tokens=8192 --sample_every=-1 &
finish
echo "==> phase: mid"
{python} -m nanochat.mid_train --run=$WANDB_RUN --device_type=cpu --max_seq_len=256 --device_batch_size=4 \\
    --total_batch_size=2048 --task_size=200 --eval_every=20 --eval_tokens=4096 &
finish
{python} -m nanochat.chat_eval -i mid -x 8 -m 48
echo "==> phase: sft"
{python} -m nanochat.chat_sft --run=$WANDB_RUN --device_type=cpu --device_batch_size=4 --target_examples_per_step=8 \\
    --task_size=100 --eval_every=25 --eval_steps=4 --eval_metrics_max_problems=4 &
finish
{python} -m nanochat.chat_eval -i sft -x 8 -m 48
echo "==> phase: report"
{python} -m nanochat.report generate
"""


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _run(console, title: str, cmd: list[str], **kw) -> int:
    console.rule(f"[bold]{title}")
    console.print(f"[dim]$ {' '.join(cmd)}[/]")
    return subprocess.run(cmd, **kw).returncode


def _slurm_up() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and any(s.strip() in ("idle", "mix", "alloc") for s in proc.stdout.split())


def _follow(console, log: Path, done) -> None:
    """Show the current phase and step from the log until ``done()`` says the run is over."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    phase, step, offset = "starting", "", 0
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[phase]}[/] {task.fields[step]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("demo", phase=phase, step=step)
        while True:
            finished = done()
            if log.exists():
                with open(log, "rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
                    offset += len(chunk)
                for raw in chunk.decode("utf-8", "replace").splitlines():
                    line = re.sub(r"\x1b\[[0-9;]*m", "", raw).strip()
                    if m := PHASE_RE.match(line):
                        if phase != "starting":
                            progress.console.print(f"  [green]✓[/] {phase}")
                        phase, step = m.group(1), ""
                    elif m := STEP_RE.search(line):
                        step = f"step {m.group(1)}" + (f"/{m.group(2)}" if m.group(2) else "")
                progress.update(task, phase=phase, step=step)
            if finished:
                break
            time.sleep(0.5)
        progress.console.print(f"  [dim]last phase seen:[/] {phase}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("demo-run"))
    parser.add_argument("--no-slurm", action="store_true", help="run directly even if SLURM answers")
    args = parser.parse_args(argv)
    console = _console()
    started = time.monotonic()

    work = args.workdir.resolve()
    if work.exists():
        shutil.rmtree(work)
    logs, base = work / "logs", work / "base"
    logs.mkdir(parents=True)
    base.mkdir()
    script = work / "demo.sbatch"
    script.write_text(SCRIPT.format(logs=logs, base=base, repo=REPO, python=sys.executable))
    env = {**os.environ, "NANOCHAT_BASE_DIR": str(base), "WANDB_RUN": "dummy", "OMP_NUM_THREADS": "2"}
    preflight = [sys.executable, "-m", "preflight", "check"]
    postflight = [sys.executable, "-m", "preflight.postflight_entry"]

    console.print(
        f"[bold]nanochat-preflight demo[/]: the tiny nanochat pipeline, checked before and verified after.\n"
        f"work dir: {work}"
    )
    code = _run(
        console,
        "1. preflight check (before submission)",
        preflight + [str(script), "--base-dir", str(base)],
        env=env,
        cwd=work,
    )
    if code == 2:
        console.print("[red]preflight could not run; stopping[/]")
        return 2
    if code == 1:
        console.print("[yellow]preflight found errors; the demo goes on to show what postflight says[/]")

    use_slurm = not args.no_slurm and _slurm_up()
    if use_slurm:
        console.rule("[bold]2. submit through the local SLURM cluster (preflight sbatch)")
        proc = subprocess.run(
            [sys.executable, "-m", "preflight", "sbatch", "--force", str(script)],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
        )
        sys.stderr.write(proc.stderr[-3000:])
        job_id = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        if proc.returncode != 0 or not job_id.isdigit():
            console.print(f"[red]submission failed (exit {proc.returncode}); running directly instead[/]")
            use_slurm = False
        else:
            console.print(f"submitted job [bold]{job_id}[/]; following logs/nanochat-demo_{job_id}.out")
            log = logs / f"nanochat-demo_{job_id}.out"

            def done() -> bool:
                try:
                    out = subprocess.run(
                        ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=10
                    )
                except subprocess.TimeoutExpired:
                    return False  # a slow controller: ask again on the next poll
                return out.returncode == 0 and out.stdout.strip() == ""

            _follow(console, log, done)
            verify = postflight + ["verify", job_id, "--wait", "--wait-timeout", "120"]
    if not use_slurm:
        console.rule("[bold]2. run the pipeline directly (no SLURM controller answers here)")
        log = logs / "nanochat-demo_local.out"
        with open(log, "wb") as out:
            proc = subprocess.Popen(["bash", str(script)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work)
            _follow(console, log, lambda: proc.poll() is not None)
        console.print(f"pipeline exit code: {proc.returncode}")
        verify = postflight + ["verify", "--log", str(log), "--base-dir", str(base), "--profile", "bundled"]

    code = _run(console, "3. postflight verify (after the job)", verify, env=env, cwd=work)
    page = work / "report.html"  # the same verdict as a page with the training curves, for a browser
    subprocess.run(
        verify + ["--format", "html", "--output-file", str(page)],
        env=env,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    minutes = (time.monotonic() - started) / 60
    via = "the local SLURM cluster" if use_slurm else "directly (no SLURM)"
    verdict = "[bold green]every phase done[/]" if code == 0 else f"[bold red]postflight exit {code}[/]"
    console.rule()
    console.print(f"demo finished in {minutes:.1f} min, run {via}: {verdict}")
    console.print(
        f"artifacts: {base}   logs: {logs}   chat: NANOCHAT_BASE_DIR={base} python -m nanochat.chat_cli -p hi"
    )
    if page.exists():
        console.print(f"run report (open in a browser): {page}")
    return code


if __name__ == "__main__":
    sys.exit(main())
