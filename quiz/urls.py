"""The learner-facing site (server-rendered pages), included under the "quiz" namespace.

The log-in and log-out pages are Django's own views with our templates, named
quiz:login and quiz:logout (settings.LOGIN_URL is "quiz:login").
"""
from django.contrib.auth import views as auth_views
from django.urls import path

from . import views
from . import client_download, notebook_views

urlpatterns = [
    path("", views.quiz_list, name="quiz-list"),
    path("quizzes/<slug:slug>/", views.quiz_detail, name="quiz-detail"),
    path("quizzes/<slug:slug>/notebook/", notebook_views.quiz_notebook_download, name="quiz-notebook"),
    path("client/autograd-quiz-client.tar.gz", client_download.client_download, name="client-download"),
    path("items/<slug:slug>/", views.item_detail, name="item-detail"),
    path("items/<slug:slug>/precheck/", views.item_precheck, name="item-precheck"),
    path("attempts/<int:pk>/graphs/<int:index>.svg", views.attempt_graph, name="attempt-graph"),
    path("courses/join/", views.course_join, name="course-join"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
