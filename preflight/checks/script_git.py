"""What a job does to its own git work tree when it starts: SB039.

``git clean`` over a work tree that holds the run's base dir deletes shards, the tokenizer and
checkpoints; ``git pull`` (or a ``git reset --hard`` / ``git checkout`` of another ref) swaps the
code preflight read for whatever the remote holds at that hour.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from preflight.model import Finding, Severity
from preflight.registry import check

_FETCHING = {"pull"}


def _short_flags(words: list[str]) -> set[str]:
    """git clean's options as letters (-fdx, -f -d, --force)."""
    letters: set[str] = set()
    for w in words:
        if w == "--force":
            letters.add("f")
        elif w == "--dry-run":
            letters.add("n")
        elif w.startswith("-") and not w.startswith("--"):
            letters.update(w[1:])
    return letters


def _subcommand(words: list[str]) -> tuple[str, list[str], str | None]:
    """git's subcommand, its arguments, and the directory of a `git -C DIR` (past `-c key=value` too)."""
    i, elsewhere = 1, None
    while i < len(words) and words[i].startswith("-"):
        if words[i] in ("-C", "-c") and i + 1 < len(words):
            elsewhere = words[i + 1] if words[i] == "-C" else elsewhere
            i += 1
        i += 1
    return (words[i], words[i + 1 :], elsewhere) if i < len(words) else ("", [], elsewhere)


def _ignored_whole(gitignore: Path, rel: str) -> bool:
    """Whether ``.gitignore`` names the first directory of ``rel`` as a whole (`nanochat_cache/`, `/cache/**`)."""
    try:
        with open(gitignore, encoding="utf-8", errors="replace") as f:
            lines = f.read(1 << 20).splitlines()[:5000]  # a checkout's file: bounded
    except OSError:
        return False
    first = rel.split("/", 1)[0]
    forms = {first, f"{first}/", f"{first}/*", f"{first}/**", "*"}
    return any(ln.strip().lstrip("/") in forms for ln in lines if ln.strip() and not ln.startswith(("#", "!")))


def _work_tree_file(ctx, where: str, name: str) -> Path | None:
    """``name`` in the job's work tree: there where it exists here, else in the checkout given."""
    if "$" not in where and Path(where, name).is_file():
        return Path(where, name)
    given = ctx.config.get("checkout") if ctx.config is not None else None
    path = Path(os.path.expanduser(str(given)), name) if given else None
    return path if path is not None and path.is_file() else None


@check("SB039", "job-rewrites-checkout", severity="error")
def job_rewrites_checkout(ctx, script) -> Iterator[Finding]:
    """
    What it checks: a job that changes its own git work tree when it starts: ``git clean -fd``
    (``-fdx``) in a directory that holds ``NANOCHAT_BASE_DIR`` (an error: what ``.gitignore`` does
    not cover, or with ``-x`` everything, is deleted), and (a warning) ``git pull``, ``git reset
    --hard`` to another ref, which replace the code that runs.

    Why it matters: the base dir holds the shards, the tokenizer and every checkpoint; a
    ``git clean`` that "tidies the repo" at the top of the job deletes them each time it starts,
    a resume included. A pull makes the job run the remote's code of that hour: the flags and
    entry points preflight checked are those of the checkout on disk, not of what runs.

    Example:
        export NANOCHAT_BASE_DIR="$REPO_DIR/nanochat_cache"
        cd "$REPO_DIR" && git reset --hard HEAD && git clean -fd && git pull

    How to fix: keep the base dir outside the work tree (``$SCRATCH/nanochat``), or drop the
    ``git clean``; update the code on the login node before ``preflight check`` and ``sbatch``
    (or pin it: ``git checkout <commit>``).
    """
    from preflight.script.parser import cd_targets_at, expand_path

    script.require_readable()
    for model in script.walk():
        for cmd in model.commands:
            if cmd.name != "git" or len(cmd.words) < 2:
                continue
            sub, args, elsewhere = _subcommand(cmd.words)
            path = script.file_of(cmd)
            if sub == "clean":
                flags = _short_flags(args)
                if "f" not in flags or "d" not in flags or "n" in flags:
                    continue
                cds = cd_targets_at(model, cmd)
                where = cds[-1] if cds else None
                if elsewhere is not None:  # `git -C DIR clean`: DIR, from where the job is
                    inner = expand_path(model, elsewhere, cmd.line, cmd.file) or elsewhere
                    where = inner if inner.startswith(("/", "$")) else (f"{where}/{inner}" if where else None)
                base = expand_path(model, "$NANOCHAT_BASE_DIR", cmd.line, cmd.file)
                if not where or not base or not base.startswith(where.rstrip("/") + "/"):
                    continue
                rel = base[len(where.rstrip("/")) + 1 :]
                gitignore = _work_tree_file(ctx, where, ".gitignore")
                covered = gitignore is not None and _ignored_whole(gitignore, rel)
                if "x" not in flags and covered != ("X" in flags):
                    continue  # -X removes only ignored files; neither -x nor -X keeps them
                what = (
                    "every file in it"
                    if "x" in flags
                    else "the files .gitignore covers, which include it"
                    if "X" in flags
                    else "every file in it that .gitignore does not cover"
                )
                yield Finding(
                    f"line {cmd.line} `git clean {' '.join(args)}` runs in {where}, which holds the base dir "
                    f"{base}: it deletes {what} (shards, tokenizer, checkpoints) each time the job starts, "
                    "a resume included",
                    path=path,
                    line=cmd.line,
                    fix="move NANOCHAT_BASE_DIR out of the work tree (export NANOCHAT_BASE_DIR=$SCRATCH/nanochat), "
                    f"or drop the git clean at line {cmd.line}",
                )
            elif sub in _FETCHING or (
                sub == "reset" and "--hard" in args and any(a not in ("--hard", "HEAD", "-q") for a in args)
            ):
                yield Finding(
                    f"line {cmd.line} `git {sub} {' '.join(args)}` changes the code when the job starts: what runs is "
                    "the remote's code of that hour, not the checkout preflight read (its flags, its entry points)",
                    path=path,
                    line=cmd.line,
                    severity=Severity.WARNING,
                    fix="update the checkout on the login node before preflight check and sbatch, and drop this "
                    "line (or pin a commit: git checkout <sha>)",
                )
