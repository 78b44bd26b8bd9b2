"""Who and where a platform's people are here: a platform user becomes our user, a platform's course
our Course, LTI roles our course roles.

Identity goes only through django-lti's LtiUser (registration + `sub`), never through a username or an
e-mail address: a platform vouches for its own users, not for accounts made on this site.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.crypto import get_random_string
from django.utils.text import slugify
from lti_tool.models import LtiContext, LtiUser

from courses.models import Course, Membership

from .models import CourseContext

SOURCE = "lti"  # Membership.source of everyone enrolled through a platform


def role_from_lti(roles: Iterable[str]) -> str:
    """Our course role for LTI context roles: Administrator or Instructor → instructor, TeachingAssistant
    → TA, anything else → learner.

    Only context roles count (membership#..., or the short names the spec allows): a platform's
    institution or system roles say who someone is at the school, not in this course. A teaching
    assistant arrives as the sub-role Instructor#TeachingAssistant, usually with Instructor beside it,
    so the sub-role is read first.
    """
    names = set()
    for role in roles:
        if "/institution/" in role or "/system/" in role:
            continue
        names.add(re.split(r"[#/]", role)[-1])
    if "Administrator" in names:
        return Membership.Role.INSTRUCTOR
    if "TeachingAssistant" in names:
        return Membership.Role.TA
    if "Instructor" in names:
        return Membership.Role.INSTRUCTOR
    return Membership.Role.LEARNER


def lti_username(*, issuer: str, sub: str) -> str:
    """`lti-` and a hash of the platform and the user's id there: stable, and says nothing about them."""
    return "lti-" + hashlib.sha256(f"{issuer}\n{sub}".encode()).hexdigest()[:16]


def _profile(lti_user: LtiUser) -> dict[str, str]:
    """The names and e-mail the platform sent, as User fields (only those it sent)."""
    fields = {}
    if lti_user.given_name or lti_user.family_name:
        fields["first_name"] = lti_user.given_name[:150]
        fields["last_name"] = lti_user.family_name[:150]
    elif lti_user.name:
        fields["first_name"] = lti_user.name[:150]
    if lti_user.email:
        try:
            validate_email(lti_user.email)
            fields["email"] = lti_user.email[:254]
        except ValidationError:
            pass
    return fields


def user_for_lti_user(*, lti_user: LtiUser) -> Any:
    """The Django user of a platform user: their own, or a new one (unusable password: they only come
    in through the platform). The same person through two registrations of one platform (same issuer
    and `sub`) is one user. Names and e-mail follow the platform's latest. Call inside a transaction."""
    User = get_user_model()
    issuer = lti_user.registration.issuer
    # Locked: a launch and a roster sync mapping the same platform user at once make one user, not two.
    lti_user = LtiUser.objects.select_for_update().get(pk=lti_user.pk)
    user = lti_user.auth_user
    if user is None:
        twin = (LtiUser.objects.filter(registration__issuer=issuer, sub=lti_user.sub, auth_user__isnull=False)
                .select_related("auth_user").first())
        user = twin.auth_user if twin else None
    if user is None:
        username = lti_username(issuer=issuer, sub=lti_user.sub)
        # The username is taken only if someone chose it on the sign-up page: never adopt that account.
        if User.objects.filter(username=username).exists():
            username = f"{username}-{get_random_string(6).lower()}"
        user = User(username=username, **_profile(lti_user))
        user.set_unusable_password()
        user.save()
    else:
        changed = {k: v for k, v in _profile(lti_user).items() if getattr(user, k) != v}
        if changed:
            for field, value in changed.items():
                setattr(user, field, value)
            user.save(update_fields=list(changed))
    if lti_user.auth_user_id != user.pk:
        lti_user.auth_user = user
        lti_user.save(update_fields=["auth_user", "datetime_modified"])
    return user


def course_slug(*, lti_context: LtiContext) -> str:
    """A readable slug for a platform's course, unique through a hash of where it comes from."""
    registration = lti_context.deployment.registration
    identity = "\n".join([registration.issuer, registration.client_id, lti_context.deployment.deployment_id,
                          lti_context.id_on_platform])
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    stem = slugify(lti_context.label or lti_context.title)[:36].strip("-") or "lti"
    return f"{stem}-{digest}"


def course_for_context(*, lti_context: LtiContext) -> CourseContext:
    """Our course for a platform's course: made, with its link, at the first launch from it."""
    existing = CourseContext.objects.select_related("course").filter(context=lti_context).first()
    if existing is not None:
        return existing
    title = (lti_context.title or lti_context.label or f"Course {lti_context.id_on_platform}")[:200]
    course, _ = Course.objects.get_or_create(slug=course_slug(lti_context=lti_context), defaults={"title": title})
    try:
        with transaction.atomic():
            return CourseContext.objects.create(context=lti_context, course=course)
    except IntegrityError:  # a concurrent first launch made it
        return CourseContext.objects.select_related("course").get(context=lti_context)


