from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.api_errors import not_found
from courses import apis as course_apis
from grader import apis as grader_apis
from quiz import apis as quiz_apis
from quiz import notebook_api


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and docker-compose: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


api_v1 = [
    path("courses/", course_apis.CourseListApi.as_view(), name="course-list"),
    path("quizzes/", quiz_apis.QuizListApi.as_view(), name="quiz-list"),
    path("quizzes/<slug:slug>/notebook/", notebook_api.QuizNotebookApi.as_view(), name="quiz-notebook"),
    path("items/", quiz_apis.ItemListApi.as_view(), name="item-list"),
    path("items/<slug:slug>/", quiz_apis.ItemDetailApi.as_view(), name="item-detail"),
    path("items/<slug:slug>/state/", quiz_apis.ItemStateApi.as_view(), name="item-state"),
    path("submissions/", grader_apis.SubmissionListApi.as_view(), name="submission-list"),
    path("submissions/<int:pk>/", grader_apis.SubmissionDetailApi.as_view(), name="submission-detail"),
    path("precheck/", grader_apis.PrecheckApi.as_view(), name="precheck"),
    path("auth/token/", grader_apis.TokenApi.as_view(), name="token"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz/", healthz, name="healthz"),
    path("lti/", include("lti.urls")),
    path("", include(("quiz.urls", "quiz"))),
    # JSON 404s under /api/, in DEBUG too; CSRF-exempt like the API's own views, so a PUT or POST to a wrong
    # address gets the 404, not the CSRF failure page
    re_path(r"^api/", csrf_exempt(not_found)),
]
handler404 = "config.api_errors.not_found"
handler500 = "config.api_errors.server_error"
