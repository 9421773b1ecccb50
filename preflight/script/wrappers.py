"""Commands in front of a launcher, and shell text run by another shell.

A prefix (``srun``, ``timeout 10h``, ``env X=1``, ``nohup``, ``stdbuf -oL``, ``time``, ``nice``,
``numactl``, ``uv run``, ``conda run -n ENV``, ``apptainer|singularity exec IMG``) runs the rest
of its words as a command: ``strip_prefixes`` removes them and says what they were.

A shell given text (``bash -lc '...'``, ``sh -c "..."``, ``eval "$CMD"``) runs that text as a
script: ``inline_text`` finds it and ``inline_commands`` parses it with the script's own lexer
and command reader, so what it launches is seen like a line of the script.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from preflight.script.commands import State, commands_from_tokens
from preflight.script.lexer import Unterminated, tokenize
from preflight.script.model import ASSIGN_RE, Command, ScriptModel

MAX_INLINE_DEPTH = 3  # bash -c inside eval inside bash -c: deeper is not followed
SHELLS = {"bash", "sh", "zsh", "dash", "ksh"}

_SRUN_VALUE_SHORT = set("nNcGptoeJwCdDABqmx")
# options of each prefix that take the next word as their value
_VALUE_OPTS = {
    "timeout": {"-s", "--signal", "-k", "--kill-after"},
    "nice": {"-n", "--adjustment"},
    "numactl": {
        "-N",
        "-m",
        "-C",
        "-p",
        "-i",
        "--cpunodebind",
        "--membind",
        "--physcpubind",
        "--preferred",
        "--interleave",
    },
    "env": {"-u", "--unset", "-C", "--chdir", "-S", "--split-string"},
    "exec": {"-a"},
    "time": {"-o", "--output", "-f", "--format"},
    "stdbuf": {"-i", "-o", "-e"},
    "caffeinate": {"-t", "-w"},
    "uv": {
        "--with",
        "--python",
        "-p",
        "--project",
        "--directory",
        "--env-file",
        "--extra",
        "--group",
        "--index",
        "--package",
        "--with-requirements",
    },
    "conda": {"-n", "--name", "-p", "--prefix", "--cwd"},
    "apptainer": {
        "-B",
        "--bind",
        "--env",
        "--env-file",
        "--pwd",
        "-H",
        "--home",
        "--overlay",
        "-W",
        "--workdir",
        "--mount",
        "--network",
        "--security",
        "-S",
        "--scratch",
        "--app",
    },
}
_VALUE_OPTS["singularity"] = _VALUE_OPTS["apptainer"]
_VALUE_OPTS["mamba"] = _VALUE_OPTS["micromamba"] = _VALUE_OPTS["conda"]
# (caffeinate: macOS's "keep awake while CMD runs", in front of a Mac runner's training)
_SIMPLE = (
    "nohup",
    "exec",
    "time",
    "stdbuf",
    "numactl",
    "nice",
    "command",
    "builtin",
    "setsid",
    "chrt",
    "taskset",
    "caffeinate",
)
# the first word of a command that may run something else (a launcher, a prefix, shell text)
RUNNERS = frozenset(
    {
        "srun",
        "timeout",
        "env",
        "uv",
        "conda",
        "mamba",
        "micromamba",
        "apptainer",
        "singularity",
        "eval",
        "torchrun",
        *_SIMPLE,
        *SHELLS,
    }
)


@dataclass
class Prefix:
    """What a command's prefixes were, and the command they run."""

    words: list[str]
    srun: bool = False
    srun_opts: list[str] = field(default_factory=list)
    timeout: str | None = None  # the duration as written (`timeout 172800s ...`)
    names: list[str] = field(default_factory=list)  # in order: srun, timeout, apptainer exec ...
    binds: list[tuple[str, str]] = field(default_factory=list)  # a container's (host path, path inside)
    env: dict[str, str] = field(default_factory=dict)  # set for the command only: `env K=V`, `apptainer --env K=V`


def _skip_options(words: list[str], j: int, takes_value: set[str]) -> int:
    """Index of the first word after the options that start at words[j]."""
    while j < len(words) and words[j].startswith("-") and words[j] != "-":
        w = words[j]
        if w == "--":
            return j + 1
        if "=" not in w and w in takes_value:
            j += 1
        j += 1
    return j


