"""Names and Role Provisioning Services: the platform's roster of a course becomes users and memberships
with their roles; an instructor's launch queues it; the admin can run it."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from lti_tool.models import LtiUser
from pytest_django.fixtures import DjangoCaptureOnCommitCallbacks

from courses.models import Membership
from lti import services
from lti.models import CourseContext
from lti.roster import RosterUnavailable, roster_sync
from lti.tool import PlatformUnavailable
from tests.factories import UserFactory

from .conftest import Launcher
from .platform import NRPS, ROLE_INSTRUCTOR, ROLE_LEARNER, ROLE_TA, Platform

MEMBERS = [
    {"user_id": "teacher-1", "roles": [ROLE_INSTRUCTOR], "status": "Active", "name": "Grace Hopper",
     "given_name": "Grace", "family_name": "Hopper", "email": "grace@example.edu"},
    {"user_id": "ta-1", "roles": [ROLE_INSTRUCTOR, ROLE_TA], "name": "Alan Turing"},  # status left out: Active
    {"user_id": "learner-7", "roles": [ROLE_LEARNER], "status": "Active", "given_name": "Ada",
     "family_name": "Lovelace", "email": "ada@example.edu"},
    {"user_id": "learner-8", "roles": ["Learner"], "status": "Active"},
    {"user_id": "gone-1", "roles": [ROLE_LEARNER], "status": "Inactive"},
]


@pytest.fixture
def no_background_sync(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Instructor launches queue a roster sync; these tests run it themselves."""
    queued: list[int] = []
    monkeypatch.setattr(services.sync_roster, "delay", queued.append)
    return queued


def launch_instructor(client: Client, platform: Platform) -> CourseContext:
    response = Launcher(client, platform).launch(platform.claims(sub="teacher-1", roles=[ROLE_INSTRUCTOR]))
    assert response.status_code == 302, response.content[:500]
    return CourseContext.objects.select_related("course", "context__deployment__registration").get()


def roles_by_sub(course_context: CourseContext) -> dict[str, str]:
    return {LtiUser.objects.get(auth_user=m.user).sub: m.role
            for m in Membership.objects.filter(course=course_context.course).select_related("user")}


def test_roster_sync_enrols_every_active_member_with_their_role(
        client: Client, live_platform: Platform, no_background_sync: list[int]) -> None:
    course_context = launch_instructor(client, live_platform)
    live_platform.members["course-101"] = MEMBERS

    result = roster_sync(course_context=course_context)

    assert (result.members, result.enrolled, result.skipped) == (5, 4, 1)
    assert roles_by_sub(course_context) == {"teacher-1": Membership.Role.INSTRUCTOR, "ta-1": Membership.Role.TA,
                                            "learner-7": Membership.Role.LEARNER,
                                            "learner-8": Membership.Role.LEARNER}
    assert get_user_model().objects.filter(lti_users__sub="teacher-1").count() == 1, "the launcher is not duplicated"
    ada = get_user_model().objects.get(lti_users__sub="learner-7")
    assert (ada.get_full_name(), ada.email, ada.has_usable_password()) == ("Ada Lovelace", "ada@example.edu", False)
    assert set(Membership.objects.filter(course=course_context.course).values_list("source", flat=True)) == {"lti"}
    course_context.refresh_from_db()
    assert course_context.roster_synced_at is not None

    # Run again: nothing doubles, and the learner who launched later is the same user.
    assert roster_sync(course_context=course_context).enrolled == 4
    assert Membership.objects.filter(course=course_context.course).count() == 4
    Launcher(client.__class__(), live_platform).launch(live_platform.claims(sub="learner-7"))
    assert get_user_model().objects.filter(lti_users__sub="learner-7").count() == 1


def test_an_instructor_launch_queues_a_roster_sync_and_a_learner_launch_does_not(
        client: Client, platform: Platform, no_background_sync: list[int],
        django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        Launcher(client, platform).launch(platform.claims(sub="learner-7"))
    assert no_background_sync == []
    with django_capture_on_commit_callbacks(execute=True):
        Launcher(client, platform).launch(platform.claims(sub="teacher-1", roles=[ROLE_INSTRUCTOR]))
    assert no_background_sync == [CourseContext.objects.get().pk]


def test_a_course_without_a_roster_url_says_so(
        client: Client, platform: Platform, no_background_sync: list[int]) -> None:
    claims = platform.claims(sub="teacher-1", roles=[ROLE_INSTRUCTOR], nrps=False)
    assert NRPS not in claims
    Launcher(client, platform).launch(claims)
    with pytest.raises(RosterUnavailable, match="no memberships URL"):
        roster_sync(course_context=CourseContext.objects.get())


def test_an_unreachable_platform_is_a_fault_to_retry(
        client: Client, platform: Platform, no_background_sync: list[int]) -> None:
    course_context = launch_instructor(client, platform)
    platform.stop()  # nothing listens at its token URL any more
    with pytest.raises(PlatformUnavailable):
        roster_sync(course_context=course_context)
    assert Membership.objects.filter(course=course_context.course).count() == 1


def test_the_admin_syncs_a_roster_on_demand(
        client: Client, live_platform: Platform, no_background_sync: list[int]) -> None:
    course_context = launch_instructor(client, live_platform)
    live_platform.members["course-101"] = MEMBERS
    admin = UserFactory.create(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)

    changelist = reverse("admin:lti_coursecontext_changelist")
    page = client.get(changelist)
    assert page.status_code == 200
    assert "Deep learning 101" in page.content.decode()
    response = client.post(changelist, {"action": "sync_roster", "_selected_action": [course_context.pk]}, follow=True)
    assert "4 enrolled, 1 not active" in response.content.decode()
    assert Membership.objects.filter(course=course_context.course).count() == 4
