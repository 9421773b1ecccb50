"""Run external tools (sbatch, scontrol, sacct, nvidia-smi) safely: no shell, a timeout, text out."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from preflight.facts import FactUnavailable


class ToolTimeout(Exception):
    """The tool did not answer in time (the calling check becomes 'error', not a hang)."""


@dataclass
class ToolResult:
    """An external tool's exit status and output."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def which(tool: str) -> str | None:
    return shutil.which(tool)


def run_tool(
    args: Sequence[str],
    *,
    timeout: float = 20.0,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    input: str | None = None,
) -> ToolResult:
    """Run ``args`` (never through a shell). Missing tool: FactUnavailable. Hung tool: ToolTimeout."""
    exe = which(args[0]) if "/" not in args[0] else args[0]
    if exe is None:
        raise FactUnavailable(f"{args[0]} not found on PATH")
    try:
        proc = subprocess.run(
            [exe, *args[1:]],
            capture_output=True,
            timeout=timeout,
            env=dict(env) if env else None,
            cwd=cwd,
            input=input.encode() if input is not None else None,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ToolTimeout(f"{args[0]} did not answer within {timeout:g}s") from None
    except OSError as exc:
        raise FactUnavailable(f"cannot run {args[0]}: {exc.strerror or exc}") from None
    return ToolResult(
        list(args), proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    )
