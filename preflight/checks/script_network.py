"""SB011: the shell steps and inline Python of a job that need the internet, in a job meant for offline compute
nodes."""

from __future__ import annotations

import re
from collections.abc import Iterator

from preflight.checks.script import _readable
from preflight.checks.script_inline import inline_python_downloads
from preflight.facts import Skip
from preflight.model import Finding, Severity
from preflight.registry import check
from preflight.script.commands import inside_quoted_word
from preflight.script.wrappers import with_shell_text

# builtins that only set variables: their words are values, never a download
_DECLARATIONS = {"export", "declare", "typeset", "local", "readonly", "set", "unset", "alias", "echo", "printf", ":"}
_DEFAULT_NETWORK = [
    (r"\b(curl|wget)\b", "curl/wget download"),
    (r"\buv\s+(sync|pip\s+install|add)\b", "uv sync / pip install"),
    (r"\bpip3?\s+install\b", "pip install"),
    (r"(?:^|\s)rustup\s+\w|sh\.rustup\.rs", "rustup"),
    (r"\bgit\s+(clone|pull|fetch)\b", "git clone/pull"),
]


@check("SB011", "network-in-offline-job", severity="error")
def network_in_offline_job(ctx, script, profile) -> Iterator[Finding]:
    """
    What it checks: shell steps that need the internet (curl, ``uv sync``, rustup, maturin,
    pip, apt-get, git clone, the ``hf`` CLI and ``uvx``, bucket copies from ``gs://`` or
    ``s3://``, ``python -m nanochat.dataset`` downloads) in a job meant for offline compute
    nodes (config ``network: offline``, the default); and Python the job runs inline
    (``python -c``, a heredoc) that calls ``hf_hub_download``, ``load_dataset`` and the like, or
    builds a class of the checkout whose source does (read with ``ast``, never run). A step
    whose failure the job goes past (``pip install -e . || true``) is a warning.

    Why it matters: on a node without internet the step fails (or hangs until a timeout),
    and without ``set -e`` the next phases run on what is missing.

    Example:
        uv sync --extra gpu
        curl -L -o $NANOCHAT_BASE_DIR/identity_conversations.jsonl https://...

    How to fix: do these steps once on a login node (build .venv, download shards, eval
    bundle, identity file) and remove them from the job, or set ``network: online``.
    """
    _readable(script)
    if ctx.config.get("network", "offline") != "offline":
        raise Skip("config network: online")
    patterns = [(p["pattern"], p["what"]) for p in (profile.data.get("setup_network") or [])] or _DEFAULT_NETWORK
    compiled = [(re.compile(p), w) for p, w in patterns]
    dataset_mod = profile.modules.get("dataset")
    said: set[tuple[str, int, str]] = set()  # `uv sync -q || uv sync`: one line, one finding per kind
    for model in script.walk():
        for cmd in (c for outer in model.commands for c in with_shell_text(outer)):
            if cmd.name in _DECLARATIONS:
                continue  # `export RUSTUP_HOME=/scratch/rustup` names a path; it downloads nothing
            line_text = " ".join(cmd.words)
            for rx, what in compiled:
                m = rx.search(line_text)
                if not m or inside_quoted_word(cmd, m.start(), m.end()):
                    continue  # `log "create one with: uv sync"`: a message names it (shell text run is read apart)
                if (str(model.path), cmd.line, what) in said:
                    break
                said.add((str(model.path), cmd.line, what))
                if cmd.in_condition:  # `if curl -s https://api.wandb.ai; then ... else WANDB_MODE=offline`: handled
                    yield Finding(
                        f"`{line_text[:80]}` needs the internet ({what}); it is the condition of an `if`/`while`, "
                        f"so offline it fails and the script takes its other branch",
                        path=str(model.path),
                        line=cmd.line,
                        fix="nothing to do if the other branch is the offline setup you want (add --max-time to a "
                        "probe so it fails fast)",
                        severity=Severity.INFO,
                    )
                    break
                if cmd.op_after == "||" and _goes_on(model, cmd):  # `pip install -e . || true`: offline the job goes on
                    yield Finding(
                        f"`{line_text[:80]}` needs the internet ({what}); offline it fails and the `||` after it goes "
                        "on: the steps after it run without what it fetches or installs",
                        path=str(model.path),
                        line=cmd.line,
                        fix="run this once on a login node (then the job's own run of it has nothing to do)",
                        severity=Severity.WARNING,
                    )
                    break
                yield Finding(
                    f"`{line_text[:80]}` needs the internet ({what}) but compute nodes are offline",
                    path=str(model.path),
                    line=cmd.line,
                    fix="run this once on a login node and remove it from the job",
                )
                break
        yield from inline_python_downloads(ctx, model, profile)
        for inv in model.invocations:
            if dataset_mod and inv.module == dataset_mod and (profile.name != "bundled" or "download" in inv.args):
                # a wrapper's `exec python "$@"`: the download is the caller's line, not the wrapper's
                path, line = script.call_site(inv) or (str(model.path), inv.line)
                yield Finding(
                    f"`python -m {inv.module} {' '.join(inv.args)}` downloads shards but compute nodes are offline",
                    path=path,
                    line=line,
                    fix=f"run `python -m {inv.module} {' '.join(inv.args)}` on a login node before submitting",
                )


def _goes_on(model, cmd) -> bool:
    """`cmd || <handler>`: the handler surely does not end the job (`|| true`, `|| echo ...`)."""
    from preflight.checks.script_flow import exits_script, or_handler

    idx = next((k for k, c in enumerate(model.commands) if c is cmd), None)
    return idx is not None and exits_script(or_handler(model.commands, idx), {}) is False
