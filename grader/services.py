"""Writes of the grading pipeline: create, claim, grade and record submissions."""
from __future__ import annotations

import ast
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from courses import selectors as course_selectors
from courses import services as course_services
from courses.models import CourseQuiz, Membership
from courses.policy import Policy
from quiz import selectors as quiz_selectors
from quiz.selectors import FREE_STATUSES
from quiz import variants
from quiz.models import Item

from .events import attempt_graded
from .models import Submission
from .notify import verdict_published
from .runner import get_sandbox
from .sandbox import (
    Check, Grade, HiddenRun, Limits, ReferenceFailed, grade_code, is_starter, observe_reference, rejection_reason,
    screen_problem,
)
from .sandbox.static import parse
from .standing import Standing, standing_of
from .text import storable

logger = logging.getLogger(__name__)
Status = Submission.Status


class SubmissionRefused(Exception):
    """The submission cannot be accepted; nothing was stored. The message says why."""

    def __init__(self, message: str, field: str = "code") -> None:
        super().__init__(message)
        self.field = field


def item_limits(item: Item) -> Limits:
    return Limits(cpu_seconds=item.time_limit_seconds, memory_mb=item.memory_limit_mb)


# The reference's observations for a draw of an item's inputs other than the stored one (a learner's variant,
# a hidden re-run), per (item, version, draw): computed in this process on first use, one sandbox run of a few
# ms, rather than stored; never shown to anyone.
_variant_references: OrderedDict[tuple[int, int, str], list[dict[str, Any]]] = OrderedDict()
VARIANT_CACHE_SIZE = 1024


def variant_reference(*, item: Item, setup: str, solution: str, checks: list[Check],
                      draw: str) -> list[dict[str, Any]]:
    """The reference's observations after setup. Raises ReferenceFailed or SandboxFault."""
    key = (item.pk, item.version, draw)
    reference = _variant_references.get(key)
    if reference is None:
        reference = observe_reference(get_sandbox(), solution=solution, setup=setup, checks=checks,
                                      limits=item_limits(item))
        _variant_references[key] = reference
        while len(_variant_references) > VARIANT_CACHE_SIZE:
            _variant_references.popitem(last=False)
    return reference


def _hidden_run(item: Item, checks: list[Check], values: dict[str, Any]) -> HiddenRun | None:
    if item.hidden_setup_code:
        return HiddenRun(item.hidden_setup_code, variant_reference(
            item=item, setup=item.hidden_setup_code, solution=item.solution_code, checks=checks, draw="hidden"))
    if item.params and item.hidden_rerun:
        unseen = variants.unseen(item.params, [item.prompt, item.starter_code, *item.hints])
        other = variants.other_draw(item.params, f"hidden:{item.slug}:{variants.key(values)}", values, unseen)
        setup = variants.render(item.setup_code, other)
        return HiddenRun(setup, variant_reference(item=item, setup=setup, checks=checks, draw=variants.key(other),
                                                  solution=variants.render(item.solution_code, other)))
    return None


def code_grade(*, item: Item, code: str | bytes, params: dict[str, Any] | None = None) -> Grade:
    """Grade code against an item's checks, for the learner's draw of its parameters, through this process's
    sandbox. Raises SandboxFault."""
    checks = list(item.checks.all())
    if not checks or any(c.expected is None for c in checks):
        return Grade(status=Status.INTERNAL_ERROR,
                     error="This exercise has no reference values yet; this is not your fault.")
    sandbox_checks = [c.to_sandbox() for c in checks]
    defaults = variants.defaults(item.params)
    values = {**defaults, **(params or {})} if item.params else {}
    setup = variants.render(item.setup_code, values)
    try:
        if values and values != defaults:
            reference = variant_reference(item=item, setup=setup, solution=variants.render(item.solution_code, values),
                                          checks=sandbox_checks, draw=variants.key(values))
        else:
            reference = [c.expected for c in checks]
        hidden = _hidden_run(item, sandbox_checks, values)
    except ReferenceFailed as exc:
        logger.error("the reference of %s fails on a draw of its inputs: %s", item.slug, exc)
        return Grade(status=Status.INTERNAL_ERROR,
                     error="This exercise's reference could not run for your values; this is not your fault.")
    return grade_code(
        get_sandbox(), code=code, setup=setup, checks=sandbox_checks, reference=reference, limits=item_limits(item),
        reveal_expected=item.reveal_expected, starter=variants.render(item.starter_code, values), hidden=hidden,
    )


