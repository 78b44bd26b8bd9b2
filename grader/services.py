"""Writes of the grading pipeline: create, claim, grade and record submissions."""
from __future__ import annotations

import ast
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connections, transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from config import sql
from config.celery_app import app as celery_app
from courses import selectors as course_selectors
from courses import services as course_services
from courses.models import Course
from courses.policy import Policy
from quiz import selectors as quiz_selectors
from quiz import variants
from quiz.models import Item

from .broker import GRADING_TASK
from .events import attempt_graded
from .models import Submission, answer_digest
from .notify import verdict_published
from .runner import get_sandbox
from .selectors import FREE_STATUSES, submission_shown_as
from .sandbox import (
    Check, Grade, HiddenRun, Limits, ReferenceFailed, grade_code, is_starter, observe_reference, rejection_reason,
    screen_problem,
)
from .sandbox.static import parse
from .standing import standing_for_attempt
from .text import storable

logger = logging.getLogger(__name__)
Status = Submission.Status


class SubmissionRefused(Exception):
    """The submission cannot be accepted; nothing was stored. The message says why."""

    def __init__(self, message: str, field: str = "code") -> None:
        super().__init__(message)
        self.field = field


class IdempotencyKeyTaken(Exception):
    """The learner already sent a submission with this idempotency key: `submission` is the one it stored."""

    def __init__(self, submission: Submission) -> None:
        super().__init__(f"idempotency key already used by submission {submission.pk}")
        self.submission = submission


class IdempotencyKeyReused(Exception):
    """The idempotency key was first sent with a different answer; nothing was stored. The message says how."""


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
    checks = list(item.checks.all())  # read with the item when a worker claimed it (quiz.selectors.item_for_grading)
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
    grade.checks = results  # type: ignore[assignment]  # already plain dicts, as stored
    return ChoiceResult(grade=grade, selected=chosen)


# The queued_at of a submission whose message never reached the broker (Redis was down when it was stored):
# older than any cutoff the sweep (grader.requeue_stuck) uses, so its next pass sends it.
NEVER_SENT = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
# Publishing runs inside the web request that stored the rows: one immediate retry (a pooled connection that went
# stale when Redis restarted), no more. With the broker away the request answers now and the sweep sends later,
# instead of holding the learner for kombu's default retries (0.6 s per message, a minute for a regrade batch).
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def submissions_enqueue(submission_ids: list[int]) -> list[int]:
    """Send submissions to the grading queue (call inside transaction.on_commit); returns the ids not sent.

    Never fails on a broker fault: the rows are committed already, and a request that stored its submission
    must not answer 500 because Redis is away (the learner would send it again and pay a second attempt).
    What could not be sent stays queued with queued_at = NEVER_SENT, which the sweep re-queues at its next
    pass once the broker is back; nothing is lost. After the first failure the rest are not tried.

    The task (grader.tasks.grade_submission) is sent by name: tasks call services, never the other way.
    """
    for index, submission_id in enumerate(submission_ids):
        try:
            celery_app.send_task(GRADING_TASK, args=[submission_id], retry_policy=PUBLISH_RETRY_POLICY,
                                 ignore_result=True)
        except (BrokerError, redis.RedisError, OSError) as exc:
            unsent = submission_ids[index:]
            logger.warning("broker unavailable, %d submission(s) left for the sweep to send (%s): %s",
                           len(unsent), unsent[:20], exc)
            break
    else:
        return []
    try:
        Submission.objects.filter(pk__in=unsent, status=Status.QUEUED).update(queued_at=NEVER_SENT)
    except DatabaseError as exc:  # still queued: the sweep finds them by age, only later
        logger.warning("could not mark submissions %s as never sent: %s", unsent[:20], exc)
    return unsent


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


def _enrolment(*, user: Any, item: Item, course: str | None) -> course_selectors.Enrolment:
    """course_selectors.enrolment_lock (the course quiz, the role, the start, and the learner's lock), or
    SubmissionRefused (field "course") saying why there is none."""
    try:
        return course_selectors.enrolment_lock(user=user, item=item, course=course)
    except (course_selectors.NotInCourse, course_selectors.WhichCourse) as exc:
        raise SubmissionRefused(str(exc), field="course") from None


