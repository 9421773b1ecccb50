"""Command line: ``preflight`` (check, list, explain, init, sbatch, docs) and ``postflight`` (verify).

A thin layer: commands parse options and call library functions; only this module renders
errors and chooses exit codes (0 clean, 1 findings, 2 usage/config/internal error).
Start-up matters (login nodes, CI gates): nothing heavy is imported at module level.
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


preflight_app = typer.Typer(
    name="preflight",
    help="Catch nanochat training-job failures before sbatch (and diagnose them after: see postflight).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: rich's help renderer costs ~70 ms of start-up
)
postflight_app = typer.Typer(
    name="postflight",
    help="After a nanochat job: did every phase really run and produce valid artifacts?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: rich's help renderer costs ~70 ms of start-up
)


def _version(value: bool) -> None:
    if value:
        from preflight import __version__

        sys.stdout.write(f"nanochat-preflight {__version__}\n")
        raise typer.Exit(0)


VersionOpt = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit.")


@preflight_app.callback()
def _preflight_root(version: bool = VersionOpt) -> None:
    """Catch nanochat training-job failures before sbatch (and diagnose them after: see postflight)."""


@postflight_app.callback()
def _postflight_root(version: bool = VersionOpt) -> None:
    """After a nanochat job: did every phase really run and produce valid artifacts?"""


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


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out: list[str] = []
    for v in values:
        out.extend(s.strip() for s in v.split(",") if s.strip())
    return out


def _fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    from preflight.reporters import clean

    sys.stderr.write(clean(message.rstrip()) + "\n")
    return typer.Exit(code)


def _trust(plugins: list[Path] | None, trust_config: bool) -> dict[str, Any]:
    """CLI values for --plugins DIR (always loaded: the user named them) and --trust-config."""
    out: dict[str, Any] = {}
    if plugins:
        out["plugins"] = [str(p.resolve()) for p in plugins]
    if trust_config:
        out["_trust"] = True
    return out


def _load(cli_values: dict[str, Any], config_path: Path | None, cwd: Path) -> Any:
    from preflight.config import load_config

    values = dict(cli_values)
    trust = values.pop("_trust", None)
    return load_config(values, config_path=config_path, cwd=cwd, trust=trust)


def _registry(config: Any) -> Any:
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


def _collect_extras(result: Any, ctx: Any, names: tuple[str, ...]) -> None:
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


def _run(
    stage: str, cli_values: dict[str, Any], inputs: Any, config_path: Path | None, describe: tuple[str, ...]
) -> tuple[Any, Any, Any, float]:
    from preflight.context import Context
    from preflight.runner import run_checks

    start = time.monotonic()
    config = _load(cli_values, config_path, inputs.cwd)
    registry = _registry(config)
    ctx = Context(config, inputs=inputs)
    profile = None
    try:
        profile = getattr(ctx.get("profile", None), "name", None)
    except Exception:
        profile = None  # an undetectable profile still lets the profile-independent checks run
    from preflight.safeio import stdout_to_stderr

    with stdout_to_stderr():  # a check, a library or a child it starts never prints into the report
        result = run_checks(registry, ctx, stage, profile=profile)
        _collect_extras(result, ctx, describe)
    if stage == "pre":
        result.display["assumptions"] = [_network_assumption(config.get("network", "offline"))]
    return result, registry, ctx, time.monotonic() - start


def _network_assumption(network: str) -> str:
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


def _emit(
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


def _exit_code(result: Any, exit_zero: bool) -> int:
    """1 for findings at/above --fail-on (unless --exit-zero); else 2 if a check could not run
    (it raised, timed out, or a tool hung): an unchecked run must not pass a CI gate; else 0."""
    if result.failing() and not exit_zero:
        return EXIT_FINDINGS
    if result.internal_errors:
        return EXIT_ERROR
    return EXIT_OK


def _cli_config(select, ignore, extend_select, fail_on, profile, deep, checkout=None, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "checkout": str(checkout.resolve()) if checkout else None,
        "select": _split(select),
        "ignore": _split(ignore),
        "extend-select": _split(extend_select),
        "fail-on": fail_on.value if fail_on else None,
        "profile": profile.value if profile else None,
        "deep": deep,
    }
    values.update(extra)
    return {k: v for k, v in values.items() if v is not None}


# -- preflight check ---------------------------------------------------------------------------
@preflight_app.command("check")
def check_cmd(
    script: Path | None = typer.Argument(None, help="The sbatch script to check (omit to check the environment only)."),
    select: list[str] | None = SelectOpt,
    ignore: list[str] | None = IgnoreOpt,
    extend_select: list[str] | None = ExtendOpt,
    fmt: Format = FormatOpt,
    output_file: Path | None = OutputOpt,
    fail_on: FailOn | None = FailOnOpt,
    exit_zero: bool = ExitZeroOpt,
    config: Path | None = ConfigOpt,
    plugins: list[Path] | None = PluginsOpt,
    trust_config: bool = TrustOpt,
    profile: ProfileName | None = ProfileOpt,
    base_dir: Path | None = BaseDirOpt,
    checkout: Path | None = CheckoutOpt,
    deep: bool | None = DeepOpt,
    network: str | None = typer.Option(None, "--network", help="offline | online: can compute nodes download?"),
    verbose: bool = VerboseOpt,
    no_color: bool = NoColorOpt,
) -> None:
    """Check an sbatch script and its environment before submission."""
    from preflight.context import RunInputs

    if script is not None and not script.exists():
        raise _fail(f"preflight: {script}: no such file")
    if script is not None and script.is_dir():
        raise _fail(f"preflight: {script}: is a directory, not a batch script")
    if script is not None and not script.is_file():  # a FIFO would block, /dev/zero would never end
        raise _fail(f"preflight: {script}: not a regular file (a FIFO, device or socket), not a batch script")
    if network is not None and network not in ("offline", "online"):
        raise _fail(f"preflight: --network must be offline or online, not {network!r}")
    cli_values = _cli_config(select, ignore, extend_select, fail_on, profile, deep, checkout, network=network)
    cli_values.update(_trust(plugins, trust_config))
    inputs = RunInputs(script=script.resolve() if script else None, base_dir=base_dir, stage="pre", cwd=Path.cwd())
    result, registry, _, elapsed = _run("pre", cli_values, inputs, config, ("profile", "plan"))
    _emit(
        result,
        registry,
        fmt,
        output_file,
        verbose=verbose,
        no_color=no_color,
        elapsed=elapsed,
        title=f"preflight check {script}" if script else "preflight check (environment only)",
    )
    raise typer.Exit(_exit_code(result, exit_zero))


# -- preflight sbatch ------------------------------------------------------------------------
@preflight_app.command(
    "sbatch",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "allow_interspersed_args": False},
)
def sbatch_cmd(
    ctx: typer.Context,
    script: Path = typer.Argument(..., help="The batch script; options after it are passed to sbatch."),
    force: bool = typer.Option(False, "--force", help="Submit even when preflight finds errors (recorded)."),
    test_only: bool = typer.Option(False, "--test-only", help="Pass --test-only to sbatch; write no ledger."),
    fail_on: FailOn | None = FailOnOpt,
    config: Path | None = ConfigOpt,
    plugins: list[Path] | None = PluginsOpt,
    trust_config: bool = TrustOpt,
    profile: ProfileName | None = ProfileOpt,
    base_dir: Path | None = BaseDirOpt,
    checkout: Path | None = CheckoutOpt,
    fmt: Format = typer.Option(Format.text, "--format", "-f", help="Format of the preflight report (stderr)."),
) -> None:
    """Run preflight, then submit with the real sbatch and record the run ledger.

    Usage: preflight sbatch [--force] SCRIPT [SBATCH OPTIONS...] [-- SCRIPT ARGS...]
    """
    from preflight.context import RunInputs

    if not script.is_file():
        raise _fail(f"preflight: {script}: no such file")
    extra = list(ctx.args)
    script_args: list[str] = []
    if "--" in extra:
        i = extra.index("--")
        extra, script_args = extra[:i], extra[i + 1 :]
    # our own flags after SCRIPT: sbatch has no --force, and --test-only means the same to both
    if "--force" in extra:
        force, extra = True, [a for a in extra if a != "--force"]
    if "--test-only" in extra:
        test_only, extra = True, [a for a in extra if a != "--test-only"]
    cli_values = _cli_config(None, None, None, fail_on, profile, None, checkout)
    cli_values.update(_trust(plugins, trust_config))
    inputs = RunInputs(script=script.resolve(), base_dir=base_dir, stage="pre", cwd=Path.cwd(), sbatch_args=extra)
    result, registry, run_ctx, elapsed = _run("pre", cli_values, inputs, config, ("profile", "plan"))
    from preflight.reporters import render

    sys.stderr.write(render(fmt.value, result, registry, elapsed=elapsed, title=f"preflight sbatch {script}"))
    from preflight.submit import SubmitError, submit

    try:
        outcome = submit(
            script.resolve(),
            extra,
            force=force,
            test_only=test_only,
            run_result=result,
            ctx=run_ctx,
            script_args=script_args,
        )
    except SubmitError as exc:
        raise _fail(f"preflight: {exc}", getattr(exc, "exit_code", EXIT_FINDINGS)) from None
    if outcome.message:
        sys.stderr.write(outcome.message.rstrip() + "\n")
    if outcome.job_id:
        sys.stdout.write(f"{outcome.job_id}\n")
    raise typer.Exit(outcome.exit_code)


# -- preflight list / explain / init / docs ------------------------------------------------------
@preflight_app.command("list")
def list_cmd(
    fmt: ListFormat = typer.Option(ListFormat.table, "--format", "-f"),
    stage: str | None = typer.Option(None, "--stage", help="pre | post"),
    config: Path | None = ConfigOpt,
    plugins: list[Path] | None = PluginsOpt,
    trust_config: bool = TrustOpt,
) -> None:
    """List every registered check (built-in, entry-point and plugin-dir)."""
    import json

    cfg = _load(_trust(plugins, trust_config), config, Path.cwd())
    registry = _registry(cfg)
    specs = [s for s in registry if stage is None or s.stage == stage]
    if fmt is ListFormat.json:
        rows = [
            {
                "code": s.code,
                "name": s.name,
                "stage": s.stage,
                "severity": s.severity.value,
                "requires": list(s.requires),
                "applies_to": list(s.applies_to),
                "cost": s.cost,
                "summary": s.summary,
                "origin": s.origin,
                "help_uri": s.help_uri,
            }
            for s in specs
        ]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if fmt is ListFormat.markdown:
        from preflight.docs import checks_table

        sys.stdout.write(checks_table(specs))
        return
    if not sys.stdout.isatty():  # piped (grep, less, a file): one line per check, never wrapped
        width = max((len(s.name) for s in specs), default=0)
        for s in specs:
            sys.stdout.write(
                f"{s.code:<7} {s.name:<{width}}  {s.stage:<4}  {s.severity.value:<7}  {s.cost:<6}  {s.summary}\n"
            )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("code", "name", "stage", "severity", "cost", "what it checks"):
        table.add_column(col)
    for s in specs:
        table.add_row(s.code, s.name, s.stage, s.severity.value, s.cost, s.summary)
    Console(highlight=False).print(table)


@preflight_app.command("explain")
def explain_cmd(
    key: str = typer.Argument(..., help="A check code (SB003) or name (missing-set-e)."),
    config: Path | None = ConfigOpt,
    plugins: list[Path] | None = PluginsOpt,
    trust_config: bool = TrustOpt,
) -> None:
    """Show what a check does, why it matters, an example and how to fix it."""
    from preflight.docs import explain

    registry = _registry(_load(_trust(plugins, trust_config), config, Path.cwd()))
    spec = registry.get(key)
    if spec is None:
        raise _fail(f"preflight: no check named {key!r} (see `preflight list`)")
    sys.stdout.write(explain(spec))


@preflight_app.command("init")
def init_cmd(
    path: Path = typer.Argument(Path("preflight.yaml"), help="Where to write the starter config."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented starter preflight.yaml."""
    from preflight.config import STARTER_CONFIG
    from preflight.safeio import UnsafeTarget, write_text

    if path.exists() and not path.is_symlink() and not force:  # a link: refused below, --force or not
        raise _fail(f"preflight: {path} exists (use --force to overwrite)")
    try:
        write_text(path, STARTER_CONFIG)
    except (UnsafeTarget, OSError) as exc:
        raise _fail(f"preflight: {exc}") from None
    sys.stderr.write(f"wrote {path}\n")


