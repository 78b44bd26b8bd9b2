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


class TextListWidget(forms.MultiWidget):
    """A list of texts as one textarea per entry, plus an empty one for the next entry (JavaScript adds
    more: grader/text-list.js). What is posted is the non-empty entries, in order."""

    template_name = "admin/quiz/text_list_widget.html"

    def __init__(self, *, rows: int = 2, label: str = "entry") -> None:
        self.rows, self.label = rows, label
        super().__init__(widgets=[])

    is_hidden = False  # a MultiWidget is "hidden" when all its boxes are, and it has none until it renders

    def decompress(self, value: Any) -> list[str]:
        return list(value or [])

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        values = value if isinstance(value, list) else self.decompress(value)
        # As many boxes as entries, and one more for the next: the boxes are made for each rendering.
        self.widgets = [forms.Textarea(attrs={"rows": self.rows, "cols": 80}) for _ in range(len(values) + 1)]
        self.widgets_names = [f"_{index}" for index in range(len(self.widgets))]
        context = super().get_context(name, [*values, ""], attrs)
        context["widget"]["label"] = self.label
        return context

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[str]:
        entries, index = [], 0
        while f"{name}_{index}" in data:
            text = data[f"{name}_{index}"].replace("\r\n", "\n").strip()
            if text:
                entries.append(text)
            index += 1
        return entries

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return f"{name}_0" not in data

    class Media:
        js = ("grader/text-list.js",)


class TextListField(forms.Field):
    """A JSON list of strings, edited as a list of texts."""

    def __init__(self, *, rows: int = 2, label_each: str = "entry", **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(widget=TextListWidget(rows=rows, label=label_each), **kwargs)

    def to_python(self, value: Any) -> list[str]:
        return [str(v) for v in value or []]

    def prepare_value(self, value: Any) -> Any:
        return list(value or [])


class CommaListField(forms.CharField):
    """A list of short words (tags) typed as "backward, notebook-q1"."""

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]  # a list, where CharField gives a str
        text = super().to_python(value)
        return [part.strip() for part in text.split(",") if part.strip()]

    def prepare_value(self, value: Any) -> str:
        return ", ".join(value) if isinstance(value, list) else (value or "")
