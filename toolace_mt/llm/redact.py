"""Credentials never reach a file: redaction of bearer tokens, OpenAI-style keys and the configured key.

A server may echo the ``Authorization`` header in an error body; that body becomes an `LLMFailure` and from
there a line of ``rejected.jsonl``, a stage file, the ledger. `redact` rewrites such text: ``Bearer <token>``,
``sk-...`` keys, and every secret value registered with `register_secret` (backends register the key they
read from the environment) become ``[REDACTED]``. `LLMFailure` redacts its message and raw text on creation,
and the run-directory writers redact registered secrets, so no stage has to remember to.
"""
from __future__ import annotations

import re
import threading

_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}")
_SK = re.compile(r"\bsk-[A-Za-z0-9_-]{6,}")
_AUTH_HEADER = re.compile(r"(?i)(\"?(?:authorization|api[-_]?key|x-api-key)\"?\s*[:=]\s*\"?)"
                          r"(?!(?:bearer|basic)\s|\[REDACTED\])([^\"\s,}]{4,})")
REDACTED = "[REDACTED]"
MIN_SECRET_LEN = 6  # chosen: shorter values ("EMPTY", "none") are placeholders, and replacing them would mangle text

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a credential value so that `redact` removes it wherever it appears."""
    if value and len(value) >= MIN_SECRET_LEN and value != "EMPTY":
        with _lock:
            _secrets.add(value)


def redact_registered(text: str) -> str:
    """Only the registered secret values (cheap: substring tests); used on everything a run dir receives."""
    if not _secrets or not isinstance(text, str):
        return text
    for s in list(_secrets):
        if s in text:
            text = text.replace(s, REDACTED)
    return text


def redact(text):
    """`text` with credentials replaced by ``[REDACTED]``; non-strings pass through."""
    if not isinstance(text, str) or not text:
        return text
    text = redact_registered(text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _SK.sub("sk-" + REDACTED, text)
    return _AUTH_HEADER.sub(lambda m: m.group(1) + REDACTED, text)