def reference_observations(*, setup: str, solution: str, checks: list[Check], limits: Limits) -> list[dict[str, Any]]:
    """Run a reference solution in the sandbox. Raises ReferenceFailed or SandboxFault."""
    return observe_reference(get_sandbox(), solution=solution, setup=setup, checks=checks, limits=limits)


def starter_passing(spec: Any, checks: list[Check], observations: list[dict[str, Any]]) -> list[str]:
    """The labels of the checks an item's starter code passes as it is (spec: a content ItemSpec).

    For the content loader's warning: each is a point a learner gets for changing one token.
    """
    values = variants.defaults(spec.params)
    grade = grade_code(get_sandbox(), code=variants.render(spec.starter, values),
                       setup=variants.render(spec.setup, values), checks=checks, reference=observations,
                       limits=Limits(cpu_seconds=spec.time_seconds, memory_mb=spec.memory_mb),
                       reveal_expected=True, screen=False)
    return [c.name for c in grade.checks if c.passed]


@dataclass
class ChoiceResult:
    grade: Grade
    selected: list[int]


def choice_grade(*, item: Item, selected: list[int]) -> ChoiceResult:
    """Grade a choice answer at once: per-choice feedback, all-or-nothing pass."""
    choices = list(item.choices.all())
    by_id = {c.pk: c for c in choices}
    chosen = sorted(set(selected))
    if not chosen:
        raise SubmissionRefused("choose at least one answer", field="choices")
    unknown = [c for c in chosen if c not in by_id]
    if unknown:
        raise SubmissionRefused(f"choice {unknown[0]} is not one of this item's choices", field="choices")
    if not item.multiple and len(chosen) > 1:
        raise SubmissionRefused("this item takes exactly one answer", field="choices")
    correct = {c.pk for c in choices if c.correct}
    results = []
    for choice_id in chosen:
        choice = by_id[choice_id]
        results.append({"name": f"Choice {choices.index(choice) + 1}", "passed": choice.correct,
                        "message": choice.feedback or ("Correct." if choice.correct else "Not this one."),
                        "hidden": False, "weight": 1.0, "choice": choice_id})
    missed = len(correct - set(chosen))
    if missed and item.multiple:
        results.append({"name": "Missing answers", "passed": False, "hidden": False, "weight": 1.0,
                        "message": f"{missed} more choice{'s are' if missed > 1 else ' is'} correct.", "choice": None})
    hits, wrong = len(correct & set(chosen)), len(set(chosen) - correct)
    passed = set(chosen) == correct
    grade = Grade(status=Status.PASSED if passed else Status.FAILED,
                  score=1.0 if passed else round(max(0, hits - wrong) / len(correct), 6))
    grade.checks = results  # type: ignore[assignment] - already plain dicts
    return ChoiceResult(grade=grade, selected=chosen)


def submissions_enqueue(submission_ids: list[int]) -> None:
    """Send submissions to the grading queue (call inside transaction.on_commit)."""
    from .tasks import grade_submission

    for submission_id in submission_ids:
        grade_submission.apply_async(args=[submission_id])


@dataclass(frozen=True)
class Precheck:
    ok: bool
    message: str
    line: int | None = None


def code_precheck(*, code: str) -> Precheck:
    """Check code the way submission_create will, without storing or running anything: size and encoding,
    syntax, and the constructs the grader refuses. Costs no attempt."""
    reason = rejection_reason(code)
    if reason:
        return Precheck(False, f"refused: {reason}")
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return Precheck(False, f"{type(exc).__name__}: {exc.msg} (line {exc.lineno})", exc.lineno)
    except (ValueError, RecursionError, MemoryError):
        return Precheck(False, "the code is nested too deeply to be read")
    problem = screen_problem(code, tree)
    if problem:
        return Precheck(False, f"refused: {problem}")
    return Precheck(True, "The syntax is fine. Checking it cost no attempt.")


def course_quiz_resolve(*, user: Any, item: Item, course: str | None = None) -> CourseQuiz:
    """The course quiz an attempt at `item` belongs to, or SubmissionRefused (field "course") saying why."""
    try:
        return course_selectors.course_quiz_for(user=user, item=item, course=course)
    except (course_selectors.NotInCourse, course_selectors.WhichCourse) as exc:
        raise SubmissionRefused(str(exc), field="course") from None