def _repeat_of(*, user: Any, item: Item, course_id: int, digest: str) -> int | None:
    """The learner's graded attempt (number) that already sent the answer with this digest: on the index over
    course, user and item, then one equality; never the grader's refusals or failures."""
    return (Submission.objects.filter(user=user, item=item, course_id=course_id, attempt__isnull=False,
                                      answer_digest=digest).exclude(status__in=FREE_STATUSES)
            .order_by("-created_at").values_list("attempt", flat=True).first())


def _keyed_submission(user: Any, idempotency_key: str) -> Submission | None:
    """The learner's submission stored with this key (its item and course loaded), or None. In SQL (config.sql
    says why): every submit from the site or the notebook client sends a key, and is looked up first."""
    s, i, c = "s", "i", "c"
    query = (f"SELECT {sql.columns(Submission, s)}, {sql.columns(Item, i)}, {sql.columns(Course, c)}"
             f" FROM {sql.table(Submission, s)}"
             f" JOIN {sql.table(Item, i)} ON {sql.column(Item, 'id', i)} = {sql.column(Submission, 'item', s)}"
             f" JOIN {sql.table(Course, c)} ON {sql.column(Course, 'id', c)} = {sql.column(Submission, 'course', s)}"
             f" WHERE {sql.column(Submission, 'user', s)} = %s AND {sql.column(Submission, 'idempotency_key', s)} = %s")
    found = sql.fetch(query, [user.pk, idempotency_key])
    if not found:
        return None
    submission_values, item_values, course_values, _rest = sql.split(found[0], Submission, Item, Course)
    submission = sql.instance(Submission, submission_values)
    submission.item = sql.instance(Item, item_values)
    submission.course = sql.instance(Course, course_values)
    return submission


def submission_create(*, user: Any, item: Item, code: str | bytes | None = None,
                      selected: list[int] | None = None, course: str | None = None,
                      idempotency_key: str | None = None) -> Submission:
    """Store an attempt at an item in one of the learner's courses, under that course quiz's policy.

    Code is queued for a worker once the transaction commits; a choice answer is graded at once. The
    policy is enforced here, so the API, the site and every other way in agree: dates, the time limit,
    attempts, cooldown; the attempt's penalty and lateness are fixed now and applied to its score when
    it is graded. A syntax error or the unchanged starter costs no attempt; a repeat of an earlier answer
    is refused. Refused input raises SubmissionRefused and stores nothing.

    An idempotency_key is stored with the submission; when the learner already used it, this raises
    IdempotencyKeyTaken. It is looked up once, first. A concurrent retry that got past that look waits for the
    first request's lock, then is refused (its answer is now a repeat, or the attempt it would take is used) or
    stopped by the key's unique constraint: either way the key is looked up again and the retry gets the first
    row rather than the refusal. submission_create_once turns IdempotencyKeyTaken into the earlier submission.
    """
    if idempotency_key is not None and (earlier := _keyed_submission(user, idempotency_key)) is not None:
        raise IdempotencyKeyTaken(earlier)
    try:
        return _submission_store(user=user, item=item, code=code, selected=selected, course=course,
                                 idempotency_key=idempotency_key)
    except SubmissionRefused:
        if idempotency_key is None or (earlier := _keyed_submission(user, idempotency_key)) is None:
            raise
        raise IdempotencyKeyTaken(earlier) from None
    except IntegrityError:
        # The same key, concurrently, for a course whose lock we did not share: the other request stored first.
        if idempotency_key is None or (earlier := _keyed_submission(user, idempotency_key)) is None:
            raise
        logger.info("idempotency key of submission %s was sent twice at once; the second stored nothing", earlier.pk)
        raise IdempotencyKeyTaken(earlier) from None


