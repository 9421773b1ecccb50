"""Secrets in text we show or store: API keys and tokens keep their first 4 characters, the rest is masked.

Findings quote scripts and logs (a wandb ``CommError: invalid api key <key>`` traceback, an
``export HF_TOKEN=...`` line, a ``{'WANDB_API_KEY': '...'}`` dict in a traceback, a clone URL
``https://oauth2:glpat-...@host``), and reports end up in CI logs, SARIF uploads and issue threads.
This module is the one home of what a secret looks like: ``is_secret_name`` (the names of variables
and keys that hold one), ``SECRET_PATTERNS`` (token shapes; SB009 secret-in-script uses them to
detect) and ``redact`` (every reporter, finding, config error, log excerpt and ledger masks with it).

Every pattern is linear on any input: no nested or adjacent unbounded quantifiers over the same
characters (whitespace runs are bounded), so a crafted line cannot stall a run that holds the GIL.
"""

from __future__ import annotations

import os
import re

# The names of variables and keys that hold a secret: a known vendor's key/token variable, or any
# name whose last part says so (MY_SERVICE_API_KEY, db_password, aws_secret_access_key, SAS_TOKEN).
SECRET_NAME = re.compile(
    r"(?i)^(?:[a-z0-9]{1,32}_){0,6}(?:api_?key|token|auth_?token|access_?token|secret|secret_?key|client_?secret"
    r"|secret_access_key|password|passwd|private_?key|account_?key|sas_?token|connection_?string)$"
)


def is_secret_name(name: str) -> bool:
    """Whether a variable or key called ``name`` holds a secret (WANDB_API_KEY, HF_TOKEN, db_password)."""
    return len(name) <= 128 and SECRET_NAME.match(name) is not None


# (pattern, kind): the secret is the pattern's last group; an earlier group 1 names it
_VENDOR_VARS = (
    r"(?:WANDB|HF|HUGGING_FACE_HUB|HUGGINGFACE|OPENAI|ANTHROPIC|GITHUB|GH|GITLAB|AWS_SECRET_ACCESS"
    r"|COMET|NEPTUNE|SLACK)_?(?:API_)?(?:KEY|TOKEN)"
)
SECRET_PATTERNS = [
    (re.compile(r"\b(" + _VENDOR_VARS + r")[ \t]{0,8}=[ \t]{0,8}['\"]?([^\s'\"$`]{8,})"), "environment variable"),
    (
        re.compile(r"\bwandb[ \t]{1,8}login[ \t]{1,8}(?:--[^\s-]\S{0,63}[ \t]{1,8}){0,4}['\"]?([0-9a-f]{40})\b"),
        "wandb login key",
    ),
    (re.compile(r"\b(hf_[A-Za-z0-9]{30,})\b"), "Hugging Face token"),
    (re.compile(r"\b(wandb_v1_[A-Za-z0-9_]{20,})"), "wandb API key"),  # wandb's prefixed keys (also in a comment)
    (re.compile(r"\b(sk-(?:ant-)?[A-Za-z0-9_\-]{20,})\b"), "API key"),
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"), "GitHub token"),
    (re.compile(r"\b(glpat-[A-Za-z0-9_\-]{20,})"), "GitLab token"),
    (re.compile(r"\b(xox[abposr]-[A-Za-z0-9\-]{10,})"), "Slack token"),
    (re.compile(r"\b((?:AKIA|ASIA)[0-9A-Z]{16})\b"), "AWS access key"),
    (re.compile(r"\b(AIza[0-9A-Za-z_\-]{35})\b"), "Google API key"),
]
_SHAPES = [rx for rx, _ in SECRET_PATTERNS]

