"""The grading API: submit code or a choice answer, read verdicts, get a token."""
from __future__ import annotations

import logging
import time
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth import authenticate
from django.db import connection
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_docs import ErrorSerializer, errors
from config.throttling import RedisUserRateThrottle
from quiz import selectors as quiz_selectors

from . import notify, selectors, services
from .models import Submission
from .notify import wait_for_verdict

logger = logging.getLogger(__name__)
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX_LENGTH = 100  # Submission.idempotency_key's max_length


class WaitSerializer(serializers.Serializer):
    wait = serializers.FloatField(required=False, min_value=0, max_value=30)


def _release_connection() -> None:
    if not connection.in_atomic_block:  # a test's transaction: closing would end it
        connection.close()


def _pooled() -> bool:
    """Whether closing the connection hands it back to a pool (settings: DATABASE_POOL_SIZE) rather than ending it."""
    return getattr(connection, "pool", None) is not None


def _wait(submission: Submission, seconds: float) -> notify.Waited:
    """Wait until the submission's verdict is stored, or `seconds` pass, reading its row into `submission` (as
    the request has it already, with what showing it takes: the service's new row, or selectors.submission_get's);
    returns how the wait ended (turned away: too many waiting already; see _retry_after).

    A look at the database reads the row's status alone into `submission`, and only once that is final its
    own columns (selectors.submission_refreshed: plain queries by key); nothing of what showing it takes is read
    again. After a verdict notice the look reads the own columns at once, so the verdict takes one query, not a
    look and then a read.

    A waiting request holds a thread (gunicorn has plenty). With pooled connections (gunicorn on PostgreSQL) it
    hands its connection back between looks: that costs nothing, and the pool stays free for ordinary requests.
    Without a pool (one connection per thread: SQLite, Celery), past GRADER_WAITS_HOLDING_CONNECTIONS waiting
    requests in this process the others let their connection go between looks and at the end, so however many
    clients long-poll they cannot use the connections up; below it nothing is closed, since opening a connection
    costs more than a grading's whole database work.
    """
    released = False

    def is_final(notified: bool) -> bool:
        nonlocal released
        try:
            if not notified and selectors.submission_refreshed(submission, status_only=True).is_pending:
                return False
            return not selectors.submission_refreshed(submission).is_pending
        finally:
            if _pooled() or notify.waiting() > settings.GRADER_WAITS_HOLDING_CONNECTIONS:
                released = True
                _release_connection()

    try:
        waited = wait_for_verdict(submission.pk, seconds, is_final)
        if submission.is_pending:  # the verdict found by a plain look, or none in time: read the row as it is now
            selectors.submission_refreshed(submission)
        return waited
    finally:
        if released:  # and its idle thread keeps none either
            _release_connection()


def _retry_after(waited: notify.Waited | None) -> dict[str, str]:
    """The headers of a pending answer: Retry-After when it was turned away without waiting, so clients back off
    instead of asking again at once while the server is busiest (item.js and the notebook client double it at
    each turn-away in a row)."""
    if waited is notify.Waited.TURNED_AWAY:
        return {"Retry-After": str(notify.TURNED_AWAY_RETRY_SECONDS)}
    return {}


class SubmissionRateThrottle(RedisUserRateThrottle):
    """Per-user limit on new submissions (GRADER_SUBMISSION_RATE); reading is not throttled.

    The counts live in the shared cache (Redis). When it cannot be reached the throttle lets the
    request through: refusing every submission, or a 500, because of a broker outage would be worse
    than a few minutes without a rate limit (the course's policy still limits attempts).
    """

    scope = "submissions"
    WARN_EVERY_SECONDS = 30.0
    _warned_at = float("-inf")

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method != "POST":
            return True
        try:
            return super().allow_request(request, view)
        except (redis.RedisError, OSError) as exc:
            now = time.monotonic()
            if now - SubmissionRateThrottle._warned_at >= self.WARN_EVERY_SECONDS:
                SubmissionRateThrottle._warned_at = now
                logger.warning("submission throttle off: the cache is unreachable (%s)", exc)
            return True


