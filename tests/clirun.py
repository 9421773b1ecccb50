"""Run the CLIs as a user would, measuring each run's wall time and peak memory (tests/conftest.py's
``cli`` fixture; the reliability suite's hostile cases hold every run to a memory bound)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_cli(
    tool: str,
    *args: str,
    cwd: Path | None = None,
    env: dict | None = None,
    timeout: float = 120,
    input: str | None = None,
    preexec_fn=None,
) -> subprocess.CompletedProcess:
    """Run `preflight`/`postflight` as a user would (a subprocess of this interpreter). The result also
    carries ``wall_s`` and ``peak_rss_mb`` (the CLI's and its own children's peak, when it exited normally)."""
    full_env = dict(os.environ)
    full_env.pop("PREFLIGHT_DEBUG", None)
    full_env["NO_COLOR"] = "1"
    if env:
        full_env.update(env)
    fd, rss_file = tempfile.mkstemp(prefix="pf-rss-")
    os.close(fd)
    code = (
        "import atexit, resource, sys\n"
        "def _peak():\n"
        # VmHWM: this process since its exec (ru_maxrss would count the forked test runner's pages too)
        "    own = next((int(ln.split()[1]) for ln in open('/proc/self/status') if ln.startswith('VmHWM:')), 0)\n"
        "    kb = max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        f"    open({rss_file!r}, 'w').write(str(kb))\n"
        "atexit.register(_peak)\n"
        f"sys.argv[0] = {tool!r}\n"
        f"from preflight.cli import {tool}_main\n"
        f"{tool}_main()\n"
    )
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            preexec_fn=preexec_fn,
        )
        proc.wall_s = time.monotonic() - t0
        try:
            proc.peak_rss_mb = int(Path(rss_file).read_text()) / 1024
        except (OSError, ValueError):
            proc.peak_rss_mb = None  # killed, or left through os._exit
        return proc
    finally:
        os.unlink(rss_file)


def check_script(cli, cwd: Path, body: str, *extra: str, env: dict | None = None) -> tuple[dict, dict]:
    """`preflight check job.sh --format json` on ``body`` written to cwd/job.sh, with HOME and NANOCHAT_BASE_DIR
    under cwd unless ``env`` says otherwise: (the report, its checks by code)."""
    import json

    (cwd / "job.sh").write_text(body)
    env = {"HOME": str(cwd / "home"), "NANOCHAT_BASE_DIR": str(cwd / "base"), **(env or {})}
    proc = cli("preflight", "check", "job.sh", "--format", "json", *extra, cwd=cwd, env=env)
    report = json.loads(proc.stdout)
    return report, {c["code"]: c for c in report["checks"]}


def verify_logs(cli, cwd: Path, *logs: Path) -> tuple[dict, dict, dict]:
    """`postflight verify --log L... --format json`: (the report, its checks by code, its phases by name)."""
    import json

    args = [a for log in logs for a in ("--log", str(log))]
    proc = cli("postflight", "verify", *args, "--format", "json", cwd=cwd)
    report = json.loads(proc.stdout)
    return report, {c["code"]: c for c in report["checks"]}, {p["name"]: p for p in report["phases"]}
