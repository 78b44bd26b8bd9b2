"""System checks for settings that would otherwise fail silently."""
from __future__ import annotations

from typing import Any

from celery.app.defaults import NAMESPACES, flatten
from django.conf import settings
from django.core.checks import Error, register

# Plus the one key Celery's Django fixup reads itself (celery/fixups/django.py).
CELERY_KEYS = {key for key, _option in flatten(NAMESPACES)} | {"db_reuse_max"}


@register()
def celery_setting_names(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """A misspelt CELERY_ setting (CELERY_TAKS_ACKS_LATE) sets nothing at all: refuse it."""
    errors = []
    for name in dir(settings):
        if name.startswith("CELERY_") and name[len("CELERY_"):].lower() not in CELERY_KEYS:
            errors.append(Error(f"{name} is not a Celery setting", hint="Check the spelling against "
                                "https://docs.celeryq.dev/en/stable/userguide/configuration.html",
                                id="config.E001"))
    return errors
