"""The read-only submission list and view."""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client
from django.utils import timezone

from grader.models import Submission

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as TestResponse

pytestmark = pytest.mark.django_db


def result_ids(response: TestResponse) -> list[int]:
    assert response.status_code == 200
    return sorted(s.pk for s in response.context["cl"].result_list)


def ids(**filters: object) -> list[int]:
    return sorted(Submission.objects.filter(**filters).values_list("pk", flat=True))


def test_filters_and_search(instructor_client: Client, known_submissions: dict[str, Any]) -> None:
    data = known_submissions
    url = "/admin/grader/submission/"
    assert len(result_ids(instructor_client.get(url))) == 19
    assert result_ids(instructor_client.get(url, {"quiz": data["second"].pk})) == ids(item=data["extra"])
    concepts, bob = data["concepts"], data["users"]["bob"]
    assert result_ids(instructor_client.get(url, {"item__id__exact": concepts.pk})) == ids(item=concepts)
    assert result_ids(instructor_client.get(url, {"user__id__exact": bob.pk})) == ids(user=bob)
    assert result_ids(instructor_client.get(url, {"status__exact": "error"})) == ids(status="error")
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    since_today = {"created_at__gte": today.isoformat(), "created_at__lt": (today + timedelta(days=1)).isoformat()}
    assert len(result_ids(instructor_client.get(url, since_today))) == 19
    Submission.objects.filter(pk=ids(item=data["extra"])[0]).update(created_at=today - timedelta(days=3))
    assert len(result_ids(instructor_client.get(url, since_today))) == 18
    assert result_ids(instructor_client.get(url, {"q": "grace"})) == ids(user__username="grace")
    assert result_ids(instructor_client.get(url, {"q": "concepts"})) == ids(item__slug="concepts")
    Submission.objects.filter(pk=ids(item=data["extra"])[0]).update(code="import torch\nspecial_marker = 1\n")
    assert result_ids(instructor_client.get(url, {"q": "special_marker"})) == ids(item=data["extra"])
    body = instructor_client.get(url).content.decode()
    for title in ("By quiz", "By item", "By user", "By status", "By created at"):
        assert title in body, title


def test_the_change_view_is_read_only_with_highlighted_code_and_results(
        instructor_client: Client, known_submissions: dict[str, Any]) -> None:
    submission = Submission.objects.get(item=known_submissions["extra"])
    Submission.objects.filter(pk=submission.pk).update(
        code="import torch\nx = torch.tensor(2.0)\nprint('<b>hi</b>')\n", stdout="<b>hi</b>\n",
        error="NameError: name 'q' is not defined", error_line=3)
    response = instructor_client.get(f"/admin/grader/submission/{submission.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert '<span class="kn">import</span><span class="w"> </span><span class="nn">torch</span>' in body  # Pygments
    assert "quiz/css/pygments.css" in body
    assert "&lt;b&gt;hi&lt;/b&gt;" in body and "<b>hi</b>" not in body  # output is escaped
    assert '<tr class="check-failed"><td>x.grad</td><td>✗ failed</td>' in body
    assert '<tr class="check-passed"><td>y</td><td>✓ passed</td>' in body
    assert "NameError: name &#x27;q&#x27; is not defined" in body and "(line 3)" in body
    assert 'name="_save"' not in body and "<textarea" not in body
    assert "version 1 (current)" in body


def test_the_view_says_when_the_item_changed_since_grading(
        instructor_client: Client, known_submissions: dict[str, Any]) -> None:
    from quiz.models import Item

    Item.objects.filter(pk=known_submissions["extra"].pk).update(version=3)
    submission = Submission.objects.get(item=known_submissions["extra"])
    body = instructor_client.get(f"/admin/grader/submission/{submission.pk}/change/").content.decode()
    assert "graded against item version 1, now version 3" in body
    listing = instructor_client.get("/admin/grader/submission/", {"item__id__exact": known_submissions["extra"].pk})
    assert ('<span class="version-note" title="graded against item version 1, now version 3">v1 (now v3)</span>'
            in listing.content.decode())
