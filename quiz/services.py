"""Writes for quiz content: loading YAML quizzes into the database (from the content folder, an upload in the
panel, or an item's own file again), and a learner's draft and opened hints."""
from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Collection, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.utils import timezone

from grader.sandbox import Check as SandboxCheck
from grader.sandbox import ReferenceFailed, SandboxFault

from .content_format import CHECK_FIELDS, ContentError, ItemSpec, QuizSpec, load_paths
from .models import Check, Choice, Item, LearnerItemState, Quiz
from .references import ReferenceRunner, reference_fingerprint, reference_observations, reference_observe

CONTENT_DIR = Path(__file__).resolve().parent / "content"
PROJECT_DIR = CONTENT_DIR.parents[1]


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
    conflicts: list[str] = field(default_factory=list)  # edited in the panel since the last load: kept as they are

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.archived or self.deleted or self.quizzes_changed)

    def summary(self, n_quizzes: int) -> str:
        if not self.changed:
            return f"No changes: {n_quizzes} quiz(zes) and {len(self.unchanged)} item(s) already up to date."
        parts = [f"{len(v)} {k}" for k, v in (("created", self.created), ("updated", self.updated),
                 ("unchanged", self.unchanged), ("archived", self.archived), ("deleted", self.deleted)) if v]
        quizzes = f"; quizzes changed: {', '.join(self.quizzes_changed)}" if self.quizzes_changed else ""
        kept = f"; {len(self.conflicts)} kept as edited in the panel" if self.conflicts else ""
        return "Items: " + ", ".join(parts) + quizzes + kept + "."


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


def source_label(file: str) -> str:
    """A content file as items remember it: relative to the project when it lies inside it."""
    path = Path(file).resolve()
    return str(path.relative_to(PROJECT_DIR)) if path.is_relative_to(PROJECT_DIR) else str(path)


def spec_hash(spec: ItemSpec) -> str:
    """The item's content in its file, as one hash (what it was at load)."""
    return hashlib.sha256(json.dumps(asdict(spec), sort_keys=True, default=str).encode()).hexdigest()


def quiz_content_load(*, paths: list[Path], runner: ReferenceRunner, recompute: bool = False,
                      progress: Callable[[str], None] = lambda _: None,
                      starter_checker: StarterChecker | None = None, force: bool | Collection[str] = False,
                      in_panel: bool = False) -> tuple[list[QuizSpec], LoadReport]:
    """Upsert quizzes from YAML by slug; all or nothing.

    The file is the source of truth until someone edits an item (or a quiz) in the panel: from then on
    the panel's version is kept, and the load reports the conflict in report.conflicts; `force` (True,
    or the slugs to take from the file) overwrites it. Items made in the panel are never archived by a
    file that lacks them. `in_panel`: the load is the panel's own import (an instructor's upload), so
    what it writes counts as edited in the panel.

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
    def forced(slug: str) -> bool:
        return force is True or (not isinstance(force, bool) and slug in force)

    with transaction.atomic():
        for quiz_spec in quizzes:
            quiz, created = Quiz.objects.get_or_create(
                slug=quiz_spec.slug,
                defaults={"title": quiz_spec.title, "description": quiz_spec.description, "order": quiz_spec.order})
            quiz_values = {"title": quiz_spec.title, "description": quiz_spec.description, "order": quiz_spec.order}
            differs = any(getattr(quiz, k) != v for k, v in quiz_values.items())
            if differs and quiz.edited_in_panel and not forced(quiz.slug) and not in_panel:
                report.conflicts.append(f"quiz {quiz.slug}: edited in the panel; kept (--force takes the file's)")
            elif created or differs:
                for k, v in quiz_values.items():
                    setattr(quiz, k, v)
                quiz.edited_in_panel = in_panel
                quiz.save()
                report.quizzes_changed.append(quiz.slug)
            elif quiz.edited_in_panel and not in_panel:  # the file says what the panel says: the file counts again
                Quiz.objects.filter(pk=quiz.pk).update(edited_in_panel=False)
            for order, spec in enumerate(quiz_spec.items):
                reference = references.get(spec.slug)
                existing = Item.objects.filter(slug=spec.slug).first()
                if (existing is not None and existing.edited_in_panel and not forced(spec.slug) and not in_panel
                        and not _matches(existing, quiz, spec, order, reference)):
                    origin = f"since it was loaded from {existing.source_file}" if existing.source_file else "(made there)"
                    report.conflicts.append(f"{spec.slug}: edited in the panel {origin}; kept (--force takes the "
                                            "file's)")
                    continue
                item = _upsert_item(quiz, spec, order, reference, now, report)
                if in_panel:  # an upload: what it changed is the panel's now; where it came from stays
                    origin = {"edited_in_panel": True} if spec.slug in report.created + report.updated else {}
                else:  # the file's version (the same as the panel's, when that was edited) is what counts
                    origin = {"source_file": source_label(quiz_spec.file), "source_hash": spec_hash(spec),
                              "edited_in_panel": False}
                if any(getattr(item, k) != v for k, v in origin.items()):  # no version bump, no "updated"
                    Item.objects.filter(pk=item.pk).update(**origin)
            gone = Item.objects.filter(quiz=quiz, archived=False).exclude(slug__in=[i.slug for i in quiz_spec.items])
            if force is not True:  # what the panel made or changed is not the file's to remove
                gone = gone.exclude(edited_in_panel=True)
            for item in gone:
                if item.submissions.exists():
                    item.archived = True
                    item.save(update_fields=["archived", "updated_at"])
                    report.archived.append(item.slug)
                else:
                    report.deleted.append(item.slug)
                    item.delete()
    return quizzes, report


def _item_target(quiz: Quiz, spec: ItemSpec, order: int,
                 reference: Reference | None) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """What the item's row, checks and choices must hold to match its spec."""
    check_rows = []
    if spec.kind == "code" and reference is not None:
        _, observations, compares = reference
        check_rows = [{
            **{f: getattr(c, f) for f in CHECK_FIELDS}, "compare": compares[i], "compare_given": c.compare is not None,
            "expected": observations[i],
        } for i, c in enumerate(spec.checks)]
    choice_rows = [{"text": c.text, "correct": c.correct, "feedback": c.feedback} for c in spec.choices]
    return _item_fields(quiz, spec, order), check_rows, choice_rows


