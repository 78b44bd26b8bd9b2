"""Template helpers of the learner site: Markdown, short feedback text, verdict labels."""
from __future__ import annotations

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from quiz.markdown import render
from quiz.graphs import graph_summary

register = template.Library()


@register.simple_tag(takes_context=True)
def course_url(context: template.Context, name: str, *args: object) -> str:
    """reverse(name, args) in the page's course: `?course=<slug>` when the page has one."""
    from django.urls import reverse
    from django.utils.http import urlencode

    url = reverse(name, args=args)
    course = context.get("course")
    return f"{url}?{urlencode({'course': course.slug})}" if course is not None else url

# Keep in step with STATUS_TEXT in static/quiz/js/item.js.
STATUS_TEXT = {
    "queued": ("Waiting for a grader…", "pending"),
    "running": ("Running your code…", "pending"),
    "passed": ("Passed", "passed"),
    "failed": ("Not yet: some checks failed", "failed"),
    "error": ("Your code raised an error", "failed"),
    "timeout": ("Time limit reached", "failed"),
    "memory_limit": ("Memory limit reached", "failed"),
    "output_limit": ("Too much output", "failed"),
    "rejected": ("Not run", "failed"),
    "internal_error": ("Grader problem (not your fault)", "warning"),
    "graded": ("Handed in: feedback after the due date", "warning"),
}
SHORT_STATUS = {"queued": "Queued", "running": "Running", "passed": "Passed", "failed": "Failed", "error": "Error",
                "timeout": "Time limit", "memory_limit": "Memory limit", "output_limit": "Output limit",
                "rejected": "Not run", "internal_error": "Grader problem", "graded": "Handed in"}

_INLINE = re.compile(r"`([^`\n]+)`|\*\*([^*\n]+)\*\*|\*([^*\n]+)\*")


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    """Instructor Markdown as sanitised HTML (code blocks highlighted with Pygments)."""
    return mark_safe(render(text or ""))  # noqa: S308 - render() sanitises with nh3


@register.filter
def inline(text: str) -> SafeString:
    """Feedback text with `code`, **bold** and *emphasis* only; everything else escaped.

    The same small formatter runs in item.js, so a verdict looks alike whether the
    server or the browser drew it.
    """
    out: list[str] = []
    last = 0
    text = text or ""
    for match in _INLINE.finditer(text):
        out.append(escape(text[last:match.start()]))
        code, strong, em = match.groups()
        if code is not None:
            out.append(f"<code>{escape(code)}</code>")
        elif strong is not None:
            out.append(f"<strong>{escape(strong)}</strong>")
        else:
            out.append(f"<em>{escape(em)}</em>")
        last = match.end()
    out.append(escape(text[last:]))
    return mark_safe("".join(out))  # noqa: S308 - every piece is escaped


@register.filter
def graph_alt(check: dict) -> str:
    """The text alternative of a graph check's drawing."""
    return graph_summary(check["graph"], name=check["name"])


@register.filter
def status_text(status: str) -> str:
    return STATUS_TEXT.get(status, (status, ""))[0]


@register.filter
def status_tone(status: str) -> str:
    return STATUS_TEXT.get(status, (status, "failed"))[1]


@register.filter
def short_status(status: str) -> str:
    return SHORT_STATUS.get(status, status)


@register.filter
def percent(score: float | None) -> str:
    return "–" if score is None else f"{round(score * 100)}%"


@register.filter
def python_code(code: str) -> SafeString:
    """Python source highlighted by Pygments (the "highlight" classes of pygments.css)."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return mark_safe(highlight(code or "", PythonLexer(), HtmlFormatter(cssclass="highlight")))  # noqa: S308
