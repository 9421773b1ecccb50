"""The check registry: one registration path for built-in, entry-point and plugin-dir checks.

A check is a function decorated with ``@check(...)``. Its parameters name the facts it
needs (pluggy style): ``def missing_set_e(script): ...`` receives the ``script`` fact.
A parameter named ``ctx`` receives the Context itself, for optional facts
(``ctx.get("gpus", None)``). The function yields (or returns a list of) ``Finding``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import pkgutil
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.model import Severity

CODE_RE = re.compile(r"^[A-Z]{2,4}[0-9]{3}$")
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
STAGES = ("pre", "post")
COSTS = ("stat", "header", "load", "deep")  # cheapest first; 'deep' runs only with --deep
DOC_SECTIONS = ("What it checks", "Why it matters", "Example", "How to fix")
ENTRY_POINT_GROUP = "preflight.checks"
DIST_NAME = "nanochat-preflight"
# the catalogue ships inside the package (preflight/checks.md; docs/checks.md links to it)
CATALOGUE = Path(__file__).resolve().parent / "checks.md"
# an abbreviation's period does not end a summary's sentence
_ABBREV_END = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|cf|approx|incl)|\b[A-Z])\.$")


class RegistrationError(Exception):
    """A check declaration is invalid or collides with another (names both places)."""


@dataclass(frozen=True)
class CheckSpec:
    """A registered check: its code, name, stage, severity, the facts it needs and how costly it is."""

    code: str
    name: str
    stage: str
    severity: Severity
    requires: tuple[str, ...]
    applies_to: tuple[str, ...]
    cost: str
    func: Callable[..., Any] = field(compare=False, repr=False)
    origin: str = ""
    doc: str = ""
    wants_ctx: bool = False
    kills_at_start: bool = False  # a finding means the job dies (or is refused) before any phase runs
    timeout_key: str | None = None  # a config key (seconds) the check's own time limit must exceed

    @property
    def family(self) -> str:
        return re.match(r"[A-Z]+", self.code).group(0)  # type: ignore[union-attr]

    @property
    def summary(self) -> str:
        """The first whole sentence of 'What it checks', capitalised (one line in `preflight list`)."""
        return first_sentence(doc_sections(self.doc).get("What it checks", ""))

    @property
    def help_uri(self) -> str:
        return help_uri_base() + f"#{self.code.lower()}-{self.name}"

    def applies(self, profile: str | None) -> bool:
        return "all" in self.applies_to or profile is None or profile in self.applies_to


def doc_sections(doc: str) -> dict[str, str]:
    """Split a check docstring into its fixed sections ('What it checks:' ... )."""
    text = inspect.cleandoc(doc or "")
    pattern = re.compile(r"^({}):[ \t]*".format("|".join(map(re.escape, DOC_SECTIONS))), re.M)
    parts = pattern.split(text)
    out: dict[str, str] = {}
    for i in range(1, len(parts) - 1, 2):
        out[parts[i]] = parts[i + 1].strip()
    return out


def first_sentence(text: str) -> str:
    """The first sentence of a paragraph (line breaks joined), starting with a capital."""
    words = text.split()
    out: list[str] = []
    for i, word in enumerate(words):
        out.append(word)
        nxt = words[i + 1] if i + 1 < len(words) else ""
        in_code = " ".join(out).count("``") % 2 == 1  # a period inside ``literal`` text ends nothing
        if (
            word.endswith((".", "!", "?", ".)"))
            and nxt[:1].isupper()
            and not in_code
            and not _ABBREV_END.search(word.rstrip(")"))
        ):
            break
    sentence = " ".join(out)
    return sentence[:1].upper() + sentence[1:]


@functools.lru_cache(maxsize=1)
def help_uri_base() -> str:
    """Where a check's documentation lives: the project's "Checks" or "Documentation" URL from
    [project.urls] when the installed distribution declares one, else the catalogue inside the
    installed package (never an address nobody published)."""
    try:
        from importlib.metadata import PackageNotFoundError, metadata

        urls = metadata(DIST_NAME).get_all("Project-URL") or []
    except (ImportError, PackageNotFoundError):
        urls = []
    named = dict(u.split(",", 1) for u in urls if "," in u)
    named = {k.strip().lower(): v.strip() for k, v in named.items()}
    for label in ("checks", "documentation"):
        if named.get(label):
            return named[label].split("#")[0]
    return CATALOGUE.as_uri()


# module name -> specs declared while that module was imported
_DECLARED: dict[str, list[CheckSpec]] = {}


def check(
    code: str,
    name: str,
    *,
    stage: str = "pre",
    severity: str | Severity = "warning",
    requires: Iterable[str] | None = None,
    applies_to: Iterable[str] = ("all",),
    cost: str = "stat",
    kills_at_start: bool = False,
    timeout_key: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a check. ``requires`` defaults to the function's parameter names (minus ``ctx``).
    ``kills_at_start``: its findings mean the job dies or is refused before any phase runs
    (reporters list them first)."""

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        origin = _origin(func)
        fcode = func.__code__
        params = list(fcode.co_varnames[: fcode.co_argcount + fcode.co_kwonlyargcount])
        wants_ctx = "ctx" in params
        needed = tuple(requires) if requires is not None else tuple(p for p in params if p != "ctx")
        problems = []
        if not CODE_RE.match(code):
            problems.append(f"code {code!r} must match {CODE_RE.pattern}")
        if not NAME_RE.match(name):
            problems.append(f"name {name!r} must be kebab-case")
        if stage not in STAGES:
            problems.append(f"stage {stage!r} must be one of {STAGES}")
        if cost not in COSTS:
            problems.append(f"cost {cost!r} must be one of {COSTS}")
        extra = [p for p in params if p != "ctx" and p not in needed]
        if extra:
            problems.append(f"parameters {extra} are not declared in requires={needed}")
        try:
            sev = Severity.parse(severity)
        except ValueError as exc:
            problems.append(str(exc))
            sev = Severity.WARNING
        if problems:
            raise RegistrationError(f"check {code} {name} at {origin}: " + "; ".join(problems))
        spec = CheckSpec(
            code=code,
            name=name,
            stage=stage,
            severity=sev,
            requires=needed,
            applies_to=tuple(applies_to),
            cost=cost,
            func=func,
            origin=origin,
            doc=func.__doc__ or "",
            wants_ctx=wants_ctx,
            kills_at_start=kills_at_start,
            timeout_key=timeout_key,
        )
        _DECLARED.setdefault(func.__module__, []).append(spec)
        func.__preflight_check__ = spec  # type: ignore[attr-defined]
        return func

    return deco


