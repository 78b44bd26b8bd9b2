"""Who reaches the admin, and what the instructors group may do there."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.test import Client

from courses.roles import instructors_group_sync
from courses.services import default_course
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PANEL_PERMISSIONS = {
    "quiz.view_quiz", "quiz.add_quiz", "quiz.change_quiz", "quiz.delete_quiz",
    "quiz.view_item", "quiz.add_item", "quiz.change_item", "quiz.delete_item",
    "quiz.view_check", "quiz.add_check", "quiz.change_check", "quiz.delete_check",
    "quiz.view_choice", "quiz.add_choice", "quiz.change_choice", "quiz.delete_choice",
    "grader.view_submission", "grader.regrade_submission", "grader.view_submissiongrading",
    # courses: which ones they may see or change is decided per course, by their role in it
    "courses.view_course", "courses.add_course", "courses.change_course",
    "courses.view_membership", "courses.add_membership", "courses.change_membership", "courses.delete_membership",
    "courses.view_coursequiz", "courses.add_coursequiz", "courses.change_coursequiz", "courses.delete_coursequiz",
}


def group_permissions(group: Group) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def test_migrate_makes_the_group_even_on_an_emptied_database() -> None:
    Group.objects.filter(name="instructors").delete()
    call_command("migrate", verbosity=0)
    assert group_permissions(Group.objects.get(name="instructors")) == PANEL_PERMISSIONS


def test_the_instructors_group_has_exactly_the_panel_permissions(instructors_group: Group) -> None:
    assert group_permissions(instructors_group) == PANEL_PERMISSIONS


def test_the_sync_takes_back_permissions_granted_to_the_group(instructors_group: Group) -> None:
    instructors_group.permissions.add(Permission.objects.get(codename="change_user"))
    instructors_group.permissions.remove(Permission.objects.get(codename="regrade_submission"))
    instructors_group_sync()
    assert group_permissions(instructors_group) == PANEL_PERMISSIONS


def test_an_instructor_is_staff_but_not_superuser(instructor: User) -> None:
    assert instructor.is_staff and not instructor.is_superuser
    assert instructor.has_perm("grader.regrade_submission")
    assert not instructor.has_perm("auth.view_user")


def test_a_learner_gets_no_admin_but_the_login_page(client: Client, learner: User) -> None:
    client.force_login(learner)
    for url in ("/admin/", "/admin/quiz/quiz/", "/admin/grader/submission/", "/admin/grader/submission/gradebook.csv"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/?next="), url


def test_an_anonymous_visitor_is_sent_to_the_login_page(client: Client) -> None:
    response = client.get("/admin/quiz/item/")
    assert response.status_code == 302 and response["Location"] == "/admin/login/?next=/admin/quiz/item/"


def test_an_instructor_sees_quizzes_items_and_submissions(instructor_client: Client, seed_quiz: None) -> None:
    index = instructor_client.get("/admin/")
    assert index.status_code == 200
    body = index.content.decode()
    for link in ("/admin/quiz/quiz/", "/admin/quiz/item/", "/admin/grader/submission/",
                 "/admin/grader/submissiongrading/"):
        assert f'href="{link}"' in body
        assert instructor_client.get(link).status_code == 200, link
    assert 'href="/admin/auth/user/"' not in body and 'href="/admin/auth/group/"' not in body


def test_an_instructor_cannot_manage_users_or_groups(instructor_client: Client) -> None:
    for url in ("/admin/auth/user/", "/admin/auth/group/", "/admin/auth/user/add/", "/admin/auth/group/add/"):
        assert instructor_client.get(url).status_code == 403, url


def test_an_instructor_granted_user_permissions_can_manage_users(client: Client, instructor: User) -> None:
    instructor.user_permissions.add(Permission.objects.get(codename="view_user"),
                                    Permission.objects.get(codename="change_user"))
    client.force_login(instructor)
    assert client.get("/admin/auth/user/").status_code == 200
    assert client.get(f"/admin/auth/user/{instructor.pk}/change/").status_code == 200
    assert client.get("/admin/auth/group/").status_code == 403


def test_staff_without_the_regrade_permission_cannot_regrade(client: Client, seed_quiz: None) -> None:
    viewer = UserFactory.create(username="assistant", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_submission"),
                                Permission.objects.get(codename="view_item"))
    client.force_login(viewer)
    changelist = client.get("/admin/grader/submission/")
    assert changelist.status_code == 200
    assert "regrade_selected" not in changelist.content.decode()
    items = client.get("/admin/quiz/item/")
    assert "regrade_submissions" not in items.content.decode()
    response = client.post("/admin/grader/submission/", {"action": "regrade_selected", "_selected_action": ["1"]})
    assert response.status_code == 200  # Django refuses an action the user lacks: "No action selected."
    from grader.models import RegradeBatch

    assert not RegradeBatch.objects.exists()


def test_submissions_cannot_be_added_changed_or_deleted_by_an_instructor(
        instructor_client: Client, learner: User, seed_quiz: None) -> None:
    from grader.models import Submission
    from quiz.models import Item

    submission = Submission.objects.create(user=learner, course=default_course(), item=Item.objects.get(slug="grad-of-polynomial"),
                                           code="x = 1", status="failed", score=0.0)
    assert instructor_client.get("/admin/grader/submission/add/").status_code == 403
    assert instructor_client.get(f"/admin/grader/submission/{submission.pk}/delete/").status_code == 403
    response = instructor_client.post(f"/admin/grader/submission/{submission.pk}/change/", {"code": "changed"})
    assert response.status_code == 403
    submission.refresh_from_db()
    assert submission.code == "x = 1"
