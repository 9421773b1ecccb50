"""A script that trains several base models in one job (a depth sweep, a scaling-law grid, upstream's
miniseries.sh): one plan whose time, cost and disk are the sum of its runs, whose model and memory are those of
the run that needs the most memory per GPU, and whose shards are enough for the run that reads the most."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from preflight.plan_launches import training_invocation, trains
from preflight.plan_model import Plan


def base_runs(script: Any, profile: Any) -> list[tuple[Any, tuple]]:
    """The base trainer's runs, one per value of the loops around its launches, each with the branches of the
    if/case blocks it lies in (tree.branch_paths); fewer than two, or all with the same flags (a launch repeated
    as a retry), is no sweep: []."""
    if script is None or not getattr(script, "ok", False) or training_invocation(script, profile, "base") is None:
        return []
    from preflight.script.launchers import sweep_runs
    from preflight.script.tree import branch_paths

    runs, seen = [], set()
    for model in script.walk():  # the script and the scripts it runs or sources
        paths = branch_paths(model.tree) if model.evaluated else {}
        for inv in model.invocations:
            if not trains(inv, profile, "base"):
                continue
            origin = model.loop_origin.get(id(inv.command), inv.command)
            if id(origin) not in seen:  # the launch's own runs, once for all its per-value copies
                seen.add(id(origin))
                # paths are per file: a followed script's blocks are its own
                path = tuple(((str(model.path), node), arm) for node, arm in paths.get(origin.line, ()))
                runs.extend((run, path) for run in sweep_runs(model, origin) or [inv])
    distinct = {tuple((f.key, f.value) for f in run.flags) for run, _path in runs}
    return runs if len(runs) > 1 and len(distinct) > 1 else []


def alternatives(runs: list[tuple[Any, tuple]]) -> list[list[int]]:
    """The runs as groups of alternatives: the runs of one group lie in different branches of an if or case the
    script decides only when it runs (a GPU branch and a CPU smoke test), so one of them runs; runs that can all
    run are groups of one."""
    from preflight.script.tree import exclusive

    groups: list[list[int]] = []
    for i, (_run, path) in enumerate(runs):
        home = next((g for g in groups if all(exclusive(runs[j][1], path) for j in g)), None)
        if home is None:
            groups.append([i])
        else:
            home.append(i)
    return groups


def _flags_varying(runs: list) -> str:
    """`--depth=12, 14, 16` for the flags whose values differ between runs."""
    keys: dict[str, list[str]] = {}
    for run in runs:
        for f in run.flags:
            if f.key and f.value is not None:
                keys.setdefault(f.key, [])
                if f.value not in keys[f.key]:
                    keys[f.key].append(f.value)
    varying = [(k, v) for k, v in keys.items() if len(v) > 1 and all(_number(x) for x in v)]  # not --run names
    return "; ".join(f"--{k}={', '.join(v[:8])}{', ...' if len(v) > 8 else ''}" for k, v in varying[:3])


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _size(plan: Plan) -> tuple:
    # the run that must fit: the most memory per GPU; then the most compute
    return plan.memory_per_gpu, plan.flops_per_token * plan.tokens


def runs_plan(plans: list[Plan], runs: list[tuple[Any, tuple]]) -> Plan:
    """One plan for the base runs of a script (plans[i] is runs[i]'s): of alternatives (alternatives()) the
    largest, which must fit; the runs that remain are one run or a sweep."""
    keep, notes = [], []
    for group in alternatives(runs):
        chosen = max(group, key=lambda i: _size(plans[i]))
        keep.append(chosen)
        if len(group) > 1:
            lines = ", ".join(str(runs[i][0].line) for i in group[:6])
            notes.append(
                f"lines {lines} train base in different branches of an if/case the script decides only when it runs: "
                f"one of them runs; planned is line {runs[chosen][0].line}'s, the largest"
            )
    if len(keep) == 1:
        one = plans[keep[0]]
        return replace(one, assumptions=[*one.assumptions, *notes])
    swept = sweep_plan([plans[i] for i in keep], [runs[i][0] for i in keep])
    return replace(swept, assumptions=[*swept.assumptions, *notes])


def sweep_plan(plans: list[Plan], runs: list) -> Plan:
    # the run shown is the one that must fit (most memory per GPU; then the most compute)
    largest = max(range(len(plans)), key=lambda i: _size(plans[i]))
    main = plans[largest]
    base = [p.phase("base") for p in plans]
    seconds = [b.seconds if b is not None else None for b in base]
    swept = sum(s for s in seconds if s is not None) if all(s is not None for s in seconds) else None
    phases = []
    for pp in main.phases:
        if pp.name == "base":
            pp = replace(
                pp,
                steps=sum(b.steps or 0 for b in base if b is not None),
                tokens=sum(b.tokens or 0 for b in base if b is not None),
                flops=sum(b.flops or 0 for b in base if b is not None),
                seconds=swept,
                model_bytes=sum(b.model_bytes for b in base if b is not None),
                optim_bytes=sum(b.optim_bytes for b in base if b is not None),
                files=sum(b.files for b in base if b is not None),
                exact_steps=False,  # the steps of several runs, not one run's promise
                note=f"a sweep of {len(runs)} runs ({_flags_varying(runs)})",
            )
        phases.append(pp)
    own = main.phase("base")
    total = None
    if main.total_seconds is not None and swept is not None:
        total = main.total_seconds - ((own.seconds or 0) if own is not None else 0) + swept
    extra_disk = sum(b.model_bytes + b.optim_bytes for i, b in enumerate(base) if b is not None and i != largest)
    lines = sorted({r.line for r in runs})
    note = (
        f"a sweep of {len(runs)} base_train runs (script line {', '.join(map(str, lines[:4]))}: "
        f"{_flags_varying(runs)}): time, cost and checkpoints are their sum; the model and memory shown are those "
        f"of the run that needs the most memory per GPU, the shards those of the run that reads the most"
    )
    return replace(
        main,
        phases=phases,
        total_seconds=total,
        cost=total / 3600 * main.world_size * main.hourly_rate if total is not None and main.cost is not None else None,
        disk_bytes=main.disk_bytes + extra_disk,
        disk_files=main.disk_files + sum(b.files for i, b in enumerate(base) if b is not None and i != largest),
        shards_recommended=max(p.shards_recommended for p in plans),
        shards_min=max(p.shards_min for p in plans),
        shards_train_min=max(p.shards_train_min for p in plans),
        assumptions=[*main.assumptions, note],
    )
