"""Configuration: defaults < file (preflight.yaml / [tool.preflight]) < PREFLIGHT_* env < CLI.

Every source is validated against ``schemas/config.schema.json``; an invalid source raises
``ConfigError`` naming the file, the JSON path and what is wrong (the CLI exits 2 on it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_FILENAMES = ("preflight.yaml", "preflight.yml", ".preflight.yaml")
MAX_CONFIG_BYTES = 1_000_000

DEFAULTS: dict[str, Any] = {
    "select": ["ALL"],
    "extend-select": [],
    "ignore": [],
    "severity": {},
    "fail-on": "error",
    "profile": "auto",
    "plugins": [],
    "network": "offline",
    "timeout": 30.0,
    "jobs": 8,
    "deep": False,
    "smoke": "auto",
    "smoke-max-params": 50_000_000,
    "smoke-timeout": 120.0,
    "smoke-memory": 16384,
    "gpu": {},
    "mfu": 0.40,
    "internode-efficiency": 0.90,
    "hourly-rate": 3.0,
    "disk-margin": 1.2,
    "log-patterns": ["logs/nanochat_speedrun_%j.out", "logs/%x_%j.out", "slurm-%j.out", "slurm-%A_%a.out"],
    "ledger-dir": ".preflight/jobs",
    "slurm-timeout": 20.0,
    "hang-minutes": 30.0,
}

# keys whose environment value is a comma-separated list / number / bool
_LIST_KEYS = {"select", "extend-select", "ignore", "plugins", "log-patterns"}
_NUMBER_KEYS = {
    "timeout",
    "smoke-timeout",
    "mfu",
    "internode-efficiency",
    "hourly-rate",
    "disk-margin",
    "slurm-timeout",
    "hang-minutes",
}
_INT_KEYS = {"jobs", "smoke-max-params", "smoke-memory"}
_BOOL_KEYS = {"deep"}


class ConfigError(Exception):
    """Invalid configuration. ``str()`` is one line: where, which JSON path, what."""


@dataclass
class Config:
    """The merged configuration (defaults, files, environment, command line) and where each part came from."""

    values: dict[str, Any]
    sources: list[str] = field(default_factory=list)  # what was merged, lowest first
    path: Path | None = None  # the config file, if any (relative plugin paths resolve from it)
    # where `plugins` came from: "user" (outside the checked tree), "file" (found in or named inside the
    # checked tree: runs code only when trusted), "environment", "command line" or "defaults"
    plugins_from: str = "defaults"
    plugins_base: Path | None = None
    trusted: bool = False  # --trust-config / PREFLIGHT_TRUST_CONFIG=1

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def __getattr__(self, attr: str) -> Any:
        key = attr.replace("_", "-")
        try:
            return self.values[key]
        except KeyError:
            raise AttributeError(attr) from None

    def plugin_dirs(self) -> list[Path]:
        """The plugin directories to import: none from a config file of the checked tree unless trusted
        (``preflight check`` in CI on a pull request must not run the pull request's code)."""
        if self.ignored_plugins():
            return []
        root = self.plugins_base or (self.path.parent if self.path else Path.cwd())
        return [(root / p) if not Path(p).is_absolute() else Path(p) for p in self.values["plugins"]]

    def ignored_plugins(self) -> list[str]:
        """``plugins:`` of an untrusted config file (not loaded); empty when there is nothing to refuse."""
        if self.plugins_from == "file" and not self.trusted:
            return [str(p) for p in self.values["plugins"]]
        return []

    def to_json(self) -> dict[str, Any]:
        return dict(self.values)


MAX_CONFIG_NODES = 100_000
MAX_CONFIG_DEPTH = 64


def _check_expansion(data: Any, source: str) -> None:
    """Refuse documents whose YAML aliases expand into a huge (or recursive) structure.

    safe_load builds aliases as shared references, so the document is small in memory, but
    anything that walks it (validation, error messages) pays for the expanded size.
    Sizes are counted over the DAG with memoisation, iteratively (no recursion limit).
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool, int]] = [(data, False, 0)]
    while stack:
        node, children_done, depth = stack.pop()
        if not isinstance(node, (list, dict)):
            continue
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigError(f"{source}: nested more than {MAX_CONFIG_DEPTH} levels deep; refusing it")
        key = id(node)
        if children_done:
            on_path.discard(key)
            kids = node.values() if isinstance(node, dict) else node
            total = 1 + sum(sizes.get(id(k), 1) for k in kids)
            if total > MAX_CONFIG_NODES:
                raise ConfigError(
                    f"{source}: the document expands to over {MAX_CONFIG_NODES:,} values "
                    "(YAML anchors/aliases?); refusing it"
                )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ConfigError(f"{source}: recursive YAML alias; refusing it")
        on_path.add(key)
        stack.append((node, True, depth))
        kids = node.values() if isinstance(node, dict) else node
        for k in kids:  # .nan / .inf pass every schema bound (NaN compares false): `timeout: .nan` disabled timeouts
            if isinstance(k, float) and not math.isfinite(k):
                raise ConfigError(f"{source}: {k!r} is not a finite number")
        stack.extend((k, False, depth + 1) for k in kids if isinstance(k, (list, dict)))


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 15] + f"... ({len(text):,} chars)"


# keys whose CLI values typer has already typed (paths, enums): no schema to consult (importing
# jsonschema costs ~0.1-0.5 s of start-up, more than the whole check)
_PRETYPED = {"checkout": str, "profile": str, "fail-on": str, "deep": bool, "network": str}


def _validate(
    data: Any, source: str, environ: Mapping[str, str], key: str | None = None, looked_up: bool = False
) -> None:
    """Raise ConfigError unless ``data`` passes the schema. ``key``: the exact text it was parsed from (a
    config file's); without it, the canonical JSON of ``data``. A key that passed before is not validated
    again (preflight/config_cache.py; ``looked_up``: the caller already found it missing there); one that
    passes now is remembered with ``data``."""
    _check_expansion(data, source)
    if (
        source == "command line"
        and isinstance(data, dict)
        and data
        and all(k in _PRETYPED and isinstance(v, _PRETYPED[k]) and v != "" for k, v in data.items())
    ):
        return
    from preflight import config_cache, schemas

    key = key if key is not None else config_cache.json_key(data)
    if key is not None and not looked_up and config_cache.lookup(key, environ) == data:
        return  # this very document passed this very schema in an earlier run
    import jsonschema  # deferred: only when there is something new to validate

    validator = jsonschema.Draft202012Validator(schemas.load_json("config.schema.json"))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if not errors and key is not None:
        config_cache.remember(key, data, environ)
    if errors:
        err = errors[0]
        where = "$" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        from preflight.redact import is_secret_name, redact

        message = err.message
        shown = repr(err.instance)
        if message.startswith(shown) and any(isinstance(p, str) and is_secret_name(p) for p in err.absolute_path):
            message = "the value" + message[len(shown) :]  # the value under a secret's name is never echoed

        message = redact(_short(message))
        if err.validator == "additionalProperties":
            message = f"unknown key: {message}"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {_short(where, 120)}: {message}{more}")


def _read_config_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ConfigError(f"{path}: not a regular file; refused")
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: file is {size} bytes; a config over {MAX_CONFIG_BYTES} bytes is refused")
        from preflight.safeio import read_limited

        return read_limited(path, MAX_CONFIG_BYTES, "config").decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _load_yaml_file(path: Path, source: str, environ: Mapping[str, str]) -> dict:
    """A YAML config file's values, validated. The same text validated by an earlier run comes from the
    cache, without PyYAML or jsonschema (~60 ms)."""
    text = _read_config_text(path)
    from preflight import config_cache

    key = "yaml:" + text
    cached = config_cache.lookup(key, environ)
    if isinstance(cached, dict):
        return cached
    data = _parse_yaml(text, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: $: the top level must be a mapping, not {type(data).__name__}")
    _validate(data, source, environ, key=key, looked_up=True)
    return data


def _parse_yaml(text: str, path: Path) -> Any:
    import yaml

    try:
        # SafeLoader: no Python objects. Anchors/aliases are resolved lazily by reference,
        # so a "billion laughs" document stays small in memory; the schema rejects its shape.
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where}: invalid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal past Python's digit limit
        raise ConfigError(f"{path}: invalid YAML value: {_short(str(exc))}") from None
    if data is None:
        return {}
    return data


def _read_pyproject(path: Path) -> Any:
    import tomllib  # type: ignore[import-not-found]  # py3.11+

    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES or not path.is_file():
            raise ConfigError(f"{path}: not a regular file under {MAX_CONFIG_BYTES} bytes; refused")
        from preflight.safeio import read_limited

        data = tomllib.loads(read_limited(path, MAX_CONFIG_BYTES, "pyproject.toml").decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:  # digit limits, absurd nesting
        raise ConfigError(f"{path}: invalid TOML: {_short(str(exc)) or type(exc).__name__}") from None
    return data.get("tool", {}).get("preflight")


TRUST_ENV = "PREFLIGHT_TRUST_CONFIG"


def _may_climb_into(directory: Path) -> bool:
    """Whether config discovery may look in ``directory`` above the start: not a shared parent that
    anyone can write (/tmp, /scratch: world-writable or sticky) and not another user's directory."""
    try:
        st = directory.stat()
    except OSError:
        return False
    return st.st_uid in (os.getuid(), 0) and not st.st_mode & (0o002 | 0o1000)


def find_config_file(start: Path) -> tuple[Path, str] | None:
    """Nearest preflight.yaml, or pyproject.toml with [tool.preflight], from ``start`` upward; the
    search stops at the repository root (.git) or the home directory, and never climbs into a
    directory that other users can write or own."""
    start = start.resolve()
    home = Path.home().resolve() if "HOME" in os.environ else None
    for directory in (start, *start.parents):
        if directory != start and not _may_climb_into(directory):
            break
        for name in CONFIG_FILENAMES:
            candidate = directory / name
            if candidate.is_file():
                return candidate, "yaml"
        pyproject = directory / "pyproject.toml"
        if _has_tool_section(pyproject):
            return pyproject, "toml"
        if (directory / ".git").exists() or directory == home:
            break
    return None


def _has_tool_section(pyproject: Path) -> bool:
    """A ``[tool.preflight]`` table in the first MAX_CONFIG_BYTES of a regular pyproject.toml."""
    try:
        if not pyproject.is_file():
            return False
        with open(pyproject, "rb") as fh:
            return b"[tool.preflight]" in fh.read(MAX_CONFIG_BYTES)
    except OSError:
        return False


def user_config_file(environ: Mapping[str, str]) -> Path | None:
    """The user's own config, outside any checked tree: $XDG_CONFIG_HOME/nanochat-preflight/preflight.yaml."""
    base = environ.get("XDG_CONFIG_HOME") or (str(Path.home() / ".config") if environ.get("HOME") else "")
    if not base:
        return None
    path = Path(base) / "nanochat-preflight" / "preflight.yaml"
    return path if path.is_file() else None


def from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    """PREFLIGHT_FAIL_ON=warning, PREFLIGHT_SELECT=SB,ENV001 ... (keys in DEFAULTS only)."""
    out: dict[str, Any] = {}
    for key in DEFAULTS:
        raw = environ.get("PREFLIGHT_" + key.upper().replace("-", "_"))
        if raw is None or raw == "":
            continue
        source = f"environment PREFLIGHT_{key.upper().replace('-', '_')}"
        try:
            if key in _LIST_KEYS:
                out[key] = [s.strip() for s in raw.split(",") if s.strip()]
            elif key in _NUMBER_KEYS:
                out[key] = float(raw)
            elif key in _INT_KEYS:
                out[key] = int(raw)
            elif key in _BOOL_KEYS:
                out[key] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif key in ("severity", "gpu"):
                continue  # structured keys only from files
            else:
                out[key] = raw
        except ValueError:
            raise ConfigError(
                f"{source}: cannot parse {raw!r} as a {'number' if key in _NUMBER_KEYS | _INT_KEYS else 'value'}"
            ) from None
    return out


def load_config(
    cli: Mapping[str, Any] | None = None,
    *,
    config_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    search: bool = True,
    trust: bool | None = None,
) -> Config:
    """Merge defaults, the user's config, the project's config file, PREFLIGHT_* variables and CLI
    values (highest last). ``trust``: load ``plugins:`` of the project's config file (default:
    PREFLIGHT_TRUST_CONFIG)."""
    environ = os.environ if environ is None else environ
    values = {
        k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()
    }
    sources = ["defaults"]
    path: Path | None = None
    if trust is None:
        trust = environ.get(TRUST_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    plugins_from, plugins_base = "defaults", None

    user_file = user_config_file(environ) if search else None
    if user_file is not None:
        data = _load_yaml_file(user_file, str(user_file), environ)
        values.update(data)
        sources.append(str(user_file))
        if "plugins" in data:
            plugins_from, plugins_base = "user", user_file.parent

    found: tuple[Path, str] | None = None
    if config_path is not None:
        if not Path(config_path).is_file():
            raise ConfigError(f"{config_path}: config file not found")
        found = (Path(config_path), "toml" if Path(config_path).name == "pyproject.toml" else "yaml")
    elif search:
        found = find_config_file(cwd or Path.cwd())
    if found is not None:
        path, kind = found
        if kind == "toml":
            data = _read_pyproject(path)
            if data is None:
                data = {}
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: $: the top level must be a mapping, not {type(data).__name__}")
            _validate(data, f"{path} [tool.preflight]", environ)
        else:
            data = _load_yaml_file(path, str(path), environ)
        values.update(data)
        sources.append(str(path))
        if "plugins" in data:
            plugins_from, plugins_base = "file", path.parent

    env_values = from_environ(environ)
    if env_values:
        _validate(env_values, "environment (PREFLIGHT_*)", environ)
        values.update(env_values)
        sources.append("environment")
        if "plugins" in env_values:
            plugins_from, plugins_base = "environment", Path(cwd or Path.cwd())

    cli_values = {k: v for k, v in (cli or {}).items() if v is not None}
    if cli_values:
        _validate(cli_values, "command line", environ)
        values.update(cli_values)
        sources.append("command line")
        if "plugins" in cli_values:
            plugins_from, plugins_base = "command line", Path(cwd or Path.cwd())
    return Config(
        values=values,
        sources=sources,
        path=path,
        plugins_from=plugins_from,
        plugins_base=plugins_base,
        trusted=bool(trust),
    )


def merge_selectors(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        out.extend(s.strip() for s in str(v).split(",") if s.strip())
    return out


STARTER_CONFIG = """\
# preflight.yaml: configuration for nanochat-preflight (preflight check / postflight verify).
# Precedence: command line > PREFLIGHT_* environment variables > this file > defaults.
# Every key is optional; `preflight list` shows the check codes and names.

# Which checks run: codes (SB003), prefixes (SB, GPU) or names (missing-set-e). Default: ALL.
# select: [ALL]
# extend-select: []
# ignore: []

# Re-grade findings per code or name (info | warning | error).
# Some sites require named wandb runs: make a dummy run an error there.
# severity:
#   wandb-disabled: error

# Exit 1 when a finding is at or above this severity (error | warning | info).
# fail-on: error

# nanochat era of the checkout the script runs: auto | classic | argparse | no-mid | current | bundled
# profile: auto

# Directories with site or project checks (*.py files using @check), relative to this file.
# plugins: [./site_checks]

# The nanochat checkout the job runs (default: the script's cd target, $SLURM_SUBMIT_DIR, cwd).
# Its entry points' real flags are read from it (statically; nothing is imported).
# checkout: /scratch/$USER/nanochat

# NANOCHAT_BASE_DIR to assume when the script does not set one.
# base-dir: /scratch/$USER/nanochat

# Do compute nodes reach the internet? offline makes run-time downloads an error.
# network: offline

# Run plan: assumed GPU (login nodes have none), MFU and price per GPU-hour.
# gpu: {type: H100, count: 8, memory-gib: 80}
# mfu: 0.40
# hourly-rate: 3.0
# disk-margin: 1.2          # free space needed = plan x margin

# Per-check timeout in seconds, and how many checks run at once.
# timeout: 30
# jobs: 8

# Postflight: load every checkpoint tensor (NaN/Inf, CRCs); chat smoke test (auto: small models only).
# deep: false
# smoke: auto
# smoke-max-params: 50000000
# A checkpoint the bundled GPT cannot hold runs (only with smoke: true) in the checkout's own code
# (checkout above), with its Python, in a child process without network, under these limits.
# smoke-timeout: 120        # seconds
# smoke-memory: 16384       # MiB of address space
# python: ~/nanochat/.venv/bin/python   # default: the checkout's .venv/bin/python
# A phase that writes nothing for this long has hung (LOG010), whatever its time limit.
# hang-minutes: 30
# log-patterns: [logs/nanochat_speedrun_%j.out, logs/%x_%j.out, slurm-%j.out, slurm-%A_%a.out]
# ledger-dir: .preflight/jobs
"""
