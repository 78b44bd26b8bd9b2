from django.apps import AppConfig


class GraderConfig(AppConfig):
    name = "grader"
    verbose_name = "Grading"

    def ready(self) -> None:
        from config import checks  # noqa: F401 - registers the settings checks
        from . import signals  # noqa: F401 - the per-worker-process zygote
