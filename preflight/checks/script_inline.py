"""SB011's part for Python a job script runs inline (``python -c``, a heredoc): the downloads in it."""

from __future__ import annotations

from collections.abc import Iterator

from preflight.checks.flags import checkout_or_none
from preflight.model import Finding, Severity
from preflight.script.inline_python import inline_code, network_calls
from preflight.script.wrappers import with_shell_text


def inline_python_downloads(ctx, model, profile) -> Iterator[Finding]:
    """SB011 for Python the script runs inline: `python -c "hf_hub_download(...)"`, tasks built in a heredoc. One
    finding per block of code, at its first download."""
    calls = profile.data.get("python_network") or {}
    if not calls:
        return
    checkout = checkout_or_none(ctx)
    root = checkout.root if checkout is not None else None
    job_env = ctx.get("job_env", None)
    for cmd in (c for outer in model.commands for c in with_shell_text(outer)):
        code = inline_code(cmd, model)
        found = network_calls(*code, calls, root) if code else []
        if not found:
            continue
        named = list(dict.fromkeys(f"{c.call}({c.target!r})" if c.target else f"{c.call}()" for c in found))
        kinds = list(dict.fromkeys(c.what for c in found))
        via = list(dict.fromkeys(c.via for c in found if c.via))
        env = {**(job_env.env if job_env is not None else {}), **cmd.env}
        offline = env.get("HF_HUB_OFFLINE") == "1" or env.get("HF_DATASETS_OFFLINE") == "1"
        text = (
            f"the Python at line {cmd.line} downloads: {', '.join(named[:4])}"
            + (f" and {len(named) - 4} more" if len(named) > 4 else "")
            + f" ({'; '.join(kinds)}"
            + (f", through {', '.join(via)}" if via else "")
            + ")"
        )
        if offline:
            yield Finding(
                text + ": with HF_HUB_OFFLINE/HF_DATASETS_OFFLINE set it reads the Hugging Face cache only, so the "
                "files must be there before the job",
                path=str(model.path),
                line=found[0].line,
                severity=Severity.WARNING,
                fix="run this Python once on a login node with the job's HF_HOME and without the offline variables",
            )
            continue
        hub = any(k.startswith("Hugging Face") for k in kinds)
        direct = any(not c.via for c in found)
        yield Finding(
            text
            + ", but compute nodes are offline"
            + ("" if direct else " (unless the cache the checkout's code reads is filled already)")
            + ("; it runs in the background and nothing checks its exit status" if cmd.background else ""),
            path=str(model.path),
            line=found[0].line,
            # through the checkout's own code the download may find its cache (NET001 checks the phases' caches)
            severity=None if direct else Severity.WARNING,
            fix="run this Python once on a login node with the job's environment (NANOCHAT_BASE_DIR, HF_HOME: the "
            "files land in the caches the job reads)"
            + (", then export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 in the job so it reads them" if hub else ""),
        )
