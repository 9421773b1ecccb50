"""The ``script`` and ``job_env`` facts: the parsed script, and what the job will see."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.facts import FactUnavailable
from preflight.script.evaluator import UNKNOWN
from preflight.script.model import ScriptModel, own_job
from preflight.script.parser import parse_script
from preflight.script.sbatch import count, gpus_from_gres, parse_option_list, parse_time_limit


def script_fact(ctx: Any) -> ScriptModel:
    path = ctx.inputs.script
    if path is None:
        raise FactUnavailable("no batch script given")
    path = Path(path)
    if not path.is_absolute():
        path = Path(ctx.inputs.cwd) / path
    if not path.exists():
        return ScriptModel(path=path, problems=[f"{path} does not exist"])
    # sbatch hands the job this environment (--export=ALL, its default); branches that test it
    # are decided from it. With --export=NONE or a list on the command line it is unknown.
    environ: dict[str, str] | None = dict(ctx.environ)
    for key, value, _raw in parse_option_list(list(ctx.inputs.sbatch_args or [])):
        if key == "export" and not (value or "").upper().startswith("ALL"):
            environ = None
    if not ctx.environ.get("SBATCH_EXPORT", "ALL").upper().startswith("ALL"):
        environ = None
    if environ is not None and any(
        key == "array" for key, _v, _r in parse_option_list(list(ctx.inputs.sbatch_args or []))
    ):
        environ["SLURM_ARRAY_TASK_ID"] = UNKNOWN  # `sbatch --array=0-3 job.sh`: each task has its own id
    checkout = ctx.config.get("checkout") if ctx.config is not None else None
    checkout = Path(os.path.expanduser(str(checkout))) if checkout else None
    args = ctx.inputs.script_args
    return parse_script(
        path, cwd=Path(ctx.inputs.cwd), environ=environ, args=None if args is None else list(args), checkout=checkout
    )


@dataclass
class JobEnv:
    """What the job will see: ctx.environ overlaid with the script's exports, and the sbatch
    options (script directives, overridden by the command-line sbatch args)."""

    env: dict[str, str]
    sbatch: dict[str, str | None]  # long option -> value (last wins; CLI over script)
    sbatch_source: dict[str, str]  # long option -> "script:LINE" | "command line"
    exported: set[str] = field(default_factory=set)
    # sbatch's --export (ALL when unset) and the submitting shell's variables it keeps from the job
    export: str = "ALL"
    export_source: str = "default"
    dropped: dict[str, str] = field(default_factory=dict)
    # the environment the job starts with, before the script runs: what expanding a word at one line of the script
    # starts from (the script's own assignments up to that line are the script model's; `env` has them all, a later
    # export included)
    start: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.env.get(name, default)

    def directive_line(self, key: str) -> int | None:
        """The script line of the #SBATCH directive that set option ``key`` (None: the command line or unset)."""
        src = self.sbatch_source.get(key, "")
        return int(src.split(":")[1]) if src.startswith("script:") else None

    @property
    def nodes(self) -> int:
        return count(self.sbatch.get("nodes")) or 1

    @property
    def gpus_per_node(self) -> int | None:
        s = self.sbatch
        n = gpus_from_gres(s.get("gres"))
        if n is not None:
            return n
        if s.get("gpus-per-node"):
            return count(s.get("gpus-per-node"))
        if s.get("gpus"):
            total = count(s.get("gpus"))
            return None if total is None else max(1, total // self.nodes)
        if s.get("gpus-per-task"):
            per = count(s.get("gpus-per-task"))
            tasks = count(s.get("ntasks-per-node")) or count(s.get("ntasks")) or 1
            return None if per is None else per * tasks
        return None

    @property
    def time_limit_s(self) -> int | None:
        return parse_time_limit(self.sbatch.get("time"))

    def to_json(self) -> dict:
        return {"sbatch": dict(self.sbatch), "exported": sorted(self.exported)}


# variables the trainer, its tools and these checks read from the job's environment
TRAINER_ENV = (
    "NANOCHAT_BASE_DIR",
    "WANDB_RUN",
    "WANDB_MODE",
    "WANDB_API_KEY",
    "HF_HOME",
    "HF_DATASETS_OFFLINE",
    "HF_HUB_OFFLINE",
    "OMP_NUM_THREADS",
)
# set on the node even under --export=NONE (SLURM then loads the user's login environment there)
LOGIN_ENV = ("HOME", "USER", "LOGNAME", "PATH", "SHELL", "LANG")


def effective_export(script: Any, sbatch_args: list[str], environ: dict[str, str]) -> tuple[str, str]:
    """sbatch's --export for this submission and where it came from: the command line over
    $SBATCH_EXPORT over the script's #SBATCH line (sbatch's own precedence); ALL when unset."""
    for key, value, _raw in reversed(parse_option_list(list(sbatch_args or []))):
        if key == "export":
            return (value or "ALL"), "the command line"
    if environ.get("SBATCH_EXPORT"):
        return environ["SBATCH_EXPORT"], "$SBATCH_EXPORT"
    d = script.directive("export") if script is not None and script.ok else None
    if d is not None:
        return (d.value or "ALL"), f"line {d.line}"
    return "ALL", "default"


def passed_environ(environ: dict[str, str], export: str) -> dict[str, str]:
    """The submitting shell's variables a job starts with under ``--export=export``: all of them
    (ALL, the default), or only SLURM's own and the named ones (NONE, NIL, a list), plus K=V items."""
    items = [x.strip() for x in export.split(",") if x.strip()]
    everything = any(x.upper() == "ALL" for x in items)
    if everything:
        out = dict(environ)
    else:
        out = {k: v for k, v in environ.items() if k.startswith("SLURM_") or k in LOGIN_ENV}
    for x in items:
        if x.upper() in ("ALL", "NONE", "NIL"):
            continue
        name, eq, value = x.partition("=")
        if eq:
            out[name] = value
        elif name in environ:
            out[name] = environ[name]
    return out


# ${X:-default} / ${X-default}: what a partly known value shows (X's value, else the default as written)
_DEFAULT_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?-([^{}]*)\}")


