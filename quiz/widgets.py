"""Form widgets for editing quiz content."""
from __future__ import annotations

from typing import Any

from django import forms

CODEMIRROR = "quiz/vendor/codemirror"


class CodeEditorWidget(forms.Textarea):
    """Python source in a CodeMirror 5 editor (line numbers, Python highlighting,
    4-space indents). Without JavaScript it stays a plain monospace textarea,
    and the textarea is what the form posts either way."""

    def __init__(self, attrs: dict[str, Any] | None = None, *, rows: int = 12) -> None:
        defaults = {"class": "code-editor", "rows": rows, "cols": 90, "spellcheck": "false",
                    "autocapitalize": "off", "autocomplete": "off", "data-mode": "python"}
        super().__init__({**defaults, **(attrs or {})})

    class Media:
        css = {"all": (f"{CODEMIRROR}/lib/codemirror.css", "grader/code-editor.css")}
        js = (f"{CODEMIRROR}/lib/codemirror.js", f"{CODEMIRROR}/mode/python/python.js", "grader/code-editor.js")
