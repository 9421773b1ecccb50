"""Facts: named, lazily computed, cached inputs that checks ask for.

A provider is a function ``provider(ctx) -> value``. Providers are found by name in
``PROVIDERS`` ("module:function" strings, imported on first use so that a check that
needs no tensors never imports torch) or registered at import time with ``@fact``.
A provider raises ``FactUnavailable(reason)`` when the fact cannot exist here (no SLURM,
no GPU, no script given); every check that requires it is then *skipped* with that reason.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

Provider = Callable[[Any], Any]


class FactUnavailable(Exception):
    """The fact does not exist in this environment; dependent checks are skipped, not failed."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Skip(Exception):
    """Raised by a check itself to report status 'skip' with a reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# name -> "module:function". Owners add their own lines; nothing here is imported eagerly.
PROVIDERS: dict[str, str] = {
    # core (preflight/context.py)
    "config": "preflight.context:config_fact",
    "environ": "preflight.context:environ_fact",
    "inputs": "preflight.context:inputs_fact",
    # sbatch script model, job environment, profile, plan (preflight issue)
    "script": "preflight.script.jobenv:script_fact",
    "job_env": "preflight.script.jobenv:job_env_fact",
    "profile": "preflight.profiles:profile_fact",
    "checkout": "preflight.checkout:checkout_fact",
    "plan": "preflight.plan:plan_fact",
    "base_dir": "preflight.inventory:base_dir_fact",
    "dataset": "preflight.inventory:dataset_fact",
    "tokenizer": "preflight.inventory:tokenizer_fact",
    "gpus": "preflight.gpus:gpus_fact",
    "sbatch_test": "preflight.script.sbatch:sbatch_test_fact",
    # SLURM (slurm issue)
    "slurm": "preflight.slurm:slurm_fact",
    "slurm_partitions": "preflight.slurm:slurm_partitions_fact",
    "ledger": "preflight.ledger:ledger_fact",
    "job": "preflight.slurm:job_fact",
    "job_steps": "preflight.slurm:job_steps_fact",
    # postflight (postflight issue)
    "logs": "preflight.logset:logs_fact",
    "checkpoints": "preflight.ckpt:checkpoints_fact",
    "chat_smoke": "preflight.smoke:chat_smoke_fact",
    "report": "preflight.reportmd:report_fact",
    "phases": "preflight.verdict:phases_fact",
    "resume": "preflight.resume:resume_fact",
    "series": "preflight.series:series_fact",
    # the job as a timeline (issue 12)
    "jobscript": "preflight.jobscript:jobscript_fact",
    "timeline": "preflight.timeline:timeline_fact",
    "rank_failures": "preflight.ranks:rank_failures_fact",
    "silence": "preflight.silence:silence_fact",
}

_REGISTERED: dict[str, Provider] = {}


def fact(name: str) -> Callable[[Provider], Provider]:
    """Register a provider at import time (plugins use this for facts of their own)."""

    def deco(fn: Provider) -> Provider:
        _REGISTERED[name] = fn
        return fn

    return deco


def known_facts() -> set[str]:
    return set(PROVIDERS) | set(_REGISTERED)


def resolve_provider(name: str) -> Provider:
    if name in _REGISTERED:
        return _REGISTERED[name]
    target = PROVIDERS.get(name)
    if target is None:
        raise KeyError(f"unknown fact {name!r}")
    module_name, _, func_name = target.partition(":")
    module = importlib.import_module(module_name)
    provider = getattr(module, func_name, None)
    if provider is None:
        raise KeyError(f"fact {name!r}: {target} does not exist")
    return provider


def _add_core_providers() -> None:
    PROVIDERS.setdefault("suppression_usage", "preflight.runner:suppression_usage_fact")


_add_core_providers()
