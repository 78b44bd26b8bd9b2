"""The instructor panel in Chromium: the item page fits a 1280 px screen, checks move with ↑ ↓ and a new one
goes last, hints are a list, and the page says where the item's content lives."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from quiz.models import Item
from tests.factories import UserFactory

from .conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def prof(db: None) -> Any:
    return UserFactory(username="prof", is_staff=True, is_superuser=True)


def test_the_item_page_fits_the_screen_and_orders_checks_by_hand(
        new_page: Callable[..., Any], screenshot: Callable[[Any, str], Path], prof: Any, seed_quiz: None) -> None:
    item = Item.objects.get(slug="freeze-layer")
    page = new_page(viewport={"width": 1280, "height": 900})
    log_in(page, username="prof", next_url="/admin/")
    page.goto(f"/admin/quiz/item/{item.pk}/change/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    expect(page.locator(".field-source")).to_contain_text("From quiz/content/autograd-basics.yaml")
    expect(page.locator(".text-list textarea")).to_have_count(len(item.hints) + 1)

    rows = page.locator("#checks-group tr.form-row.has_original")
    first_target = rows.nth(0).locator("td.field-target input").input_value()
    rows.nth(1).get_by_role("button", name="Move up").click()
    assert rows.nth(1).locator("td.field-target input").input_value() == first_target
    orders = [rows.nth(i).locator("td.field-order input").input_value() for i in range(rows.count())]
    assert orders == [str(i) for i in range(rows.count())]

    page.locator("#checks-group .add-row a").click()
    added = page.locator("#checks-group tr.form-row.dynamic-checks:not(.has_original):not(.empty-form)").last
    assert added.locator("td.field-order input").input_value() == str(rows.count() + 1)  # after the blank row
    screenshot(page, "admin-01-item-checks")
