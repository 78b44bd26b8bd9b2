"""How a verdict, a hint and a solution look: rich HTML (or Markdown) in a notebook, plain text in terminal
IPython and in scripts. IPython picks the richest form its front end shows (`_repr_html_`,
`_repr_markdown_`, else `_repr_pretty_`), so one object serves both.

Everything that came from the server is escaped before it goes into HTML; only the small `code`,
**bold** and *emphasis* markup of check messages is kept, as the quiz site does.
"""
from __future__ import annotations

import base64
import re
from html import escape
from typing import Any
from urllib.parse import urlencode

from .client import Submission

# The quiz site's wording (quiz/templatetags/quiz_tags.py STATUS_TEXT), with a tone per verdict.
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
TONE_COLOUR = {"passed": "#1e7e34", "failed": "#c5221f", "warning": "#b06000", "pending": "#4a6fa5"}
TONE_ICON = {"passed": "✓", "failed": "✗", "warning": "!", "pending": "…"}
MAX_OUTPUT_CHARS = 20_000
PRE_STYLE = "margin:2px 0;white-space:pre-wrap"
UNGRADED = ("rejected", "internal_error")  # refused unrun, or the grader's own failure: no score to speak of

_INLINE = re.compile(r"`([^`\n]+)`|\*\*([^*\n]+)\*\*|\*([^*\n]+)\*")


def inline_html(text: str) -> str:
    """Feedback text as HTML: `code`, **bold** and *emphasis*, everything else escaped."""
    out, last = [], 0
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
    return "".join(out)


def percent(score: float | None) -> str:
    return "–" if score is None else f"{round(score * 100)}%"


def graph_summary(view: dict[str, Any], *, name: str) -> str:
    """A graph check's graph in one sentence (the site's text alternative): its operations, its leaves, and
    how many nodes differ from the reference."""
    learner = view.get("learner") or {"nodes": []}
    nodes = learner.get("nodes") or []
    types = [n[0] for n in nodes if n[1] != "leaf"]
    leaves = [n[2] for n in nodes if n[1] == "leaf"]
    if not nodes:
        text = f"{name}: yours is empty, nothing was recorded for autograd."
    else:
        text = (f"{name}: yours has {len(types)} operation{'s' if len(types) != 1 else ''} "
                f"({', '.join(types[:8])}{', …' if len(types) > 8 else ''}) "
                f"from {', '.join(leaves[:6]) or 'no leaves'}.")
    if view.get("extra"):
        text += f" {len(view['extra'])} of its nodes are not in the reference."
    if view.get("missing"):
        text += f" {len(view['missing'])} of the reference's nodes are missing."
    return text


def _graph_html(view: dict[str, Any]) -> str:
    """The learner's graph as a list, output first, each node with the nodes it was computed from; nodes
    not in the reference are marked. Used when the server's drawing could not be fetched."""
    learner = view.get("learner") or {}
    nodes = learner.get("nodes") or []
    if not nodes:
        return ""
    extra = set(view.get("extra") or [])
    inputs: dict[int, list[int]] = {}
    for parent, child in learner.get("edges") or []:
        inputs.setdefault(parent, []).append(child)

    def label(n: int) -> str:
        type_name, kind, text = nodes[n]
        shown = escape(text if kind == "leaf" else type_name)
        style = "color:#c5221f;font-weight:600" if n in extra else ""
        return f'<code style="{style}">{shown}</code>' if style else f"<code>{shown}</code>"

    rows = []
    for n in range(len(nodes)):
        if nodes[n][1] == "leaf":
            continue
        sources = ", ".join(label(c) for c in inputs.get(n, [])) or "nothing"
        rows.append(f"<li>{label(n)} ← {sources}</li>")
    note = ('<div style="color:#c5221f">In red: not in the reference\'s graph.</div>' if extra else "")
    truncated = "<div>(graph truncated)</div>" if learner.get("truncated") else ""
    return f'<ul style="margin:2px 0 2px 18px;padding:0">{"".join(rows)}</ul>{note}{truncated}'


