"""manage.py create_demo_users"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from courses.services import demo_users_ensure


class Command(BaseCommand):
    help = ("Create (or reset) the demo learner and demo instructor used by `make run`, and print their logins. "
            "Refuses to run unless DEBUG is on: demo passwords are public.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("demo users are for development only (DEBUG is off)")
        for role, username, password in demo_users_ensure():
            self.stdout.write(f"  demo {role}: {username} / {password}")
