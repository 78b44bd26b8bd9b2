"""How verdicts, hints and solutions look in a notebook (HTML, Markdown) and in a terminal (text)."""
from __future__ import annotations

import base64
import re

from fakeserver import verdict

from autograd_quiz import Hint, Solution, Verdict
from autograd_quiz.client import Submission

GRAPH = {"learner": {"nodes": [["AddBackward0", "op", "y"], ["PowBackward0", "op", "x**2"], ["x", "leaf", "x"]],
                     "edges": [[0, 1], [1, 2]], "truncated": False}, "extra": [1]}
FAILED = verdict("failed", score=0.6, final_score=0.54, penalty=10.0, attempt=2, stdout="hello\n", checks=[
    {"name": "x.grad", "passed": False, "message": "`x.grad` is None — did you call **backward()**?"},
    {"name": "x.requires_grad", "passed": True, "message": ""},
    {"name": "y's graph", "passed": False, "message": "", "graph": GRAPH, "graph_svg": "/attempts/7/graphs/2.svg"},
])


def shown(submission: dict, svgs: dict | None = None) -> Verdict:
    return Verdict(Submission(data=submission, server="http://quiz.test", graph_svgs=svgs or {}))


def test_the_text_verdict_has_ticks_crosses_messages_and_output() -> None:
    text = shown(FAILED).text()
    assert text.splitlines()[0] == ("✗ Not yet: some checks failed — grad-of-polynomial · score 60%, 54% after a "
                                    "10% penalty · attempt 2")
    assert "  ✗ x.grad: `x.grad` is None — did you call **backward()**?" in text
    assert "  ✓ x.requires_grad" in text
    assert "graph: yours has 2 operations (AddBackward0, PowBackward0) from x. 1 of its nodes are not in the " \
           "reference." in text
    assert "Output:\n  hello" in text
    assert "On the site: http://quiz.test/items/grad-of-polynomial/?course=default&attempt=7" in text


def test_the_html_verdict_marks_each_check_and_formats_messages() -> None:
    html = shown(FAILED)._repr_html_()
    assert 'data-status="failed"' in html and "Not yet: some checks failed" in html
    assert html.count('title="failed">✗') == 2 and html.count('title="passed">✓') == 1
    assert "<code>x.grad</code> is None — did you call <strong>backward()</strong>?" in html
    assert "<pre" in html and "hello" in html
    assert 'href="http://quiz.test/items/grad-of-polynomial/?course=default&amp;attempt=7"' in html


def test_the_servers_graph_drawing_is_embedded_as_an_image() -> None:
    svg = "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    html = shown(FAILED, {2: svg})._repr_html_()
    [encoded] = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert base64.b64decode(encoded).decode() == svg, "as an <img>, whose scripts never run"
    assert "<script>" not in html


def test_without_the_drawing_the_graph_is_listed_with_differences_marked() -> None:
    html = shown(FAILED)._repr_html_()
    assert "<code>AddBackward0</code> ← " in html
    assert 'color:#c5221f;font-weight:600">PowBackward0</code>' in html, "the node not in the reference"
    assert "not in the reference" in html


def test_whatever_the_server_sends_is_escaped_in_html() -> None:
    hostile = verdict("error", error="<img src=x onerror=alert(1)>", error_line=3, stdout="<b>hi</b>",
                      checks=[{"name": "<i>n</i>", "passed": False, "message": "`<script>` *<u>*"}])
    html = shown(hostile)._repr_html_()
    assert "<img src=x" not in html and "<b>hi" not in html and "<i>n" not in html and "<script>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "Error (line 3):" in html


def test_a_verdict_held_back_until_the_due_date_says_so() -> None:
    held = verdict("graded", score=None, final_score=None, checks=[])
    assert "Handed in: feedback after the due date" in shown(held).text()
    assert "after the due date" in shown(held)._repr_html_()


def test_an_answer_that_cost_no_attempt_says_so() -> None:
    rejected = verdict("rejected", attempt=None, score=0.0, error="This is the unchanged starter code.")
    text = shown(rejected).text()
    assert text.startswith("✗ Not run — grad-of-polynomial · cost no attempt\n"), "no score: it was not graded"
    assert "Why:\n  This is the unchanged starter code." in text


def test_hints_and_solutions_render_as_markdown_and_text() -> None:
    hint = Hint(item="zero-grad", number=1, total=2, text="Use `x.grad.zero_()`.")
    assert hint._repr_markdown_().startswith("**Hint 1 of 2** (zero-grad). Run it again for the next one.")
    assert str(hint) == "Hint 1 of 2 (zero-grad):\nUse `x.grad.zero_()`."
    hidden = Solution({"slug": "zero-grad", "solution": None, "explanation": None, "progress": {"revealed": False},
                       "policy": {"reveal": "after_pass"}})
    assert str(hidden) == "The solution of zero-grad is not shown yet: your course reveals it once you pass it."
    shown_solution = Solution({"slug": "zero-grad", "solution": "x.grad.zero_()\n", "explanation": "Because.",
                               "progress": {"revealed": True}, "policy": {}})
    assert "```python\nx.grad.zero_()\n```" in shown_solution._repr_markdown_()
