"""Read-only API over quiz content, scoped to the viewer's courses. Learners never see reference solutions
(until the course policy reveals them), reference values or hidden checks; a course's staff see everything."""
from __future__ import annotations

from typing import Any

from django.db.models import Count, Q
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_docs import errors
from courses import selectors as course_selectors
from courses.models import CourseQuiz
from grader.selectors import ItemProgress
from grader.services import item_limits
from grader.standing import Standing, course_progress, standing_of

from . import selectors, variants
from .markdown import render
from .services import StateRefused, learner_state_save
from .models import Item


class CourseFilterSerializer(serializers.Serializer):
    course = serializers.SlugField(required=False, help_text="a course's slug")
    quiz = serializers.SlugField(required=False, help_text="a quiz's slug")


class QuizListApi(APIView):
    class QuizOutputSerializer(serializers.Serializer):
        slug = serializers.SlugField()
        title = serializers.CharField()
        description = serializers.CharField()
        order = serializers.IntegerField()
        item_count = serializers.IntegerField()
        course = serializers.SlugField(help_text="the course this quiz runs in for you")
        course_title = serializers.CharField()
        opens_at = serializers.DateTimeField(allow_null=True)
        due_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(operation_id="quizzes_list", parameters=[OpenApiParameter("course", str, description="course slug")],
                   responses={200: QuizOutputSerializer(many=True), **errors(400, 401, 403)})
    def get(self, request: Request) -> Response:
        """The quizzes of your courses (open ones; staff also see those not open yet), one row per course."""
        filters = CourseFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        rows = course_selectors.course_quiz_list(user=request.user).annotate(
            item_count=Count("quiz__items", filter=Q(quiz__items__archived=False)))
        if filters.validated_data.get("course"):
            rows = rows.filter(course__slug=filters.validated_data["course"])
        data = [{"slug": r.quiz.slug, "title": r.quiz.title, "description": r.quiz.description, "order": r.quiz.order,
                 "item_count": r.item_count, "course": r.course.slug, "course_title": r.course.title,
                 "opens_at": r.opens_at, "due_at": r.due_at} for r in rows.order_by("course__slug", "order")]
        return Response(self.QuizOutputSerializer(data, many=True).data)


class CheckOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    target = serializers.CharField()
    compare = serializers.CharField()
    weight = serializers.FloatField()


class ChoiceOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    text_html = serializers.CharField()


class ItemOutputSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    quiz = serializers.SlugField()
    kind = serializers.ChoiceField(choices=Item.Kind.choices)
    title = serializers.CharField()
    prompt = serializers.CharField()
    prompt_html = serializers.CharField()
    hints = serializers.ListField(child=serializers.CharField())
    tags = serializers.ListField(child=serializers.CharField())
    starter_code = serializers.CharField(allow_blank=True)
    params = serializers.DictField(help_text="items with variants: the learner's own parameter values, already "
                                   "written into the prompt and the starter code")
    multiple = serializers.BooleanField()
    limits = serializers.DictField(child=serializers.FloatField())
    checks = CheckOutputSerializer(many=True)
    choices = ChoiceOutputSerializer(many=True)
    course = serializers.SlugField(help_text="the course this item is answered in")
    progress = serializers.DictField(help_text="attempts, best_score (after penalties), passed, revealed")
    state = serializers.DictField(help_text="your unsent draft (draft, draft_saved_at) and how many hints you "
                                  "opened (hints_opened): PUT them to items/SLUG/state/")
    policy = serializers.DictField(help_text="the course's rules as they apply to you now: due_at, late, "
                                   "attempts, attempts_left, next_penalty (percent), cooldown_left_seconds, "
                                   "time_left_seconds, feedback, refusal (why a graded attempt is refused now)")
    explanation = serializers.CharField(allow_null=True, help_text="Shown after passing or enough attempts")
    explanation_html = serializers.CharField(allow_null=True)
    solution = serializers.CharField(allow_null=True, help_text="Shown after passing or enough attempts")