class Verdict:
    """A graded submission, as the grader and the course's feedback rules let the learner see it."""

    def __init__(self, submission: Submission) -> None:
        self.data = submission.data
        self.server = submission.server
        self.graph_svgs = submission.graph_svgs

    # -- the facts ---------------------------------------------------------------------------------
    @property
    def id(self) -> int | None:
        return self.data.get("id")

    @property
    def item(self) -> str:
        return str(self.data.get("item", ""))

    @property
    def status(self) -> str:
        return str(self.data.get("status", ""))

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def score(self) -> float | None:
        return self.data.get("score")

    @property
    def final_score(self) -> float | None:
        return self.data.get("final_score")

    @property
    def checks(self) -> list[dict[str, Any]]:
        return list(self.data.get("checks") or [])

    @property
    def site_url(self) -> str | None:
        """This attempt's page on the quiz site."""
        if self.id is None or not self.item:
            return None
        query = {"course": self.data["course"]} if self.data.get("course") else {}
        query["attempt"] = self.id
        return f"{self.server}/items/{self.item}/?{urlencode(query)}"

    def __repr__(self) -> str:
        return f"<Verdict {self.item}: {self.status}, score {percent(self.score)}>"

    def __str__(self) -> str:
        return self.text()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    # -- the parts both forms share ----------------------------------------------------------------------
    def _headline(self) -> tuple[str, str, list[str]]:
        label, tone = STATUS_TEXT.get(self.status, (self.status, "failed"))
        facts = [self.item]
        if self.score is not None and self.status not in UNGRADED:
            if self.final_score is not None and self.data.get("penalty") and self.final_score != self.score:
                facts.append(f"score {percent(self.score)}, {percent(self.final_score)} after a "
                             f"{self.data['penalty']:g}% penalty")
            else:
                facts.append(f"score {percent(self.score)}")
        attempt = self.data.get("attempt")
        facts.append(f"attempt {attempt}" if attempt else "cost no attempt")
        if self.data.get("late"):
            facts.append("late")
        return label, tone, facts

    def _error_label(self) -> str:
        if self.status == "rejected":
            return "Why"
        return f"Error (line {self.data['error_line']})" if self.data.get("error_line") else "Error"

    def _stdout(self) -> str:
        out = self.data.get("stdout") or ""
        return out if len(out) <= MAX_OUTPUT_CHARS else out[:MAX_OUTPUT_CHARS] + "\n… (cut)"

    # -- plain text ------------------------------------------------------------------------------------
    def text(self) -> str:
        label, tone, facts = self._headline()
        lines = [f"{TONE_ICON[tone]} {label} — {' · '.join(facts)}"]
        for check in self.checks:
            mark = "✓" if check.get("passed") else "✗"
            message = check.get("message") or ""
            lines.append(f"  {mark} {check.get('name', '')}" + (f": {message}" if message else ""))
            if check.get("graph"):
                lines.append("      " + graph_summary(check["graph"], name="graph"))
        if self.data.get("feedback") == "pass_fail" and not self.checks:
            lines.append("  (this course shows whether you passed, not the checks)")
        if self.status == "graded":
            lines.append("  The course shows the result after the due date.")
        if self.data.get("error"):
            lines.append(self._error_label() + ":")
            lines.extend("  " + line for line in str(self.data["error"]).splitlines())
        if self._stdout():
            lines.append("Output:")
            lines.extend("  " + line for line in self._stdout().splitlines())
        if self.data.get("params"):
            lines.append("Graded with: " + ", ".join(f"{k} = {v}" for k, v in self.data["params"].items()))
        if self.site_url:
            lines.append(f"On the site: {self.site_url}")
        return "\n".join(lines)

    # -- HTML --------------------------------------------------------------------------------------------
    def _repr_html_(self) -> str:
        label, tone, facts = self._headline()
        colour = TONE_COLOUR[tone]
        parts = [f'<div class="autograd-quiz-verdict" data-status="{escape(self.status)}" '
                 f'style="border-left:4px solid {colour};padding:6px 12px;margin:4px 0">',
                 f'<div><strong style="color:{colour}">{TONE_ICON[tone]} {escape(label)}</strong> '
                 f'<span style="opacity:.75">· {" · ".join(escape(f) for f in facts)}</span></div>']
        if self.checks:
            parts.append('<ul style="list-style:none;padding-left:0;margin:6px 0">')
            for index, check in enumerate(self.checks):
                ok = bool(check.get("passed"))
                mark = (f'<span style="color:{TONE_COLOUR["passed"]}" title="passed">✓</span>' if ok else
                        f'<span style="color:{TONE_COLOUR["failed"]}" title="failed">✗</span>')
                message = check.get("message") or ""
                parts.append(f'<li style="margin:2px 0">{mark} <strong>{escape(str(check.get("name", "")))}</strong>'
                             + (f" — {inline_html(message)}" if message else ""))
                if check.get("graph"):
                    parts.append(self._graph_figure(index, check))
                parts.append("</li>")
            parts.append("</ul>")
        if self.data.get("feedback") == "pass_fail" and not self.checks:
            parts.append("<p>This course shows whether you passed, not the checks.</p>")
        if self.status == "graded":
            parts.append("<p>The course shows the result after the due date.</p>")
        if self.data.get("error"):
            parts.append(f'<div>{escape(self._error_label())}:</div><pre style="{PRE_STYLE}">'
                         f"{escape(str(self.data['error']))}</pre>")
        if self._stdout():
            parts.append(f'<div>Output:</div><pre style="{PRE_STYLE}">{escape(self._stdout())}</pre>')
        if self.data.get("params"):
            values = ", ".join(f"<code>{escape(str(k))} = {escape(str(v))}</code>"
                               for k, v in self.data["params"].items())
            parts.append(f"<div>Graded with {values}</div>")
        if self.site_url:
            parts.append(f'<div><a href="{escape(self.site_url)}" target="_blank" rel="noopener">'
                         "This attempt on the quiz site</a></div>")
        parts.append("</div>")
        return "".join(parts)

    def _graph_figure(self, index: int, check: dict[str, Any]) -> str:
        summary = graph_summary(check["graph"], name=str(check.get("name", "graph")))
        svg = self.graph_svgs.get(index)
        if svg:  # as an <img>: an SVG shown that way runs no script
            data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
            return (f'<div style="margin:4px 0 4px 18px"><img alt="{escape(summary)}" '
                    f'src="data:image/svg+xml;base64,{data}" style="max-width:100%"></div>')
        return (f'<div style="margin:4px 0 4px 18px"><div>{escape(summary)}</div>'
                f"{_graph_html(check['graph'])}</div>")


