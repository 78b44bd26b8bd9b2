"""manage.py grade ITEM_SLUG FILE [--json]

The text report shows learner-derived text (output, error, check names and
messages) through terminal_safe: printed escape sequences appear as `\x1b[…`
instead of redrawing the terminal. --json needs no such care: JSON escapes them.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from grader.services import code_grade
from grader.sandbox import Grade, SandboxFault
from grader.text import terminal_safe
from quiz.models import Item


class Command(BaseCommand):
    help = (
        "Grade one file of learner code against a code item, synchronously through the sandbox (no broker "
        "needed). Prints a readable report, or with --json one object: status, score, checks, stdout, error, "
        "duration_ms. Exits 0 whenever a verdict was reached, 2 on usage errors."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("item", metavar="ITEM_SLUG", help="slug of a code item, e.g. grad-of-polynomial")
        parser.add_argument("file", metavar="FILE", help="file with the code to grade, or - for standard input")
        parser.add_argument("--json", action="store_true", help="print one JSON object instead of a report")

    def handle(self, *args: Any, **options: Any) -> None:
        item = Item.objects.filter(slug=options["item"]).first()
        if item is None:
            raise CommandError(f"no item with slug {options['item']!r}", returncode=2)
        if not item.is_code:
            raise CommandError(f"{item.slug} is a choice item; only code items can be graded from a file",
                               returncode=2)
        try:
            code = sys.stdin.buffer.read() if options["file"] == "-" else Path(options["file"]).read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {options['file']}: {exc.strerror}", returncode=2) from None
        try:
            grade = code_grade(item=item, code=code)
        except SandboxFault as exc:
            grade = Grade(status="internal_error", error=f"The sandbox failed: {exc}")
        if options["json"]:
            out = grade.as_dict()
            out["checks"] = [{k: c[k] for k in ("name", "passed", "message")} for c in out["checks"]]
            out.pop("error_line")
            self.stdout.write(json.dumps(out, indent=2))
        else:
            self.stdout.write(self._report(item, grade))

    def _report(self, item: Item, grade: Grade) -> str:
        style = self.style.SUCCESS if grade.status == "passed" else self.style.ERROR
        lines = [style(f"{item.slug}: {grade.status.upper()}") + f"  score {grade.score:.2f}  ({grade.duration_ms:.0f} ms)"]
        for check in grade.checks:
            mark = self.style.SUCCESS("✓") if check.passed else self.style.ERROR("✗")
            message = f" — {terminal_safe(check.message)}" if check.message else ""
            lines.append(f"  {mark} {terminal_safe(check.name)}{message}")
        if grade.stdout:
            lines += ["Output:"] + _indented(grade.stdout)
        if grade.error:
            lines += ["Error:"] + _indented(grade.error)
        return "\n".join(lines)


def _indented(text: str) -> list[str]:
    """Learner text as indented report lines, split at newlines only (a \\r stays visible in its line)."""
    text = terminal_safe(text).rstrip("\n")
    return ["  " + line for line in text.split("\n")] if text else []