def item_data(item: Item, user: Any, standing: Standing, progress: ItemProgress) -> dict[str, Any]:
    """The learner-safe description of an item in one course (the course's staff also get hidden checks
    and the solution)."""
    staff = standing.staff
    revealed = standing.revealed
    params = selectors.item_params(item=item, user=user, attempts=progress.attempts)
    prompt = variants.render(item.prompt, params)
    return {
        "slug": item.slug, "quiz": item.quiz.slug, "kind": item.kind, "title": item.title, "prompt": prompt,
        "prompt_html": render(prompt), "hints": [variants.render(h, params) for h in item.hints], "tags": item.tags,
        "starter_code": variants.render(item.starter_code, params), "params": params, "multiple": item.multiple,
        "limits": {"time_seconds": item.time_limit_seconds, "memory_mb": item.memory_limit_mb,
                   "wall_seconds": item_limits(item).wall} if item.is_code else {},
        "checks": [{"name": c.label, "target": c.target, "compare": c.compare, "weight": c.weight}
                   for c in item.checks.all() if staff or not c.hidden],
        "choices": [{"id": c.pk, "text": c.text, "text_html": render(c.text)} for c in item.choices.all()],
        "course": standing.course.slug,
        "progress": {"attempts": progress.attempts, "best_score": progress.best_score, "passed": progress.passed,
                     "revealed": revealed},
        "policy": standing.as_dict(),
        "state": selectors.learner_state(user=user, item=item),
        "explanation": item.explanation if revealed else None,
        "explanation_html": render(item.explanation) if revealed else None,
        "solution": (variants.render(item.solution_code, params) or None) if revealed else None,
    }


def item_in_course(request: Request | Any, item: Item, course: str | None) -> dict[str, Any]:
    """item_data for the course quiz the item is answered in (404 when the viewer has none, 400 when several
    and none was named)."""
    try:
        course_quiz = course_selectors.course_quiz_for(user=request.user, item=item, course=course)
    except course_selectors.NotInCourse as exc:
        raise Http404(str(exc)) from None
    except course_selectors.WhichCourse as exc:
        raise exceptions.ValidationError({"course": [str(exc)]}) from None
    return _item_data_in(request.user, course_quiz, [item])[0]


def _item_data_in(user: Any, course_quiz: CourseQuiz, items: list[Item]) -> list[dict[str, Any]]:
    progress = course_progress(user=user, items=items, course_quiz=course_quiz)
    return [item_data(item, user, standing_of(user=user, item=item, course_quiz=course_quiz), progress[item.pk])
            for item in items]


class ItemListApi(APIView):
    @extend_schema(
        operation_id="items_list",
        parameters=[OpenApiParameter("quiz", str, description="only the items of this quiz (slug)"),
                    OpenApiParameter("course", str, description="only the items of this course (slug)")],
        responses={200: ItemOutputSerializer(many=True), **errors(400, 401, 403)},
    )
    def get(self, request: Request) -> Response:
        """The items of your courses' quizzes, each with your standing in its course."""
        filters = CourseFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        rows = course_selectors.course_quiz_list(user=request.user)
        if filters.validated_data.get("course"):
            rows = rows.filter(course__slug=filters.validated_data["course"])
        if filters.validated_data.get("quiz"):
            rows = rows.filter(quiz__slug=filters.validated_data["quiz"])
        data = []
        for course_quiz in rows.order_by("course__slug", "order"):
            data += _item_data_in(request.user, course_quiz, list(selectors.item_list(quiz_slug=course_quiz.quiz.slug)))
        return Response(data)


class ItemDetailApi(APIView):
    @extend_schema(operation_id="items_retrieve",
                   parameters=[OpenApiParameter("course", str, description="the course (when the item is in "
                                                "several of yours)")],
                   responses={200: ItemOutputSerializer, **errors(400, 401, 403, 404)})
    def get(self, request: Request, slug: str) -> Response:
        filters = CourseFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        return Response(item_in_course(request, selectors.item_get(slug=slug), filters.validated_data.get("course")))


class ItemStateApi(APIView):
    """Your unsent draft and opened hints of an item, kept on the server (so they follow you)."""

    class StateInputSerializer(serializers.Serializer):
        draft = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
        hints_opened = serializers.IntegerField(required=False, min_value=0)

    class StateOutputSerializer(serializers.Serializer):
        draft = serializers.CharField(allow_blank=True)
        draft_saved_at = serializers.DateTimeField(allow_null=True)
        hints_opened = serializers.IntegerField()

    @extend_schema(operation_id="items_state_update", request=StateInputSerializer,
                   responses={200: StateOutputSerializer, **errors(400, 401, 403, 404, 415)})
    def put(self, request: Request, slug: str) -> Response:
        item = selectors.item_get(slug=slug)
        data = self.StateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        _visible_or_404(request.user, item)
        try:
            learner_state_save(user=request.user, item=item, **data.validated_data)
        except StateRefused as exc:
            raise exceptions.ValidationError({"draft": [str(exc)]}) from None
        return Response(self.StateOutputSerializer(selectors.learner_state(user=request.user, item=item)).data)


def _visible_or_404(user: Any, item: Item) -> None:
    """Only an item of one of the viewer's courses keeps state (WhichCourse: it is in several, so visible)."""
    try:
        course_selectors.course_quiz_for(user=user, item=item)
    except course_selectors.NotInCourse as exc:
        raise Http404(str(exc)) from None
    except course_selectors.WhichCourse:
        pass