@transaction.atomic
def _submission_store(*, user: Any, item: Item, code: str | bytes | None, selected: list[int] | None,
                      course: str | None, idempotency_key: str | None) -> Submission:
    """submission_create's work once the key is known to be new, in one transaction: the course quiz, the
    learner's lock and role and the start of a timed quiz in one query (enrolment_lock), their standing on the
    item and whether this answer repeats an earlier one in a second, then the row."""
    if item.archived:
        raise SubmissionRefused("this item is archived and no longer takes answers", field="item")
    # One attempt at a time per learner and course: concurrent requests cannot both take the last attempt.
    enrolment = _enrolment(user=user, item=item, course=course)
    course_quiz = enrolment.course_quiz
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
    answer = code or ""
    # The learner's draw of the item's parameters is part of the answer. It depends on the attempt's number only
    # when drawn anew for every attempt; otherwise it is known now, and so is the answer's digest, which the
    # standing's query then compares with the earlier attempts' (no query of its own for the repeat rule).
    per_attempt = bool(item.params) and item.params_per_attempt
    params = None if per_attempt else quiz_selectors.item_params(item=item, user=user, attempts=0)
    digest = None if params is None else answer_digest(code=answer, selected=chosen, params=params)
    standing = standing_for_attempt(user=user, item=item, enrolment=enrolment, now=now, answer_digest=digest)
    if params is None:
        params = quiz_selectors.item_params(item=item, user=user, attempts=standing.attempts)
    if item.is_code:
        # Code that cannot be graded costs nothing: a syntax error, the unchanged starter, or code the grader's
        # screen refuses unrun (its verdict says why).
        tree = parse(answer)
        free = (tree is None or is_starter(answer, variants.render(item.starter_code, params), tree)
                or screen_problem(answer, tree) is not None)
    refusal = standing.refusal(counted=not free)
    if refusal:
        raise SubmissionRefused(refusal, field="non_field_errors")
    if not free:
        # An answer identical to one already graded costs nothing and counts for nothing: it is refused. (Not
        # when the grader refused or failed the first one: trying again after an internal error must work.)
        repeat_of = standing.repeat_of if digest is not None else _repeat_of(
            user=user, item=item, course_id=course_quiz.course_id,
            digest=answer_digest(code=answer, selected=chosen, params=params))
        if repeat_of is not None:
            raise SubmissionRefused(
                f"you already sent this exact answer (attempt {repeat_of}); change it before sending it again: a "
                "repeat costs no attempt and is not graded", field="code" if answer else "choices")
    if standing.policy.time_limit is not None and enrolment.started_at is None:
        course_services.quiz_start(course_quiz=course_quiz, user=user)
    counted = {} if free else {"attempt": standing.attempts + 1, "penalty": standing.next_penalty}
    fields = {"user": user, "item": item, "course": course_quiz.course, "late": standing.late,
              "idempotency_key": idempotency_key, **counted}
    if item.kind == Item.Kind.CHOICE:
        grade = result.grade
        submission = sql.insert(Submission(
            **fields, selected=chosen, status=grade.status, score=grade.score,
            final_score=Policy.final_score(grade.score, counted.get("penalty", 0.0)), checks=grade.checks,
            item_version=item.version, started_at=now, finished_at=now, duration_ms=0).set_answer_digest())
        attempt_announce(submission)
    else:
        submission = sql.insert(Submission(**fields, code=answer, status=Status.QUEUED, queued_at=now,
                                           params=params).set_answer_digest())  # in SQL (config.sql says why)
        transaction.on_commit(lambda: submissions_enqueue([submission.pk]))
    # Shown to its learner next (a choice answer's verdict at once): what that takes is known here already.
    return submission_shown_as(submission, user=user, staff=enrolment.staff, course_quiz=course_quiz)


@dataclass(frozen=True)
class Created:
    submission: Submission
    replayed: bool  # True: the idempotency key's earlier submission, returned again; nothing was stored now


def submission_create_once(*, user: Any, item: Item, code: str | bytes | None = None,
                           selected: list[int] | None = None, course: str | None = None,
                           idempotency_key: str | None = None) -> Created:
    """submission_create, at most once per idempotency key and learner.

    Why: a client that lost the answer to its POST (a dropped connection, a 503 while the database restarted
    after the row was committed) cannot know whether its attempt was stored; it sends the same request again
    with the same key, and gets the first submission back (as it is now: queued or graded) instead of paying
    a second attempt. The replay ignores everything that changed since (attempts used up, the due date), since
    nothing new is stored. The key is unique per learner in the database: of two concurrent requests with it,
    one stores and the other gets that row. The same key with another item, course or answer raises
    IdempotencyKeyReused: a client reusing keys would otherwise lose its later answers without a word.
    """
    try:
        return Created(submission_create(user=user, item=item, code=code, selected=selected, course=course,
                                         idempotency_key=idempotency_key), replayed=False)
    except IdempotencyKeyTaken as taken:
        earlier = taken.submission
    difference = _request_difference(earlier, item=item, code=code, selected=selected, course=course)
    if difference:
        raise IdempotencyKeyReused(f"this Idempotency-Key was first used for submission {earlier.pk} with "
                                   f"{difference}; use a new key for a new submission")
    return Created(earlier, replayed=True)


