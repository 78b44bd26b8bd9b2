"""The autograd_quiz client against the real server (pytest-django's live server, the real API): logging
in with a password, and the server's refusals as the learner reads them. Grading itself, through a real
worker and a real kernel, is in test_notebook_e2e.py."""
from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from pytest_django.live_server_helper import LiveServer
from rest_framework.authtoken.models import Token
from rest_framework.settings import api_settings

import autograd_quiz
from autograd_quiz import AuthenticationFailed, Refused, Throttled, credentials
from courses.models import CourseQuiz
from grader.apis import SubmissionRateThrottle
from quiz.models import Choice

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def own_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A credentials folder of the test's own, no login carried over, a fresh submission budget."""
    monkeypatch.setenv("AUTOGRAD_QUIZ_CONFIG_DIR", str(tmp_path / "config"))
    for name in ("AUTOGRAD_QUIZ_URL", "AUTOGRAD_QUIZ_TOKEN", "AUTOGRAD_QUIZ_COURSE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(autograd_quiz.session, "_client", None)
    yield tmp_path / "config"


@pytest.fixture
def ada(learner: User) -> User:
    cache.delete(SubmissionRateThrottle.cache_format % {"scope": "submissions", "ident": learner.pk})
    return learner


def wrong_and_right(item: str) -> tuple[list[int], list[int]]:
    choices = list(Choice.objects.filter(item__slug=item))
    right = [c.pk for c in choices if c.correct]
    return [next(c.pk for c in choices if not c.correct)], right


def test_logging_in_with_a_password_stores_the_servers_token(live_server: LiveServer, seed_quiz: None, ada: User,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("builtins.input", lambda prompt: "ada")
    monkeypatch.setattr("getpass.getpass", lambda prompt: "pass-word-123")
    result = autograd_quiz.login(live_server.url, course="default")
    assert "Grading in the course 'default'." in result.text()
    path = credentials.credentials_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert credentials.stored(live_server.url)["token"] == Token.objects.get(user=ada).key


def test_a_wrong_password_is_refused_and_nothing_is_stored(live_server: LiveServer, seed_quiz: None, ada: User,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("builtins.input", lambda prompt: "ada")
    monkeypatch.setattr("getpass.getpass", lambda prompt: "not-the-password")
    with pytest.raises(AuthenticationFailed, match=r"refused the login: Unknown username or wrong password\.$"):
        autograd_quiz.login(live_server.url)
    assert not credentials.credentials_path().exists()


def test_a_refused_environment_token_says_which_token(live_server: LiveServer, seed_quiz: None, ada: User,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOGRAD_QUIZ_TOKEN", "0" * 40)
    with pytest.raises(AuthenticationFailed, match=r"refused \$AUTOGRAD_QUIZ_TOKEN"):
        autograd_quiz.login(live_server.url)


def test_the_course_rules_refusal_comes_in_the_servers_words(live_server: LiveServer, seed_quiz: None, ada: User,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    CourseQuiz.objects.filter(course__slug="default").update(max_attempts=1)
    monkeypatch.setenv("AUTOGRAD_QUIZ_TOKEN", Token.objects.create(user=ada).key)
    autograd_quiz.login(live_server.url)
    wrong, right = wrong_and_right("no-grad-purpose")
    assert autograd_quiz.grade("no-grad-purpose", choices=wrong).status == "failed"
    with pytest.raises(Refused) as refused:
        autograd_quiz.grade("no-grad-purpose", choices=right)
    assert "attempt" in str(refused.value).lower(), str(refused.value)
    assert not str(refused.value).startswith("choices:"), "the reason, without the field's name"


def test_throttling_by_the_server_says_how_long_to_wait(live_server: LiveServer, seed_quiz: None, ada: User,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SubmissionRateThrottle, "THROTTLE_RATES",
                        {**api_settings.DEFAULT_THROTTLE_RATES, "submissions": "2/min"})
    monkeypatch.setenv("AUTOGRAD_QUIZ_TOKEN", Token.objects.create(user=ada).key)
    autograd_quiz.login(live_server.url)
    wrong, right = wrong_and_right("clear-gradients")
    autograd_quiz.grade("clear-gradients", choices=wrong)
    autograd_quiz.grade("clear-gradients", choices=right)
    with pytest.raises(Throttled) as throttled:
        autograd_quiz.grade("clear-gradients", choices=right)
    assert throttled.value.retry_after is not None and 0 < throttled.value.retry_after <= 60
    assert f"in {int(throttled.value.retry_after) + 1} s" in str(throttled.value)
