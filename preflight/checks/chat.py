"""CHAT: load the final chat model with model code that can run it and generate a few tokens (preflight/smoke.py)."""

from __future__ import annotations

from collections.abc import Iterator

from preflight.facts import Skip
from preflight.model import Finding
from preflight.registry import check


@check("CHAT001", "chat-smoke-failed", stage="post", severity="error", cost="load", timeout_key="smoke-timeout")
def chat_smoke_failed(chat_smoke) -> Iterator[Finding]:
    """
    What it checks: the final chat model (sft, else mid, else base) can talk. Model code that can
    run it is chosen from its tensor names and shapes (read without unpickling): a classic state
    dict loads into the bundled GPT here; any other (value embeddings, a fork's architecture) runs
    only with ``--smoke``, in the checkout's own code and Python (CHAT002). In every era it fails on
    a broken file (corrupt zip, truncated tensor), a tokenizer whose vocab differs from the model's,
    and NaN/Inf logits. Runs by default below ``smoke-max-params`` (--smoke/--no-smoke).

    Why it matters: files can be individually valid yet unusable together: a tokenizer retrained
    after the checkpoint, weights that produce NaN logits.

    Example:
        tokenizer vocab 32768 != model vocab 65536 (tokenizer retrained after this checkpoint?)

    How to fix: pair the model with the tokenizer it was trained with; retrain the phase otherwise.
    """
    o = chat_smoke
    if o.failure == "code":
        raise Skip("the checkout's own model code failed before the checkpoint could be judged (CHAT002 reports it)")
    if o.failure:
        yield Finding(
            f"{o.phase} model {o.model} failed the chat smoke test: {o.message}",
            path=o.model,
            fix=o.fix or "pair the model with its own tokenizer/meta; if the weights are broken, rerun the phase",
            data=o.to_json(),
        )


@check("CHAT002", "chat-smoke-code-failed", stage="post", severity="error", cost="load", timeout_key="smoke-timeout")
def chat_smoke_code_failed(chat_smoke) -> Iterator[Finding]:
    """
    What it checks: the user's own model code loads and runs a checkpoint the bundled GPT cannot
    hold. Only with ``--smoke``: for current nanochat's value embeddings and lambdas, or a fork's
    own architecture, the user's nanochat runs from the checkout (the run ledger's, the script's,
    or ``--checkout DIR``) with its Python (``.venv/bin/python`` or ``--python PATH``), in a child
    process without network, with a scratch HOME and working dir, time and memory limits
    (``smoke-timeout``, ``smoke-memory``) and ``weights_only`` loads. It reports the traceback's
    last frames when that code fails to load the checkpoint or to generate. No checkout, no Python
    or a missing dependency is a skip, not a failure.

    Why it matters: ``chat_cli``/``chat_web`` run exactly this code; if it cannot load the model the
    run produced, the run is not usable for chat even though every phase finished.

    Example:
        RuntimeError: Error(s) in loading state_dict for GPT: Missing key(s) in state_dict: "value_embeds.1.weight"

    How to fix: run the checkout the job trained with (``--checkout``), or fix the model code and
    load again with ``python -m scripts.chat_cli -p hello``.
    """
    o = chat_smoke
    if o.route != "checkout":
        raise Skip("the bundled GPT ran this checkpoint (CHAT001 reports it)")
    if o.failure == "code":
        tail = "".join(f"\n  {line}" for line in o.tail[-3:])
        yield Finding(
            f"{o.phase} model {o.model}: the checkout's code ({o.checkout}, {o.python}) failed after "
            f"{o.seconds:.1f}s: {o.message}{tail}",
            path=o.model,
            fix=f"cd {o.checkout} && {o.python} -m scripts.chat_cli -p hello  # reproduce, then fix the model code "
            "or pass the checkout that trained this run with --checkout",
            data=o.to_json(),
        )
