"""Test support for check authors (built-in and plugin): scenarios and good/bad cases.

    from preflight.testing import Scenario, bad, good

    @bad("missing-set-e")
    def _no_errexit():
        return Scenario(script="#!/bin/bash\\npython -m nanochat.base_train\\n")

A registry-walking test runs every check on each of its cases: a bad case must produce at
least one finding and only findings of that check; a good case must *pass* (not skip).
``{tmp}`` in script text, file contents, env and config values is replaced by the case's
temporary directory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.config import load_config
from preflight.context import Context, RunInputs
from preflight.model import RunResult
from preflight.registry import Registry
from preflight.runner import Selection, run_checks

FileSpec = "str | bytes | Callable[[Path], Any]"


@dataclass
class Scenario:
    script: str | bytes | None = None  # batch script, written to <tmp>/job.sbatch
    script_name: str = "job.sbatch"
    files: dict[str, Any] = field(default_factory=dict)  # relative path -> text | bytes | fn(abs_path) | dict (json)
    env: dict[str, str] = field(default_factory=dict)  # the whole environment (hermetic)
    config: dict[str, Any] = field(default_factory=dict)  # config values (CLI level)
    facts: dict[str, Any] = field(default_factory=dict)  # fact overrides for parts absent here (GPUs)
    stage: str = "pre"
    base_dir: str | None = None  # relative to tmp -> RunInputs.base_dir
    logs: list[str] = field(default_factory=list)  # relative to tmp
    job_id: str | None = None
    sbatch_args: list[str] = field(default_factory=list)
    script_args: list[str] | None = field(default_factory=list)  # `sbatch job.sbatch ARGS`; None: unknown
    cwd: str = "."
    setup: Callable[[Path], Any] | None = None  # extra setup after files are written

    def materialize(self, root: Path) -> RunInputs:
        root = Path(root)

        def sub(value: Any) -> Any:
            if isinstance(value, str):
                return value.replace("{tmp}", str(root))
            if isinstance(value, list):
                return [sub(v) for v in value]
            if isinstance(value, dict):
                return {k: sub(v) for k, v in value.items()}
            return value

        for rel, content in self.files.items():
            path = root / sub(rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            if callable(content):
                content(path)
            elif isinstance(content, bytes):
                path.write_bytes(content)
            elif isinstance(content, (dict, list)):
                path.write_text(json.dumps(sub(content), indent=2))
            else:
                path.write_text(sub(content))
        script_path = None
        if self.script is not None:
            script_path = root / self.script_name
            script_path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(self.script, bytes):
                script_path.write_bytes(self.script)
            else:
                script_path.write_bytes(sub(self.script).encode("utf-8"))
        if self.setup is not None:
            self.setup(root)
        return RunInputs(
            script=script_path,
            job_id=self.job_id,
            logs=[root / sub(p) for p in self.logs],
            base_dir=(root / sub(self.base_dir)) if self.base_dir is not None else None,
            sbatch_args=sub(self.sbatch_args),
            script_args=sub(self.script_args),
            cwd=root / sub(self.cwd),
            stage=self.stage,
        )

    def context(self, root: Path) -> Context:
        inputs = self.materialize(root)
        env = {k: v.replace("{tmp}", str(root)) for k, v in self.env.items()}
        env.setdefault("HOME", str(root / "home"))
        config_values = json.loads(json.dumps(self.config).replace("{tmp}", str(root).replace("\\", "\\\\")))
        config = load_config(config_values, environ={}, search=False)
        return Context(config, inputs=inputs, environ=env, overrides=dict(self.facts))


def run_scenario(
    scenario: Scenario, root: Path, select: Iterable[str] | None = None, registry: Registry | None = None
) -> RunResult:
    registry = registry or Registry.default(entry_points=False)
    ctx = scenario.context(root)
    selection = Selection(select=list(select), ignore=[]) if select is not None else None
    profile = None
    if ctx.available("profile"):
        profile = getattr(ctx.get("profile"), "name", None)
    return run_checks(registry, ctx, scenario.stage, selection=selection, profile=profile)


# -- good/bad cases ----------------------------------------------------------------------------
CASES: dict[str, dict[str, list[Callable[[], Scenario]]]] = {}


def _case(kind: str, key: str) -> Callable[[Callable[[], Scenario]], Callable[[], Scenario]]:
    def deco(fn: Callable[[], Scenario]) -> Callable[[], Scenario]:
        CASES.setdefault(key, {"good": [], "bad": []})[kind].append(fn)
        return fn

    return deco


def good(key: str) -> Callable[[Callable[[], Scenario]], Callable[[], Scenario]]:
    """A scenario on which the check (code or name) must pass."""
    return _case("good", key)


def bad(key: str) -> Callable[[Callable[[], Scenario]], Callable[[], Scenario]]:
    """A scenario on which the check must report findings of its own code only."""
    return _case("bad", key)


# Python source to run first in a child interpreter to behave like the light install
# (`pip install nanochat-preflight` without extras): torch, tiktoken and rustbpe cannot be imported.
WITHOUT_TORCH = """
import sys
class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'tiktoken', 'rustbpe'):
            raise ModuleNotFoundError(f'No module named {name!r}', name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
"""
