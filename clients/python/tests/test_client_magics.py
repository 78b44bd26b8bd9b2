"""The notebook side in a real IPython shell (the plain-text front end a terminal has): %quiz_login, %%grade,
errors without tracebacks, and grade()/hint()/solution() as a script calls them."""
from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fakeserver import Answer, FakeServer, verdict
from IPython.core.error import StdinNotImplementedError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import autograd_quiz
from autograd_quiz import NoAnswer, NotLoggedIn, credentials

CODE = "import torch\nx = torch.tensor(2.0, requires_grad=True)\n(x**2 + 3*x + 1).backward()\n"
COURSES = [{"slug": "default", "title": "Default course", "role": "learner"}]


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InteractiveShell]:
    """A real IPython shell that writes nothing to the user's ~/.ipython."""
    previous = os.environ.get("IPYTHONDIR")
    os.environ["IPYTHONDIR"] = str(tmp_path_factory.mktemp("ipython"))
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=config)
    ip.run_line_magic("load_ext", "autograd_quiz")
    yield ip
    if previous is None:
        os.environ.pop("IPYTHONDIR", None)
    else:
        os.environ["IPYTHONDIR"] = previous


@pytest.fixture
def quiz(server: FakeServer) -> FakeServer:
    server.on("GET", "/api/v1/courses/", Answer(200, COURSES))
    server.on("POST", "/api/v1/auth/token/", Answer(200, {"token": "tok-from-password"}))
    server.on("POST", "/api/v1/submissions/", Answer(201, verdict("passed", checks=[
        {"name": "x.grad", "passed": True, "message": ""}])))
    return server


def no_prompt(*args: object) -> str:
    raise AssertionError("asked for input")


