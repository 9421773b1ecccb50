"""The ``script`` and ``job_env`` facts: the parsed script, and what the job will see."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.facts import FactUnavailable
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
    return parse_script(path, cwd=Path(ctx.inputs.cwd), environ=environ)


@dataclass
class JobEnv:
    """What the job will see: ctx.environ overlaid with the script's exports, and the sbatch
    options (script directives, overridden by the command-line sbatch args)."""

    env: dict[str, str]
    sbatch: dict[str, str | None]  # long option -> value (last wins; CLI over script)
    sbatch_source: dict[str, str]  # long option -> "script:LINE" | "command line"
    exported: set[str] = field(default_factory=set)

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


def job_env_fact(ctx: Any) -> JobEnv:
    env = dict(ctx.environ)
    sbatch: dict[str, str | None] = {}
    source: dict[str, str] = {}
    exported: set[str] = set()
    script = ctx.get("script", None)
    if script is not None and script.ok:
        for d in script.active_directives():
            sbatch[d.key] = d.value
            source[d.key] = f"script:{d.line}"
        for a in script.all_assignments:
            if a.default_only and env.get(a.name):
                continue
            value = script.expand(a.value, a.line, a.file, env)
            if value is None:
                value = a.value
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
    return JobEnv(env=env, sbatch=sbatch, sbatch_source=source, exported=exported)


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