def _request_difference(earlier: Submission, *, item: Item, code: str | bytes | None, selected: list[int] | None,
                        course: str | None) -> str:
    """How a request differs from the one that stored `earlier` ('' when it is the same request)."""
    if earlier.item_id != item.pk:
        return f"another item ({earlier.item.slug})"
    if course and earlier.course.slug != course:
        return f"another course ({earlier.course.slug})"
    if isinstance(code, bytes):
        code = code.decode("utf-8", errors="replace")
    if item.kind == Item.Kind.CHOICE:
        if sorted(set(selected or [])) != sorted(earlier.selected):
            return "other choices"
    elif (code or "") != earlier.code:
        return "other code"
    return ""


def attempt_announce(submission: Submission) -> None:
    """Tell the ways in (the LMS grade passback) that a verdict was stored, once that is committed."""
    ids = {"submission_id": submission.pk, "user_id": submission.user_id, "course_id": submission.course_id,
           "item_id": submission.item_id}
    transaction.on_commit(lambda: attempt_graded.send(sender=Submission, **ids))


def submission_claim(*, submission_id: int, task_id: str, retries: int = 0) -> Submission | None:
    """Take a submission for grading, or None when it must be left alone.

    Left alone: already graded (a redelivered message), or being graded right
    now by another task. A redelivery of the same task (its worker died) takes
    it back, and so does any task once the holder's lease ran out (it died and
    the sweep has not re-queued it yet). Too many deliveries end it with
    internal_error, so one submission cannot loop through the workers forever;
    the task's own retries after an infrastructure fault (`retries`) are not
    held against it.

    The claim is one conditional UPDATE that returns the row: the database decides atomically, and a grading
    costs no explicit transaction. It is a lease of GRADER_LEASE_SECONDS, renewed while grading
    (submission_lease_kept). Both statements are SQL (config.sql says why): the ORM's update and re-read cost
    a third of a Celery process's time per submission.
    """
    now = timezone.now()
    takeable, takeable_params = _takeable(task_id=task_id, now=now)
    status, deliveries = sql.column(Submission, "status"), sql.column(Submission, "deliveries")
    with connections["default"].cursor() as cursor:
        cursor.execute(
            f"UPDATE {sql.table(Submission)} SET {status} = %s, {sql.column(Submission, 'started_at')} = %s,"
            f" {deliveries} = {deliveries} + 1, {sql.column(Submission, 'claim')} = %s,"
            f" {sql.column(Submission, 'lease_until')} = %s"
            f" WHERE {sql.column(Submission, 'id')} = %s AND {deliveries} < %s AND ({takeable})"
            f" RETURNING {sql.columns(Submission)}",
            [Status.RUNNING, sql.param(Submission, "started_at", now), task_id,
             sql.param(Submission, "lease_until", now + timedelta(seconds=settings.GRADER_LEASE_SECONDS)),
             submission_id, settings.GRADER_MAX_DELIVERIES + retries, *takeable_params])
        claimed = cursor.fetchone()
        if claimed is not None:
            submission = sql.instance(Submission, claimed)
            item = quiz_selectors.item_for_grading(item_id=submission.item_id)
            assert item is not None, "a submission keeps its item (on_delete=PROTECT)"
            submission.item = item
            return submission
        cursor.execute(
            f"UPDATE {sql.table(Submission)} SET {status} = %s, {sql.column(Submission, 'finished_at')} = %s,"
            f" {sql.column(Submission, 'lease_until')} = NULL, {sql.column(Submission, 'error')} = %s"
            f" WHERE {sql.column(Submission, 'id')} = %s AND ({takeable})",
            [Status.INTERNAL_ERROR, sql.param(Submission, "finished_at", now),
             "Grading this submission failed too many times; it was stopped. This is not your fault.",
             submission_id, *takeable_params])
        if cursor.rowcount:
            logger.error("submission %s gave up after %s deliveries", submission_id, settings.GRADER_MAX_DELIVERIES)
    return None


