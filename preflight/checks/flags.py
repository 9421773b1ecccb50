"""Flags passed to nanochat entry points, checked against the checkout the job runs: SB010.

With a readable checkout, each launched entry point's real flags come from its source (``ast``,
preflight/checkout.py): argparse options (with argparse's unique-prefix rule), configurator globals,
dataclass fields. Without one, the era profile's key lists are the fallback, and then only clear
mistakes are reported (wrong separator, configurator syntax, a near-miss of a known key): a fork's
own flags are not errors just because the profile has never heard of them.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterator
from dataclasses import replace

from preflight.facts import Skip
from preflight.model import Finding
from preflight.phases import TRAIN_PHASES
from preflight.registry import check


def _p(script, inv) -> str:
    if getattr(inv, "file", None) and inv.file != "<script>":
        return inv.file
    return str(script.path) if script.path else "<script>"


def _type_name(v) -> str:
    return type(v).__name__


def _coerce(attempt, default) -> str:
    try:
        if isinstance(default, bool):
            return str(bool(attempt))
        if isinstance(default, int):
            return str(int(attempt))
        if isinstance(default, float):
            return repr(float(attempt))
    except (TypeError, ValueError, OverflowError):  # int(1e999)
        pass
    return repr(str(attempt))


def _did_you_mean(options: list[str]) -> str:
    return f" (did you mean {' or '.join('--' + o for o in options)}?)" if options else ""


def checkout_or_none(ctx):
    try:
        return ctx.get("checkout", None)
    except Exception:  # an unreadable checkout never takes the flag check down; the fallback runs
        return None


def checkout_note(ctx) -> str:
    """Why no checkout is used ('' when one is, or when none was asked for)."""
    from preflight.facts import FactUnavailable

    try:
        ctx.get("checkout")
    except FactUnavailable as exc:
        return exc.reason
    except Exception as exc:
        return f"the checkout could not be read ({type(exc).__name__})"
    return ""


@check("SB010", "flag-style-mismatch", severity="error")
def flag_style_mismatch(ctx, script, profile, job_env) -> Iterator[Finding]:
    """
    What it checks: flags passed to nanochat entry points against the flags that entry point
    really has, read from the checkout the job runs (argparse options, configurator globals,
    with types and defaults): ``--key=value`` with underscores and matching types for the
    classic configurator, the era's separator for argparse, and no unknown flags ("did you
    mean"). Without a checkout, the era profile's key lists are the fallback (the message
    says which source was used).

    Why it matters: the configurator treats ``--depth 20`` as a config file and asserts,
    rejects ``--target_param_data_ratio=8.5`` (int default) and unknown keys; argparse
    rejects ``--device_batch_size`` after 2026-01-13. The phase dies at startup.

    Example:
        torchrun --nproc_per_node=8 -m scripts.base_train -- --depth 20

    ``python -m scripts.base_train -- --depth=20`` (upstream's torchrun line with python in its
    place) hands the script a bare ``--``: only torchrun strips it.

    How to fix: ``--depth=20`` (classic), ``--device-batch-size=16`` (argparse, dash era);
    use the flags the checkout's entry point declares; no ``--`` after ``python -m X``.
    """
    if not script.ok:
        raise Skip("the script could not be read (see script-unparsable)")
    checkout = checkout_or_none(ctx)
    note = checkout_note(ctx) if checkout is None else ""
    for inv in script.all_invocations:
        module = inv.entry
        if not module:
            continue
        for when, one in [(None, inv)] + inv.alternatives:
            if "--" in one.args and "torchrun" not in one.launcher and module.startswith(("scripts.", "nanochat.")):
                yield _bare_double_dash(script, one, module, when)
        phase = profile.phase_of_module(module, inv.args)
        entry = checkout.entry(inv.module, inv.script_file) if checkout is not None else None
        if entry is not None and entry.ok:
            # a wrapper that keeps its own flags and runs another entry point on the rest: that one's flags count too
            inner = checkout.entry(entry.delegates) if entry.known_args and entry.delegates else None
            yield from _against_checkout(script, job_env, inv, module, entry, inner)
        elif phase is not None:
            why = note or (entry.error if entry is not None and entry.error else "")
            yield from _against_profile(script, job_env, profile, inv, module, phase, why)


def _bare_double_dash(script, inv, module: str, when=None) -> Finding:
    """`python -m scripts.X -- --depth=20`: upstream's `torchrun ... -m X -- ARGS` with torchrun swapped for python
    (a one-GPU run). torchrun takes the `--` as the end of its own options; python hands it to the script.
    ``when``: the assignment of the launcher variable that makes it so, where the script picks one at run time."""
    how = f"python -m {inv.module}" if inv.module else f"python {inv.script_file}"
    branch = (
        f"where line {when.line} sets {when.name}={when.value!r} (a branch decided when the job runs), " if when else ""
    )
    return Finding(
        f"{module}: {branch}`{how} -- ...` passes the bare `--` to the script (torchrun ends its own options with it, "
        "python does not): the classic configurator asserts on it, argparse takes every flag after it as a positional "
        "argument and stops (unrecognized arguments, or a required one missing); the phase dies at start",
        path=_p(script, inv),
        line=inv.line,
        fix=f"remove the `--` after {inv.module or inv.script_file}"
        + (": torchrun needs none either (what follows its -m X is the script's)" if when else ""),
    )


def _against_checkout(script, job_env, inv, module, entry, inner=None) -> Iterator[Finding]:
    path = _p(script, inv)
    src = f"flags read from {entry.path}"
    if inner is not None and inner.ok:  # the wrapper's own flags, then those of the entry point it runs
        if inner.style == "configurator":
            return  # the configurator's keys: another check of their own (not the wrapper's argparse)
        entry = replace(entry, flags={**inner.flags, **entry.flags})
        src = f"flags read from {entry.path} and the {inner.module or inner.name} it runs ({inner.path})"
    elif entry.known_args and entry.style == "argparse":
        return  # parse_known_args: it passes what it does not declare on to code preflight cannot follow
    for f in inv.flags:
        if f.style == "positional" or not f.key:
            continue
        if entry.style == "configurator":
            yield from _configurator_flag(
                script,
                job_env,
                inv,
                module,
                f,
                {k: v.default for k, v in entry.flags.items()},
                src,
                suggest=entry.suggest,
            )
            continue
        if entry.style == "dataclass":
            key = f.key.replace("-", "_")
            if key not in entry.flags:
                yield Finding(
                    f"{module}: unknown flag `--{f.key}`{_did_you_mean(entry.suggest(f.key))} ({src})",
                    path=path,
                    line=inv.line,
                    fix=f"remove --{f.key} or use a field of the config dataclass",
                )
            continue
        if entry.lookup(f.key) is not None:
            continue
        same = entry.spelled(f.key)  # the same setting in the other separator
        if same is not None:
            yield Finding(
                f"{module}: `--{f.key}` is not accepted by this checkout: it declares `--{same}` "
                f"(argparse stops with 'unrecognized arguments'; {src})",
                path=path,
                line=inv.line,
                fix=f"write --{same}" + (f"={f.value}" if f.value else ""),
            )
            continue
        yield Finding(
            f"{module}: unknown flag `--{f.key}`{_did_you_mean(entry.suggest(f.key))}: argparse stops with "
            f"'unrecognized arguments' ({src})",
            path=path,
            line=inv.line,
            fix=(
                f"write --{entry.suggest(f.key)[0]}" + (f"={f.value}" if f.value is not None else "")
                if entry.suggest(f.key)
                else f"remove --{f.key}"
            ),
        )


def _configurator_flag(script, job_env, inv, module, f, keys, src, suggest) -> Iterator[Finding]:
    path = _p(script, inv)
    if f.style in ("space", "bare", "short"):
        want = f"--{f.key}={f.value}" if f.value is not None else f"--{f.key}=VALUE"
        yield Finding(
            f"{module}: `{f.raw}` has no '=': the classic configurator needs --key=value "
            f"(it treats the argument as a config file and asserts; {src})",
            path=path,
            line=inv.line,
            fix=f"write {want}",
        )
        return
    if "-" in f.key:
        yield Finding(
            f"{module}: `--{f.key}` uses dashes; the configurator keys use underscores ({src})",
            path=path,
            line=inv.line,
            fix=f"write --{f.key.replace('-', '_')}={f.value}",
        )
        return
    if keys is None:
        return
    if f.key not in keys:
        close = suggest(f.key)
        yield Finding(
            f"{module}: unknown config key `{f.key}`{_did_you_mean(close)} (ValueError: Unknown config key; {src})",
            path=path,
            line=inv.line,
            fix=f"write --{close[0]}={f.value}" if close else f"remove --{f.key} (keys: {', '.join(sorted(keys))})",
        )
        return
    value = f.value or ""
    if "$" in value:
        value = script.expand(value, inv.line, inv.file, job_env.start)
        if value is None or "$" in value:
            return  # known only at run time (a function argument, a loop variable)
    try:
        attempt = ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        attempt = value
    default = keys[f.key]
    if value == "" and default is not None and not isinstance(default, str):
        yield Finding(
            f"{module}: `{f.raw}` expands to `--{f.key}=` with nothing after it: the configurator reads '' as a "
            f"str but the default {default!r} is a {_type_name(default)} (AssertionError: Type mismatch; {src})",
            path=path,
            line=inv.line,
            fix=f"give --{f.key} a value, or leave the flag out where the variable is empty",
        )
        return
    if default is not None and type(attempt) is not type(default):
        yield Finding(
            f"{module}: --{f.key}={f.value} is a {_type_name(attempt)} but the default "
            f"{default!r} is a {_type_name(default)} (AssertionError: Type mismatch; {src})",
            path=path,
            line=inv.line,
            fix=f"write --{f.key}={_coerce(attempt, default)}",
        )


def _near_miss(key: str, keys) -> list[str]:
    return difflib.get_close_matches(key.replace("-", "_"), [k.replace("-", "_") for k in keys], n=2, cutoff=0.8)


def _against_profile(script, job_env, profile, inv, module, phase, why: str = "") -> Iterator[Finding]:
    """No checkout to read: the era profile's lists. Unknown keys are reported only as near misses
    of a known key (a typo), since a fork or a newer commit may well have flags the list lacks."""
    keys = profile.config_keys(module)
    path = _p(script, inv)
    src = f"{why or 'no nanochat checkout found'}; keys from the {profile.name} era profile"
    if profile.uses_configurator(module):

        def suggest(key):
            return _near_miss(key, keys or {})

        for f in inv.flags:
            if f.style == "positional" or not f.key:
                continue
            if (
                keys is not None
                and f.key not in keys
                and not suggest(f.key)
                and "-" not in f.key
                and f.style not in ("space", "bare", "short")
            ):
                continue  # unknown but not a near miss: maybe this fork's own key
            yield from _configurator_flag(script, job_env, inv, module, f, keys, src, suggest)
        return
    if profile.flag_style != "argparse" or phase not in TRAIN_PHASES:
        return
    sep = profile.flag_word_sep
    for f in inv.flags:
        if f.style in ("positional", "short") or not f.key:
            continue
        wrong = "_" if sep == "-" else "-"
        if wrong in f.key:
            good = f.key.replace(wrong, sep)
            yield Finding(
                f"{module}: `--{f.key}` is not accepted in this era ({profile.variant or profile.name}: "
                f"flags use '{sep}'); argparse stops with 'unrecognized arguments' ({src})",
                path=path,
                line=inv.line,
                fix=f"write --{good}" + (f"={f.value}" if f.value else ""),
            )
            continue
        if keys is not None and f.key.replace("-", "_") not in keys:
            close = _near_miss(f.key, keys)
            if close:
                spelled = close[0].replace("_", sep)
                yield Finding(
                    f"{module}: unknown flag `--{f.key}` (did you mean --{spelled}?) ({src})",
                    path=path,
                    line=inv.line,
                    fix=f"write --{spelled}" + (f"={f.value}" if f.value else ""),
                )
