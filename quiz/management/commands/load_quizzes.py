"""manage.py load_quizzes [PATH ...]"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from courses.models import Course
from courses.services import default_course, quiz_assign
from quiz.models import Quiz
from quiz.content_format import ContentError
from quiz.references import reference_observations, starter_passing
from quiz.services import CONTENT_DIR, quiz_content_load


class Command(BaseCommand):
    help = (
        "Load quizzes from YAML files into the database (default: every .yaml file in quiz/content/). "
        "An upsert by slug: running it twice changes nothing the second time. Items removed from a file are "
        "deleted, or archived when they have submissions. Reference solutions run through the sandbox to "
        "produce the expected values; starter code that already passes checks is reported as a warning. "
        "Any error loads nothing and is reported as one line naming the file, item and field. "
        "Items and quizzes edited in the panel since their last load are kept and reported as conflicts "
        "(--force overwrites them); items made in the panel are never archived by a file. "
        "A quiz that is in no course yet is assigned to the course given by --course (default: the install's "
        "default course); assignments made in the admin are never changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", type=Path, help="YAML files or folders (default: quiz/content/)")
        parser.add_argument("--recompute", action="store_true",
                            help="run every reference solution again, even when unchanged (e.g. after a torch upgrade)")
        parser.add_argument("--force", action="store_true",
                            help="also overwrite items and quizzes edited in the panel since their last load "
                            "(without it they are kept and reported as conflicts)")
        parser.add_argument("--course", metavar="SLUG", default=None,
                            help="assign quizzes that are in no course yet to this course (default: the default "
                            "course); the course must exist")

    def handle(self, *args: Any, **options: Any) -> None:
        paths = options["paths"] or [CONTENT_DIR]
        course = self._course(options["course"])
        self.stdout.write(f"Loading quizzes from {', '.join(map(str, paths))}")
        try:
            quizzes, report = quiz_content_load(
                paths=paths, runner=reference_observations, recompute=options["recompute"],
                progress=lambda line: self.stdout.write(line), starter_checker=starter_passing, force=options["force"],
            )
        except ContentError as exc:
            raise CommandError(str(exc)) from None
        for quiz in Quiz.objects.filter(slug__in=[q.slug for q in quizzes], course_quizzes__isnull=True):
            quiz_assign(course=course, quiz=quiz)
            self.stdout.write(f"  assigned: {quiz.slug} to the course {course.slug}")
        for label, slugs in (("created", report.created), ("updated", report.updated),
                             ("archived", report.archived), ("deleted", report.deleted)):
            for slug in slugs:
                self.stdout.write(f"  {label}: {slug}")
        for warning in report.warnings:
            self.stdout.write(self.style.WARNING(f"  warning: {warning}"))
        for conflict in report.conflicts:
            self.stdout.write(self.style.WARNING(f"  conflict: {conflict}"))
        style = self.style.SUCCESS if report.changed else self.style.NOTICE
        self.stdout.write(style(report.summary(len(quizzes))))

    @staticmethod
    def _course(slug: str | None) -> Course:
        if slug is None:
            return default_course()
        course = Course.objects.filter(slug=slug).first()
        if course is None:
            raise CommandError(f"no course {slug!r}: create it in the admin first; nothing was loaded")
        return course
