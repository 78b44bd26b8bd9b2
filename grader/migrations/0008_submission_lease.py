"""Claims become leases: a running submission whose lease ran out (its worker died) is re-queued within seconds,
and the learner is told it was re-queued."""
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("grader", "0007_submission_idempotency_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="submission",
            name="lease_until",
            field=models.DateTimeField(blank=True, editable=False, null=True, help_text=(
                "While running: the claim holds until then unless its task renews it")),
        ),
        migrations.AddField(
            model_name="submission",
            name="requeued_at",
            field=models.DateTimeField(blank=True, editable=False, null=True, help_text=(
                "Last time the sweep sent it again (its worker died or its queue message was lost); equal to "
                "queued_at while that sending is the latest")),
        ),
    ]
