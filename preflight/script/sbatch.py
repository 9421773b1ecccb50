"""SLURM's side of a batch script: `#SBATCH` options, --time and --gres values, and what
`sbatch --test-only` says about the job (the ``sbatch_test`` fact)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from preflight.facts import FactUnavailable
from preflight.script.model import Directive, ScriptModel
from preflight.units import parse_count

# sbatch short options -> long names (those that matter here)
_SHORT = {
    "J": "job-name",
    "N": "nodes",
    "n": "ntasks",
    "G": "gpus",
    "t": "time",
    "o": "output",
    "e": "error",
    "p": "partition",
    "c": "cpus-per-task",
    "D": "chdir",
    "A": "account",
    "q": "qos",
    "w": "nodelist",
    "C": "constraint",
    "a": "array",
    "d": "dependency",
    "i": "input",
    "x": "exclude",
    "M": "clusters",
    "m": "distribution",
    "k": "no-kill",
}
_SBATCH_FLAGS_NO_VALUE = {
    "exclusive",
    "requeue",
    "no-requeue",
    "hold",
    "test-only",
    "wait",
    "overcommit",
    "contiguous",
    "no-kill",
    "parsable",
    "spread-job",
    "use-min-nodes",
    "oversubscribe",
    "verbose",
    "quiet",
    "export-file",
    "ignore-pbs",
    "k",
    "v",
    "Q",
    "H",
    "O",
    "s",
    "W",
    "h",
}


def split_directive(text: str) -> tuple[list[str], str | None]:
    """The words sbatch reads from the rest of an ``#SBATCH`` line, and the text an unquoted ``#``
    inside a word cut off (None when no word was cut).

    sbatch's own rules, not the shell's (checked with sbatch 22.05 on the local cluster): words
    split on blanks, quotes group and are removed, a backslash escapes, and an unquoted ``#``
    ends the line even in the middle of a word (``--job-name=run#2 --time=5`` gives the name
    ``run`` and no time limit). ``|``, ``;`` and ``&`` are ordinary characters.
    """
    words: list[str] = []
    cur: list[str] = []
    in_word = False
    quote = ""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == quote:
                quote = ""
            else:
                cur.append(c)
        elif c == "\\" and i + 1 < n:
            cur.append(text[i + 1])
            in_word = True
            i += 1
        elif c in "'\"":
            quote, in_word = c, True
        elif c == "#":
            if in_word:
                words.append("".join(cur))
                return words, text[i:]
            return words, None
        elif c.isspace():
            if in_word:
                words.append("".join(cur))
            cur, in_word = [], False
        else:
            cur.append(c)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(cur))
    return words, None


def parse_option_list(words: list[str]) -> list[tuple[str, str | None, str]]:
    """sbatch-style options -> [(long key, value, raw)]; stops at the first non-option."""
    out = []
    i = 0
    while i < len(words):
        w = words[i]
        if w.startswith("--"):
            key, eq, value = w[2:].partition("=")
            raw = w
            if not eq:
                if key in _SBATCH_FLAGS_NO_VALUE or i + 1 >= len(words) or words[i + 1].startswith("-"):
                    value = None
                else:
                    value = words[i + 1]
                    raw = f"{w} {value}"
                    i += 1
            out.append((key, value, raw))
        elif w.startswith("-") and len(w) >= 2:
            letter = w[1]
            key = _SHORT.get(letter, letter)
            if len(w) > 2:
                value = w[2:].lstrip("=")
                raw = w
            elif letter in _SBATCH_FLAGS_NO_VALUE or i + 1 >= len(words):
                value, raw = None, w
            else:
                value = words[i + 1]
                raw = f"{w} {value}"
                i += 1
            out.append((key, value, raw))
        else:
            break
        i += 1
    return out


def command_options(words: list[str]) -> tuple[list[tuple[str, str | None, str]], list[str]]:
    """An ``sbatch`` command line's words after ``sbatch``: its options, and what follows them (the script and its
    arguments; none for ``--wrap=CMD``)."""
    out: list[tuple[str, str | None, str]] = []
    i = 0
    while i < len(words) and words[i].startswith("-") and words[i] not in ("-", "--"):
        opt = parse_option_list(words[i : i + 2])[0]
        out.append(opt)
        i += 1 if opt[2] == words[i] else 2
    return out, words[i:]


def parse_directive(model: ScriptModel, lineno: int, rest: str) -> None:
    words, cut = split_directive(rest)
    options = parse_option_list(words)
    for k, (key, value, raw) in enumerate(options):
        model.directives.append(
            Directive(
                line=lineno,
                key=key,
                value=value,
                raw=raw,
                has_variable=bool(value and re.search(r"\$\{?[A-Za-z_]", value)),
                cut=cut if k == len(options) - 1 else None,
            )
        )


def parse_time_limit(value: str | None) -> int | None:
    """sbatch --time value -> seconds (None: unlimited or unparsable); SLURM's time format is read
    in one place, preflight.slurm."""
    from preflight.slurm import parse_time_or_none

    return parse_time_or_none(value)


def gpus_from_gres(value: str | None) -> int | None:
    """--gres=gpu:8 / gpu:h100:8 / gpu:a100:4,lscratch:10 -> 8/8/4; gpu (no count) -> 1. SLURM's shared-GPU
    GRES (shard:4, mps:50) are shares of a GPU the job sees as one device -> 1."""
    if not value:
        return None
    shared = False
    for part in value.split(","):
        bits = part.split(":")
        shared = shared or bits[0] in ("shard", "mps")
        if bits[0] != "gpu":
            continue
        if len(bits) == 1:
            return 1
        last = bits[-1].split("(")[0]
        if parse_count(last) is not None:
            return parse_count(last)
        return 1
    return 1 if shared else None


def count(value: str | None) -> int | None:
    """--gpus=8 / --gpus=h100:8 / --nodes=2 / --nodes=1-2 (min) -> int."""
    if not value:
        return None
    v = value.split(":")[-1].split("-")[0].split(",")[0]
    return parse_count(v)


# -- sbatch --test-only and partition limits ---------------------------------------------------
_UNREACHABLE = (
    "unable to contact slurm controller",
    "connection refused",
    "socket timed out",
    "zero bytes were transmitted",
    "unable to establish",
    "could not establish",
    "communications connection failure",
)


@dataclass
class SbatchTest:
    """What SLURM says about the job without submitting it (the ``sbatch_test`` fact)."""

    returncode: int
    output: str  # stderr + stdout of `sbatch --test-only`
    partitions: dict[str, dict[str, str]]  # name -> scontrol fields (MaxTime, MaxNodes, Default ...)
    default_partition: str | None = None


# qsub's options -> the sbatch options they amount to (sbatch itself reads #PBS lines alike)
_PBS_OPTIONS = {"N": "job-name", "q": "partition", "o": "output", "e": "error", "A": "account", "J": "array"}


def _small_count(text: str) -> bool:
    """ASCII digits a count can be (``"²".isdigit()`` is true, and int() of 5,000 digits raises)."""
    return re.fullmatch(r"[0-9]{1,6}", text) is not None


def _pbs_resources(value: str) -> list[tuple[str, str, str]]:
    """(sbatch key, value, raw) from a ``-l`` resource list: ``select=2:ngpus=4`` (PBS Pro), ``nodes=1:ppn=8:gpus=4``
    (Torque), ``ngpus=4``, ``walltime=24:00:00``. Memory and CPUs are left out: nothing here checks them."""
    out: list[tuple[str, str, str]] = []
    for item in value.split(",")[:64]:
        name, _eq, rest = item.partition("=")
        chunks = rest.split("+")[0].split(":")  # a multi-chunk select: its first chunk's shape
        fields = dict(c.partition("=")[::2] for c in chunks[1:])
        if name in ("select", "nodes") and _small_count(chunks[0]):
            total = sum(int(c.split(":")[0]) for c in rest.split("+")[:64] if _small_count(c.split(":")[0]))
            out.append(("nodes", str(total), item))
            gpus = fields.get("ngpus") or fields.get("gpus")
            if gpus and _small_count(gpus):
                out.append(("gpus-per-node", gpus, item))
        elif name in ("ngpus", "naccelerators") and _small_count(rest):
            out.append(("gpus-per-node", rest, item))
        elif name == "walltime" and rest:
            out.append(("time", rest, item))
    return out


def parse_pbs_directive(model: ScriptModel, lineno: int, rest: str) -> None:
    """A ``#PBS`` line as the sbatch options it amounts to (GPUs per node, nodes, time, queue, names, logs)."""
    words, _cut = split_directive(rest)
    i = 0
    while i < len(words):
        w = words[i]
        letter = w[1:2] if w.startswith("-") and not w.startswith("--") else ""
        value = w[2:] if len(w) > 2 else (words[i + 1] if i + 1 < len(words) else "")
        i += 1 if len(w) > 2 else 2
        pairs = _pbs_resources(value) if letter == "l" else []
        if letter in _PBS_OPTIONS and value:
            pairs = [(_PBS_OPTIONS[letter], value, f"-{letter} {value}")]
        for key, val, raw in pairs:
            model.directives.append(Directive(line=lineno, key=key, value=val, raw=f"#PBS {raw}", scheduler="pbs"))


