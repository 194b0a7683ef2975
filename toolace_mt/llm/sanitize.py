"""Model text made safe to store: a leaf module (types, the JSON parser and the client all clean text).

A lone surrogate is legal as a JSON escape but cannot be encoded as UTF-8, so a JSONL writer would fail on it;
control characters corrupt logs and terminals. Everything a model says passes through here before it is kept.
"""
from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_text(text: Any) -> Any:
    """Model text safe to store: paired surrogates joined, lone ones replaced by U+FFFD, control characters
    (other than tab/newline/CR) dropped. Non-strings pass through. Writers encode UTF-8, which a lone
    surrogate (legal as a JSON escape) cannot be."""
    if not isinstance(text, str):
        return text
    if _SURROGATE.search(text):
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    return text


def clean_value(value: Any) -> Any:
    """`clean_text` applied to every string (keys included) of a JSON value."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k): clean_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_value(v) for v in value]
    return value