def _rows_differ(model: type, item: Item, rows: list[dict[str, Any]]) -> bool:
    existing = list(model.objects.filter(item=item).order_by("order"))
    return len(existing) != len(rows) or any(
        any(getattr(obj, k) != v for k, v in row.items()) for obj, row in zip(existing, rows, strict=True))


def _matches(item: Item, quiz: Quiz, spec: ItemSpec, order: int, reference: Reference | None) -> bool:
    """The item in the database says what the spec says (its place in the quiz aside)."""
    values, check_rows, choice_rows = _item_target(quiz, spec, order, reference)
    return (all(getattr(item, k) == v for k, v in values.items() if k != "order")
            and not _rows_differ(Check, item, check_rows) and not _rows_differ(Choice, item, choice_rows))


def _upsert_item(quiz: Quiz, spec: ItemSpec, order: int, reference: Reference | None,
                 now: Any, report: LoadReport) -> Item:
    values, check_rows, choice_rows = _item_target(quiz, spec, order, reference)
    item = Item.objects.filter(slug=spec.slug).first()
    created = item is None
    if created:
        item = Item.objects.create(slug=spec.slug, **values)
    changed_fields = [k for k, v in values.items() if getattr(item, k) != v]
    for k in changed_fields:
        setattr(item, k, values[k])
    grading_changed = bool(set(changed_fields) & GRADING_FIELDS)
    if spec.kind == "code" and reference is not None and item.reference_fingerprint != reference[0]:
        item.reference_fingerprint, item.reference_computed_at = reference[0], now
        changed_fields.append("reference_fingerprint")
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
    return item


class UploadRefused(Exception):
    """An uploaded quiz file cannot be loaded; nothing was. The message says why."""


def quiz_upload_load(*, name: str, chunks: Iterable[bytes],
                     recompute: bool = False) -> tuple[str, list[QuizSpec], LoadReport]:
    """Load a quiz file uploaded in the panel like `manage.py load_quizzes` (all or nothing); returns the file's
    name as kept, the quizzes and the report. Raises UploadRefused.

    An upload is the panel's own edit: it replaces what is there, and load_quizzes keeps it afterwards.
    """
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name) or "upload.yaml"
    if not name.endswith((".yaml", ".yml")):
        raise UploadRefused("Upload a .yaml or .yml file.")
    with tempfile.TemporaryDirectory(prefix="quiz-import-") as folder:
        file = Path(folder) / name
        with file.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
        try:
            quizzes, report = quiz_content_load(paths=[file], runner=reference_observations, recompute=recompute,
                                                force=True, in_panel=True)
        except ContentError as exc:
            raise UploadRefused(str(exc).replace(f"{folder}/", "")) from None
    return name, quizzes, report


def items_revert_to_file(*, items: list[Item]) -> list[tuple[str, int]]:
    """Load each item again from the file it came from, dropping the panel's edits (messages, levels)."""
    by_file: dict[str, list[str]] = {}
    out: list[tuple[str, int]] = []
    for item in items:
        if not item.source_file:
            out.append((f"{item.slug}: made in the panel, so there is no file to revert to.", messages.WARNING))
        else:
            by_file.setdefault(item.source_file, []).append(item.slug)
    for source, slugs in by_file.items():
        path = Path(source) if Path(source).is_absolute() else PROJECT_DIR / source
        try:
            _, report = quiz_content_load(paths=[path], runner=reference_observations, force=set(slugs))
        except (ContentError, OSError) as exc:
            out.append((f"{', '.join(slugs)}: could not load {source}: {exc}", messages.ERROR))
            continue
        missing = [s for s in slugs if s not in report.created + report.updated + report.unchanged]
        reverted = [s for s in slugs if s not in missing]
        if reverted:
            out.append((f"Reverted to {source}: {', '.join(reverted)}.", messages.SUCCESS))
        if missing:
            out.append((f"{', '.join(missing)}: not in {source} any more; nothing reverted.", messages.WARNING))
    return out


MAX_DRAFT_BYTES = 64 * 1024  # as much as a submission may hold


class StateRefused(Exception):
    """The draft or hint count cannot be stored; nothing was. The message says why."""


def learner_state_save(*, user: Any, item: Item, draft: str | None = None,
                       hints_opened: int | None = None) -> LearnerItemState:
    """Keep a learner's unsent code and opened hints for an item (the hint count never goes down: a hint seen
    stays seen)."""
    if draft is not None and len(draft.encode("utf-8", errors="replace")) > MAX_DRAFT_BYTES:
        raise StateRefused(f"a draft holds at most {MAX_DRAFT_BYTES // 1024} KiB")
    if draft is not None and "\x00" in draft:
        raise StateRefused("a draft cannot hold NUL characters")
    if hints_opened is not None and not 0 <= hints_opened <= len(item.hints):
        raise StateRefused(f"this item has {len(item.hints)} hint(s)")
    with transaction.atomic():
        state, _ = LearnerItemState.objects.select_for_update().get_or_create(user=user, item=item)
        if draft is not None:
            state.draft, state.draft_saved_at = draft, timezone.now()
        if hints_opened is not None:
            state.hints_opened = max(state.hints_opened, hints_opened)
        state.save()
    return state