def _same_answer(submission: Submission, code: str, selected: list[int], params: dict[str, Any]) -> bool:
    if submission.params != params:
        return False
    if submission.item.kind == Item.Kind.CHOICE:
        return sorted(submission.selected) == selected
    return _normalised(submission.code) == _normalised(code)


def _normalised(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.replace("\r\n", "\n").strip().splitlines())


def _refuse_repeat(standing: Standing, user: Any, item: Item, code: str, selected: list[int],
                   params: dict[str, Any]) -> None:
    """An answer identical to one already graded costs nothing and counts for nothing: it is refused. (Not
    when the grader refused or failed the first one: trying again after an internal error must work.)"""
    earlier = (Submission.objects.filter(user=user, item=item, course_id=standing.course_quiz.course_id,
                                         attempt__isnull=False).exclude(status__in=FREE_STATUSES)
               .select_related("item").order_by("-created_at"))
    for submission in earlier[:200]:
        if _same_answer(submission, code, selected, params):
            raise SubmissionRefused(
                f"you already sent this exact answer (attempt {submission.attempt}); change it before sending it "
                "again: a repeat costs no attempt and is not graded", field="code" if code else "choices")


@transaction.atomic
def submission_create(*, user: Any, item: Item, code: str | bytes | None = None,
                      selected: list[int] | None = None, course: str | None = None) -> Submission:
    """Store an attempt at an item in one of the learner's courses, under that course quiz's policy.

    Code is queued for a worker once the transaction commits; a choice answer is graded at once. The
    policy is enforced here, so the API, the site and every other way in agree: dates, the time limit,
    attempts, cooldown; the attempt's penalty and lateness are fixed now and applied to its score when
    it is graded. A syntax error or the unchanged starter costs no attempt; a repeat of an earlier answer
    is refused. Refused input raises SubmissionRefused and stores nothing.
    """
    if item.archived:
        raise SubmissionRefused("this item is archived and no longer takes answers", field="item")
    course_quiz = course_quiz_resolve(user=user, item=item, course=course)
    now = timezone.now()
    chosen: list[int] = []
    free = False
    if item.kind == Item.Kind.CHOICE:
        if code:
            raise SubmissionRefused("this is a choice item: send choices, not code", field="code")
        result = choice_grade(item=item, selected=selected or [])
        chosen = result.selected
    else:
        if selected:
            raise SubmissionRefused("this is a code item: send code, not choices", field="choices")
        if code is None:
            raise SubmissionRefused("send the code to grade")
        reason = rejection_reason(code)
        if reason:
            raise SubmissionRefused(f"refused: {reason}")
        if isinstance(code, bytes):
            code = code.decode("utf-8")
    # One attempt at a time per learner and course: concurrent requests cannot both take the last attempt.
    Membership.objects.select_for_update().filter(user=user, course_id=course_quiz.course_id).first()
    standing = standing_of(user=user, item=item, course_quiz=course_quiz, now=now)
    progress = quiz_selectors.ItemProgress(attempts=standing.attempts)
    params = quiz_selectors.item_params(item=item, user=user, progress=progress)
    if item.is_code:
        # Code that cannot be graded costs nothing: a syntax error, the unchanged starter, or code the grader's
        # screen refuses unrun (its verdict says why).
        tree = parse(code)
        free = (tree is None or is_starter(code, variants.render(item.starter_code, params), tree)
                or screen_problem(code, tree) is not None)
    refusal = standing.refusal(counted=not free)
    if refusal:
        raise SubmissionRefused(refusal, field="non_field_errors")
    if not free:
        _refuse_repeat(standing, user, item, code or "", chosen, params)
    if standing.policy.time_limit is not None:
        course_services.quiz_start(course_quiz=course_quiz, user=user)
    counted = {} if free else {"attempt": standing.attempts + 1, "penalty": standing.next_penalty}
    fields = {"user": user, "item": item, "course_id": course_quiz.course_id, "late": standing.late, **counted}
    if item.kind == Item.Kind.CHOICE:
        grade = result.grade
        submission = Submission.objects.create(
            **fields, selected=chosen, status=grade.status, score=grade.score,
            final_score=Policy.final_score(grade.score, counted.get("penalty", 0.0)), checks=grade.checks,
            item_version=item.version, started_at=now, finished_at=now, duration_ms=0)
        attempt_announce(submission)
        return submission
    submission = Submission.objects.create(**fields, code=code, status=Status.QUEUED, queued_at=now, params=params)
    transaction.on_commit(lambda: submissions_enqueue([submission.pk]))
    return submission


