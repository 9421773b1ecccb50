"""The Context: one per run; computes each fact once, on first use, thread-safely."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.facts import FactUnavailable, resolve_provider


@dataclass
class RunInputs:
    """What the user pointed the run at (CLI arguments, not config)."""

    script: Path | None = None
    job_id: str | None = None
    logs: list[Path] = field(default_factory=list)
    base_dir: Path | None = None
    sbatch_args: list[str] = field(default_factory=list)
    # the script's own arguments (`sbatch job.sh ARGS`): none unless given, as `sbatch job.sh` runs it;
    # None: unknown ($1, $# and "$@" are then undecided)
    script_args: list[str] | None = field(default_factory=list)
    cwd: Path = field(default_factory=Path.cwd)
    stage: str = "pre"
    submitting: bool = False  # `preflight sbatch`: the job is submitted from cwd (check: from wherever the user will)
    series: bool = False  # collect the training curves while indexing the logs (reports that draw them)


class FactError(Exception):
    """A provider crashed; every check that needs the fact reports status 'error' with this."""


_MISSING = object()


class Context:
    def __init__(
        self,
        config: Any,
        inputs: RunInputs | None = None,
        environ: dict[str, str] | None = None,
        overrides: dict[str, Any] | None = None,
    ):
        self.config = config
        self.inputs = inputs or RunInputs()
        self.environ = dict(os.environ if environ is None else environ)
        self._values: dict[str, Any] = dict(overrides or {})
        self._errors: dict[str, BaseException] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # -- fact access -------------------------------------------------------------------
    def get(self, name: str, default: Any = _MISSING) -> Any:
        """The fact's value. Unavailable: raise FactUnavailable, or return ``default`` if given."""
        try:
            return self._compute(name)
        except FactUnavailable:
            if default is _MISSING:
                raise
            return default

    __getitem__ = get

    def available(self, name: str) -> bool:
        try:
            self._compute(name)
            return True
        except (FactUnavailable, FactError):
            return False

    def peek(self, name: str) -> Any:
        """The value if already computed (or overridden), else None; never computes."""
        return self._values.get(name)

    def _compute(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            if name in self._values:
                return self._values[name]
            if name in self._errors:
                raise self._errors[name]
            try:
                value = resolve_provider(name)(self)
            except FactUnavailable as exc:
                self._errors[name] = exc
                raise
            except FactError as exc:
                self._errors[name] = exc
                raise
            except Exception as exc:  # a provider bug or unreadable input: dependent checks -> error
                err = FactError(f"could not compute fact {name!r}: {type(exc).__name__}: {exc}")
                err.__cause__ = exc
                self._errors[name] = err
                raise err from exc
            self._values[name] = value
            return value


# -- core providers ------------------------------------------------------------------------
def config_fact(ctx: Context) -> Any:
    return ctx.config


def environ_fact(ctx: Context) -> dict[str, str]:
    return ctx.environ


def inputs_fact(ctx: Context) -> RunInputs:
    return ctx.inputs