def sbatch_test_fact(ctx: Any) -> SbatchTest:
    """`sbatch --test-only` run and read by preflight.slurm; the partitions from the ``slurm`` fact."""
    from preflight import slurm

    script = ctx.get("script")
    if script.ok and script.pbs_only:
        raise FactUnavailable("a PBS job (#PBS lines, no #SBATCH): qsub submits it, sbatch --test-only does not apply")
    runner = script.ok and script.first_command_line is not None and not script.directives
    if runner and not ctx.inputs.sbatch_args and not ctx.inputs.submitting:
        # a runner (`bash runs/train.sh`, often with no #! line): sbatch would only say it is no batch script (an
        # empty file is no runner: sbatch's refusal of it stands)
        raise FactUnavailable("no #SBATCH lines and no sbatch options: a runner script, not a batch job to test")
    info = ctx.get("slurm")  # quick: a missing controller skips, a hung one errors, before sbatch waits on it
    if not script.ok or script.path is None:
        raise FactUnavailable("no readable batch script")
    from preflight.script.model import own_job

    if job_id := own_job(script, ctx.environ):
        raise FactUnavailable(f"running inside job {job_id} of this script: SLURM has already accepted it")
    # a hung sbatch raises ToolTimeout: SB014 becomes an error, not a silent skip
    res = slurm.test_only(
        script.path, list(ctx.inputs.sbatch_args or []), env=info.env, timeout=info.timeout, cwd=ctx.inputs.cwd
    )
    if res.returncode != 0 and any(s in res.output.lower() for s in _UNREACHABLE):
        raise FactUnavailable(f"SLURM controller not reachable: {res.output.splitlines()[-1] if res.output else ''}")
    default = info.default_partition
    return SbatchTest(
        res.returncode,
        res.output,
        {p.name: p.raw for p in info.partitions},
        default.name if default is not None else None,
    )
