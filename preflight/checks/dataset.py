"""Checks on the pretraining shards under BASE/base_data: DS001-DS004."""

from __future__ import annotations

import re
from collections.abc import Iterator

from preflight.facts import Skip
from preflight.model import Finding, Severity
from preflight.plan import shard_rule
from preflight.registry import check
from preflight.script.fetches import fetch_into
from preflight.units import parse_count

MAX_LISTED = 20


def _download_cmd(profile, n: int | str, ctx=None) -> str:
    if profile is not None and profile.name == "bundled":
        return f"python -m nanochat.dataset build --num-shards {n} (or download) on a login node"
    which, why = _pretraining_choice(ctx, profile) if ctx is not None else ("", "")
    return f"python -m nanochat.dataset -n {n}{which} on a login node (it skips shards already present){why}"


def _pretraining_choice(ctx, profile) -> tuple[str, str]:
    """A fork's downloader that fetches one of several datasets (``-d/--dataset`` with choices) and not the
    pretraining one by default: the option that picks it, and why (its default would fill another directory)."""
    from preflight.checks.flags import checkout_or_none

    checkout = checkout_or_none(ctx)
    entry = checkout.entry(profile.modules.get("dataset"), None) if checkout is not None and profile else None
    if entry is None or not entry.ok:
        return "", ""
    for option, flag in entry.flags.items():
        picks = [c for c in flag.choices if isinstance(c, str) and c in _PRETRAINING_NAMES]
        if option == flag.option and len(option) > 1 and picks and flag.default not in picks:
            return (
                f" --{option}={picks[0]}",
                f"; this checkout's downloader fetches {flag.default!r} by default ({entry.path})",
            )
    return "", ""


_PRETRAINING_NAMES = ("base", "pretrain", "pretraining", "base_data")


def _script_downloads(ctx, profile) -> tuple[int | None, int | None, bool]:
    """(N, line, local) of the largest `python -m nanochat.dataset -n N` the script runs;
    local: the bundled trainer's `dataset build` makes the shards from local text (no network)."""
    script = ctx.get("script", None)
    if script is None or not script.ok or profile is None:
        return None, None, False
    mod = profile.modules.get("dataset")
    best: tuple[int | None, int | None, bool] = (None, None, False)
    for inv in script.all_invocations:
        if inv.entry != mod:
            continue
        f = inv.flag("n", "num-shards", "num_shards", "num_files")
        n = parse_count(f.value) if f is not None else None
        if n is not None and (best[0] is None or n > best[0]):
            best = (n, inv.line, "build" in inv.args)
    return best


# a fork's base_train told where its data is, or which data (`--data_dir=/lustre/...`, `--dataset-kind paramgolf`,
# `--pg-data-path ...`): it does not read upstream's base_data shards
_OWN_DATA_RE = re.compile(r"^(?:\w+[-_])?(?:data(?:set)?[-_](?:dir|path|root|kind|name)|dataset)$")


def _own_data_flag(ctx, profile) -> str | None:
    """`--data_dir=...` as written, where the script's base training passes such a flag."""
    from preflight.plan_launches import training_invocation

    script = ctx.get("script", None)
    inv = training_invocation(script, profile, "base") if profile is not None else None
    f = next((f for f in inv.flags if f.key and _OWN_DATA_RE.match(f.key)), None) if inv is not None else None
    return f"`{f.raw.strip()}` (line {inv.line})" if f is not None else None


@check("DS001", "shards-insufficient", severity="error")
def shards_insufficient(ctx, dataset, plan) -> Iterator[Finding]:
    """
    What it checks: the number of shards present (or downloaded by the script when the nodes
    are online) against the plan: tokens x chars/token / chars/shard, plus the validation
    shard (the last file; Era C+: the pinned shard_06542). Skipped where base training is told
    where its data is (a fork's ``--data_dir``, ``--dataset-kind``) or the job only evaluates.

    Why it matters: with too few shards the dataloader runs out and cycles, or the "val"
    shard is a training shard; offline nodes cannot fetch more.

    Example:
        base_data/ holds 8 shards; d20 needs 217 (240 recommended)

    How to fix: ``python -m nanochat.dataset -n 240`` on a login node before submitting.
    """
    if not any(p.name == "base" and not p.eval_only for p in plan.phases):
        # a script that trains nothing visible (or only evaluates a base model): the d20 defaults say nothing of it
        raise Skip(
            "the plan has no base training phase (the script runs none that preflight can see): "
            "no shard count to check against"
        )
    profile = ctx.get("profile", None)
    if (own := _own_data_flag(ctx, profile)) is not None:
        raise Skip(f"base training reads the data {own} names (a fork's own flag), not {dataset.dir}")
    fetch = fetch_into(ctx, dataset.dir) if dataset.count < plan.shards_min else None
    if fetch is not None:  # a fork that fetches its own shards: how many it gets is the download's
        raise Skip(
            f"the script downloads into {fetch.folder} itself (line {fetch.line}: {fetch.text[:100]}): how many "
            "shards it gets is known only when it runs"
        )
    n_script, line, local = _script_downloads(ctx, profile)
    online = ctx.config.get("network", "offline") == "online" or local
    have = dataset.count
    if online and n_script is not None:
        have = max(have, n_script)
    verb = "builds" if local else "downloads"
    where = f" (the script {verb} {n_script})" if n_script is not None and online else ""
    spec = profile.dataset if profile is not None else {}
    if spec.get("own"):  # a fork's own corpus: its shards are not upstream's size, so only train + val is known
        if have < 2:
            total = (
                f": its whole dataset is {spec['max_shard'] + 1} files"
                if isinstance(spec.get("max_shard"), int)
                else ""
            )
            yield Finding(
                f"{dataset.dir} holds {dataset.count} shard(s){where}; base_train needs at least 2 (one to train on "
                f"and the last, the validation shard), and how many more depends on this checkout's own dataset "
                f"({spec.get('from_checkout', 'nanochat/dataset.py')}: its shards are not upstream's size)",
                path=str(dataset.dir),
                fix=f"download its shards with the checkout's own `python -m nanochat.dataset` on a login node{total}",
            )
        return
    if plan.tokens <= 0:  # no step count before the job runs (--target-flops $var) or no horizon at all
        if have < 2:
            why = plan.horizon or "no training horizon"
            yield Finding(
                f"{dataset.dir} holds {dataset.count} shard(s){where}; base_train needs at least 2 (one to train "
                f"on and the validation shard), and how many more is known only when the job runs ({why})",
                path=str(dataset.dir),
                fix=_download_cmd(profile, "N", ctx) + f"; N = 1 + ceil({shard_rule(profile)}) for the largest run",
            )
    elif have < plan.shards_min:
        yield Finding(
            f"{dataset.dir} holds {dataset.count} shard(s){where}; d{plan.depth} needs at least "
            f"{plan.shards_min} ({plan.shard_rule}), {plan.shards_recommended} recommended",
            path=str(dataset.dir),
            fix=_download_cmd(profile, plan.shards_recommended, ctx),
        )
    # (with no shard at all the finding above says it all)
    if (
        dataset.val_index is not None
        and dataset.indices
        and dataset.val_index not in dataset.indices
        and not (online and n_script)
    ):
        yield Finding(
            f"the pinned validation shard shard_{dataset.val_index:05d}.parquet is missing from {dataset.dir}",
            path=str(dataset.dir),
            fix=_download_cmd(profile, plan.shards_recommended, ctx),
        )