def _origin(func: Callable[..., Any]) -> str:
    code = getattr(func, "__code__", None)  # not inspect.getsourcelines: that reads the file (start-up cost)
    if code is None:
        return func.__module__
    return f"{code.co_filename}:{code.co_firstlineno}"


def _any_distribution_declares(group: str) -> bool:
    """Cheap pre-scan of sys.path for an entry_points.txt that mentions ``group``."""
    import os

    needle = f"[{group}]".encode()
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                names = [e.name for e in it if e.name.endswith((".dist-info", ".egg-info"))]
        except OSError:
            continue
        for name in names:
            try:
                with open(os.path.join(entry or ".", name, "entry_points.txt"), "rb") as fh:
                    if needle in fh.read():
                        return True
            except OSError:
                continue
    return False


class Registry:
    def __init__(self) -> None:
        self._by_code: dict[str, CheckSpec] = {}
        self._by_name: dict[str, CheckSpec] = {}
        self.sources: list[str] = []

    # -- registration ------------------------------------------------------------------
    def add(self, spec: CheckSpec) -> None:
        other = self._by_code.get(spec.code)
        if other is not None and other.func is not spec.func:
            raise RegistrationError(
                f"duplicate check code {spec.code}: {spec.name} at {spec.origin} and {other.name} at {other.origin}"
            )
        other = self._by_name.get(spec.name)
        if other is not None and other.func is not spec.func:
            raise RegistrationError(
                f"duplicate check name {spec.name!r}: {spec.code} at {spec.origin} and {other.code} at {other.origin}"
            )
        self._by_code[spec.code] = spec
        self._by_name[spec.name] = spec

    def add_module(self, module: Any) -> None:
        for spec in _DECLARED.get(module.__name__, []):
            self.add(spec)
        self.sources.append(module.__name__)

    def load_builtin(self) -> Registry:
        from preflight import checks

        for info in sorted(pkgutil.iter_modules(checks.__path__), key=lambda m: m.name):
            if info.name.startswith("_"):
                continue
            self.add_module(importlib.import_module(f"preflight.checks.{info.name}"))
        return self

    def load_entry_points(self) -> Registry:
        if not _any_distribution_declares(ENTRY_POINT_GROUP):
            return self  # importlib.metadata costs ~25 ms of start-up; skip it when nothing could match
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                module = importlib.import_module(ep.value.split(":")[0])
            except Exception as exc:
                raise RegistrationError(f"plugin entry point {ep.name} ({ep.value}) failed to import: {exc}") from exc
            self.add_module(module)
        return self

    def load_plugin_dir(self, directory: Path) -> Registry:
        directory = Path(directory)
        if not directory.is_dir():
            raise RegistrationError(f"plugin directory {directory} does not exist")
        import hashlib  # here: importing it (OpenSSL) costs ~4 ms, paid only when plugins are loaded

        for path in sorted(directory.glob("*.py")):
            if path.name.startswith("_"):
                continue
            digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
            mod_name = f"preflight_plugin_{digest}_{path.stem}"
            module = sys.modules.get(mod_name)
            if module is None:
                spec = importlib.util.spec_from_file_location(mod_name, path)
                if spec is None or spec.loader is None:
                    raise RegistrationError(f"cannot import plugin {path}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[mod_name] = module
                try:
                    spec.loader.exec_module(module)
                except RegistrationError:
                    del sys.modules[mod_name]
                    raise
                except Exception as exc:
                    del sys.modules[mod_name]
                    raise RegistrationError(f"plugin {path} failed to import: {type(exc).__name__}: {exc}") from exc
            self.add_module(module)
        return self

    @classmethod
    def default(cls, plugins: Iterable[Path] = (), entry_points: bool = True) -> Registry:
        reg = cls().load_builtin()
        if entry_points:
            reg.load_entry_points()
        for directory in plugins:
            reg.load_plugin_dir(Path(directory))
        return reg

    # -- lookup ------------------------------------------------------------------------
    def __iter__(self):
        return iter(sorted(self._by_code.values(), key=lambda s: (s.stage != "pre", s.code)))

    def __len__(self) -> int:
        return len(self._by_code)

    def get(self, key: str) -> CheckSpec | None:
        return self._by_code.get(key.upper()) or self._by_name.get(key.lower())

    def codes(self) -> list[str]:
        return sorted(self._by_code)
