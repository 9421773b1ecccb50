"""A command the job starts in the background (``&``) and does not wait for: SB008."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from preflight.checks.script import _readable
from preflight.model import Finding
from preflight.phases import TRAIN_PHASES
from preflight.registry import check
from preflight.script.tree import iter_commands

# programs a job starts in the background on purpose, to watch it while it runs (nothing reads their output later)
_SERVICES = frozenset(
    "tensorboard streamlit jupyter jupyter-lab mlflow aim nvidia-smi gpustat nvtop dcgmi watch top htop vmstat iostat "
    "sar free tail sleep".split()
)
_WRAPPERS = frozenset({"nohup", "setsid", "exec", "time", "nice", "stdbuf", "env"})


def _service(words: list[str]) -> str | None:
    """The monitor or dashboard a background command runs, past its wrappers (`nohup env X=1 uv run tensorboard`)."""
    i = 0
    while i < len(words):
        w = os.path.basename(words[i])
        if w in _WRAPPERS or "=" in w and not w.startswith("-") or (w.startswith("-") and i > 0):
            i += 1
        elif w in ("uv", "conda", "poetry", "pixi") and i + 1 < len(words) and words[i + 1] == "run":
            i += 2
        elif re.match(r"python[\d.]*$", w) and words[i + 1 : i + 2] == ["-m"] and i + 2 < len(words):
            return words[i + 2].split(".")[0] if words[i + 2].split(".")[0] in _SERVICES else None
        else:
            return w if w in _SERVICES else None
    return None


@check("SB008", "background-without-wait", severity="error")
def background_without_wait(script, profile) -> Iterator[Finding]:
    """
    What it checks: a command started in the background (``&``) that is not waited for
    before the next training step (or at all). A dashboard or monitor started beside the job
    on purpose (tensorboard, streamlit, nvidia-smi, watch ...) is left alone.

    Why it matters: speedrun downloads shards in the background; without ``wait``, base
    training starts on a partial dataset (the last file present becomes the val split) or
    the job ends and kills the download.

    Example:
        python -m nanochat.dataset -n 240 &
        torchrun --nproc_per_node=8 -m scripts.base_train

    How to fix: ``wait $DATASET_DOWNLOAD_PID`` (or plain ``wait``, or a shell function that
    waits) before the training step.
    """
    _readable(script)
    # shell functions that wait (`finish() { wait "$!"; ... }`): calling one waits too
    waiting = {"wait"} | {
        f.name for m in script.walk() for f in m.functions if any(c.name == "wait" for c in iter_commands(f.body))
    }
    for model in script.walk():
        cmds = model.commands
        for idx, cmd in enumerate(cmds):
            if not cmd.background:
                continue
            nxt_train = None
            waited = False
            for later in cmds[idx + 1 :]:
                if later.name in waiting:
                    waited = True
                    break
                inv = next((i for i in model.invocations if i.command is later), None)
                if (
                    inv is not None
                    and inv.entry
                    and profile.phase_of_module(inv.entry, inv.args) in TRAIN_PHASES
                    and not later.background
                ):
                    nxt_train = later
                    break
            if waited or _service(cmd.words) is not None:
                continue  # a dashboard or a GPU monitor runs beside the job by design, and ends with it
            what = " ".join(cmd.words[:5])
            if nxt_train is not None:
                msg = f"`{what} &` runs in the background and is not waited for before line {nxt_train.line}"
            else:
                msg = f"`{what} &` runs in the background and nothing waits for it: it is killed when the script ends"
            yield Finding(
                msg,
                path=str(model.path),
                line=cmd.line,
                fix="add `PID=$!` after it and `wait $PID` before the step that needs its output",
            )
