"""Submissions remember the client's Idempotency-Key, unique per learner, so a retried POST stores nothing new."""
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("grader", "0006_submission_course_required"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="submission",
            name="idempotency_key",
            field=models.CharField(blank=True, editable=False, max_length=100, null=True, help_text=(
                "The client's Idempotency-Key: a retry that sends it again gets this submission back")),
        ),
        migrations.AddConstraint(
            model_name="submission",
            constraint=models.UniqueConstraint(condition=models.Q(("idempotency_key__isnull", False)),
                                               fields=("user", "idempotency_key"),
                                               name="unique_idempotency_key_per_user"),
        ),
    ]