def job_env_fact(ctx: Any) -> JobEnv:
    script = ctx.get("script", None)
    export, export_source = effective_export(script, ctx.inputs.sbatch_args, ctx.environ)
    env = passed_environ(dict(ctx.environ), export)
    start = dict(env)
    dropped = {k: v for k, v in ctx.environ.items() if k not in env}
    sbatch: dict[str, str | None] = {}
    source: dict[str, str] = {}
    exported: set[str] = set()
    if script is not None and script.ok:
        for d in script.active_directives():
            sbatch[d.key] = d.value
            source[d.key] = f"script:{d.line}"
        for a in script.all_assignments:
            if a.default_only and env.get(a.name):
                continue
            value = script.expand(a.value, a.line, a.file, env)
            if value is None:  # a variable known only in the job ($USER on a login node without it): keep its name
                value = _DEFAULT_RE.sub(lambda m: env.get(m.group(1)) or m.group(2), a.value)
            if a.name in env or a.exported:
                # a plain assignment of an exported variable changes what children see
                env[a.name] = value
            if a.exported:
                exported.add(a.name)
    for key, value, _raw in parse_option_list(list(ctx.inputs.sbatch_args or [])):
        sbatch[key] = value
        source[key] = "command line"
    job_id = own_job(script, ctx.environ)
    if job_id:
        for key, value in allocation_options(ctx.environ).items():
            sbatch[key] = value
            source[key] = f"allocation of job {job_id}"
    return JobEnv(
        env=env,
        sbatch=sbatch,
        sbatch_source=source,
        exported=exported,
        export=export,
        export_source=export_source,
        dropped={k: v for k, v in dropped.items() if k not in env},
        start=start,
    )


def allocation_options(environ: dict[str, str]) -> dict[str, str]:
    """The sbatch options the running allocation really has, from SLURM's job environment."""
    out: dict[str, str] = {}
    nodes = environ.get("SLURM_JOB_NUM_NODES") or environ.get("SLURM_NNODES")
    if nodes and nodes.isdigit():
        out["nodes"] = nodes
    gpus = environ.get("SLURM_GPUS_ON_NODE")
    if gpus and gpus.isdigit():
        out["gres"] = f"gpu:{gpus}"
    tasks = (environ.get("SLURM_TASKS_PER_NODE") or "").split("(")[0].split(",")[0]
    if tasks.isdigit():
        out["ntasks-per-node"] = tasks
    if environ.get("SLURM_JOB_PARTITION"):
        out["partition"] = environ["SLURM_JOB_PARTITION"]
    return out
