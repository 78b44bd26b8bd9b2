"""Learner-derived text made safe for the two places that cannot take it raw.

Learner code chooses its printed output, its exceptions' messages and, through
the values it leaves behind, parts of the check messages. That text is shown
and stored as it is, except where the medium itself would misread it:

- a terminal obeys control characters: `\\x1b[2K\\r` erases a line and returns to
  its start, so printed output could draw a fake "PASSED" over the real report;
- PostgreSQL's text and jsonb types refuse U+0000, and no database driver can
  encode a lone surrogate (a learner's `raise ValueError("\\ud800")` arrives as
  one), so storing such a verdict raises and the submission stays `running`.
"""
from __future__ import annotations

import re
from typing import Any

# C0 controls except \t and \n, DEL, and the C1 controls (U+0080-U+009F, e.g. U+009B, a one-character CSI).
_TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NAMED_ESCAPES = {"\r": "\\r"}

NUL_SYMBOL = "\u2400"  # ␀ SYMBOL FOR NULL: shows where the NUL was
_LONE_SURROGATES = re.compile("[\ud800-\udfff]")
REPLACEMENT_CHARACTER = "\ufffd"


def _visible_escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED_ESCAPES.get(char, f"\\x{ord(char):02x}")


def terminal_safe(text: str) -> str:
    """text with every control character but newline and tab written as a visible escape (`\\x1b`, `\\r`).

    The printed lines keep the learner's characters, but a terminal shows them
    instead of obeying them. Backslashes are left alone, so ordinary output reads
    as it was printed.
    """
    return _TERMINAL_CONTROLS.sub(_visible_escape, text)


def storable(value: Any) -> Any:
    """value with every string in it (dict keys, list items: a JSON field too) storable in any database.

    U+0000 becomes ␀ (U+2400) and a lone surrogate U+FFFD; everything else,
    numbers and None included, is returned unchanged.
    """
    if isinstance(value, str):
        return _LONE_SURROGATES.sub(REPLACEMENT_CHARACTER, value.replace("\x00", NUL_SYMBOL))
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    return value
