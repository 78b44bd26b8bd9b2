"""Writes for quiz content: loading YAML quizzes into the database."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from grader.sandbox import Check as SandboxCheck
from grader.sandbox import ReferenceFailed, SandboxFault

from .content_format import CHECK_FIELDS, ContentError, ItemSpec, QuizSpec, load_paths
from .models import Check, Choice, Item, Quiz
from .references import ReferenceRunner, reference_fingerprint, reference_observe

CONTENT_DIR = Path(__file__).resolve().parent / "content"


@dataclass
class LoadReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    quizzes_changed: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)  # items whose reference solution was run
    warnings: list[str] = field(default_factory=list)  # e.g. a starter that already passes a check

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.archived or self.deleted or self.quizzes_changed)

    def summary(self, n_quizzes: int) -> str:
        if not self.changed:
            return f"No changes: {n_quizzes} quiz(zes) and {len(self.unchanged)} item(s) already up to date."
        parts = [f"{len(v)} {k}" for k, v in (("created", self.created), ("updated", self.updated),
                 ("unchanged", self.unchanged), ("archived", self.archived), ("deleted", self.deleted)) if v]
        quizzes = f"; quizzes changed: {', '.join(self.quizzes_changed)}" if self.quizzes_changed else ""
        return "Items: " + ", ".join(parts) + quizzes + "."


def _item_fields(quiz: Quiz, spec: ItemSpec, order: int) -> dict[str, Any]:
    return {
        "quiz": quiz, "kind": spec.kind, "title": spec.title, "prompt": spec.prompt,
        "explanation": spec.explanation, "order": order, "hints": spec.hints, "tags": spec.tags,
        "reveal_after_attempts": spec.reveal_after_attempts, "max_attempts": spec.max_attempts,
        "starter_code": spec.starter,
        "setup_code": spec.setup, "hidden_setup_code": spec.hidden_setup, "solution_code": spec.solution,
        "params": spec.params, "params_per_attempt": spec.params_per_attempt, "hidden_rerun": spec.hidden_rerun, "reveal_expected": spec.reveal_expected,
        "time_limit_seconds": spec.time_seconds, "memory_limit_mb": spec.memory_mb, "multiple": spec.multiple,
        "archived": False,
    }


GRADING_FIELDS = {"kind", "setup_code", "hidden_setup_code", "solution_code", "starter_code", "params", "hidden_rerun", "time_limit_seconds", "memory_limit_mb",
                  "multiple", "reveal_expected"}


def _sync_rows(model: type, item: Item, rows: list[dict[str, Any]]) -> bool:
    """Make item's checks or choices equal rows (by order), keeping row ids stable."""
    existing = {obj.order: obj for obj in model.objects.filter(item=item)}
    changed = False
    for order, values in enumerate(rows):
        obj = existing.pop(order, None)
        if obj is None:
            model.objects.create(item=item, order=order, **values)
            changed = True
        elif any(getattr(obj, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(obj, k, v)
            obj.save()
            changed = True
    if existing:
        model.objects.filter(pk__in=[o.pk for o in existing.values()]).delete()
        changed = True
    return changed


Reference = tuple[str, list[dict[str, Any]], list[str]]  # fingerprint, observations, compare modes


# starter_checker(spec, checks, observations) -> the labels of the checks the item's starter code already passes
StarterChecker = Callable[[ItemSpec, list[SandboxCheck], list[dict[str, Any]]], list[str]]


def _compute_references(quizzes: list[QuizSpec], runner: ReferenceRunner, recompute: bool,
                        progress: Callable[[str], None], report: LoadReport,
                        starter_checker: StarterChecker | None) -> dict[str, Reference]:
    stored = {
        item.slug: (item.reference_fingerprint, [c.expected for c in item.checks.all()])
        for item in Item.objects.filter(kind=Item.Kind.CODE).prefetch_related("checks")
    }
    results = {}
    for quiz in quizzes:
        for spec in (i for i in quiz.items if i.kind == "code"):
            fingerprint = reference_fingerprint(spec)
            old = stored.get(spec.slug)
            reusable = not recompute and old and old[0] == fingerprint and None not in old[1] and len(old[1]) == len(
                spec.checks)
            if not reusable:
                progress(f"  running the reference solution of {spec.slug} ...")
                report.references.append(spec.slug)
            try:
                observations, compares = reference_observe(
                    spec=spec, runner=(lambda **_: old[1]) if reusable else runner, file=quiz.file)
            except ReferenceFailed as exc:
                raise ContentError(quiz.file, spec.slug, "solution", str(exc)) from None
            except SandboxFault as exc:
                raise ContentError(quiz.file, spec.slug, "solution", f"the sandbox could not run it: {exc}") from None
            results[spec.slug] = (fingerprint, observations, compares)
            if starter_checker is not None and not reusable and spec.starter.strip():
                checks = [c.to_sandbox(compare) for c, compare in zip(spec.checks, compares, strict=True)]
                passing = starter_checker(spec, checks, observations)
                if passing:
                    report.warnings.append(f"{spec.slug}: the starter code already passes {len(passing)} of "
                                           f"{len(checks)} checks ({', '.join(passing)})")
    return results


def quiz_content_load(*, paths: list[Path], runner: ReferenceRunner, recompute: bool = False,
                      progress: Callable[[str], None] = lambda _: None,
                      starter_checker: StarterChecker | None = None) -> tuple[list[QuizSpec], LoadReport]:
    """Upsert quizzes from YAML by slug; all or nothing.

    Expected values come from running each code item's reference solution through
    the sandbox (runner), reused while the solution, setup, targets and limits are
    unchanged. Items gone from a file are deleted, or archived when they have
    submissions. Raises ContentError (one line: file, item, field) and writes
    nothing when any file is bad. With a starter_checker, each item whose reference
    ran again has its starter code graded too, and a starter that already passes
    checks is reported in report.warnings (a learner would get those points for
    changing one token).
    """
    quizzes = load_paths(paths)
    report = LoadReport()
    references = _compute_references(quizzes, runner, recompute, progress, report, starter_checker)
    now = timezone.now()
    with transaction.atomic():
        for quiz_spec in quizzes:
            quiz, created = Quiz.objects.get_or_create(
                slug=quiz_spec.slug,
                defaults={"title": quiz_spec.title, "description": quiz_spec.description, "order": quiz_spec.order})
            quiz_values = {"title": quiz_spec.title, "description": quiz_spec.description, "order": quiz_spec.order}
            if created or any(getattr(quiz, k) != v for k, v in quiz_values.items()):
                for k, v in quiz_values.items():
                    setattr(quiz, k, v)
                quiz.save()
                report.quizzes_changed.append(quiz.slug)
            for order, spec in enumerate(quiz_spec.items):
                _upsert_item(quiz, spec, order, references.get(spec.slug), now, report)
            gone = Item.objects.filter(quiz=quiz, archived=False).exclude(slug__in=[i.slug for i in quiz_spec.items])
            for item in gone:
                if item.submissions.exists():
                    item.archived = True
                    item.save(update_fields=["archived", "updated_at"])
                    report.archived.append(item.slug)
                else:
                    report.deleted.append(item.slug)
                    item.delete()
    return quizzes, report


def _upsert_item(quiz: Quiz, spec: ItemSpec, order: int, reference: Reference | None,
                 now: Any, report: LoadReport) -> None:
    values = _item_fields(quiz, spec, order)
    item = Item.objects.filter(slug=spec.slug).first()
    created = item is None
    if created:
        item = Item.objects.create(slug=spec.slug, **values)
    changed_fields = [k for k, v in values.items() if getattr(item, k) != v]
    for k in changed_fields:
        setattr(item, k, values[k])
    grading_changed = bool(set(changed_fields) & GRADING_FIELDS)
    check_rows = []
    if spec.kind == "code" and reference is not None:
        fingerprint, observations, compares = reference
        if item.reference_fingerprint != fingerprint:
            item.reference_fingerprint, item.reference_computed_at = fingerprint, now
            changed_fields.append("reference_fingerprint")
        check_rows = [{
            **{f: getattr(c, f) for f in CHECK_FIELDS}, "compare": compares[i], "compare_given": c.compare is not None,
            "expected": observations[i],
        } for i, c in enumerate(spec.checks)]
    choice_rows = [{"text": c.text, "correct": c.correct, "feedback": c.feedback} for c in spec.choices]
    grading_changed |= _sync_rows(Check, item, check_rows)
    grading_changed |= _sync_rows(Choice, item, choice_rows)
    if created:
        report.created.append(spec.slug)
    elif changed_fields or grading_changed:
        if grading_changed:
            item.version += 1
        report.updated.append(spec.slug)
    else:
        report.unchanged.append(spec.slug)
    if changed_fields or grading_changed:
        item.save()


DEMO_USERS = (("learner", "learner", "learner-demo-pass"), ("instructor", "instructor", "instructor-demo-pass"))


def demo_users_ensure() -> list[tuple[str, str, str]]:
    """The `make run` demo accounts: a learner, and an instructor (staff, in the instructors group)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from courses.models import Membership
    from courses.services import default_course, membership_ensure
    from grader.selectors import INSTRUCTORS_GROUP

    users = get_user_model()
    for role, username, password in DEMO_USERS:
        user, _ = users.objects.get_or_create(username=username)
        user.set_password(password)
        user.is_staff = role == "instructor"
        user.save()
        if role == "instructor":
            user.groups.add(Group.objects.get_or_create(name=INSTRUCTORS_GROUP)[0])
        membership_ensure(course=default_course(), user=user,
                          role=Membership.Role.INSTRUCTOR if role == "instructor" else Membership.Role.LEARNER)
    return list(DEMO_USERS)
