"""A course's roster from its platform (Names and Role Provisioning Services): every active member gets
a user and a membership, with the role the platform gives them."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from lti_tool.models import LtiUser
from pylti1p3.names_roles import NamesRolesProvisioningService

from courses.services import membership_ensure

from .identity import SOURCE, role_from_lti, user_for_lti_user
from .models import CourseContext
from .tool import platform_error, service_connector

logger = logging.getLogger(__name__)


class RosterUnavailable(Exception):
    """The platform gave no memberships (NRPS) URL for the course."""


@dataclass(frozen=True)
class RosterResult:
    members: int
    enrolled: int
    skipped: int


def _member_defaults(member: dict[str, Any]) -> dict[str, Any]:
    # NRPS leaves status and roles optional (Active, none); django-lti's update_memberships reads both.
    return {"status": "Active", "roles": [], **member}


def roster_sync(*, course_context: CourseContext) -> RosterResult:
    """Read the course's members from the platform (Names and Role Provisioning Services) and give every
    active one a user and a membership with their mapped role. Raises PlatformUnavailable when the
    platform cannot be reached (retry later), RosterUnavailable when it offers no roster for the course."""
    lti_context = course_context.context
    if not lti_context.memberships_url:
        raise RosterUnavailable(f"{lti_context} has no memberships URL: the platform did not offer its roster "
                                "(Names and Role Provisioning Services) in a launch")
    nrps = NamesRolesProvisioningService(service_connector(lti_context.deployment.registration),
                                         {"context_memberships_url": lti_context.memberships_url})
    try:
        members = [_member_defaults(m) for m in nrps.get_members() if m.get("user_id")]
    except Exception as exc:
        raise platform_error(exc, f"reading the roster of {lti_context}") from exc

    enrolled = skipped = 0
    with transaction.atomic():
        lti_context.update_memberships(members)
        lti_users = {u.sub: u for u in LtiUser.objects.filter(registration=lti_context.deployment.registration,
                                                              sub__in=[m["user_id"] for m in members])
                     .select_related("registration", "auth_user")}
        for member in members:
            if member["status"] != "Active":
                skipped += 1
                continue
            user = user_for_lti_user(lti_user=lti_users[member["user_id"]])
            membership_ensure(course=course_context.course, user=user, role=role_from_lti(member["roles"]),
                              source=SOURCE)
            enrolled += 1
        course_context.roster_synced_at = timezone.now()
        course_context.save(update_fields=["roster_synced_at"])
    logger.info("roster of %s: %d members, %d enrolled, %d not active", lti_context, len(members), enrolled, skipped)
    return RosterResult(members=len(members), enrolled=enrolled, skipped=skipped)
