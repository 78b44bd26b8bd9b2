from django.apps import AppConfig


class GraderConfig(AppConfig):
    name = "grader"
    verbose_name = "Grading"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from config import checks  # noqa: F401 - registers the settings checks

        from . import signals  # noqa: F401 - the per-worker-process zygote
        from courses.roles import instructors_group_sync

        # After auth's own receiver (auth comes first in INSTALLED_APPS), so permissions exist.
        post_migrate.connect(instructors_group_sync, sender=self, dispatch_uid="instructors-group")