def test_a_grade_cell_sends_its_code_and_shows_the_verdict(
        shell: InteractiveShell, quiz: FakeServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AUTOGRAD_QUIZ_TOKEN", "tok-env")
    shell.run_line_magic("quiz_login", f"{quiz.url} --course default")
    result = shell.run_cell(f"%%grade grad-of-polynomial\n{CODE}")
    assert result.success
    out = capsys.readouterr().out
    assert f"Logged in to {quiz.url}. Your courses: Default course (learner)." in out
    assert "Using the token in $AUTOGRAD_QUIZ_TOKEN." in out and "tok-env" not in out
    assert "✓ Passed — grad-of-polynomial · score 100% · attempt 1\n  ✓ x.grad" in out
    [post] = quiz.seen("POST", "/api/v1/submissions/")
    assert post.body == {"item": "grad-of-polynomial", "code": CODE, "course": "default"}, "the cell, not run here"
    assert post.headers["Authorization"] == "Token tok-env"
    assert not credentials.credentials_path().exists(), "a token from the environment is never written down"


def test_a_quiz_error_is_its_message_without_a_traceback(
        shell: InteractiveShell, quiz: FakeServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AUTOGRAD_QUIZ_TOKEN", "tok-env")
    quiz.on("POST", "/api/v1/submissions/", Answer(429, {"error": {"code": "throttled", "message": "slow down"}},
                                                   headers={"Retry-After": "9"}))
    shell.run_line_magic("quiz_login", quiz.url)
    result = shell.run_cell(f"%%grade grad-of-polynomial\n{CODE}")
    assert not result.success, "the cell failed: a notebook's run-all stops there"
    out = capsys.readouterr()
    shown = out.out + out.err
    assert "Throttled: You are submitting very fast: the server takes more in 10 s. Nothing was graded." in shown
    assert "Traceback" not in shown and "client.py" not in shown


def test_login_asks_for_the_password_without_echo_and_keeps_the_token_for_next_time(
        shell: InteractiveShell, quiz: FakeServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    asked: list[str] = []

    def answer(reply: str) -> Callable[[str], str]:
        def ask(prompt: str) -> str:
            asked.append(prompt)
            return reply
        return ask

    monkeypatch.setattr("builtins.input", answer("ada"))
    monkeypatch.setattr(getpass, "getpass", answer("pass-word-123"))
    shell.run_line_magic("quiz_login", quiz.url)
    assert asked == [f"Username on {quiz.url}: ", "Password for ada (not shown): "]
    [trade] = quiz.seen("POST", "/api/v1/auth/token/")
    assert trade.body == {"username": "ada", "password": "pass-word-123"} and "Authorization" not in trade.headers
    assert credentials.stored(quiz.url)["token"] == "tok-from-password"
    assert oct(credentials.credentials_path().stat().st_mode & 0o777) == "0o600"
    out = capsys.readouterr().out
    assert "tok-from-password" not in out and "pass-word-123" not in out
    assert "readable by you only" in out

    monkeypatch.setattr("builtins.input", no_prompt)
    monkeypatch.setattr(getpass, "getpass", no_prompt)
    shell.run_line_magic("quiz_login", quiz.url)  # the stored token, still accepted: no prompt
    assert quiz.seen("GET", "/api/v1/courses/")[-1].headers["Authorization"] == "Token tok-from-password"


def test_a_stored_token_the_server_refuses_is_asked_for_again(shell: InteractiveShell, quiz: FakeServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    credentials.remember(url=quiz.url, token="revoked", course=None)
    quiz.on("GET", "/api/v1/courses/", Answer(401, {"error": {"code": "authentication_failed", "message": "no"}}),
            Answer(200, COURSES))
    monkeypatch.setattr("builtins.input", lambda prompt: "ada")
    monkeypatch.setattr(getpass, "getpass", lambda prompt: "pass-word-123")
    shell.run_line_magic("quiz_login", quiz.url)
    assert [r.headers["Authorization"] for r in quiz.seen("GET", "/api/v1/courses/")] == [
        "Token revoked", "Token tok-from-password"]
    assert credentials.stored(quiz.url)["token"] == "tok-from-password"


def test_login_with_token_asks_for_the_token_itself(shell: InteractiveShell, quiz: FakeServer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("builtins.input", no_prompt)
    monkeypatch.setattr(getpass, "getpass", lambda prompt: "pasted-token")
    shell.run_line_magic("quiz_login", f"{quiz.url} --token")
    assert credentials.stored(quiz.url)["token"] == "pasted-token"
    assert quiz.seen("POST", "/api/v1/auth/token/") == []


def test_a_front_end_without_input_is_told_to_set_the_token(quiz: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_stdin(prompt: str) -> str:
        raise StdinNotImplementedError("getpass was called, but this frontend does not support input requests.")

    monkeypatch.setattr("builtins.input", no_stdin)
    with pytest.raises(NotLoggedIn, match=r"cannot ask for a password\. Set \$AUTOGRAD_QUIZ_TOKEN"):
        autograd_quiz.login(quiz.url)


def test_a_script_grades_with_the_stored_login_and_no_login_call(quiz: FakeServer) -> None:
    with pytest.raises(NotLoggedIn, match="%quiz_login URL"):
        autograd_quiz.grade("grad-of-polynomial", CODE)
    credentials.remember(url=quiz.url, token="tok-stored", course="default")
    result = autograd_quiz.grade("grad-of-polynomial", CODE)
    assert result.passed and str(result).startswith("✓ Passed")
    assert quiz.seen("POST", "/api/v1/submissions/")[0].headers["Authorization"] == "Token tok-stored"


def test_choice_letters_are_the_answers_in_the_order_listed(quiz: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOGRAD_QUIZ_URL", quiz.url)
    monkeypatch.setenv("AUTOGRAD_QUIZ_TOKEN", "tok")
    quiz.on("GET", "/api/v1/items/no-grad-purpose/", Answer(200, {"slug": "no-grad-purpose", "choices": [
        {"id": 31, "text": "a"}, {"id": 32, "text": "b"}, {"id": 33, "text": "c"}]}))
    autograd_quiz.grade("no-grad-purpose", choices=["b", "C"])
    assert quiz.seen("POST", "/api/v1/submissions/")[0].body["choices"] == [32, 33]
    with pytest.raises(NoAnswer, match=r"replace \[\.\.\.\] with the letter"):
        autograd_quiz.grade("no-grad-purpose", choices=[...])
    with pytest.raises(NoAnswer, match="use the letters A, B, C"):
        autograd_quiz.grade("no-grad-purpose", choices=["D"])
    assert len(quiz.seen("POST", "/api/v1/submissions/")) == 1


def test_hint_shows_the_next_hint_each_time(quiz: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOGRAD_QUIZ_URL", quiz.url)
    monkeypatch.setenv("AUTOGRAD_QUIZ_TOKEN", "tok")
    quiz.on("GET", "/api/v1/items/zero-grad/", Answer(200, {"slug": "zero-grad", "hints": ["one", "two"]}))
    assert [autograd_quiz.hint("zero-grad").number for _ in range(3)] == [1, 2, 2]
    assert autograd_quiz.hint("zero-grad", 1).hint == "one"


def test_logout_deletes_the_stored_token(quiz: FakeServer, config_dir: Path) -> None:
    credentials.remember(url=quiz.url, token="tok", course=None)
    assert autograd_quiz.logout(quiz.url) is True
    assert credentials.stored(quiz.url) == {}


def test_an_address_that_is_not_a_web_address_is_a_message_not_a_traceback() -> None:
    with pytest.raises(NotLoggedIn, match=r"Not a web address: 'ftp://quiz\.example\.org'"):
        autograd_quiz.login("ftp://quiz.example.org")


def test_a_script_login_keeps_the_course_of_the_stored_login(quiz: FakeServer) -> None:
    credentials.remember(url=quiz.url, token="tok-stored", course="default")
    assert autograd_quiz.login(quiz.url).course == "default"
    assert autograd_quiz.current().course == "default"
