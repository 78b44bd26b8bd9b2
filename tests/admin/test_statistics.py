"""Statistics per quiz and per item, on submissions with known verdicts."""
from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from reports.statistics import Stats, error_summary, item_statistics, quiz_statistics

from .conftest import NAME_ERROR, TIMEOUT

pytestmark = pytest.mark.django_db


def test_statistics_of_each_item_and_of_the_quiz(known_submissions: dict[str, Any]) -> None:
    stats = quiz_statistics(quiz=known_submissions["quiz"])
    assert [row.item.slug for row in stats.items] == ["poly", "concepts", "unused"]  # not the archived one
    poly, concepts, unused = (row.stats for row in stats.items)
    assert poly == Stats(attempts=8, learners=3, passed=2, pairs=3, median_attempts_to_pass=2.5,
                         failing_check=("x.grad", 3), frequent_error=("NameError: name 'z' is not defined", 2))
    assert poly.pass_rate == pytest.approx(2 / 3)
    assert concepts == Stats(attempts=5, learners=4, passed=2, pairs=4, median_attempts_to_pass=1.5,
                             failing_check=("Choice 3", 2), frequent_error=None)
    assert concepts.pass_rate == 0.5
    assert unused == Stats()
    assert unused.pass_rate is None
    assert stats.totals == Stats(attempts=13, learners=4, passed=4, pairs=7, median_attempts_to_pass=2,
                                 failing_check=("poly: x.grad", 3),
                                 frequent_error=("NameError: name 'z' is not defined", 2))
    assert stats.totals.pass_rate == pytest.approx(4 / 7)


def test_statistics_of_an_archived_item(known_submissions: dict[str, Any]) -> None:
    assert item_statistics(item=known_submissions["old"]) == Stats(
        attempts=1, learners=1, passed=1, pairs=1, median_attempts_to_pass=1)


def test_ties_go_to_the_first_name_in_alphabetical_order(known_submissions: dict[str, Any]) -> None:
    from tests.factories import SubmissionFactory

    extra, grace = known_submissions["extra"], known_submissions["users"]["grace"]
    SubmissionFactory.create(user=grace, item=extra, status="failed", score=0.5,
                             checks=[{"name": "y", "passed": False, "message": "", "hidden": False, "weight": 1.0}])
    SubmissionFactory.create(user=grace, item=extra, status="error", error="ZeroDivisionError: division by zero")
    SubmissionFactory.create(user=grace, item=extra, status="error", error="AssertionError")
    stats = item_statistics(item=extra)
    assert stats.failing_check == ("x.grad", 1)
    assert stats.frequent_error == ("AssertionError", 1)


def test_the_error_summary_is_the_line_that_names_the_error() -> None:
    assert error_summary(NAME_ERROR) == "NameError: name 'z' is not defined"
    assert error_summary(TIMEOUT) == TIMEOUT
    assert error_summary("  line 2\n    x = = 1\n      ^\nSyntaxError: invalid syntax") == "SyntaxError: invalid syntax"
    assert error_summary("Your code ran out of its 256 MB memory budget.\nTraceback (most recent call last):\n"
                         "MemoryError") == "Your code ran out of its 256 MB memory budget."
    assert error_summary("") == ""
    assert len(error_summary("E" * 500)) == 200


def test_the_statistics_page_shows_the_table_and_svg_charts(
        instructor_client: Client, known_submissions: dict[str, Any]) -> None:
    quiz = known_submissions["quiz"]
    response = instructor_client.get(f"/admin/quiz/quiz/{quiz.pk}/statistics/")
    assert response.status_code == 200
    body = response.content.decode()
    row = body[body.index('<tr id="item-poly">'):]
    row = row[: row.index("</tr>")]
    for cell in ('<td class="num">8</td>', '<td class="num">3</td>', '<td class="num">2</td>',
                 '<td class="num">67%</td>', '<td class="num">2.5</td>', "<code>x.grad</code> (3×)",
                 "<code>NameError: name &#x27;z&#x27; is not defined</code> (2×)"):
        assert cell in row, cell
    totals = body[body.index('<tr class="totals">'):]
    assert '<td class="num">13</td>' in totals and '<td class="num">57%</td>' in totals
    assert "<code>poly: x.grad</code> (3×)" in totals
    # inline SVG bars, drawn on the server: 300 px is 100 %
    content = body.split('id="content-main"')[1]
    assert content.count('<svg class="stats-chart"') == 2 and "<script" not in content
    assert '<rect class="bar-pass" x="200" y="5" width="200.0"' in body  # poly: 2/3
    assert '<rect class="bar-pass" x="200" y="29" width="150.0"' in body  # concepts: 1/2
    assert '<rect class="bar-attempts" x="200" y="5" width="300.0"' in body  # poly: 8 of 8
    assert '<rect class="bar-attempts" x="200" y="29" width="187.5"' in body  # concepts: 5 of 8
    assert '<rect class="bar-attempts" x="200" y="53" width="0.0"' in body  # unused


def test_the_item_form_shows_the_items_statistics(instructor_client: Client, known_submissions: dict[str, Any]) -> None:
    body = instructor_client.get(f"/admin/quiz/item/{known_submissions['poly'].pk}/change/").content.decode()
    assert ("8 attempt(s) by 3 learner(s), 2 passed (67%); median 2.5 attempt(s) to pass; most failing check: "
            "x.grad (3×); most frequent error: NameError: name &#x27;z&#x27; is not defined (2×)") in body


def test_the_statistics_page_needs_the_submission_view_permission(
        client: Client, known_submissions: dict[str, Any]) -> None:
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    editor = UserFactory.create(username="editor", is_staff=True)
    editor.user_permissions.add(Permission.objects.get(codename="view_quiz"))
    client.force_login(editor)
    assert client.get(f"/admin/quiz/quiz/{known_submissions['quiz'].pk}/statistics/").status_code == 403
