#!/usr/bin/env python3
"""Rebuild tests/corpus/upstream/ from a git clone of karpathy/nanochat (MIT; its LICENSE travels along).

    python scripts/build_corpus.py /path/to/nanochat [--out tests/corpus/upstream]
    python scripts/build_corpus.py /path/to/fork --fork OWNER/NAME@COMMIT   # a fork's SLURM scripts (MIT only)

Every distinct version of every runner script (speedrun.sh, run1000.sh, runs/*.sh, dev/runcpu.sh ...)
in the history is taken at the first commit that has it, together with what the checker needs of
that commit's checkout: scripts/, tasks/ and the files that tell the era apart (nanochat/configurator.py,
report.py, gpt.py, flash_attention.py). The newest commit's checkout goes along as ``head`` (what a
fresh clone runs today). All of it goes into one
``corpus.tar.xz`` (the versions share most of their text, so xz keeps it ~100 KB); ``facts.json``
says, per runner, what is true of its commit, computed here from git and plain text, not by
preflight's own code:

- ``era``: which era profile the commit's files make it (the fingerprint rules of docs/eras.md);
- ``base_train_flags``: the flags scripts/base_train.py declares (argparse option strings, or the
  configurator globals above its ``exec(...configurator...)`` line), by regular expression;
- ``uses``: which run-time downloads the commit's code mentions at all.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

RUNNER_RE = re.compile(r"^(?:[^/]+\.sh|runs/[^/]+\.sh|dev/[^/]+\.sh)$")
CHECKOUT_FILES = re.compile(
    r"^(scripts/[^/]+\.py|tasks/[^/]+\.py|nanochat/(configurator|report|gpt|"
    r"flash_attention|base_train|__init__)\.py|LICENSE)$"
)
USES = {
    "identity_conversations": "identity_conversations",
    "words_alpha": "words_alpha",
    "eval_bundle": "eval_bundle",
    "fa3_hopper": "varunneal/flash-attention-3",
    "fa3_community": "kernels-community/flash-attn3",
    "hf_datasets": "from datasets import",  # the HF datasets library (its cache under HF_HOME)
    "hub_parquet": "load_hub_dataset(",  # the hub's parquet export into BASE/task_data (from 2026-07-03)
}


def uses_of(repo: Path, commit: str) -> dict[str, bool]:
    """Which run-time downloads the commit's code mentions at all (git grep over scripts/, tasks/, nanochat/)."""
    uses = {}
    for key, text in USES.items():
        hits = subprocess.run(
            ["git", "-C", str(repo), "grep", "-I", "-q", "-F", text, commit, "--", "scripts", "tasks", "nanochat"],
            capture_output=True,
        )
        uses[key] = hits.returncode == 0
    return uses


def git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True).stdout


def era_of(paths: set[str], base_train: str) -> tuple[str, str | None]:
    if "nanochat/base_train.py" in paths:
        return "bundled", None
    if "nanochat/configurator.py" in paths:
        return "classic", None
    if "scripts/mid_train.py" in paths:
        return "argparse", ("argparse-dash" if '"--device-batch-size"' in base_train else "argparse-underscore")
    if "nanochat/report.py" in paths:
        return "no-mid", None
    return "current", None


def declared_flags(base_train: str) -> list[str]:
    opts = re.findall(r"add_argument\(\s*[\"'](--[\w-]+)[\"']", base_train)
    if opts:
        return sorted(set(o[2:] for o in opts))
    keys = []
    for line in base_train.splitlines():
        if re.match(r"^exec\(.*configurator", line):
            break
        m = re.match(r"^([a-z][a-z0-9_]*)\s*=\s*[^=]", line)
        if m and m.group(1) not in ("config_keys", "user_config"):
            keys.append(m.group(1))
    return sorted(set(keys))


LAUNCH_RE = re.compile(r"-m\s+(scripts\.\w+)((?:\s+[^\n;&|]*)?)")


def stale_flags(runner: str, entry_sources: dict[str, str]) -> dict[str, list[str]]:
    """Per launched entry point: the literal --flags the runner passes that its source never declares
    (``add_argument("--x"`` / ``'-x'``), by regular expression over the runner's logical lines."""
    text = re.sub(r"\\\n", " ", runner)
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for m in LAUNCH_RE.finditer(line):
            src = entry_sources.get(m.group(1))
            if src is None:
                continue
            declared = set(re.findall(r"add_argument\(\s*(?:[\"'](-[\w-]+)[\"']\s*,\s*)?[\"'](-{1,2}[\w-]+)[\"']", src))
            names = {n.lstrip("-") for pair in declared for n in pair if n}
            passed = re.findall(r"(?<![\w$-])--([a-z][\w-]*)", m.group(2))
            bad = sorted({f for f in passed if f not in names and not any(n.startswith(f) for n in names)})
            if bad:
                out.setdefault(m.group(1), []).extend(b for b in bad if b not in out.get(m.group(1), []))
    return out


