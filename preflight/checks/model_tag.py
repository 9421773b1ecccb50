"""LOG011: which model a later phase loaded, against the one the job trained (karpathy/nanochat#542: with no
model tag, every loader takes the largest dN in the earlier phase's checkpoint dir)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from preflight.model import Finding, Severity
from preflight.phases import PHASELESS_SCRIPTS
from preflight.registry import check


@check("LOG011", "model-tag-mismatch", stage="post", severity="error")
def model_tag_mismatch(logs, ctx) -> Iterator[Finding]:
    """
    What it checks: each phase that loaded an earlier phase's checkpoint (``Loading model from
    .../base_checkpoints/d26 with step N``) against the model tags that earlier phase saved in the
    same logs (``Saved model parameters to: .../base_checkpoints/d20/...``).

    Why it matters: with no model tag given, nanochat loads the largest ``dN`` in the earlier
    phase's checkpoint dir. A bigger model left there by an older run is what midtraining, SFT and
    chat then continue: every phase succeeds, and the model this job trained is never used.

    Example:
        No model tag provided, guessing model tag: d26
        Loading model from /scratch/nanochat/base_checkpoints/d26 with step 21400

    How to fix: give every later phase the tag the earlier phase saved (``--model_tag=d20``;
    chat_eval and chat_cli: ``-g d20``), or move the older model out of the checkpoint dir.
    """
    from preflight.causes import respell_flags
    from preflight.phases import checkpoint_tag

    saved: dict[str, set[str]] = {}
    for seg in logs.segments:
        for event in seg.saves:
            where = checkpoint_tag(event.data.get("path") or "")
            if where is not None:
                saved.setdefault(where[0], set()).add(where[1])
    for ix in logs.logs:
        for seg in ix.segments:
            where = checkpoint_tag(seg.loaded.data["path"]) if seg.loaded is not None else None
            if where is None or not saved.get(where[0]):
                if seg.guessed_tag is not None:  # nothing in these logs says which model it should have been
                    yield from _guessed(ix, seg, where, ctx)
                continue
            if where[1] in saved[where[0]]:
                continue
            if seg.guessed_tag is None and " - INFO - " in seg.loaded.text:
                # the logger that wrote this load line logs "No model tag provided, guessing ..." before it whenever
                # it guesses: with none, the tag was given (an SFT run continued from an earlier SFT model on purpose)
                continue
            source, tag = where
            want = next(iter(saved[source])) if len(saved[source]) == 1 else None
            who = seg.phase or seg.script or "a later phase"
            if want is None:
                flag = "the model tag of the run you want"
            elif seg.script in PHASELESS_SCRIPTS:
                flag = f"-g {want}"
            else:
                flag = respell_flags(
                    f"--model_tag={want}", ctx.get("profile", None), ctx.get("checkout", None), seg.phase
                )
            yield Finding(
                f"{who} loaded {source}'s {tag} ({seg.loaded.data['path']}, step {seg.loaded.data['step']}), "
                f"not the {' / '.join(sorted(saved[source]))} this job's {source} saved: with no model tag, nanochat "
                f"loads the largest dN in {source}'s checkpoint dir, here a model of another run",
                path=ix.path,
                line=seg.loaded.line,
                fix=f"pass {flag} to {who} and every phase after it (or move {tag} out of that dir), then rerun from {who}",
                data={"phase": seg.phase, "source": source, "loaded_tag": tag, "saved_tags": sorted(saved[source])},
            )


def _guessed(ix, seg, where, ctx) -> Iterator[Finding]:
    """A load with a guessed model tag that no save in the logs confirms or contradicts: a warning where its
    checkpoint dir holds other models, nothing where it holds only that one, a note where it cannot be read."""
    from preflight.causes import respell_flags
    from preflight.phases import tag_dirs

    tag = seg.guessed_tag.data["tag"]
    parent = os.path.dirname(seg.loaded.data["path"].rstrip("/")) if seg.loaded is not None else None
    tags = tag_dirs(parent) if parent else None  # readable where postflight runs on the cluster that trained
    if tags is not None and len(tags) <= 1:
        return
    who = seg.phase or seg.script or "a phase"
    flag = (
        "-g/--model-tag"
        if seg.script in PHASELESS_SCRIPTS or seg.phase is None
        else respell_flags("--model_tag", ctx.get("profile", None), ctx.get("checkout", None), seg.phase)
    )
    there = (
        f"{parent} holds {', '.join(tags)}, so it may not be this job's model"
        if tags
        else "this job's model only if no bigger one from another run is there"
    )
    yield Finding(
        f"{who} was given no model tag and guessed {where[0] + chr(39) + 's ' if where else ''}{tag}: nanochat takes "
        f"the largest dN in the checkpoint dir, {there}",
        path=ix.path,
        line=seg.guessed_tag.line,
        fix=f"pass the tag of the model you trained ({flag} dN) to every phase that loads a checkpoint; {tag} is only "
        "the largest one there",
        severity=Severity.WARNING if tags else Severity.INFO,
        data={"phase": seg.phase, "source": where[0] if where else None, "loaded_tag": tag, "tag_dirs": tags},
    )