_MORE = [
    # a secret-named variable or key given a value: X_API_KEY=..., 'WANDB_API_KEY': '...', "token": "...",
    # aws_secret_access_key = ...; the name is checked by is_secret_name (group 1), the value is group 2
    re.compile(
        r"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]{0,63})['\"]?[ \t]{0,4}[:=][ \t]{0,4}[bru]?['\"]?"
        r"([^\s'\"$`,;}\])]{8,})"
    ),
    # a long value right after a word that names it: "invalid api key 0123...", "password: hunter22hunter22"
    re.compile(
        r"(?i)(?<![A-Za-z0-9_])(api[_ -]?key|access[_ -]?token|auth[_ -]?token|token|secret|password|passwd)"
        r"(?![A-Za-z0-9_])[ \t]{0,8}(?:(?:[:=]|is(?![A-Za-z0-9_]))[ \t]{0,8})?['\"]?([A-Za-z0-9][A-Za-z0-9_\-.+/]{15,})"
    ),
    # credentials in a URL: scheme://user:password@host (password masked), scheme://<token>@host
    re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{0,15}://[^\s/@:]{0,256}):([^\s/@]{1,256})@"),
    re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{0,15}://)([A-Za-z0-9_\-.]{20,256})@"),
    # Azure storage keys and SAS signatures
    re.compile(r"(?i)\b(AccountKey|SharedAccessKey|sig)=([A-Za-z0-9+/%]{16,}={0,2})"),
    # base64 of a known token prefix (hf_, ghp_, glpat-, sk-ant-, xoxb-): a key pasted encoded
    re.compile(r"(?<![A-Za-z0-9+/])((?:aGZf|Z2hwX|Z2xwYXQt|c2stYW50LW|eG94Yi0)[A-Za-z0-9+/]{24,}={0,2})"),
]
# a bare AWS secret access key: 40 characters of base64 standing alone (checked by _random_enough)
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])([A-Za-z0-9+][A-Za-z0-9/+]{39})(?![A-Za-z0-9/+=])")

_known: set[str] = set()


def remember_secret(value: str) -> None:
    """Mask this value wherever it is shown from now on (a secret reached through ``$VAR``)."""
    if isinstance(value, str) and len(value) >= 8 and not value.isdigit():
        _known.add(value)


def _remember_environment() -> None:
    for name, value in os.environ.items():
        if is_secret_name(name):
            remember_secret(value)


_remember_environment()


def mask(secret: str) -> str:
    return secret[:4] + "****"


def _random_enough(s: str) -> bool:
    """Mixed case and digits, with case changing often: a random key, not a path or a word."""
    if not (any(c.isupper() for c in s) and any(c.islower() for c in s) and any(c.isdigit() for c in s)):
        return False
    flips = sum(1 for a, b in zip(s, s[1:], strict=False) if a.islower() and b.isupper())
    return flips >= 5 and "//" not in s


def _mask_group(m: re.Match, group: int) -> str:
    whole, start = m.group(0), m.start()
    return whole[: m.start(group) - start] + mask(m.group(group)) + whole[m.end(group) - start :]


def _named(m: re.Match) -> str:
    if not is_secret_name(m.group(1)) or m.group(2).isdigit():
        return m.group(0)
    return _mask_group(m, 2)


def redact(text: str) -> str:
    """``text`` with every secret that the patterns know masked (unchanged when there is none)."""
    if not isinstance(text, str) or not text:
        return text
    for value in _known:
        if value in text:
            text = text.replace(value, mask(value))
    for rx in _SHAPES:
        if rx.search(text):
            text = rx.sub(lambda m: _mask_group(m, m.lastindex), text)
    named, prose, *rest = _MORE
    if named.search(text):
        text = named.sub(_named, text)
    for rx in (prose, *rest):
        if rx.search(text):
            text = rx.sub(
                lambda m: _mask_group(m, m.lastindex) if "****" not in m.group(m.lastindex) else m.group(0), text
            )
    if _AWS_SECRET.search(text):
        text = _AWS_SECRET.sub(lambda m: mask(m.group(1)) if _random_enough(m.group(1)) else m.group(0), text)
    return text