def strip_prefixes(words: list[str]) -> Prefix:
    """Remove the prefixes in front of a command (they may nest: `srun timeout 2h env X=1 python ...`)."""
    out = Prefix(words=list(words))
    words = out.words
    while words:
        head = os.path.basename(words[0])
        if head == "srun":
            out.srun = True
            j = 1
            while j < len(words) and words[j].startswith("-"):
                w = words[j]
                out.srun_opts.append(w)
                if len(w) == 2 and w[1] in _SRUN_VALUE_SHORT and j + 1 < len(words):
                    out.srun_opts.append(words[j + 1])
                    j += 1
                j += 1
        elif head == "timeout":
            j = _skip_options(words, 1, _VALUE_OPTS["timeout"])
            if j < len(words):
                out.timeout = words[j]
            j += 1
        elif head == "env":
            j = _skip_options(words, 1, _VALUE_OPTS["env"])
            while j < len(words) and (m := ASSIGN_RE.match(words[j])):
                out.env[m.group(1)] = m.group(3)
                j += 1
        elif head in _SIMPLE:
            j = _skip_options(words, 1, _VALUE_OPTS.get(head, set()))
        elif head == "uv" and len(words) > 1 and words[1] == "run":
            j = _skip_options(words, 2, _VALUE_OPTS["uv"])
        elif head in ("conda", "mamba", "micromamba") and len(words) > 1 and words[1] == "run":
            j = _skip_options(words, 2, _VALUE_OPTS[head])
        elif head in ("apptainer", "singularity") and len(words) > 2 and words[1] in ("exec", "run"):
            j = _skip_options(words, 2, _VALUE_OPTS[head]) + 1  # then the image
            out.binds += _binds(words[2 : j - 1])  # `run`: the image's runscript, given the rest (most pass it on)
            out.env.update(_container_env(words[2 : j - 1]))
        else:
            break
        out.names.append(
            f"{head} {words[1]}" if head in ("uv", "conda", "mamba", "micromamba", "apptainer", "singularity") else head
        )
        words = words[j:]
    out.words = words
    return out


def _binds(options: list[str]) -> list[tuple[str, str]]:
    """apptainer/singularity ``-B/--bind src[:dest[:opts]][,...]`` as (host path, path inside)."""
    values = []
    for k, w in enumerate(options):
        if w in ("-B", "--bind") and k + 1 < len(options):
            values.append(options[k + 1])
        elif w.startswith("--bind="):
            values.append(w.split("=", 1)[1])
    out = []
    for value in values:
        for spec in value.split(","):
            src, _, rest = spec.partition(":")
            if src:
                out.append((src, rest.split(":", 1)[0] or src))
    return out


def _container_env(options: list[str]) -> dict[str, str]:
    """apptainer/singularity ``--env K=V[,K2=V2]`` (the variables the container starts with)."""
    out: dict[str, str] = {}
    for k, w in enumerate(options):
        value = options[k + 1] if w == "--env" and k + 1 < len(options) else w[6:] if w.startswith("--env=") else None
        for pair in (value or "").split(","):
            if m := ASSIGN_RE.match(pair):
                out[m.group(1)] = m.group(3)
    return out


def host_path(path: str, binds: list[tuple[str, str]]) -> str:
    """A path inside a container as the host sees it (the longest bind that holds it); unbound
    paths are the host's own (apptainer binds $HOME, /tmp and the working directory as they are)."""
    best = None
    for src, dest in binds:
        d = dest.rstrip("/") or "/"
        if (path == d or path.startswith(d.rstrip("/") + "/")) and (best is None or len(d) > len(best[1])):
            best = (src, d)
    if best is None:
        return path
    return best[0].rstrip("/") + path[len(best[1].rstrip("/")) :]


def inline_text(words: list[str]) -> tuple[str, str] | None:
    """(how, text) when the command runs shell text: `bash -lc TEXT`, `sh -c TEXT`, `eval WORDS`."""
    if not words:
        return None
    head = os.path.basename(words[0])
    if head == "eval":
        return ("eval", " ".join(words[1:])) if len(words) > 1 else None
    if head not in SHELLS:
        return None
    j, dash_c = 1, False
    while j < len(words):
        w = words[j]
        if w.startswith("--"):
            j += 1
        elif w[:1] in "-+" and len(w) > 1:
            dash_c = dash_c or "c" in w[1:]
            j += 2 if ("o" in w[1:] and j + 1 < len(words)) else 1  # -o pipefail, -euo pipefail
        else:
            break
    if not dash_c or j >= len(words):
        return None
    flags = " ".join(w for w in words[1:j] if w.startswith("-"))
    return f"{head} {flags}".strip(), words[j]


def inline_commands(text: str, outer: Command) -> tuple[list[Command], ScriptModel] | None:
    """The commands of shell text that `outer` runs, placed at outer's line; None if unparsable.
    The scratch model says whether the text turns on errexit (`bash -c 'set -e; ...'`)."""
    try:
        tokens, _heredocs = tokenize(text)
    except Unterminated:
        return None
    scratch = ScriptModel(path=None)
    commands_from_tokens(scratch, State(), tokens, outer.line, outer.end_line, outer.text, outer.file)
    for c in scratch.commands:
        c.background = c.background or outer.background
    return scratch.commands, scratch


def timeout_seconds(text: str | None) -> float | None:
    """coreutils `timeout` DURATION -> seconds: 90, 90s, 1.5h, 2d (None: not a duration; 0 = no limit)."""
    m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)([smhd]?)", (text or "").strip())
    if not m:
        return None
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def with_shell_text(cmd: Command, depth: int = 0) -> Iterator[Command]:
    """The commands of the shell text a command runs (`srun bash -c "pip install ...; curl ..."`), each on its
    own, else the command itself."""
    inline = inline_text(strip_prefixes(list(cmd.words)).words)
    parsed = inline_commands(inline[1], cmd) if inline is not None and inline[0] != "eval" else None
    if parsed is None or depth >= MAX_INLINE_DEPTH:
        yield cmd
        return
    for inner in parsed[0]:
        yield from with_shell_text(inner, depth + 1)
