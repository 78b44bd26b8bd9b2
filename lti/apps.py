from django.apps import AppConfig


class LtiConfig(AppConfig):
    name = "lti"
    verbose_name = "LTI"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from grader.events import attempt_graded

        from .receivers import attempt_graded_publish

        # The grading pipeline knows nothing of LMSs: it announces verdicts, and we pass scores on.
        attempt_graded.connect(attempt_graded_publish, dispatch_uid="lti.publish_score")