def attempt_announce(submission: Submission) -> None:
    """Tell the ways in (the LMS grade passback) that a verdict was stored, once that is committed."""
    ids = {"submission_id": submission.pk, "user_id": submission.user_id, "course_id": submission.course_id,
           "item_id": submission.item_id}
    transaction.on_commit(lambda: attempt_graded.send(sender=Submission, **ids))


def submission_claim(*, submission_id: int, task_id: str) -> Submission | None:
    """Take a submission for grading, or None when it must be left alone.

    Left alone: already graded (a redelivered message), or being graded right
    now by another task. A redelivery of the same task (its worker died) takes
    it back. Too many deliveries end it with internal_error, so one submission
    cannot loop through the workers forever.

    The claim is one conditional UPDATE: the database decides atomically, and a
    grading costs no explicit transaction.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.GRADER_STUCK_AFTER_SECONDS)
    takeable = Q(status=Status.QUEUED) | Q(status=Status.RUNNING, claim=task_id) | Q(
        status=Status.RUNNING, started_at__lte=stale)
    claimed = Submission.objects.filter(takeable, pk=submission_id, deliveries__lt=settings.GRADER_MAX_DELIVERIES).update(
        status=Status.RUNNING, started_at=now, deliveries=F("deliveries") + 1, claim=task_id)
    if claimed:
        return Submission.objects.select_related("item").get(pk=submission_id)
    gave_up = Submission.objects.filter(takeable, pk=submission_id).update(
        status=Status.INTERNAL_ERROR, finished_at=now,
        error="Grading this submission failed too many times; it was stopped. This is not your fault.")
    if gave_up:
        logger.error("submission %s gave up after %s deliveries", submission_id, settings.GRADER_MAX_DELIVERIES)
    return None


def submission_record(*, submission: Submission, grade: Grade, task_id: str) -> bool:
    """Store a verdict if this task still holds the submission; True when stored.

    Every sandbox verdict is stored here, so this is where learner text is made
    storable: a NUL printed or raised by learner code would make PostgreSQL
    refuse the whole verdict, and the submission would stay running.
    """
    grade_dict = grade.as_dict()
    verdict = storable({
        "status": grade.status, "score": grade.score, "checks": grade_dict["checks"], "stdout": grade.stdout,
        "error": grade.error or "", "error_line": grade.error_line, "duration_ms": grade_dict["duration_ms"],
    })
    updated = Submission.objects.filter(pk=submission.pk, status=Status.RUNNING, claim=task_id).update(
        **verdict, final_score=Policy.final_score(grade.score, submission.penalty),
        item_version=submission.item.version, finished_at=timezone.now(),
    )
    if not updated:
        logger.warning("submission %s was taken over; verdict of task %s dropped", submission.pk, task_id)
    else:
        verdict_published(submission.pk)
        attempt_announce(submission)
    return bool(updated)


def submissions_requeue_stuck(*, older_than_seconds: int) -> list[int]:
    """Send again every submission queued or running for longer than the threshold.

    Catches what a restarted, empty Redis or a dead worker lost. A stuck submission
    goes back to queued and loses its claim, so whichever task takes it next grades
    it, and a late verdict from a presumed-dead task is dropped by
    submission_record: one verdict per submission, however many messages arrive.
    """
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    with transaction.atomic():
        stuck = Submission.objects.select_for_update().filter(
            Q(status=Status.QUEUED, queued_at__lte=cutoff) | Q(status=Status.RUNNING, started_at__lte=cutoff))
        ids = list(stuck.values_list("pk", flat=True))
        if ids:
            Submission.objects.filter(pk__in=ids).update(status=Status.QUEUED, claim="", queued_at=timezone.now())
            transaction.on_commit(lambda: submissions_enqueue(ids))
    if ids:
        logger.warning("re-queued %d stuck submission(s): %s", len(ids), ids[:20])
    return ids
