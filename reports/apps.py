from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """The instructor reports: regrades, statistics and the gradebook (no models of their own; an app so
    that its templates are found)."""

    name = "reports"
    verbose_name = "Reports"
