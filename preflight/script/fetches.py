"""Where a job script's own downloads write: the folders that `hf download --local-dir D`, `wget -P D`,
`curl -o D/file` fill before its training reads them (a fork that fetches its own shards or tokenizer).

Which programs download, and which of their options name the target, is the profile's (``setup_network``'s
``into``); this module only reads a script's commands with it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preflight.script.wrappers import with_shell_text


@dataclass(frozen=True)
class Fetch:
    folder: str  # the folder the command writes into, expanded
    line: int
    file: str
    text: str  # the command, as written


def _target(words: list[str], options: dict[str, str]) -> tuple[str, str] | None:
    """(value, dir|file) of the first option in ``options`` among ``words``: `--opt V`, `--opt=V`, a short
    option last in a cluster (`wget -LO FILE`), and ``@last``: the last word (`hf repos cp SRC DEST`; a folder
    where it ends with /)."""
    if "@last" in options and len(words) > 2 and not words[-1].startswith("-"):
        return words[-1], "dir" if words[-1].endswith("/") else "file"
    for i, word in enumerate(words[1:], 1):
        nxt = words[i + 1] if i + 1 < len(words) else None
        for opt, kind in options.items():
            if word == opt and nxt is not None:
                return nxt, kind
            if opt.startswith("--") and word.startswith(opt + "="):
                return word[len(opt) + 1 :], kind
            clustered = len(opt) == 2 and re.fullmatch(r"-[A-Za-z]+", word) and word.endswith(opt[1])
            if clustered and nxt is not None:
                return nxt, kind
    return None


def script_fetches(script: Any, profile: Any, environ: dict[str, str] | None = None) -> Iterator[Fetch]:
    """Each download command of the script (and the scripts it runs) whose target folder is known (``environ``:
    what the job starts with)."""
    specs = [
        (re.compile(e["pattern"]), e["into"])
        for e in ((profile.data.get("setup_network") if profile is not None else None) or [])
        if e.get("into")
    ]
    if script is None or not script.ok or not specs:
        return
    for model in script.walk():
        for cmd in (c for outer in model.commands for c in with_shell_text(outer)):
            text = " ".join(cmd.words)
            for rx, into in specs:
                options = into.get(cmd.name)
                if options is None or not rx.search(text):
                    continue
                found = _target(list(cmd.words), options)
                value = script.expand(found[0], cmd.line, cmd.file, environ) if found else None
                if value and "$" not in value:
                    folder = os.path.dirname(value) if found[1] == "file" else value
                    yield Fetch(os.path.normpath(folder or "."), cmd.line, cmd.file or str(model.path), text)
                break


def fetch_into(ctx: Any, folder: Path | str) -> Fetch | None:
    """The job script's first download into ``folder`` itself, else None (a file fetched into a folder above it, the
    speedrun's `curl -o $NANOCHAT_BASE_DIR/eval_bundle.zip`, fills nothing below)."""
    job_env = ctx.get("job_env", None)
    script, profile = ctx.get("script", None), ctx.get("profile", None)
    want = os.path.normpath(str(folder))
    for f in script_fetches(script, profile, getattr(job_env, "start", None)):
        if want == f.folder:
            return f
    return None
