"""What the tool adds to django-lti's records: which Course a platform's course is, which quiz a
resource link opens, and what score was last sent to a line item for a user."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from lti_tool.models import LtiContext, LtiLineItem, LtiResourceLink

from courses.models import Course
from quiz.models import Quiz


class CourseContext(models.Model):
    """A platform's course (an LTI context) and our Course for it: made at its first launch."""

    context = models.OneToOneField(LtiContext, on_delete=models.CASCADE, related_name="course_link")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="lti_contexts")
    roster_synced_at = models.DateTimeField(null=True, blank=True,
                                            help_text="Last time the members were read from the platform (NRPS)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "LTI course"
        verbose_name_plural = "LTI courses"

    def __str__(self) -> str:
        return f"{self.context} → {self.course.slug}"


class QuizLink(models.Model):
    """A resource link placed in the platform's course (by deep linking), and the quiz it opens."""

    resource_link = models.OneToOneField(LtiResourceLink, on_delete=models.CASCADE, related_name="quiz_link")
    quiz = models.ForeignKey(Quiz, on_delete=models.CASCADE, related_name="lti_links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "LTI quiz link"

    def __str__(self) -> str:
        return f"{self.resource_link} → {self.quiz.slug}"


class ScoreSent(models.Model):
    """The score last sent to a platform's line item for one user, and the verdict it came from.

    Score tasks can arrive twice or out of order; a task whose verdict is older than the one recorded
    here is dropped, so a platform never sees an older score after a newer one.
    """

    line_item = models.ForeignKey(LtiLineItem, on_delete=models.CASCADE, related_name="scores_sent")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField(null=True, blank=True, help_text="In [0, 1]; sent scaled to the line item's maximum")
    verdict_at = models.DateTimeField(null=True, blank=True,
                                      help_text="When the verdict behind it was stored (the score's timestamp)")
    submission_id = models.BigIntegerField(null=True, blank=True, help_text="The attempt whose grading sent it")
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "LTI score sent"
        verbose_name_plural = "LTI scores sent"
        constraints = [models.UniqueConstraint(fields=["line_item", "user"], name="one_score_record_per_line_item")]

    def __str__(self) -> str:
        return f"{self.user} on {self.line_item}: {self.score}"