class CheckResultSerializer(serializers.Serializer):
    name = serializers.CharField()
    passed = serializers.BooleanField()
    message = serializers.CharField(allow_blank=True)
    choice = serializers.IntegerField(required=False, allow_null=True,
                                      help_text="choice items: the id of the chosen answer this feedback is about")
    graph = serializers.JSONField(
        required=False, help_text="graph checks: {learner: {nodes: [[type, kind, label]], edges: [[parent, child]], "
        "truncated}, extra: [learner nodes not in the reference], reference and missing (when the item reveals "
        "expected values)}; node 0 is the checked output, kind is op, leaf or custom")
    graph_svg = serializers.CharField(required=False, help_text="graph checks: the URL of the graph drawn as SVG")


class SubmissionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    item = serializers.SlugField()
    learner = serializers.CharField()
    status = serializers.ChoiceField(choices=[*Submission.Status.choices, ("graded", "Graded (feedback later)")],
                                     help_text="`graded` when the course holds feedback back until the due date")
    score = serializers.FloatField(allow_null=True, help_text="the grader's score, before any penalty")
    final_score = serializers.FloatField(allow_null=True, help_text="the score after the penalty: what counts")
    course = serializers.SlugField()
    attempt = serializers.IntegerField(allow_null=True, help_text="its number among your graded attempts; null: "
                                       "it cost no attempt (a syntax error, the unchanged starter)")
    penalty = serializers.FloatField(help_text="percent taken off (attempt and late penalties)")
    late = serializers.BooleanField()
    feedback = serializers.ChoiceField(choices=["full", "pass_fail", "hidden"],
                                       help_text="how much of the verdict the course shows you now")
    checks = CheckResultSerializer(many=True)
    stdout = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_null=True)
    error_line = serializers.IntegerField(allow_null=True)
    code = serializers.CharField(allow_blank=True)
    params = serializers.DictField(help_text="items with variants: the parameter values this attempt was graded with")
    choices = serializers.ListField(child=serializers.IntegerField())
    graded_item_version = serializers.IntegerField(allow_null=True)
    item_version = serializers.IntegerField()
    duration_ms = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    requeued = serializers.BooleanField(help_text="sent to the graders again after a worker restart or a lost queue "
                                        "message (nothing to do: it is graded once, as soon as a worker is free)")