@preflight_app.command("docs")
def docs_cmd(
    output: Path = typer.Option(Path("docs/checks.md"), "--output"),
    check_only: bool = typer.Option(False, "--check", help="Exit 1 if the file is stale."),
) -> None:
    """Generate docs/checks.md from the registry, docs/eras.md and the compiled profiles from the era profiles."""
    from preflight import erasdoc
    from preflight.docs import generate
    from preflight.profiles import COMPILED, _profiles_dir, compile_profiles
    from preflight.registry import Registry

    targets = [
        (output, generate(Registry.default(entry_points=False))),
        (_profiles_dir() / COMPILED, compile_profiles()),
        (output.parent / "eras.md", erasdoc.generate()),
    ]
    stale = [path for path, text in targets if not path.exists() or path.read_text(encoding="utf-8") != text]
    if check_only:
        if stale:
            raise _fail(f"stale: {', '.join(map(str, stale))}: run `preflight docs`", EXIT_FINDINGS)
        return
    for path, text in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        sys.stderr.write(f"wrote {path}\n")


# -- postflight verify -------------------------------------------------------------------------
@postflight_app.command("verify")
def verify_cmd(
    job_id: str | None = typer.Argument(None, help="SLURM job id (reads the ledger, then SLURM)."),
    log: list[Path] | None = typer.Option(None, "--log", help="A log file of the run (repeatable)."),
    base_dir: Path | None = BaseDirOpt,
    checkout: Path | None = CheckoutOpt,
    script: Path | None = typer.Option(
        None, "--script", help="The job's batch script (default: the ledger's, else SLURM's copy via scontrol/sacct)."
    ),
    profile: ProfileName | None = ProfileOpt,
    deep: bool | None = DeepOpt,
    smoke: bool | None = typer.Option(None, "--smoke/--no-smoke", help="Load the final chat model and generate."),
    python: str | None = typer.Option(
        None, "--python", help="Python for the checkout's model code (default: its .venv)."
    ),
    wait: bool = typer.Option(False, "--wait", help="If the job is still pending/running, poll until it ends."),
    wait_timeout: float = typer.Option(3600.0, "--wait-timeout", help="Seconds to wait with --wait."),
    select: list[str] | None = SelectOpt,
    ignore: list[str] | None = IgnoreOpt,
    extend_select: list[str] | None = ExtendOpt,
    fmt: Format = FormatOpt,
    output_file: Path | None = OutputOpt,
    fail_on: FailOn | None = FailOnOpt,
    exit_zero: bool = ExitZeroOpt,
    config: Path | None = ConfigOpt,
    plugins: list[Path] | None = PluginsOpt,
    trust_config: bool = TrustOpt,
    verbose: bool = VerboseOpt,
    no_color: bool = NoColorOpt,
) -> None:
    """Verify a finished (or running) job: state, logs, checkpoints, report; verdict per phase and resume plan."""
    from preflight.context import RunInputs
    from preflight.ledger import is_job_id

    if job_id is not None and not is_job_id(job_id):
        raise _fail(
            f"postflight: no such job {job_id[:40]!r}{'...' if len(job_id) > 40 else ''} "
            "(a SLURM job id is ASCII digits: 123, 123_4, 123.batch)"
        )
    if job_id is None and not log and base_dir is None:
        raise _fail("postflight: give a JOBID, or --log PATH and/or --base-dir DIR")
    cli_values = _cli_config(
        select,
        ignore,
        extend_select,
        fail_on,
        profile,
        deep,
        checkout,
        smoke=smoke if smoke is not None else None,
        python=python,
    )
    cli_values.update(_trust(plugins, trust_config))
    from preflight.reporters import wants_curves

    if script is not None and not script.is_file():
        raise _fail(f"postflight: --script {script}: not a file")
    inputs = RunInputs(
        job_id=job_id,
        logs=list(log or []),
        base_dir=base_dir,
        stage="post",
        cwd=Path.cwd(),
        series=wants_curves(fmt.value),
        script=script,
    )
    if wait and job_id:
        _wait_for(job_id, wait_timeout, inputs)
    result, registry, ctx, elapsed = _run(
        "post", cli_values, inputs, config, ("profile", "job", "phases", "resume", "timeline")
    )
    smoke_outcome = ctx.peek("chat_smoke")  # only if a CHAT check ran it: describing must never run a model
    if smoke_outcome is not None:
        result.extras["chat_smoke"] = smoke_outcome.to_json()
    if job_id and not log and base_dir is None and "job" not in result.extras and _optional(ctx, "ledger") is None:
        why = _why_unavailable(ctx, "ledger")
        if why and not why.startswith("no ledger for job"):  # there is one, and it cannot be used
            raise _fail(
                f"postflight: no such job {job_id}: SLURM does not know it and its ledger cannot be read: {why}"
            )
        raise _fail(
            f"postflight: no such job {job_id}: SLURM does not know it (or cannot be asked) and there is "
            "no ledger for it (was it submitted with `preflight sbatch`?)"
        )
    if result.checks and all(c.status.value == "skip" for c in result.checks):
        _emit(
            result,
            registry,
            fmt,
            output_file,
            verbose=True,
            no_color=no_color,
            elapsed=elapsed,
            title=f"postflight verify {job_id or ''}".rstrip(),
        )
        raise _fail("postflight: nothing was verified: every check skipped (see the reasons above)")
    if inputs.series:
        _describe_curves(result, ctx)
    _emit(
        result,
        registry,
        fmt,
        output_file,
        verbose=verbose,
        no_color=no_color,
        elapsed=elapsed,
        title=f"postflight verify {job_id or ''}".rstrip(),
    )
    phases = result.extras.get("phases") or []
    incomplete = [p for p in phases if p.get("expected", True) and p.get("status") != "done"]  # rl: not in every era
    from preflight.jobinfo import ACTIVE_STATES

    job = result.extras.get("job") or {}
    still_running = job.get("state") in ACTIVE_STATES
    if still_running and job.get("job_id") and os.environ.get("SLURM_JOB_ID") == str(job.get("job_id")):
        # the job's own last step (scripts/speedrun.slurm): it runs because this process does
        still_running = False
        sys.stderr.write(
            f"postflight: verifying job {job.get('job_id')} from its own last step: "
            "every phase before this step is final\n"
        )
    if still_running:
        sys.stderr.write(
            f"postflight: job {job.get('job_id')} is still {job.get('state')}: "
            "the verdict is provisional (use --wait to wait for it)\n"
        )
    code = _exit_code(result, exit_zero)
    if (incomplete or still_running) and not exit_zero:
        code = EXIT_FINDINGS  # the run itself is not done: that outranks a check that could not run
    raise typer.Exit(code)


