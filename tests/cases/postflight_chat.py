"""Good/bad cases for chat-smoke-failed: a tiny real model + real tokenizer.pkl, loaded with nanochat.gpt."""

from __future__ import annotations

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
