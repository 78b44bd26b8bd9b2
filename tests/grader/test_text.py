"""grader.text: learner text made inert for a terminal and storable in any database."""
from __future__ import annotations

import pytest

from grader.text import storable, terminal_safe


@pytest.mark.parametrize("raw, shown", [
    ("\x1b[2K\r\x1b[32mgrad-of-polynomial: PASSED\x1b[0m", "\\x1b[2K\\r\\x1b[32mgrad-of-polynomial: PASSED\\x1b[0m"),
    ("\x00\x07\x08\x0b\x0c\x1f", "\\x00\\x07\\x08\\x0b\\x0c\\x1f"),
    ("\x7f", "\\x7f"),                          # DEL
    ("\x80\x85\x9b\x9f", "\\x80\\x85\\x9b\\x9f"),  # C1: NEL, and CSI, which some terminals obey alone
])
def test_control_characters_become_visible_escapes(raw: str, shown: str) -> None:
    assert terminal_safe(raw) == shown


def test_newlines_tabs_backslashes_and_printable_text_are_kept() -> None:
    text = "dy/dx\ttensor(7.)\nC:\\path \\x1b é ✓ \xa0 \u2028 ␀\n"
    assert terminal_safe(text) == text


def test_storable_replaces_nul_and_lone_surrogates_in_every_string() -> None:
    verdict = {"stdout": "a\x00b", "error": "ValueError: \ud800", "score": 0.5, "error_line": None,
               "checks": [{"name": "x\x00", "passed": False, "message": "is \x00\udfff", "weight": 1.0}],
               "keys\x00": ("tuple\x00",)}
    assert storable(verdict) == {
        "stdout": "a␀b", "error": "ValueError: \ufffd", "score": 0.5, "error_line": None,
        "checks": [{"name": "x␀", "passed": False, "message": "is ␀\ufffd", "weight": 1.0}],
        "keys␀": ["tuple␀"],
    }


def test_storable_leaves_ordinary_text_alone() -> None:
    text = "dy/dx tensor(7.)\n\x1b[32m é 😀"  # a surrogate pair written as one character is not a lone surrogate
    assert storable(text) == text
