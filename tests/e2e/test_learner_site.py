"""A learner works through the real quiz in a real browser, graded by a real Celery worker."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from pytest_django.live_server_helper import LiveServer

from courses.services import default_course
from grader.models import Submission
from quiz.models import Item

from .conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ITEM = "grad-of-polynomial"
NO_BACKWARD = "import torch\n\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\nprint('y =', y)\n"
CORRECT = "import torch\n\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\n"
BY_HAND = ("import torch\n\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*torch.sin(x) + 1\n"
           "x.grad = torch.tensor(7.0)\n")
RAISES = "import torch\n\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2\nz = y / undefined_name\n"
VERDICT_TIMEOUT = 45_000  # ms; grading itself takes about a second


def set_code(page: Any, code: str) -> None:
    page.locator(".answer .CodeMirror").evaluate("(el, code) => el.CodeMirror.setValue(code)", code)


def editor_code(page: Any) -> str:
    return page.locator(".answer .CodeMirror").evaluate("el => el.CodeMirror.getValue()")


def final_verdict(page: Any) -> Any:
    verdict = page.locator("#verdict .verdict")
    expect(verdict).not_to_have_attribute("data-status", re.compile("^(queued|running)$"), timeout=VERDICT_TIMEOUT)
    return verdict


def test_a_learner_fails_then_passes_a_code_item(
        new_page: Callable[..., Any], screenshot: Callable[[Any, str], Path], live_server: LiveServer, ada: Any,
        seed_quiz: None, celery_worker: object) -> None:
    page = new_page()
    log_in(page)
    expect(page.get_by_text("Signed in as")).to_contain_text("ada")
    expect(page.locator(".quiz-card__count")).to_contain_text("0 of")
    screenshot(page, "01-quiz-list")

    page.get_by_role("link", name="Autograd basics", exact=True).click()
    expect(page.locator(".item-row")).to_have_count(Item.objects.filter(quiz__slug="autograd-basics", archived=False).count())
    expect(page.locator(".item-row").first).to_contain_text("Not started")
    screenshot(page, "02-quiz-page")

    page.get_by_role("link", name=re.compile("What is Autograd in PyTorch")).click()
    expect(page).to_have_url(re.compile(f"/items/{ITEM}/\\?course=default$"))
    expect(page.locator(".answer .CodeMirror")).to_be_visible()
    assert "# TODO: make x a scalar tensor 2.0" in editor_code(page)
    expect(page.locator(".answer .CodeMirror .cm-keyword").first).to_have_text("import")  # Python highlighting
    expect(page.locator(".answer .CodeMirror-linenumber", has_text="1").first).to_be_visible()
    expect(page.locator("#reveal")).to_contain_text("unlock when you pass")
    expect(page.locator("#solution")).to_have_count(0)
    screenshot(page, "03-item-page")

    # Hints, one at a time.
    hint_button = page.get_by_role("button", name="Show a hint (1 of 3)")
    expect(page.locator(".hint").first).to_be_hidden()
    hint_button.click()
    expect(page.locator(".hint").nth(0)).to_be_visible()
    expect(page.locator(".hint").nth(0)).to_contain_text("A tensor only tracks gradients")
    expect(page.locator(".hint").nth(1)).to_be_hidden()
    expect(page.get_by_role("button", name="Show a hint (2 of 3)")).to_be_visible()
    screenshot(page, "04-hint")

    # Tab indents with spaces inside the editor.
    page.locator(".answer .CodeMirror").click()
    page.keyboard.press("Control+End")
    page.keyboard.press("Tab")
    assert editor_code(page).endswith("    ")
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")  # Esc then Tab leaves the editor: no keyboard trap
    assert page.evaluate("!document.activeElement.closest('.CodeMirror')")

    # A wrong answer (no backward), submitted with Ctrl+Enter: failed, with the teaching message.
    set_code(page, NO_BACKWARD)
    page.locator(".answer .CodeMirror textarea").focus()
    page.keyboard.press("Control+Enter")
    verdict = final_verdict(page)
    expect(verdict).to_have_attribute("data-status", "failed")
    expect(verdict.locator(".verdict__status")).to_have_text("Not yet: some checks failed")
    failed = verdict.locator(".check--fail").first
    expect(failed.locator(".check__name")).to_have_text("x.grad")
    expect(failed).to_contain_text("did you call backward()")
    expect(verdict.locator(".check--pass")).to_have_count(3)
    expect(verdict.locator(".output")).to_have_text(re.compile(r"y = tensor\(11\."))
    expect(page.locator("#progress-attempts")).to_have_text("1")
    expect(page.locator("#progress-state")).to_have_text("Attempted")
    expect(page.locator(".history__link")).to_have_count(1)
    expect(page.locator("#solution")).to_have_count(0)
    first_attempt = Submission.objects.get(user=ada, item__slug=ITEM)
    expect(page).to_have_url(re.compile(rf"\?course=default&attempt={first_attempt.pk}$"))
    screenshot(page, "05-failed-verdict")

    # Values worked out by hand, on a different graph: the verdict says so, and draws both graphs.
    set_code(page, BY_HAND)
    page.get_by_role("button", name="Run and check").click()
    verdict = final_verdict(page)
    expect(verdict).to_have_attribute("data-status", "failed")
    expect(verdict.locator(".check--fail", has_text="x.grad by autograd")).to_contain_text("was set by hand")
    graph = verdict.locator("figure.graph img")
    expect(graph).to_have_count(1)
    graph.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 300", arg=graph.element_handle())
    expect(verdict.locator("figure.graph figcaption")).to_contain_text("Red: not in the reference")
    screenshot(page, "05b-graph-next-to-the-verdict")

    # The right answer, with the button: passed, and the explanation and solution appear in place.
    set_code(page, CORRECT)
    page.get_by_role("button", name="Run and check").click()
    verdict = final_verdict(page)
    expect(verdict).to_have_attribute("data-status", "passed")
    expect(verdict.locator(".check--pass")).to_have_count(5)
    expect(verdict.locator("figure.graph img")).to_have_count(1)
    expect(page.locator("#explanation")).to_contain_text("Autograd is a core feature of PyTorch")
    expect(page.locator("#solution .CodeMirror")).to_contain_text("y.backward()")
    expect(page.locator("#progress-state")).to_have_text("Passed")
    expect(page.locator("#progress-best")).to_have_text("100%")
    expect(page.locator(".history__link")).to_have_count(3)
    screenshot(page, "06-passed-and-revealed")

    # Re-open the first attempt from the history: its code and its verdict come back,
    # and the code being edited is kept to restore.
    draft = CORRECT + "# still experimenting\n"
    set_code(page, draft)
    page.locator(f'.history__link[data-attempt="{first_attempt.pk}"]').click()
    expect(page.locator("#verdict .verdict")).to_have_attribute("data-attempt", str(first_attempt.pk))
    expect(page.locator("#verdict .verdict")).to_have_attribute("data-status", "failed")
    expect(page).to_have_url(re.compile(rf"\?course=default&attempt={first_attempt.pk}$"))
    assert editor_code(page) == NO_BACKWARD
    expect(page.locator(f'.history__link[data-attempt="{first_attempt.pk}"]')).to_have_attribute("aria-current", "true")
    screenshot(page, "07-reopened-attempt")
    page.get_by_role("button", name="Restore the code you were editing").click()
    assert editor_code(page) == draft

    # The same attempt by its URL, after a reload.
    page.reload()
    expect(page.locator("#verdict .verdict")).to_have_attribute("data-status", "failed")
    assert editor_code(page) == NO_BACKWARD

    page.get_by_role("link", name=re.compile("Next")).click()
    expect(page).to_have_url(re.compile("/items/autograd-how-it-works/\\?course=default$"))


def test_an_error_points_at_the_line_of_the_learners_code(
        new_page: Callable[..., Any], screenshot: Callable[[Any, str], Path], ada: Any, seed_quiz: None,
        celery_worker: object) -> None:
    page = new_page()
    log_in(page, next_url=f"/items/{ITEM}/")
    set_code(page, RAISES)
    page.get_by_role("button", name="Run and check").click()
    verdict = final_verdict(page)
    expect(verdict).to_have_attribute("data-status", "error")
    expect(verdict.locator(".traceback")).to_contain_text("NameError: name 'undefined_name' is not defined")
    expect(verdict.locator(".traceback")).to_contain_text("line 5")
    expect(verdict.get_by_role("button", name="line 5")).to_be_visible()
    error_line = page.locator(".answer .CodeMirror .cm-error-line")
    expect(error_line).to_have_count(1)
    expect(error_line.locator("xpath=..")).to_contain_text("z = y / undefined_name")
    verdict.get_by_role("button", name="line 5").click()
    assert page.locator(".answer .CodeMirror").evaluate("el => el.CodeMirror.getCursor().line") == 4
    screenshot(page, "08-error-line")


def test_a_choice_item_gives_feedback_next_to_each_chosen_answer(
        new_page: Callable[..., Any], screenshot: Callable[[Any, str], Path], ada: Any, seed_quiz: None) -> None:
    page = new_page()
    log_in(page, next_url="/items/autograd-how-it-works/")
    choices = page.locator(".choice")
    expect(choices).to_have_count(4)
    expect(page.locator("input[type=checkbox][name=choices]")).to_have_count(4)
    choices.nth(0).locator("input").check()
    choices.nth(2).locator("input").check()
    page.get_by_role("button", name="Check my answer").click()
    verdict = page.locator("#verdict .verdict")
    expect(verdict).to_have_attribute("data-status", "failed")
    expect(choices.nth(0)).to_have_class(re.compile("choice--right"))
    expect(choices.nth(0).locator(".choice__feedback")).to_contain_text("dynamic computation graph")
    expect(choices.nth(2)).to_have_class(re.compile("choice--wrong"))
    expect(choices.nth(2).locator(".choice__feedback")).to_contain_text("Not quite")
    expect(choices.nth(1).locator(".choice__feedback")).to_be_empty()
    expect(verdict).to_contain_text("1 more choice is correct.")
    screenshot(page, "09-choice-feedback")

    choices.nth(2).locator("input").uncheck()
    choices.nth(1).locator("input").check()
    page.keyboard.press("Control+Enter")
    expect(verdict).to_have_attribute("data-status", "passed")
    expect(verdict).to_contain_text("Correct. Well done!")
    expect(page.locator("#explanation")).to_contain_text("walks that graph backwards")
    expect(page.locator(".history__link")).to_have_count(2)
    screenshot(page, "10-choice-passed")


def test_a_single_choice_item_uses_radio_buttons(new_page: Callable[..., Any], ada: Any, seed_quiz: None) -> None:
    page = new_page()
    log_in(page, next_url="/items/requires-grad-true-vs-false/")
    expect(page.locator("input[type=radio][name=choices]")).to_have_count(4)
    page.get_by_role("button", name="Check my answer").click()
    expect(page.locator("#form-error")).to_have_text("Choose an answer first.")
    page.locator(".choice").nth(1).locator("input").check()
    page.get_by_role("button", name="Check my answer").click()
    expect(page.locator("#verdict .verdict")).to_have_attribute("data-status", "failed")
    expect(page.locator(".choice").nth(1).locator(".choice__feedback")).to_contain_text("a result requires gradients")


def test_the_page_works_without_javascript(
        new_page: Callable[..., Any], screenshot: Callable[[Any, str], Path], ada: Any, seed_quiz: None,
        celery_worker: object) -> None:
    page = new_page(java_script_enabled=False)
    log_in(page, next_url=f"/items/{ITEM}/")
    expect(page.locator("textarea#code")).to_be_visible()
    expect(page.locator(".answer .CodeMirror")).to_have_count(0)
    expect(page.locator("details summary", has_text="Hint 1 of 3")).to_be_visible()
    page.locator("textarea#code").fill(CORRECT)
    page.get_by_role("button", name="Run and check").click()
    expect(page).to_have_url(re.compile(r"\?course=default&attempt=\d+#verdict$"))
    # The pending page refreshes itself until the verdict is in.
    expect(page.locator("#verdict .verdict")).to_have_attribute("data-status", "passed", timeout=VERDICT_TIMEOUT)
    expect(page.locator("#explanation")).to_contain_text("Autograd is a core feature")
    expect(page.locator("textarea#code")).to_have_value(CORRECT)
    screenshot(page, "11-no-javascript")

    # A page whose attempt is still being graded reloads itself until the verdict is stored.
    pending = Submission.objects.create(user=ada, course=default_course(), item=Item.objects.get(slug=ITEM), code=NO_BACKWARD, status="running")
    page.goto(f"/items/{ITEM}/?attempt={pending.pk}#verdict")
    expect(page.locator("#verdict .verdict")).to_have_attribute("data-status", "running")
    Submission.objects.filter(pk=pending.pk).update(status="failed", score=0.5)
    expect(page.locator("#verdict .verdict")).to_have_attribute("data-status", "failed", timeout=10_000)
    expect(page).to_have_url(re.compile(rf"\?course=default&attempt={pending.pk}&wait=\d+#verdict$"))


def test_signing_up_in_the_browser(
        new_page: Callable[..., Any], screenshot: Callable[[Any, str], Path], seed_quiz: None) -> None:
    page = new_page()
    page.goto("/")
    expect(page.get_by_text("Track your progress")).to_be_visible()
    screenshot(page, "12-anonymous-list")
    page.get_by_role("link", name="Sign up").first.click()
    page.get_by_label("Username").fill("newcomer")
    page.get_by_label("Password", exact=True).fill("a-long-pass-phrase")
    page.get_by_label("Password confirmation").fill("a-long-pass-phrase-typo")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("didn’t match")).to_be_visible()
    screenshot(page, "13-signup-error")
    page.get_by_label("Password", exact=True).fill("a-long-pass-phrase")
    page.get_by_label("Password confirmation").fill("a-long-pass-phrase")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("Signed in as")).to_contain_text("newcomer")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("navigation", name="Account").get_by_role("link", name="Log in")).to_be_visible()


def test_the_item_page_on_a_phone(
        new_page: Callable[..., Any], screenshot: Callable[[Any, str], Path], ada: Any, seed_quiz: None) -> None:
    page = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    log_in(page, next_url=f"/items/{ITEM}/")
    expect(page.locator(".answer .CodeMirror")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "horizontal scrolling"
    screenshot(page, "14-phone-item")


def test_unsent_code_and_opened_hints_come_back_in_another_browser(
        new_page: Callable[..., Any], ada: Any, seed_quiz: None) -> None:
    page = new_page()
    log_in(page, next_url=f"/items/{ITEM}/")
    expect(page.locator(".answer .CodeMirror")).to_be_visible()
    saved = lambda r: "/state/" in r.url and r.request.method == "PUT" and r.ok  # noqa: E731
    with page.expect_response(saved):  # saved a moment after the last keystroke
        set_code(page, NO_BACKWARD + "# my unsent work\n")
    with page.expect_response(saved):
        page.get_by_role("button", name=re.compile("Show a hint")).click()
    page.goto("/")
    other = new_page()  # another browser: nothing of the first one's storage
    log_in(other, next_url=f"/items/{ITEM}/")
    expect(other.locator(".hint").first).to_be_visible()
    expect(other.locator(".hint").nth(1)).to_be_hidden()
    restore = other.get_by_role("button", name="Restore your unsent draft")
    expect(restore).to_be_visible()
    restore.click()
    assert editor_code(other).endswith("# my unsent work\n")


def test_on_a_phone_the_editor_comes_first_and_long_lines_scroll(
        new_page: Callable[..., Any], screenshot: Callable[[Any, str], Path], ada: Any, seed_quiz: None) -> None:
    page = new_page(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    log_in(page, next_url=f"/items/{ITEM}/")
    set_code(page, NO_BACKWARD + "y_long = " + " + ".join(["x"] * 60) + "\n")
    editor = page.locator(".answer .CodeMirror")
    box = editor.bounding_box()
    task, hints = page.locator("section[aria-labelledby=task-title]").bounding_box(), page.locator("#hints").bounding_box()
    assert box is not None and task is not None and hints is not None
    # Right after the task (hints, explanation and history come below it): 1.07 screens down for this item's
    # long prompt, where it was 1.5 with the desktop order stacked.
    assert task["y"] + task["height"] <= box["y"] < hints["y"] and box["y"] < 1.1 * 844, (task, box, hints)
    assert box["x"] + box["width"] <= 390 + 1  # it fits the screen...
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # ...and the page does not scroll sideways
    scroller = page.locator(".answer .CodeMirror-scroll")
    assert scroller.evaluate("el => el.scrollWidth > el.clientWidth")  # the long line scrolls inside the editor
    expect(page.locator("#editor-help")).to_be_hidden()  # no keyboard help on a touch screen
    screenshot(page, "07-phone-item-page")
