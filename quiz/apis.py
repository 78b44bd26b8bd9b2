"""Read-only API over quiz content. Learners never see reference solutions,
reference values or hidden checks; instructors see everything."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_docs import errors
from grader.selectors import is_instructor

from . import selectors, variants
from .markdown import render
from .models import Item


class QuizListApi(APIView):
    class QuizOutputSerializer(serializers.Serializer):
        slug = serializers.SlugField()
        title = serializers.CharField()
        description = serializers.CharField()
        order = serializers.IntegerField()
        item_count = serializers.IntegerField()

    @extend_schema(operation_id="quizzes_list", responses={200: QuizOutputSerializer(many=True), **errors(401, 403)})
    def get(self, request: Request) -> Response:
        return Response(self.QuizOutputSerializer(selectors.quiz_list(), many=True).data)


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
    progress = serializers.DictField(help_text="attempts, best_score, passed, revealed")
    explanation = serializers.CharField(allow_null=True, help_text="Shown after passing or enough attempts")
    explanation_html = serializers.CharField(allow_null=True)
    solution = serializers.CharField(allow_null=True, help_text="Shown after passing or enough attempts")


def item_data(item: Item, user: Any, progress: selectors.ItemProgress) -> dict[str, Any]:
    """The learner-safe description of an item (instructors also get hidden checks)."""
    instructor = is_instructor(user)
    revealed = instructor or selectors.item_revealed(item=item, progress=progress)
    params = selectors.item_params(item=item, user=user, progress=progress)
    prompt = variants.render(item.prompt, params)
    return {
        "slug": item.slug, "quiz": item.quiz.slug, "kind": item.kind, "title": item.title, "prompt": prompt,
        "prompt_html": render(prompt), "hints": [variants.render(h, params) for h in item.hints], "tags": item.tags,
        "starter_code": variants.render(item.starter_code, params), "params": params, "multiple": item.multiple,
        "limits": {"time_seconds": item.time_limit_seconds, "memory_mb": item.memory_limit_mb} if item.is_code else {},
        "checks": [{"name": c.label, "target": c.target, "compare": c.compare, "weight": c.weight}
                   for c in item.checks.all() if instructor or not c.hidden],
        "choices": [{"id": c.pk, "text": c.text, "text_html": render(c.text)} for c in item.choices.all()],
        "progress": {"attempts": progress.attempts, "best_score": progress.best_score, "passed": progress.passed,
                     "revealed": revealed},
        "explanation": item.explanation if revealed else None,
        "explanation_html": render(item.explanation) if revealed else None,
        "solution": (variants.render(item.solution_code, params) or None) if revealed else None,
    }


class ItemListApi(APIView):
    @extend_schema(
        operation_id="items_list",
        parameters=[OpenApiParameter("quiz", str, description="only the items of this quiz (slug)")],
        responses={200: ItemOutputSerializer(many=True), **errors(401, 403)},
    )
    def get(self, request: Request) -> Response:
        items = list(selectors.item_list(quiz_slug=request.query_params.get("quiz")))
        progress = selectors.item_progress(user=request.user, items=items)
        return Response([item_data(item, request.user, progress[item.pk]) for item in items])


class ItemDetailApi(APIView):
    @extend_schema(operation_id="items_retrieve", responses={200: ItemOutputSerializer, **errors(401, 403, 404)})
    def get(self, request: Request, slug: str) -> Response:
        item = selectors.item_get(slug=slug)
        progress = selectors.item_progress(user=request.user, items=[item])[item.pk]
        return Response(item_data(item, request.user, progress))