def _describe_curves(result: Any, ctx: Any) -> None:
    """The training curves and the scheduler's raw record, for the formats that draw them (never serialized)."""
    from preflight.context import FactError
    from preflight.facts import FactUnavailable

    try:
        result.display["series"] = ctx.get("series")
    except (FactUnavailable, FactError):
        pass
    except Exception as exc:  # a picture must never take the verdict down
        sys.stderr.write(f"postflight: could not draw the training curves: {type(exc).__name__}: {exc}\n")
    job = ctx.peek("job")
    if job is not None:
        result.display["job_raw"] = dict(getattr(job, "raw", None) or {})


LIVE_EVERY_S = 60.0  # without a terminal (CI logs): one progress line a minute at most


def _why_unavailable(ctx: Any, name: str) -> str | None:
    """The reason a fact is unavailable (None when it is available or failed otherwise)."""
    from preflight.facts import FactUnavailable

    try:
        ctx.get(name)
    except FactUnavailable as exc:
        return exc.reason
    except Exception:
        return None
    return None


def _optional(ctx: Any, name: str) -> Any:
    """A fact, or None when it is unavailable or cannot be computed."""
    try:
        return ctx.get(name, None)
    except Exception:
        return None


def _wait_for(job_id: str, timeout: float, inputs: Any = None) -> None:
    """Poll SLURM until the job ends (or ``timeout``), with a live line (state, step, loss, tok/s, ETA
    from the tail of the job's log): redrawn on a terminal, a line a minute otherwise."""
    from preflight import slurm
    from preflight.series import live_line

    start = time.monotonic()
    status = None
    if sys.stderr.isatty():
        from rich.console import Console

        status = Console(stderr=True).status(f"waiting for job {job_id}")
        status.start()
    printed, last_print = "", -LIVE_EVERY_S
    try:
        while True:
            left = timeout - (time.monotonic() - start)
            info = slurm.wait_for_job(job_id, timeout=max(0.0, min(5.0, left)))
            if info is None or info.finished or left <= 5.0:
                break
            log = _live_log(info, inputs)
            progress = live_line(log) if log else None
            line = f"job {job_id} {info.state} {time.monotonic() - start:.0f}s" + (f" · {progress}" if progress else "")
            if status is not None:
                status.update(line)
            elif progress and progress != printed and time.monotonic() - last_print >= LIVE_EVERY_S:
                sys.stderr.write(f"postflight: {line}\n")
                printed, last_print = progress, time.monotonic()
    except Exception as exc:  # the verify run reports the state; waiting is best effort
        sys.stderr.write(f"postflight: --wait: {exc}\n")
    finally:
        if status is not None:
            status.stop()


