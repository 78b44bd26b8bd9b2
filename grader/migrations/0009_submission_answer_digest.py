"""Submissions keep a digest of their answer, so the repeat rule ("you already sent this exact answer") compares
one column in the query that counts attempts instead of loading up to 200 earlier answers. Existing rows are
filled here with the digest grader.models.answer_digest computes (copied: a migration must not change when the
app's code does)."""
import hashlib
import json
from typing import Any

from django.db import migrations, models

BATCH = 1000


def _digest(code: str, selected: list[int], params: dict[str, Any]) -> str:
    normalised = "\n".join(line.rstrip() for line in code.replace("\r\n", "\n").strip().splitlines())
    text = json.dumps([normalised, sorted(selected), params], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def fill_digests(apps: Any, schema_editor: Any) -> None:
    Submission = apps.get_model("grader", "Submission")
    rows = Submission.objects.filter(answer_digest="").only("id", "code", "selected", "params").order_by("pk")
    batch = []
    for row in rows.iterator(chunk_size=BATCH):
        row.answer_digest = _digest(row.code, row.selected or [], row.params or {})
        batch.append(row)
        if len(batch) >= BATCH:
            Submission.objects.bulk_update(batch, ["answer_digest"])
            batch = []
    if batch:
        Submission.objects.bulk_update(batch, ["answer_digest"])


class Migration(migrations.Migration):
    dependencies = [
        ("grader", "0008_submission_lease"),
    ]

    operations = [
        migrations.AddField(
            model_name="submission",
            name="answer_digest",
            field=models.CharField(blank=True, editable=False, max_length=64, help_text=(
                "sha256 of the answer as the repeat rule compares answers; kept by save() from code, selected "
                "and params")),
        ),
        migrations.RunPython(fill_digests, migrations.RunPython.noop),
    ]
