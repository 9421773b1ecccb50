"""Secrets in text we show: API keys and tokens keep their first 4 characters, the rest is masked.

Findings quote scripts and logs (a wandb ``CommError: invalid api key <key>`` traceback, an
``export HF_TOKEN=...`` line), and reports end up in CI logs, SARIF uploads and issue threads.
One pattern list serves detection (SB009 secret-in-script) and masking (every finding message,
every exception message the log index keeps).
"""

from __future__ import annotations

import re

# (pattern, kind): the secret is the pattern's last group; an earlier group 1 names it
SECRET_PATTERNS = [
    (re.compile(r"\b((?:WANDB|HF|HUGGING_FACE_HUB|HUGGINGFACE|OPENAI|ANTHROPIC|GITHUB|GH|AWS_SECRET_ACCESS|COMET|NEPTUNE)"
                r"_?(?:API_)?(?:KEY|TOKEN))\s*=\s*['\"]?([^\s'\"$`]{8,})"), "environment variable"),
    (re.compile(r"\bwandb\s+login\s+(?:--\S+\s+)*['\"]?([0-9a-f]{40})\b"), "wandb login key"),
    (re.compile(r"\b(hf_[A-Za-z0-9]{30,})\b"), "Hugging Face token"),
    (re.compile(r"\b(sk-(?:ant-)?[A-Za-z0-9_\-]{20,})\b"), "API key"),
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,})\b"), "GitHub token"),
    (re.compile(r"\b(AKIA[0-9A-Z]{16})\b"), "AWS access key"),
]
# a long value right after a word that names it: "invalid api key 0123...", "password: hunter22hunter22"
_NAMED_VALUE = re.compile(r"(?i)\b(?:api[_ -]?key|access[_ -]?token|auth[_ -]?token|token|secret|password|passwd)\b"
                          r"\s*(?:[:=]|\bis\b)?\s*['\"]?([A-Za-z0-9][A-Za-z0-9_\-.+/]{15,})")
_MASKING = [rx for rx, _ in SECRET_PATTERNS] + [_NAMED_VALUE]
# a variable whose name says it holds a secret: WANDB_API_KEY, HF_TOKEN, AWS_SECRET_ACCESS_KEY, DB_PASSWORD
SECRET_NAME_RE = re.compile(r"(?:^|_)(?:API_?KEY|ACCESS_KEY|TOKEN|SECRET|PASSWORD|PASSWD)$", re.I)


def mask(secret: str) -> str:
    return secret[:4] + "****"


def redact(text: str) -> str:
    """``text`` with every secret that the patterns know masked (unchanged when there is none)."""
    for rx in _MASKING:
        if rx.search(text):
            text = rx.sub(lambda m: m.group(0)[:m.start(m.lastindex) - m.start()] + mask(m.group(m.lastindex))
                          + m.group(0)[m.end(m.lastindex) - m.start():], text)
    return text
