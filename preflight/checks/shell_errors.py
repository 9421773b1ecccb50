"""What the job's shell could not run or set up, with no traceback: LOG013 (`command not found`), LOG014 (the
environment's install failed)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from preflight.model import Finding
from preflight.registry import check

# bash builtins dash (/bin/sh) lacks: "not found" for one of them means /bin/sh ran a bash script
_BASH_ONLY = {"source", "shopt", "declare", "local", "pushd", "popd", "mapfile", "readarray", "[["}


@check("LOG013", "command-not-found", stage="post", severity="warning")
def command_not_found(logs) -> Iterator[Finding]:
    """
    What it checks: the shell's ``command not found`` lines in the job's logs: a command the
    batch script (or a script it runs) could not find on the node, and bash builtins such as
    ``source`` that ``/bin/sh`` (dash) does not have.

    Why it matters: nothing of that step happened (an install, an environment, a download), and
    with no ``set -e`` the script runs on: the phases after it fail later with other errors, or the
    job ends COMPLETED having trained nothing. ``source: not found`` means the script ran under
    ``/bin/sh``: its ``#!`` line is missing or not bash. A warning: a missing helper (``bc`` for a
    cost line in a speedrun that finished) may have mattered to nothing; the phase table says.

    Example:
        runs/speedrun.sh: line 52: uv: command not found
        /var/lib/slurm/slurmd/job713551/slurm_script: 4: source: not found

    How to fix: put the command on the nodes' PATH in the script before that line (``export
    PATH="$HOME/.local/bin:$PATH"``) or install it there; for a bash builtin, make
    ``#!/bin/bash`` the script's first line.
    """
    told: set[tuple[str, str]] = set()
    for ix, ev in logs.slurm_events("not-found"):
        cmd, where, lineno = ev.data["cmd"], ev.data["where"], ev.data["lineno"]
        if (where, cmd) in told:
            continue
        told.add((where, cmd))
        script = os.path.basename(where)
        if cmd in _BASH_ONLY:
            yield Finding(
                f"{script} line {lineno}: `{cmd}: not found`: /bin/sh (dash) ran the script, which has no `{cmd}` "
                "(a bash builtin): what it should have done did not happen",
                path=ix.path,
                line=ev.line,
                fix="make #!/bin/bash the script's first line (sbatch runs the script with its #! interpreter)",
            )
        elif cmd.startswith(("-", "=")) or cmd.replace(".", "").isdigit():
            # not a program: an argument that bash took for one, on a line of its own
            yield Finding(
                f"{script} line {lineno}: `{cmd}` is not a command but an argument on a line of its own: the line "
                "before it ended its command without a `\\` continuation (or with a space after the `\\`, or the "
                "script was edited while the job ran), so that command ran without the arguments from here on",
                path=ix.path,
                line=ev.line,
                fix=f"end the line before {lineno} with `\\` and nothing after it, so line {lineno}'s arguments "
                "reach the command; then rerun that command",
            )
        else:
            yield Finding(
                f"{script} line {lineno}: `{cmd}` was not found on the node: that step did not run, and what "
                "needed it after it failed or ran without it",
                path=ix.path,
                line=ev.line,
                fix=f"install {cmd} on the nodes or put it on PATH in the script before line {lineno} "
                '(export PATH="$HOME/.local/bin:$PATH")',
            )


_INSTALL_FIXES = {
    "Disk quota exceeded": "free space under $HOME, or keep uv's cache on scratch (export UV_CACHE_DIR=/scratch/$USER/"
    "uv-cache), then install again",
    "No space left on device": "free space on that filesystem, or keep uv's cache on scratch (export UV_CACHE_DIR=...)",
}
_OFFLINE = ("Temporary failure in name resolution", "Network is unreachable", "Connection")


@check("LOG014", "install-failed", stage="post", severity="error")
def install_failed(logs) -> Iterator[Finding]:
    """
    What it checks: the job's environment install failing in its logs (``uv sync``: ``× Failed to
    download``; pip: ``ERROR: Could not install packages``), with the reason printed below it: a
    disk quota, no space, no network.

    Why it matters: every phase after it runs without its packages: ``ModuleNotFoundError`` in
    each, each looking like its own problem. The cause is the install, often a home-directory
    quota that uv's cache filled (a CUDA torch is several GB).

    Example:
        × Failed to download `nvidia-cufft-cu12==11.3.3.83`
        ╰─▶ failed to flush file `/home/me/.cache/uv/...`: Disk quota exceeded (os error 122)

    How to fix: free the space or move uv's cache to scratch (``UV_CACHE_DIR``); on an offline
    node, install on the login node before ``sbatch``; then rerun from the first phase.
    """
    for ix, ev in logs.slurm_events("install-failed"):
        reason = ev.data.get("reason") or ""
        if reason in _INSTALL_FIXES:
            fix = _INSTALL_FIXES[reason]
        elif reason.startswith(_OFFLINE):
            fix = "install on the login node before sbatch (uv sync there): compute nodes are offline"
        else:
            fix = "fix the install (its error is in the log) before the phases run, then rerun from the first phase"
        yield Finding(
            f"the environment install failed ({ev.text.strip()[:120]})"
            + (f": {reason}" if reason else "")
            + "; the phases after it ran without its packages",
            path=ix.path,
            line=ev.line,
            fix=fix,
        )


@check("LOG015", "slow-attention-fallback", stage="post", severity="warning")
def slow_attention_fallback(logs) -> Iterator[Finding]:
    """
    What it checks: nanochat's own warning that it attends with PyTorch SDPA, which has no
    sliding window, while the model's ``window_pattern`` asks for one (``SSSL``, the default
    since January 2026): Flash Attention 3 was not available for the node's GPU (it needs a
    Hopper GPU and its kernel from the HF Hub).

    Why it matters: every layer then attends over the full context, and training runs at a
    fraction of the GPU's speed ("Your GPU utilization will be terrible"): a run on consumer or
    Ampere/Blackwell GPUs takes hours or days longer and costs that much more.

    Example:
        WARNING: SDPA has no support for sliding window attention (window_pattern='SSSL'). Your GPU utilization will be terrible.

    How to fix: on a GPU without Flash Attention 3, train with ``--window-pattern L`` (full
    attention in every layer, which SDPA runs well); on a Hopper GPU, fetch the kernel on a login
    node so the job finds it (see offline-download-needed).
    """
    told: set[str] = set()
    for ix, ev in logs.slurm_events("sdpa-window"):
        if ix.path in told:
            continue
        told.add(ix.path)
        yield Finding(
            f"the model attends with PyTorch SDPA (no Flash Attention 3 on this GPU), which has no sliding window, "
            f"while its window_pattern is {ev.data['pattern']}: nanochat warned its GPU utilization would be terrible",
            path=ix.path,
            line=ev.line,
            fix="on a GPU without Flash Attention 3, train with --window-pattern L; on a Hopper GPU, fetch the kernel "
            "on a login node (preflight check: offline-download-needed)",
        )
