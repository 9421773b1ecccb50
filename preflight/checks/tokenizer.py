"""Checks on BASE/tokenizer: TOK001-TOK002."""

from __future__ import annotations

from collections.abc import Iterator

from preflight.facts import Skip
from preflight.model import Finding
from preflight.registry import check
from preflight.script.fetches import fetch_into


def _trains_tokenizer(ctx) -> int | None:
    """Line of the script's tokenizer training step, if it runs one."""
    script = ctx.get("script", None)
    profile = ctx.get("profile", None)
    if script is None or not script.ok or profile is None:
        return None
    tok = (profile.phase("tokenizer") or {}).get("train_module")
    for inv in script.all_invocations:
        # (a fork's own variant trains one too: scripts.tok_train_wiki)
        if inv.entry and tok and profile.entry_of_variant(inv.entry).rsplit(".", 1)[-1] == tok.rsplit(".", 1)[-1]:
            return inv.line
    return None


@check("TOK001", "tokenizer-missing", severity="error")
def tokenizer_missing(ctx, tokenizer) -> Iterator[Finding]:
    """
    What it checks: ``BASE/tokenizer/tokenizer.pkl`` and ``token_bytes.pt`` exist, unless
    the script trains the tokenizer first.

    Why it matters: base training loads both at startup; without them it fails with
    "Token bytes not found ... It gets written by tok_train.py".

    Example:
        torchrun -m scripts.base_train   # and BASE/tokenizer/ is empty

    How to fix: ``python -m scripts.tok_train`` (bundled: ``python -m nanochat.tok_train``)
    before base training, or copy the tokenizer dir from an earlier run.
    """
    if _trains_tokenizer(ctx) is not None:
        return
    script, profile = ctx.get("script", None), ctx.get("profile", None)
    if script is not None and script.ok and profile is not None:
        from preflight.plan_launches import phases_run

        if not phases_run(script, profile):
            raise Skip("the script runs no nanochat phase: nothing loads the tokenizer")
    missing = [
        p.name
        for p, ok in ((tokenizer.pkl, tokenizer.has_pkl), (tokenizer.token_bytes, tokenizer.has_token_bytes))
        if not ok
    ]
    if missing and (fetch := fetch_into(ctx, tokenizer.dir)) is not None:
        raise Skip(f"the script downloads into {fetch.folder} itself (line {fetch.line}: {fetch.text[:100]})")
    if missing:
        profile = ctx.get("profile", None)
        mod = ((profile.phase("tokenizer") or {}).get("train_module") if profile else None) or "scripts.tok_train"
        yield Finding(
            f"{' and '.join(missing)} missing in {tokenizer.dir} and the script does not train a tokenizer",
            path=str(tokenizer.dir),
            fix=f"python -m {mod} (before base training), or copy {tokenizer.dir} from a previous run",
        )


@check("TOK002", "tokenizer-vocab-mismatch", severity="error", cost="header")
def tokenizer_vocab_mismatch(tokenizer) -> Iterator[Finding]:
    """
    What it checks: the tokenizer's vocab size (length of token_bytes.pt, read from the zip
    entry without unpickling) against ``model_config.vocab_size`` of existing checkpoints.

    Why it matters: ``load_model`` asserts they are equal, so a tokenizer retrained with a
    different vocab makes every later phase (mid, SFT, chat) fail to load its checkpoint.

    Example:
        tokenizer: 32,768 tokens; base_checkpoints/d20/meta_021400.json: vocab_size 65,536

    How to fix: restore the tokenizer the checkpoints were trained with, or retrain from base.
    """
    if not tokenizer.checkpoints:
        raise Skip("no existing checkpoints to compare with")
    if not tokenizer.has_token_bytes:
        raise Skip("no token_bytes.pt (see tokenizer-missing)")
    if tokenizer.vocab_size is None:
        yield Finding(
            f"cannot read the vocab size of {tokenizer.token_bytes}: {tokenizer.vocab_problem}",
            path=str(tokenizer.token_bytes),
            fix="re-run tokenizer training or restore the file",
        )
        return
    for ck in tokenizer.checkpoints:
        if ck.vocab_size != tokenizer.vocab_size:
            yield Finding(
                f"tokenizer has {tokenizer.vocab_size:,} tokens but {ck.meta.parent.parent.name}/{ck.meta.parent.name} "
                f"was trained with vocab_size {ck.vocab_size:,}: loading it will fail",
                path=str(ck.meta),
                fix="restore the tokenizer used for these checkpoints (or retrain from base)",
            )
