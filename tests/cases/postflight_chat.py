"""Good/bad cases for the chat smoke test: tiny real models + real tokenizer.pkl.

CHAT001 on a classic run loads into the bundled GPT; CHAT002 runs a current-era checkpoint
(value embeddings, lambdas) with the fixture checkout's own model code in a real child process.
"""

from __future__ import annotations

import sys

from preflight.testing import Scenario, bad, good
from tests import factories as F


@good("chat-smoke-failed")
def _tiny_sft_model_generates():
    return Scenario(stage="post", base_dir="base", env={}, setup=lambda root: F.write_run(root / "base"))


@bad("chat-smoke-failed")
def _tokenizer_missing():
    def setup(root):
        F.write_run(root / "base", tokenizer=False)

    return Scenario(stage="post", base_dir="base", env={}, setup=setup)


@bad("chat-smoke-failed")
def _current_era_truncated_model():
    """Broken in any era: decided from the file itself, before any model code runs."""

    def setup(root):
        F.write_current_run(root / "base")
        F.truncate(root / "base" / "chatsft_checkpoints" / "d2" / "model_000009.pt", 0.6)

    return Scenario(stage="post", base_dir="base", env={}, config={"smoke": True}, setup=setup)


def _current(variant: str) -> Scenario:
    def setup(root):
        F.write_current_run(root / "base")
        F.write_checkout(root / "checkout", variant=variant)

    return Scenario(
        stage="post",
        base_dir="base",
        env={},
        setup=setup,
        config={"smoke": True, "checkout": "{tmp}/checkout", "python": sys.executable},
    )


@good("chat-smoke-code-failed")
def _current_era_model_runs_in_its_checkout():
    return _current("ok")


@bad("chat-smoke-code-failed")
def _checkout_code_cannot_load_its_checkpoint():
    return _current("load-error")