def _takeable(*, task_id: str, now: datetime) -> tuple[str, list[Any]]:
    """submission_claim's condition, in SQL with its values: queued; running under this task (its redelivery);
    running with its lease run out; or claimed before leases existed and running longer than
    GRADER_STUCK_AFTER_SECONDS."""
    status, lease_until = sql.column(Submission, "status"), sql.column(Submission, "lease_until")
    condition = (f"{status} = %s OR ({status} = %s AND {sql.column(Submission, 'claim')} = %s)"
                 f" OR ({status} = %s AND {lease_until} < %s)"
                 f" OR ({status} = %s AND {lease_until} IS NULL AND {sql.column(Submission, 'started_at')} <= %s)")
    stale = now - timedelta(seconds=settings.GRADER_STUCK_AFTER_SECONDS)
    return condition, [Status.QUEUED, Status.RUNNING, task_id, Status.RUNNING,
                       sql.param(Submission, "lease_until", now), Status.RUNNING,
                       sql.param(Submission, "started_at", stale)]


def submission_lease_renew(*, submission_id: int, task_id: str, seconds: float | None = None) -> bool:
    """Extend the claim of `task_id` on a running submission by `seconds` (default GRADER_LEASE_SECONDS) from
    now; False when the task no longer holds it (the sweep re-queued it, another task took it over)."""
    until = timezone.now() + timedelta(seconds=settings.GRADER_LEASE_SECONDS if seconds is None else seconds)
    return bool(Submission.objects.filter(pk=submission_id, status=Status.RUNNING, claim=task_id).update(
        lease_until=until))