def _live_log(info: Any, inputs: Any) -> str | None:
    """The log to watch: the first --log, else the job's stdout as SLURM names it."""
    if inputs is not None and inputs.logs:
        return str(inputs.logs[0])
    out = getattr(info, "stdout", None)
    if not out:
        return None
    return out if os.path.isabs(out) else os.path.join(getattr(info, "work_dir", None) or os.getcwd(), out)


# -- entry points ------------------------------------------------------------------------------
def _main(app: typer.Typer, prog: str) -> None:
    import gc

    # A CLI run makes few reference cycles: a young collection every 50,000 allocations instead of 700
    # (imports and checks set off ~50 passes that free nothing; memory stays bounded on long log scans),
    # and what is left at the end is frozen so that the interpreter's final collections skip it.
    # Together -15 to -25 ms of a ~150 ms check on a 2-core login node (bench/startup.py --against).
    gc.set_threshold(50_000, 20, 20)
    try:
        _run_app(app, prog)
    finally:
        gc.freeze()


def _run_app(app: typer.Typer, prog: str) -> None:
    from preflight.config import ConfigError
    from preflight.reporters import clean
    from preflight.safeio import guard_streams

    guard_streams()
    try:
        app(prog_name=prog, standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        sys.exit(130)
    except ConfigError as exc:
        sys.stderr.write(f"{prog}: config error: {clean(exc)}\n")
        sys.exit(EXIT_ERROR)
    except Exception as exc:
        if os.environ.get("PREFLIGHT_DEBUG"):
            raise
        from preflight.registry import RegistrationError
        from preflight.runner import SelectionError

        if isinstance(exc, (RegistrationError, SelectionError, UsageError)):
            sys.stderr.write(f"{prog}: {clean(exc)}\n")
        else:
            sys.stderr.write(
                f"{prog}: internal error: {type(exc).__name__}: {clean(exc)} "
                f"(set PREFLIGHT_DEBUG=1 for the traceback)\n"
            )
        sys.exit(EXIT_ERROR)


def preflight_main() -> None:
    _main(preflight_app, "preflight")


def postflight_main() -> None:
    _main(postflight_app, "postflight")


if __name__ == "__main__":  # `python -m preflight.cli docs` (land.sh) is `preflight docs`
    preflight_main()