@check("DS002", "shard-corrupt", severity="error", cost="header")
def shard_corrupt(ctx, dataset) -> Iterator[Finding]:
    """
    What it checks: every shard is a valid parquet file: PAR1 magic at both ends, a footer
    length in range, a footer that parses, a ``text`` column, a non-zero row count equal to
    the sum of its row groups, and row groups of 1024 rows (the last may be smaller).
    Only footers are read; ``--deep`` reads every page and verifies page CRCs.

    Why it matters: the dataloader reads shards lazily, so a truncated file crashes
    pretraining hours in (or the tokenizer when it reaches it).

    Example:
        shard_00017.parquet: no PAR1 magic at the end: truncated

    How to fix: delete the bad shard and download it again.
    """
    if not dataset.exists:
        raise Skip(f"{dataset.dir} does not exist")
    deep = bool(ctx.config.get("deep", False))
    problems = dataset.validate(deep=deep)
    for path, why in dataset.unreadable[:MAX_LISTED]:
        yield Finding(f"{path.name}: cannot stat: {why}", path=str(path), fix=f"rm {path} and download it again")
    for p in problems[:MAX_LISTED]:
        sev = Severity.WARNING if p.kind == "layout" else None
        yield Finding(
            f"{p.shard}: {p.problem}",
            path=str(p.path),
            severity=sev,
            fix=f"rm {p.path} and download it again" if p.kind == "corrupt" else "rebuild with row_group_size=1024",
        )
    if len(problems) > MAX_LISTED:
        yield Finding(
            f"... and {len(problems) - MAX_LISTED} more bad shards in {dataset.dir}",
            path=str(dataset.dir),
            fix="re-download the listed shards",
        )


@check("DS003", "shard-partial-download", severity="warning")
def shard_partial_download(dataset) -> Iterator[Finding]:
    """
    What it checks: ``*.tmp`` files in the shard directory.

    Why it matters: nanochat writes ``shard_NNNNN.parquet.tmp`` and renames it when done; a
    leftover means a download was interrupted (and the downloader exits 0 even then), so
    that shard is missing.

    Example:
        base_data/shard_00123.parquet.tmp

    How to fix: delete the .tmp files and run the download again.
    """
    if dataset.tmp_files:
        names = ", ".join(p.name for p in dataset.tmp_files[:5]) + (" ..." if len(dataset.tmp_files) > 5 else "")
        yield Finding(
            f"{len(dataset.tmp_files)} interrupted download(s) in {dataset.dir}: {names}",
            path=str(dataset.dir),
            fix=f"rm {dataset.dir}/*.tmp and re-run the shard download",
        )


@check("DS004", "shard-gap", severity="warning")
def shard_gap(dataset) -> Iterator[Finding]:
    """
    What it checks: missing indices in the shard numbering (shard_00000 .. the highest present).

    Why it matters: a gap is a failed download; the data differs from the reference run and
    the last file (the validation split) may not be the one you expect.

    Example:
        shard_00000 .. shard_00239 present except shard_00042

    How to fix: run the download again with the same ``-n`` (existing shards are skipped).
    """
    gaps = dataset.gaps()
    if gaps:
        shown = ", ".join(f"{i:05d}" for i in gaps[:10]) + (" ..." if len(gaps) > 10 else "")
        yield Finding(
            f"{len(gaps)} shard(s) missing in {dataset.dir}: {shown}",
            path=str(dataset.dir),
            fix="re-run the shard download with the same -n",
        )
