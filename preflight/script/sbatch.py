"""SLURM's side of a batch script: `#SBATCH` options, --time and --gres values, and what
`sbatch --test-only` says about the job (the ``sbatch_test`` fact)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from preflight.facts import FactUnavailable
from preflight.script.lexer import Unterminated, tokenize
from preflight.script.model import Directive, ScriptModel

# sbatch short options -> long names (those that matter here)
_SHORT = {"J": "job-name", "N": "nodes", "n": "ntasks", "G": "gpus", "t": "time", "o": "output",
          "e": "error", "p": "partition", "c": "cpus-per-task", "D": "chdir", "A": "account",
          "q": "qos", "w": "nodelist", "C": "constraint", "a": "array", "d": "dependency",
          "i": "input", "x": "exclude", "M": "clusters", "m": "distribution", "k": "no-kill"}
_SBATCH_FLAGS_NO_VALUE = {"exclusive", "requeue", "no-requeue", "hold", "test-only", "wait", "overcommit",
                          "contiguous", "no-kill", "parsable", "spread-job", "use-min-nodes", "oversubscribe",
                          "verbose", "quiet", "export-file", "ignore-pbs", "k", "v", "Q", "H", "O", "s", "W", "h"}


def _split_options(text: str) -> list[str]:
    try:
        tokens, _ = tokenize(text)
    except Unterminated:
        return text.split()
    return [t.value for kind, t in tokens if kind == "word"]


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


def parse_directive(model: ScriptModel, lineno: int, rest: str) -> None:
    words = _split_options(rest)
    for key, value, raw in parse_option_list(words):
        model.directives.append(Directive(line=lineno, key=key, value=value, raw=raw,
                                          has_variable=bool(value and re.search(r"\$\{?[A-Za-z_]", value))))


# time formats: min | min:sec | h:min:sec | d-h | d-h:min | d-h:min:sec
def parse_time_limit(value: str | None) -> int | None:
    """sbatch --time value -> seconds (None: unlimited or unparsable)."""
    if not value:
        return None
    v = value.strip()
    if v.lower() in ("unlimited", "infinite", "-1"):
        return None
    days = 0
    if "-" in v:
        d, _, v = v.partition("-")
        if not d.isdigit():
            return None
        days = int(d)
        parts = v.split(":")
        if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3:
            return None
        h, m, s = (list(map(int, parts)) + [0, 0])[:3]
        return days * 86400 + h * 3600 + m * 60 + s
    parts = v.split(":")
    if not all(p.isdigit() for p in parts):
        return None
    nums = list(map(int, parts))
    if len(nums) == 1:
        return nums[0] * 60
    if len(nums) == 2:
        return nums[0] * 60 + nums[1]
    if len(nums) == 3:
        return nums[0] * 3600 + nums[1] * 60 + nums[2]
    return None


def gpus_from_gres(value: str | None) -> int | None:
    """--gres=gpu:8 / gpu:h100:8 / gpu:a100:4,lscratch:10 -> 8/8/4; gpu (no count) -> 1."""
    if not value:
        return None
    for part in value.split(","):
        bits = part.split(":")
        if bits[0] != "gpu":
            continue
        if len(bits) == 1:
            return 1
        last = bits[-1].split("(")[0]
        if last.isdigit():
            return int(last)
        return 1
    return None


def count(value: str | None) -> int | None:
    """--gpus=8 / --gpus=h100:8 / --nodes=2 / --nodes=1-2 (min) -> int."""
    if not value:
        return None
    v = value.split(":")[-1].split("-")[0].split(",")[0]
    return int(v) if v.isdigit() else None



# -- sbatch --test-only and partition limits ---------------------------------------------------
_UNREACHABLE = ("unable to contact slurm controller", "connection refused", "socket timed out",
                "zero bytes were transmitted", "unable to establish", "could not establish", "communications connection failure")


@dataclass
class SbatchTest:
    """What SLURM says about the job without submitting it (the ``sbatch_test`` fact)."""

    returncode: int
    output: str  # stderr + stdout of `sbatch --test-only`
    partitions: dict[str, dict[str, str]]  # name -> scontrol fields (MaxTime, MaxNodes, Default ...)
    default_partition: str | None = None


def parse_partitions(text: str) -> tuple[dict[str, dict[str, str]], str | None]:
    parts: dict[str, dict[str, str]] = {}
    default = None
    for line in text.splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        name = fields.get("PartitionName")
        if not name:
            continue
        parts[name] = fields
        if fields.get("Default") == "YES":
            default = name
    return parts, default


def sbatch_test_fact(ctx: Any) -> SbatchTest:
    from preflight.proc import ToolTimeout, run_tool, which

    if which("sbatch") is None:
        raise FactUnavailable("SLURM not installed here (no sbatch on PATH)")
    ctx.get("slurm")  # quick: a missing controller skips, a hung one errors, before sbatch waits on it
    script = ctx.get("script")
    if not script.ok or script.path is None:
        raise FactUnavailable("no readable batch script")
    from preflight.script.model import own_job

    if job_id := own_job(script, ctx.environ):
        raise FactUnavailable(f"running inside job {job_id} of this script: SLURM has already accepted it")
    timeout = float(ctx.config.get("slurm-timeout", 20.0)) if ctx.config is not None else 20.0
    try:
        res = run_tool(["sbatch", "--test-only", *list(ctx.inputs.sbatch_args or []), str(script.path)],
                       timeout=timeout, cwd=str(ctx.inputs.cwd), env=ctx.environ or None)
    except ToolTimeout:
        raise  # hung, not absent: SB014 becomes an error, not a silent skip
    out = (res.stderr + res.stdout).strip()
    if res.returncode != 0 and any(s in out.lower() for s in _UNREACHABLE):
        raise FactUnavailable(f"SLURM controller not reachable: {out.splitlines()[-1] if out else ''}")
    partitions, default = {}, None
    try:
        part = run_tool(["scontrol", "show", "partition", "-o"], timeout=timeout)
        if part.returncode == 0:
            partitions, default = parse_partitions(part.stdout)
    except (FactUnavailable, ToolTimeout):
        pass
    return SbatchTest(res.returncode, out, partitions, default)
