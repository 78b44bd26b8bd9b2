"""Existing installs keep working: every user, quiz and submission goes into a default course.

Quizzes are assigned with the policy that reproduces what the product did before
courses (unlimited attempts, no penalty or due date, explanation after passing or
the item's reveal_after_attempts); members of the instructors group and
superusers become its instructors, everyone else a learner; each earlier
gradable attempt gets its number and its score counts in full.
"""
import secrets

from django.conf import settings
from django.db import migrations

DEFAULT_SLUG = "default"
ATTEMPT_STATUSES = ("passed", "failed", "error", "timeout", "memory_limit", "output_limit")


def into_default_course(apps, schema_editor):
    Course = apps.get_model("courses", "Course")
    CourseQuiz = apps.get_model("courses", "CourseQuiz")
    Membership = apps.get_model("courses", "Membership")
    Quiz = apps.get_model("quiz", "Quiz")
    Submission = apps.get_model("grader", "Submission")
    User = apps.get_model(settings.AUTH_USER_MODEL)

    course, _ = Course.objects.get_or_create(slug=DEFAULT_SLUG, defaults={
        "title": "Autograd course", "self_enrol": True, "join_code": secrets.token_hex(4).upper()})
    for quiz in Quiz.objects.all():
        CourseQuiz.objects.get_or_create(course=course, quiz=quiz, defaults={"order": quiz.order})
    for user in User.objects.all():
        staff = user.is_superuser or (user.is_staff and user.groups.filter(name="instructors").exists())
        Membership.objects.get_or_create(course=course, user=user,
                                         defaults={"role": "instructor" if staff else "learner", "source": "site"})
    Submission.objects.filter(course__isnull=True).update(course=course)
    counts: dict[tuple[int, int], int] = {}
    for submission in Submission.objects.order_by("created_at", "id").only("id", "user_id", "item_id", "status",
                                                                             "score"):
        attempt = None
        if submission.status in ATTEMPT_STATUSES:
            key = (submission.user_id, submission.item_id)
            counts[key] = attempt = counts.get(key, 0) + 1
        Submission.objects.filter(pk=submission.pk).update(attempt=attempt, final_score=submission.score)


class Migration(migrations.Migration):
    dependencies = [
        ("grader", "0004_submission_course_policy"),
        ("courses", "0001_initial"),
        ("quiz", "0003_item_max_attempts"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(into_default_course, migrations.RunPython.noop)]
