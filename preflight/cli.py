"""Command line: ``preflight`` (check, list, explain, init, sbatch, docs) and ``postflight`` (verify, in
preflight.cli_verify), and the two entry points.

A thin layer: commands parse options and call library functions; only the command modules render errors and
choose exit codes (0 clean, 1 findings, 2 usage/config/internal error: preflight.cli_common).
Start-up matters (login nodes, CI gates): nothing heavy is imported at module level.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import typer

from preflight.cli_common import (
    EXIT_ERROR,
    EXIT_FINDINGS,
    BaseDirOpt,
    CheckoutOpt,
    ConfigOpt,
    DeepOpt,
    ExitZeroOpt,
    ExtendOpt,
    FailOn,
    FailOnOpt,
    Format,
    FormatOpt,
    IgnoreOpt,
    ListFormat,
    NoColorOpt,
    OutputOpt,
    PluginsOpt,
    ProfileName,
    ProfileOpt,
    SelectOpt,
    TrustOpt,
    UsageError,
    VerboseOpt,
    cli_values_of,
    emit,
    exit_code,
    fail,
    load_registry,
    load_settings,
    run_stage,
    trust_values,
)
from preflight.cli_verify import verify_cmd

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


# -- preflight check ---------------------------------------------------------------------------
@preflight_app.command("check")
def check_cmd(
    script: Path | None = typer.Argument(None, help="The sbatch script to check (omit to check the environment only)."),
    script_args: list[str] | None = typer.Argument(
        None, help="The script's own arguments, as `sbatch SCRIPT ARGS` passes them (after --: -- --depth=26)."
    ),
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
    """Check an sbatch script and its environment before submission.

    Usage: preflight check [OPTIONS] [SCRIPT] [-- SCRIPT ARGS...]
    """
    from preflight.context import RunInputs

    if script is not None and not script.exists():
        raise fail(f"preflight: {script}: no such file")
    if script is not None and script.is_dir():
        raise fail(f"preflight: {script}: is a directory, not a batch script")
    if script is not None and not script.is_file():  # a FIFO would block, /dev/zero would never end
        raise fail(f"preflight: {script}: not a regular file (a FIFO, device or socket), not a batch script")
    if network is not None and network not in ("offline", "online"):
        raise fail(f"preflight: --network must be offline or online, not {network!r}")
    cli_values = cli_values_of(select, ignore, extend_select, fail_on, profile, deep, checkout, network=network)
    cli_values.update(trust_values(plugins, trust_config))
    inputs = RunInputs(
        script=script.resolve() if script else None,
        base_dir=base_dir,
        stage="pre",
        cwd=Path.cwd(),
        script_args=list(script_args or []),
    )
    result, registry, _, elapsed = run_stage("pre", cli_values, inputs, config, ("profile", "plan"))
    emit(
        result,
        registry,
        fmt,
        output_file,
        verbose=verbose,
        no_color=no_color,
        elapsed=elapsed,
        title=f"preflight check {shlex.join([str(script), *(script_args or [])])}"
        if script
        else "preflight check (environment only)",
    )
    raise typer.Exit(exit_code(result, exit_zero))


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
        raise fail(f"preflight: {script}: no such file")
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
    cli_values = cli_values_of(None, None, None, fail_on, profile, None, checkout)
    cli_values.update(trust_values(plugins, trust_config))
    inputs = RunInputs(
        script=script.resolve(),
        base_dir=base_dir,
        stage="pre",
        cwd=Path.cwd(),
        sbatch_args=extra,
        script_args=script_args,
        submitting=True,
    )
    result, registry, run_ctx, elapsed = run_stage("pre", cli_values, inputs, config, ("profile", "plan"))
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
        raise fail(f"preflight: {exc}", getattr(exc, "exit_code", EXIT_FINDINGS)) from None
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

    cfg = load_settings(trust_values(plugins, trust_config), config, Path.cwd())
    registry = load_registry(cfg)
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

    registry = load_registry(load_settings(trust_values(plugins, trust_config), config, Path.cwd()))
    spec = registry.get(key)
    if spec is None:
        raise fail(f"preflight: no check named {key!r} (see `preflight list`)")
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
        raise fail(f"preflight: {path} exists (use --force to overwrite)")
    try:
        write_text(path, STARTER_CONFIG)
    except (UnsafeTarget, OSError) as exc:
        raise fail(f"preflight: {exc}") from None
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
            raise fail(f"stale: {', '.join(map(str, stale))}: run `preflight docs`", EXIT_FINDINGS)
        return
    for path, text in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        sys.stderr.write(f"wrote {path}\n")


# -- postflight verify (preflight.cli_verify) ------------------------------------------------
postflight_app.command("verify")(verify_cmd)


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