def build_fork(
    repo: Path, commit: str, name: str, out: Path, runners: list[str] | None = None, source: str = ""
) -> None:
    """A fork's SLURM scripts (slurm/*.sh, *.sbatch) at one commit, with that commit's checkout files; or the
    runners named (a pull request's own scripts, wherever it put them)."""
    tree = git(repo, "ls-tree", "-r", "--name-only", commit).decode().splitlines()
    licence = git(repo, "show", f"{commit}:LICENSE").decode() if "LICENSE" in tree else ""
    if "MIT License" not in licence:
        raise SystemExit(f"{name}: no MIT LICENSE at {commit}; store facts only")
    entries = {
        p[:-3].replace("/", "."): git(repo, "show", f"{commit}:{p}").decode()
        for p in tree
        if re.match(r"^scripts/\w+\.py$", p)
    }
    facts, members = [], {}
    for p in tree:
        if CHECKOUT_FILES.match(p):
            members[f"checkout/{p}"] = p
        if p in runners if runners else re.match(r"^(slurm|runs|jobs)/[^/]+\.(sh|sbatch|slurm)$", p):
            text = git(repo, "show", f"{commit}:{p}").decode()
            if "-m scripts." not in text:
                continue
            members[f"runners/{p.replace('/', '_')}"] = p
            facts.append({"id": p.replace("/", "_"), "runner": p, "stale_flags": stale_flags(text, entries)})
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz", preset=9) as tar:
        for arc, p in sorted(members.items()):
            data = git(repo, "show", f"{commit}:{p}")
            info = tarfile.TarInfo(arc)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    (out / "corpus.tar.xz").write_bytes(buf.getvalue())
    rows = ",\n".join("  " + json.dumps(f, sort_keys=True) for f in facts)
    (out / "facts.json").write_text(
        json.dumps({"source": f"{source or f'https://github.com/{name}'} (MIT)", "commit": commit})[:-1]
        + ',\n "runners": [\n'
        + rows
        + "\n ]}\n"
    )
    print(f"{name}: {len(facts)} runners; corpus.tar.xz {len(buf.getvalue()) // 1024} KB", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("repo", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--fork", default=None, help="OWNER/NAME@COMMIT: build a fork's corpus from REPO instead")
    ap.add_argument("--runner", action="append", default=None, help="with --fork: this script only (repeatable)")
    ap.add_argument("--source", default="", help="with --fork: where it comes from (a pull request's address)")
    args = ap.parse_args()
    corpus = Path(__file__).resolve().parents[1] / "tests" / "corpus"
    if args.fork:
        name, _, commit = args.fork.partition("@")
        out = args.out or corpus / "forks" / re.sub(r"[/#]", "+", name)
        build_fork(args.repo, commit or "HEAD", name, out, args.runner, args.source)
        return 0
    args.out = args.out or corpus / "upstream"
    log = git(args.repo, "log", "--reverse", "--format=%h %ad", "--date=short").decode().split("\n")
    seen: set[str] = set()
    facts, members = [], {}
    for line in filter(None, log):
        commit, date = line.split()
        tree = git(args.repo, "ls-tree", "-r", "--format=%(objectname) %(path)", commit).decode().splitlines()
        blobs = dict(reversed(row.split(" ", 1)) for row in tree)
        new = [p for p, b in blobs.items() if RUNNER_RE.match(p) and b not in seen]
        if not new:
            continue
        paths = set(blobs)
        base_train = (
            git(args.repo, "show", f"{commit}:scripts/base_train.py").decode()
            if "scripts/base_train.py" in paths
            else ""
        )
        era, variant = era_of(paths, base_train)
        uses = uses_of(args.repo, commit)
        for p in sorted(paths):
            if CHECKOUT_FILES.match(p):
                members[f"checkouts/{commit}/{p}"] = (commit, p)
        for p in new:
            seen.add(blobs[p])
            rid = f"{date}-{commit}-{p.replace('/', '_')}"
            members[f"runners/{rid}"] = (commit, p)
            facts.append(
                {
                    "id": rid,
                    "runner": p,
                    "commit": commit,
                    "date": date,
                    "era": era,
                    "variant": variant,
                    "base_train_flags": declared_flags(base_train),
                    "uses": uses,
                }
            )
    # the newest commit: what a fresh clone runs today, with each runner as it stands there
    head, head_date = git(args.repo, "log", "-1", "--format=%h %ad", "--date=short").decode().split()
    head_paths = set(git(args.repo, "ls-tree", "-r", "--name-only", head).decode().splitlines())
    for p in sorted(head_paths):
        if CHECKOUT_FILES.match(p):
            members[f"checkouts/{head}/{p}"] = (head, p)
    head_base_train = git(args.repo, "show", f"{head}:scripts/base_train.py").decode()
    head_fact = {
        "commit": head,
        "date": head_date,
        "era": era_of(head_paths, head_base_train)[0],
        "runners": sorted(p for p in head_paths if RUNNER_RE.match(p)),
        "uses": uses_of(args.repo, head),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz", preset=9) as tar:
        for name, (commit, p) in sorted(members.items()):
            data = git(args.repo, "show", f"{commit}:{p}")
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    (args.out / "corpus.tar.xz").write_bytes(buf.getvalue())
    rows = ",\n".join("  " + json.dumps(f, sort_keys=True) for f in facts)  # one runner per line
    (args.out / "facts.json").write_text(
        '{"source": "https://github.com/karpathy/nanochat (MIT)",\n "head": '
        + json.dumps(head_fact, sort_keys=True)
        + ',\n "runners": [\n'
        + rows
        + "\n ]}\n"
    )
    print(
        f"{len(facts)} runners from {len({f['commit'] for f in facts})} commits; "
        f"corpus.tar.xz {len(buf.getvalue()) // 1024} KB",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
