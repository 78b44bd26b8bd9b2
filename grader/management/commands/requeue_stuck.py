"""manage.py requeue_stuck [--older-than SECONDS]"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from grader.services import submissions_requeue_stuck


class Command(BaseCommand):
    help = (
        "Send again to the grading queue every submission stuck in 'queued' or 'running' for longer than "
        "--older-than seconds (default GRADER_STUCK_AFTER_SECONDS). Recovers what an emptied Redis or a dead "
        "worker lost; Celery beat runs a lease-based sweep every 2 s (GRADER_LEASE_SECONDS). Safe to repeat: a "
        "submission is graded once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=int, default=None, metavar="SECONDS",
                            help=f"age threshold in seconds (default {settings.GRADER_STUCK_AFTER_SECONDS})")

    def handle(self, *args: Any, **options: Any) -> None:
        older = options["older_than"] if options["older_than"] is not None else settings.GRADER_STUCK_AFTER_SECONDS
        ids = submissions_requeue_stuck(older_than_seconds=older)
        self.stdout.write(f"Re-queued {len(ids)} submission(s)" + (f": {', '.join(map(str, ids))}" if ids else "."))
