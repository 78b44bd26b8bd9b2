"""The site's "Download as notebook": a quiz as a Jupyter notebook for the signed-in learner, in the course
of the quiz page (`?course=`), built by quiz.notebook like the API's."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from . import selectors
from .notebook import notebook_filename, notebook_response, quiz_notebook
from .views import choosing_course, course_quiz_or_404


@login_required
@require_http_methods(["GET", "HEAD"])
@choosing_course
def quiz_notebook_download(request: HttpRequest, slug: str) -> HttpResponse:
    """The quiz as a .ipynb download; a quiz in several of the viewer's courses, asked for without
    ?course=, gets the page that lets them pick one."""
    quiz = selectors.quiz_get(slug=slug)
    course_quiz = course_quiz_or_404(request, quiz=quiz)
    notebook = quiz_notebook(user=request.user, course_quiz=course_quiz,
                             server_url=request.build_absolute_uri(reverse("quiz:quiz-list")))
    return notebook_response(notebook, filename=notebook_filename(quiz_slug=quiz.slug))