class _LeaseKeeper:
    """The thread of this process that renews the leases of the gradings running in it (submission_lease_kept).

    One per process, started with its first grading: a Celery pool process grades one submission at a time, and
    a thread started and joined for each grading cost about 7 % of the process's time (py-spy at saturation).
    It touches the database only for a grading that outlasts a renewal interval (most take milliseconds), and
    closes its own connection when none is left to renew.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._changed = threading.Condition()
        self._due: dict[tuple[int, str], tuple[float, float]] = {}  # (submission, task) -> (next renewal, interval)
        self._renewing: tuple[int, str] | None = None
        threading.Thread(target=self._run, name="lease-keeper", daemon=True).start()

    def hold(self, submission_id: int, task_id: str, interval: float) -> None:
        with self._changed:
            self._due[(submission_id, task_id)] = (time.monotonic() + interval, interval)
            self._changed.notify()

    def release(self, submission_id: int, task_id: str) -> None:
        """Stop renewing; returns once no renewal of it is under way, so none lands after the grading ended."""
        with self._changed:
            self._due.pop((submission_id, task_id), None)
            self._changed.notify_all()  # the thread lets its connection go if nothing is left
            while self._renewing == (submission_id, task_id):
                self._changed.wait()

    def _run(self) -> None:
        connected = False  # whether this thread has opened a database connection since it last closed it
        while True:
            with self._changed:
                now = time.monotonic()
                due = [(key, interval) for key, (at, interval) in self._due.items() if at <= now]
                idle = not self._due
                if not due and not (idle and connected):
                    self._changed.wait(min((at for at, _ in self._due.values()), default=now + 60) - now)
                    continue
                if due:
                    key, interval = due[0]
                    self._due[key] = (now + interval, interval)
                    self._renewing = key
            if not due:
                connections.close_all()  # nothing left to renew: this thread's own connection goes
                connected = False
                continue
            connected = True
            try:
                kept = submission_lease_renew(submission_id=key[0], task_id=key[1])
            except Exception as exc:  # noqa: BLE001 - whatever it is, the keeper lives on (a task waits on it)
                kept = True  # tried again at the next turn; if the lease runs out meanwhile, the sweep re-queues it
                logger.warning("submission %s: could not renew the lease of task %s: %s", key[0], key[1], exc)
            with self._changed:
                self._renewing = None
                if not kept:  # taken over: nothing left to keep
                    self._due.pop(key, None)
                self._changed.notify_all()


_lease_keeper: _LeaseKeeper | None = None
_lease_keeper_lock = threading.Lock()


@contextmanager
def submission_lease_kept(*, submission_id: int, task_id: str) -> Iterator[None]:
    """Renew the claim's lease every third of GRADER_LEASE_SECONDS while the block (the grading) runs.

    Why: the lease is how a dead worker is noticed in seconds (the sweep re-queues a running submission whose
    lease ran out), so it must be short, while a grading may legitimately last its wall limit (up to ~21 s, more
    with a reference to compute). A thread renews it (_LeaseKeeper): the grading itself blocks on the sandbox's
    socket. When the worker dies, so does the thread, and the lease runs out. A failed renewal is logged and
    tried again at the next turn; if the lease runs out meanwhile, the sweep re-queues the submission and the
    verdict of whichever task holds the claim last is the one stored.
    """
    global _lease_keeper
    with _lease_keeper_lock:
        if _lease_keeper is None or _lease_keeper.pid != os.getpid():  # threads do not survive a fork
            _lease_keeper = _LeaseKeeper()
        keeper = _lease_keeper
    keeper.hold(submission_id, task_id, settings.GRADER_LEASE_SECONDS / 3)
    try:
        yield
    finally:
        keeper.release(submission_id, task_id)


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
    updated = sql.update(Submission, where={"id": submission.pk, "status": Status.RUNNING, "claim": task_id}, values={
        **verdict, "final_score": Policy.final_score(grade.score, submission.penalty),
        "item_version": submission.item.version, "finished_at": timezone.now(), "lease_until": None,
    })  # in SQL (config.sql says why)
    if not updated:
        logger.warning("submission %s was taken over; verdict of task %s dropped", submission.pk, task_id)
    else:
        verdict_published(submission.pk)
        attempt_announce(submission)
    return bool(updated)


def submissions_requeue_stuck(*, older_than_seconds: int | None = None,
                              in_broker: Callable[[], Collection[int] | None] | None = None) -> list[int]:
    """Send again what a dead worker or a lost message left waiting; returns the ids sent.

    Always: running submissions whose lease ran out (the worker grading them died: the lease is renewed every
    few seconds while grading), and queued ones whose first sending failed (submissions_enqueue marked them
    NEVER_SENT). With in_broker (the periodic sweep, grader.tasks.requeue_stuck, passes
    grader.broker.submissions_in_broker): queued submissions older than GRADER_LOST_MESSAGE_SECONDS whose message
    the broker no longer holds, or holds in a worker that took it that long ago without starting it (Redis
    restarted empty; the worker that prefetched it died). The broker is read only when there are such
    candidates. With older_than_seconds (`manage.py requeue_stuck --older-than`): anything queued or running
    longer than that.

    So recovery does not wait for a fixed age or for Redis's visibility timeout, and a long but healthy queue (a
    deadline rush) is never sent twice. A re-queued submission loses its claim, so whichever task takes it next
    grades it; a late verdict from a presumed-dead task is dropped by submission_record, and a late copy of a
    message is refused by submission_claim: one verdict per submission, however many messages arrive.
    requeued_at = queued_at tells the learner it was re-queued.
    """
    now = timezone.now()
    stuck = Q(status=Status.RUNNING, lease_until__lt=now) | Q(status=Status.QUEUED, queued_at__lte=NEVER_SENT) | Q(
        status=Status.RUNNING, lease_until__isnull=True,  # claimed before leases existed: by age
        started_at__lte=now - timedelta(seconds=settings.GRADER_STUCK_AFTER_SECONDS))
    if older_than_seconds is not None:
        cutoff = now - timedelta(seconds=older_than_seconds)
        stuck |= Q(status=Status.QUEUED, queued_at__lte=cutoff) | Q(status=Status.RUNNING, started_at__lte=cutoff)
    if in_broker is not None:
        lost_before = now - timedelta(seconds=settings.GRADER_LOST_MESSAGE_SECONDS)
        waiting = Q(status=Status.QUEUED, queued_at__lte=lost_before)
        candidates = list(Submission.objects.filter(waiting).values_list("pk", flat=True))
        present = in_broker() if candidates else None
        if present is not None:
            lost = [pk for pk in candidates if pk not in present]
            if lost:
                stuck |= waiting & Q(pk__in=lost)
    with transaction.atomic():
        ids = list(Submission.objects.select_for_update(skip_locked=True).filter(stuck).order_by("pk").values_list(
            "pk", flat=True))  # oldest first: sent again in the order they came
        if ids:
            Submission.objects.filter(pk__in=ids).update(status=Status.QUEUED, claim="", queued_at=now,
                                                         requeued_at=now, lease_until=None)
            transaction.on_commit(lambda: submissions_enqueue(ids))
    if ids:
        logger.warning("re-queued %d stuck submission(s): %s", len(ids), ids[:20])
    return ids
