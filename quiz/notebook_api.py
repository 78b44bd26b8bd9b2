"""`GET /api/v1/quizzes/{slug}/notebook/`: a quiz as a Jupyter notebook for the viewer, in one of their
courses (quiz.notebook builds it). A download, not JSON data: the body is the .ipynb file."""
from __future__ import annotations

from django.http import Http404, HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from config.api_docs import errors
from courses import selectors as course_selectors

from . import selectors
from .notebook import MEDIA_TYPE, notebook_filename, notebook_response, quiz_notebook


class QuizNotebookApi(APIView):
    class FilterSerializer(serializers.Serializer):
        course = serializers.SlugField(required=False, help_text="a course's slug")

    @extend_schema(
        operation_id="quizzes_notebook_retrieve",
        parameters=[OpenApiParameter("course", str, description="the course (when the quiz is in several of yours)")],
        responses={(200, MEDIA_TYPE): OpenApiResponse(OpenApiTypes.OBJECT, description=(
            "the quiz as a Jupyter notebook (nbformat 4): a cell that loads the autograd_quiz client and logs in, "
            "each prompt as Markdown, each code item's starter under %%grade SLUG, each choice item as "
            "grade(SLUG, choices=[...])")),
            **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request, slug: str) -> HttpResponse:
        """Your notebook of a quiz: your own numbers, graded by the same sandbox and course rules as the site."""
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        quiz = selectors.quiz_get(slug=slug)
        try:
            course_quiz = course_selectors.course_quiz_for(user=request.user, quiz=quiz,
                                                           course=filters.validated_data.get("course"))
        except course_selectors.NotInCourse as exc:
            raise Http404(str(exc)) from None
        except course_selectors.WhichCourse as exc:
            raise exceptions.ValidationError({"course": [str(exc)]}) from None
        notebook = quiz_notebook(user=request.user, course_quiz=course_quiz,
                                 server_url=request.build_absolute_uri(reverse("quiz:quiz-list")))
        return notebook_response(notebook, filename=notebook_filename(quiz_slug=quiz.slug))
