import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("grader", "0005_default_course")]

    operations = [
        migrations.AlterField(
            model_name="submission",
            name="course",
            field=models.ForeignKey(help_text="The course the attempt was made in (its policy applies)",
                                    on_delete=django.db.models.deletion.PROTECT, related_name="submissions",
                                    to="courses.course"),
        ),
    ]