def _with_graph_urls(submission: Submission, checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for index, check in enumerate(checks):
        if "graph" in check:
            check["graph_svg"] = reverse("quiz:attempt-graph", args=[submission.pk, index])
    return checks


def submission_data(submission: Submission, user: Any) -> dict[str, Any]:
    """A submission as the viewer may see it: with the course holding feedback back, a learner sees that it
    was graded and nothing of the verdict; with pass/fail only, the verdict and score without the checks."""
    feedback = selectors.feedback_for(submission=submission, user=user)
    hidden = feedback == "hidden" and not submission.is_pending
    return {
        "id": submission.pk,
        "url": reverse("api:submission-detail", args=[submission.pk]),
        "item": submission.item.slug,
        "course": submission.course.slug,
        "learner": submission.user.get_username(),
        "status": "graded" if hidden else submission.status,
        "score": None if hidden else submission.score,
        "final_score": None if hidden else submission.final_score,
        "attempt": submission.attempt,
        "penalty": submission.penalty,
        "late": submission.late,
        "feedback": feedback,
        "checks": _with_graph_urls(submission, selectors.visible_checks(submission=submission, user=user,
                                                                        feedback=feedback)),
        "stdout": "" if hidden else submission.stdout,
        "error": None if hidden else submission.error or None,
        "error_line": None if hidden else submission.error_line,
        "code": submission.code,
        "params": submission.params,
        "choices": submission.selected,
        "graded_item_version": submission.item_version,
        "item_version": submission.item.version,
        "duration_ms": submission.duration_ms,
        "created_at": submission.created_at,
        "started_at": submission.started_at,
        "finished_at": submission.finished_at,
        "requeued": submission.requeued_at is not None and submission.requeued_at == submission.queued_at,
    }


class CodeField(serializers.CharField):
    """Code as a JSON string only: a number or a list is an error, not text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key header: None when absent; 1 to 100 visible ASCII characters, else a 400."""
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if key is None:
        return None
    if not 0 < len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH or not all("!" <= c <= "~" for c in key):
        raise exceptions.ValidationError({IDEMPOTENCY_KEY_HEADER: [
            f"must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} visible ASCII characters (a UUID is a good choice)"]})
    return key


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was first used with a different request."
    default_code = "idempotency_key_reused"


class SubmissionListApi(APIView):
    throttle_classes = [SubmissionRateThrottle]

    class SubmissionInputSerializer(serializers.Serializer):
        item = serializers.SlugField(help_text="slug of the item answered")
        code = CodeField(required=False, allow_blank=True, trim_whitespace=False,
                         help_text="code items: the learner's code, a string (at most 64 KiB of UTF-8)")
        choices = serializers.ListField(child=serializers.IntegerField(), required=False,
                                        help_text="choice items: ids of the chosen choices")
        course = serializers.SlugField(required=False, help_text="the course the attempt is for (needed only when "
                                       "the item is in several of your courses)")

    class SubmissionQueuedSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.CharField()
        url = serializers.CharField()

    class SubmissionFilterSerializer(serializers.Serializer):
        item = serializers.CharField(required=False, allow_blank=True)
        status = serializers.ChoiceField(choices=Submission.Status.choices, required=False)
        learner = serializers.CharField(required=False, allow_blank=True)
        course = serializers.CharField(required=False, allow_blank=True)
        page = serializers.IntegerField(required=False, min_value=1)

    class SubmissionPageSerializer(serializers.Serializer):
        count = serializers.IntegerField()
        next = serializers.CharField(allow_null=True)
        previous = serializers.CharField(allow_null=True)
        results = SubmissionOutputSerializer(many=True)

    @extend_schema(
        operation_id="submissions_list",
        parameters=[
            OpenApiParameter("item", str, description="item slug"),
            OpenApiParameter("status", str, enum=[s.value for s in Submission.Status]),
            OpenApiParameter("learner", str, description="a course's staff: a learner's username"),
            OpenApiParameter("course", str, description="course slug"),
            OpenApiParameter("page", int, description="page number, from 1"),
        ],
        responses={200: SubmissionPageSerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request) -> Response:
        from rest_framework.pagination import PageNumberPagination

        # A plain dict: with a QueryDict, DRF would read `?status=` as "not given".
        filters = self.SubmissionFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        submissions = selectors.submission_list(user=request.user, item=params.get("item"),
                                                status=params.get("status"), learner=params.get("learner"),
                                                course=params.get("course"))
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(submissions, request, view=self)
        return paginator.get_paginated_response([submission_data(s, request.user) for s in page or []])

    @extend_schema(
        operation_id="submissions_create",
        request=SubmissionInputSerializer,
        parameters=[
            OpenApiParameter("wait", float, description=(
                "seconds (at most 30) to wait for the verdict of code: 201 with the graded submission if it came "
                "in time, else 202 as without it. When the server has too many clients waiting already it answers "
                "202 at once with `Retry-After` (seconds): poll the returned url no sooner than that")),
            OpenApiParameter(IDEMPOTENCY_KEY_HEADER, str, location=OpenApiParameter.HEADER, description=(
                "any string of 1 to 100 visible ASCII characters, new for each submission (a UUID): sending the "
                "same request again with the same key (a retry after a dropped connection or a 503) stores "
                "nothing new and answers with the first submission as it is now, 202 while it waits for its "
                "verdict and 201 once graded, with the header `Idempotent-Replayed: true`. Keys are per user "
                "and kept with the submission. The same key with another item, course or answer is a 422.")),
        ],
        responses={202: SubmissionQueuedSerializer, 201: SubmissionOutputSerializer,
                   **errors(400, 401, 403, 415, 429),
                   413: OpenApiResponse(ErrorSerializer, description="Request body too large"),
                   422: OpenApiResponse(ErrorSerializer, description="Idempotency-Key reused for another request")},
        description=("Code is queued for grading (202; read the returned url, with ?wait= to get the verdict as soon "
                     "as it is stored). A choice answer is graded at once (201). The course's policy applies: an "
                     "attempt refused by it (not open, past the due date, no attempts left, cooldown, time limit "
                     "over, a repeat of an earlier answer) is a 400 saying why, and nothing is stored. Code is "
                     "accepted while the grading queue is unreachable: it is stored, answered 202 and queued as "
                     "soon as the queue is back. Send an Idempotency-Key to retry safely."),
    )
    def post(self, request: Request) -> Response:
        params = WaitSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        data = self.SubmissionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = idempotency_key(request)
        item = quiz_selectors.item_answered(slug=data.validated_data["item"])
        if item is None:
            raise exceptions.ValidationError({"item": [f"no item {data.validated_data['item']!r}"]})
        try:
            created = services.submission_create_once(
                user=request.user, item=item, code=data.validated_data.get("code"),
                selected=data.validated_data.get("choices"), course=data.validated_data.get("course"),
                idempotency_key=key)
        except services.SubmissionRefused as exc:
            raise exceptions.ValidationError({exc.field: [str(exc)]}) from None
        except services.IdempotencyKeyReused as exc:
            raise IdempotencyKeyReused(str(exc)) from None
        submission = created.submission
        headers = {"Idempotent-Replayed": "true"} if created.replayed else {}
        waited = None
        if submission.is_pending and params.validated_data.get("wait"):
            waited = _wait(submission, params.validated_data["wait"])
        if submission.is_pending:
            url = reverse("api:submission-detail", args=[submission.pk])
            return Response({"id": submission.pk, "status": submission.status, "url": url},
                            status=status.HTTP_202_ACCEPTED,
                            headers={"Location": url, **headers, **_retry_after(waited)})
        return Response(submission_data(submission, request.user), status=status.HTTP_201_CREATED, headers=headers)


class SubmissionDetailApi(APIView):
    @extend_schema(
        operation_id="submissions_retrieve",
        parameters=[OpenApiParameter("wait", float, description=(
            "seconds (at most 30) to wait for the verdict before answering, instead of polling; "
            "the answer comes as soon as the verdict is stored. When the server has too many clients waiting "
            "already it answers at once, still pending, with `Retry-After` (seconds): ask again no sooner than "
            "that, and back off further if it happens again"))],
        responses={200: SubmissionOutputSerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        params = WaitSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        submission = selectors.submission_get(user=request.user, pk=pk)
        if submission is None:  # someone else's submission looks exactly like a missing one
            raise exceptions.NotFound(f"no submission {pk}")
        waited = None
        if submission.is_pending and params.validated_data.get("wait"):
            waited = _wait(submission, params.validated_data["wait"])
        return Response(submission_data(submission, request.user), headers=_retry_after(waited))


class PrecheckApi(APIView):
    """Check code's syntax (and what the grader refuses) without grading it: costs no attempt."""

    class PrecheckInputSerializer(serializers.Serializer):
        code = CodeField(allow_blank=True, trim_whitespace=False)

    class PrecheckOutputSerializer(serializers.Serializer):
        ok = serializers.BooleanField()
        message = serializers.CharField()
        line = serializers.IntegerField(allow_null=True)

    @extend_schema(operation_id="precheck_create", request=PrecheckInputSerializer,
                   responses={200: PrecheckOutputSerializer, **errors(400, 401, 403, 415)})
    def post(self, request: Request) -> Response:
        data = self.PrecheckInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.code_precheck(code=data.validated_data["code"])
        return Response({"ok": result.ok, "message": result.message, "line": result.line})


class TokenApi(APIView):
    """Trade a username and password for an API token (the same token every time)."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    class TokenInputSerializer(serializers.Serializer):
        username = serializers.CharField()
        password = serializers.CharField(trim_whitespace=False)

    @extend_schema(operation_id="auth_token_create", request=TokenInputSerializer,
                   responses={200: inline_serializer("Token", {"token": serializers.CharField()}), **errors(400, 415)})
    def post(self, request: Request) -> Response:
        data = self.TokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, username=data.validated_data["username"], password=data.validated_data["password"])
        if user is None or not user.is_active:
            raise exceptions.ValidationError({"non_field_errors": ["unknown username or wrong password"]})
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
