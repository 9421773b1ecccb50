"""Secrets in shown text are masked; ordinary text (paths, token counts, check names) is left alone."""

from __future__ import annotations

import factories as F
import pytest

from preflight.logindex import index_log
from preflight.model import Finding
from preflight.redact import redact

WANDB = "f3a9c0ffee1234567890abcdef1234567890abcd"


@pytest.mark.parametrize(
    "text, shown",
    [
        (f"wandb.errors.CommError: invalid api key {WANDB}", "wandb.errors.CommError: invalid api key f3a9****"),
        ("export HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 && x", "export HF_TOKEN=hf_A**** && x"),
        ("OPENAI_API_KEY=sk-proj-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0", "OPENAI_API_KEY=sk-p****"),
        ("auth failed: ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", "auth failed: ghp_****"),
        ("key AKIAIOSFODNN7EXAMPLE used", "key AKIA**** used"),
        ("password: hunter22hunter22hunter", "password: hunt****"),
        (f"wandb login {WANDB}", "wandb login f3a9****"),
    ],
)
def test_secrets_keep_only_four_characters(text, shown):
    assert redact(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "/scratch/u/nanochat/tokenizer/token_bytes.pt is missing",
        "secret-in-script: WANDB_API_KEY is written into the script (f3a9****)",
        "Total number of training tokens: 11,219,763,200",
        "Commit: 507d5424f3a9c0ffee1234567890abcdef123456",
        "token: short",
        "FileNotFoundError: [Errno 2] No such file or directory: '/base/mid_checkpoints/d20'",
    ],
)
def test_ordinary_text_is_unchanged(text):
    assert redact(text) == text


def test_findings_and_indexed_exception_messages_are_masked(tmp_path):
    finding = Finding(f"crashed: CommError: invalid api key {WANDB}", fix=f"run `wandb login {WANDB}` again")
    assert WANDB not in finding.message + finding.fix
    log = F.write_log(
        tmp_path / "x.log",
        F.run_log(per_phase={"base": {"crash": ("wandb.errors.CommError", f"invalid api key {WANDB}")}}),
    )
    (tb,) = [t for t in index_log(log).tracebacks if t.exc_type.endswith("CommError")]
    assert tb.message == "invalid api key f3a9****"