class Hint:
    """One of an item's hints (Markdown, as the instructor wrote it)."""

    def __init__(self, *, item: str, number: int, total: int, text: str) -> None:
        self.item, self.number, self.total, self.hint = item, number, total, text

    def text(self) -> str:
        if not self.total:
            return f"{self.item} has no hints."
        return f"Hint {self.number} of {self.total} ({self.item}):\n{self.hint}"

    __str__ = text

    def __repr__(self) -> str:
        return f"<Hint {self.number} of {self.total} for {self.item}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    def _repr_markdown_(self) -> str:
        if not self.total:
            return f"*{self.item} has no hints.*"
        more = " Run it again for the next one." if self.number < self.total else ""
        return f"**Hint {self.number} of {self.total}** ({self.item}).{more}\n\n{self.hint}"


REVEAL_RULES = {
    "after_pass": "once you pass it",
    "after_due": "after the due date",
    "after_attempts": "once you pass it or have made enough graded attempts",
}


class Solution:
    """An item's reference solution and explanation, or why they are not shown yet."""

    def __init__(self, item: dict[str, Any]) -> None:
        self.item = str(item.get("slug", ""))
        self.code: str | None = item.get("solution")
        self.explanation: str | None = item.get("explanation")
        self.revealed = bool((item.get("progress") or {}).get("revealed")) or self.code is not None
        policy = item.get("policy") or {}
        rule = REVEAL_RULES.get(str(policy.get("reveal")), "when your course's rules allow")
        due = f" ({policy['due_at']})" if policy.get("reveal") == "after_due" and policy.get("due_at") else ""
        self.reason = f"The solution of {self.item} is not shown yet: your course reveals it {rule}{due}."

    def text(self) -> str:
        if not self.revealed:
            return self.reason
        parts = [f"Solution of {self.item}:"]
        if self.code:
            parts.append(self.code.rstrip())
        if self.explanation:
            parts += ["", self.explanation.rstrip()]
        return "\n".join(parts)

    __str__ = text

    def __repr__(self) -> str:
        return f"<Solution of {self.item}: {'revealed' if self.revealed else 'not revealed yet'}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    def _repr_markdown_(self) -> str:
        if not self.revealed:
            return f"*{self.reason}*"
        parts = [f"**Solution of {self.item}**"]
        if self.code:
            parts.append(f"```python\n{self.code.rstrip()}\n```")
        if self.explanation:
            parts.append(self.explanation.rstrip())
        return "\n\n".join(parts)
