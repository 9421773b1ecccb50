"""What the ``preflight`` and ``postflight`` commands share: exit codes, option types and declarations,
loading the config and the checks, running a stage, and writing the report.

Only the command modules (preflight.cli, preflight.cli_verify) and this one render errors and choose exit codes
(0 clean, 1 findings, 2 usage/config/internal error). Start-up matters (login nodes, CI gates): nothing heavy is
imported at module level.
"""

from __future__ import annotations

import enum
import os
import sys
import time
from pathlib import Path
from typing import Any

import typer
import typer.core

# Typer escapes "[" in every option's "[default: ...]" whenever rich is installed, even with rich
# markup off, and click then prints the backslash ("\\[default: text]"); we render plain click help.
typer.core.HAS_RICH = False

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class Format(str, enum.Enum):
    text = "text"
    json = "json"
    jsonl = "jsonl"
    junit = "junit"
    sarif = "sarif"
    github = "github"
    markdown = "markdown"
    html = "html"


class FailOn(str, enum.Enum):
    error = "error"
    warning = "warning"
    info = "info"


class ProfileName(str, enum.Enum):
    auto = "auto"
    classic = "classic"
    argparse = "argparse"
    no_mid = "no-mid"
    current = "current"
    bundled = "bundled"


class ListFormat(str, enum.Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


class UsageError(Exception):
    """Bad input from the user: one line on stderr, exit 2."""


# -- shared options ----------------------------------------------------------------------------
SelectOpt = typer.Option(None, "--select", help="Codes, prefixes or names to run (comma-separated; default ALL).")
IgnoreOpt = typer.Option(None, "--ignore", help="Codes, prefixes or names not to run.")
ExtendOpt = typer.Option(None, "--extend-select", help="Added to the selection.")
FormatOpt = typer.Option(Format.text, "--format", "-f", help="Output format.")
OutputOpt = typer.Option(None, "--output-file", "-o", help="Write the report here instead of stdout.")
FailOnOpt = typer.Option(None, "--fail-on", help="Exit 1 on findings at or above this severity (default error).")
ExitZeroOpt = typer.Option(False, "--exit-zero", help="Exit 0 even when there are findings.")
ConfigOpt = typer.Option(None, "--config", help="Config file (default: nearest preflight.yaml or [tool.preflight]).")
PluginsOpt = typer.Option(None, "--plugins", help="A directory of site checks to load (repeatable).")
TrustOpt = typer.Option(
    False,
    "--trust-config",
    help="Load the plugins: that the checked tree's config names "
    "(this runs its code; or set PREFLIGHT_TRUST_CONFIG=1).",
)
ProfileOpt = typer.Option(None, "--profile", help="nanochat era (default: detect).")
BaseDirOpt = typer.Option(None, "--base-dir", help="NANOCHAT_BASE_DIR of the run.")
CheckoutOpt = typer.Option(
    None, "--checkout", help="The nanochat checkout the job runs (default: found from the script's cd)."
)
DeepOpt = typer.Option(None, "--deep/--no-deep", help="Also run deep checks (full reads, CRCs, NaN scans).")
VerboseOpt = typer.Option(False, "--verbose", "-v", help="List skipped checks with their reasons.")
NoColorOpt = typer.Option(False, "--no-color", help="Plain text even on a terminal.")


def split_values(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out: list[str] = []
    for v in values:
        out.extend(s.strip() for s in v.split(",") if s.strip())
    return out


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    from preflight.reporters import clean

    sys.stderr.write(clean(message.rstrip()) + "\n")
    return typer.Exit(code)


def trust_values(plugins: list[Path] | None, trust_config: bool) -> dict[str, Any]:
    """CLI values for --plugins DIR (always loaded: the user named them) and --trust-config."""
    out: dict[str, Any] = {}
    if plugins:
        out["plugins"] = [str(p.resolve()) for p in plugins]
    if trust_config:
        out["_trust"] = True
    return out


def load_settings(cli_values: dict[str, Any], config_path: Path | None, cwd: Path) -> Any:
    from preflight.config import load_config

    values = dict(cli_values)
    trust = values.pop("_trust", None)
    return load_config(values, config_path=config_path, cwd=cwd, trust=trust)


def load_registry(config: Any) -> Any:
    from preflight.registry import Registry

    ignored = config.ignored_plugins()
    if ignored:
        from preflight.config import TRUST_ENV

        sys.stderr.write(
            f"preflight: not loading plugins {', '.join(ignored)} named by {config.path}: a config "
            f"found in the checked tree does not run code (pass --trust-config or {TRUST_ENV}=1, "
            "or --plugins DIR)\n"
        )

    return Registry.default(plugins=config.plugin_dirs())


def collect_extras(result: Any, ctx: Any, names: tuple[str, ...]) -> None:
    """Attach facts that describe the run (profile, plan, phases, resume, job) to the result."""
    from preflight.context import FactError
    from preflight.facts import FactUnavailable

    for name in names:
        try:
            value = ctx.get(name)
        except (FactUnavailable, FactError):
            continue
        except Exception as exc:  # a describing fact must never take the report down
            sys.stderr.write(f"preflight: could not describe {name}: {type(exc).__name__}: {exc}\n")
            continue
        if value is None:
            continue
        to_json = getattr(value, "to_json", None)
        result.extras[name] = to_json() if callable(to_json) else value
        rows = getattr(value, "rows", None)
        if callable(rows) and name == "plan":
            result.display["plan_rows"] = rows()


def run_stage(
    stage: str, cli_values: dict[str, Any], inputs: Any, config_path: Path | None, describe: tuple[str, ...]
) -> tuple[Any, Any, Any, float]:
    from preflight.context import Context
    from preflight.runner import run_checks

    start = time.monotonic()
    config = load_settings(cli_values, config_path, inputs.cwd)
    registry = load_registry(config)
    ctx = Context(config, inputs=inputs)
    profile = None
    try:
        profile = getattr(ctx.get("profile", None), "name", None)
    except Exception:
        profile = None  # an undetectable profile still lets the profile-independent checks run
    from preflight.safeio import stdout_to_stderr

    with stdout_to_stderr():  # a check, a library or a child it starts never prints into the report
        result = run_checks(registry, ctx, stage, profile=profile)
        collect_extras(result, ctx, describe)
    if stage == "pre":
        result.display["assumptions"] = [network_assumption(config.get("network", "offline"))]
    return result, registry, ctx, time.monotonic() - start


def network_assumption(network: str) -> str:
    """Said once in the report's header, so that the findings need not repeat it."""
    if network == "online":
        return (
            "network online: compute nodes are assumed to reach the internet, so downloads at run time "
            "are not reported (network: offline in preflight.yaml, or --network offline, if they cannot)"
        )
    return (
        "network offline: compute nodes are assumed to have no internet, so every download at run time "
        "is a finding (network: online in preflight.yaml, or --network online, if they have)"
    )


def emit(
    result: Any,
    registry: Any,
    fmt: Format,
    output_file: Path | None,
    *,
    verbose: bool,
    no_color: bool,
    elapsed: float,
    title: str,
) -> None:
    from preflight.reporters import MACHINE_FORMATS, render

    to_file = output_file is not None
    color = not no_color and not to_file and fmt is Format.text and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    text = render(fmt.value, result, registry, color=color, verbose=verbose, elapsed=elapsed, title=title)
    if to_file:
        from preflight.safeio import UnsafeTarget, write_text

        try:
            write_text(output_file, text)
        except (UnsafeTarget, OSError) as exc:
            raise UsageError(f"cannot write {output_file}: {exc}") from None
    else:
        from preflight.safeio import ASCII_SYMBOLS, can_encode

        if not can_encode(sys.stdout):
            text = text.translate(ASCII_SYMBOLS)
        sys.stdout.write(text)
        sys.stdout.flush()
    if to_file or fmt.value in MACHINE_FORMATS:
        from preflight.reporters.text_format import verdict_line

        sys.stderr.write(verdict_line(result, elapsed) + "\n")


def exit_code(result: Any, exit_zero: bool) -> int:
    """1 for findings at/above --fail-on (unless --exit-zero); else 2 if a check could not run
    (it raised, timed out, or a tool hung): an unchecked run must not pass a CI gate; else 0."""
    if result.failing() and not exit_zero:
        return EXIT_FINDINGS
    if result.internal_errors:
        return EXIT_ERROR
    return EXIT_OK


def cli_values_of(select, ignore, extend_select, fail_on, profile, deep, checkout=None, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "checkout": str(checkout.resolve()) if checkout else None,
        "select": split_values(select),
        "ignore": split_values(ignore),
        "extend-select": split_values(extend_select),
        "fail-on": fail_on.value if fail_on else None,
        "profile": profile.value if profile else None,
        "deep": deep,
    }
    values.update(extra)
    return {k: v for k, v in values.items() if v is not None}
