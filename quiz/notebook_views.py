"""The site's "Download as notebook": a quiz as a Jupyter notebook for the signed-in learner, in the course
of the quiz page (`?course=`), built by quiz.notebook like the API's."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from courses import selectors as course_selectors

from . import selectors
from .notebook import notebook_filename, notebook_response, quiz_notebook


@login_required
@require_http_methods(["GET", "HEAD"])
def quiz_notebook_download(request: HttpRequest, slug: str) -> HttpResponse:
    """The quiz as a .ipynb download; a quiz in several of the viewer's courses, asked for without
    ?course=, gets the page that lets them pick one."""
    quiz = selectors.quiz_get(slug=slug)
    try:
        course_quiz = course_selectors.course_quiz_for(user=request.user, quiz=quiz,
                                                       course=request.GET.get("course") or None)
    except course_selectors.NotInCourse as exc:
        raise Http404(str(exc)) from None
    except course_selectors.WhichCourse as exc:
        links = [{"slug": s, "url": f"{request.path}?{urlencode({'course': s})}"} for s in exc.slugs]
        return render(request, "quiz/choose_course.html", {"links": links})
    notebook = quiz_notebook(user=request.user, course_quiz=course_quiz,
                             server_url=request.build_absolute_uri(reverse("quiz:quiz-list")))
    return notebook_response(notebook, filename=notebook_filename(quiz_slug=quiz.slug))
