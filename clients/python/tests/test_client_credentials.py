"""Where the token is kept: readable by its owner only, written whole, one per server address."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from autograd_quiz import credentials


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_stored_token_is_readable_by_its_owner_only(config_dir: Path) -> None:
    old_umask = os.umask(0o022)  # a permissive umask must not widen the file
    try:
        path = credentials.remember(url="http://127.0.0.1:8000", token="tok-1", course="default")
    finally:
        os.umask(old_umask)
    assert path == config_dir / "credentials.json"
    assert mode(path) == 0o600 and mode(config_dir) == 0o700
    assert json.loads(path.read_text()) == {"current": "http://127.0.0.1:8000",
                                            "servers": {"http://127.0.0.1:8000": {"course": "default",
                                                                                  "token": "tok-1"}}}
    assert [p.name for p in config_dir.iterdir()] == ["credentials.json"], "no temporary file left behind"


def test_a_file_readable_by_others_is_narrowed_when_read(config_dir: Path) -> None:
    path = credentials.remember(url="http://127.0.0.1:8000", token="tok-1", course=None)
    path.chmod(0o644)
    assert credentials.stored("http://127.0.0.1:8000")["token"] == "tok-1"
    assert mode(path) == 0o600


def test_each_server_keeps_its_own_token_and_forgetting_one_keeps_the_other() -> None:
    credentials.remember(url="http://127.0.0.1:8000", token="local", course=None)
    credentials.remember(url="https://quiz.example.org", token="remote", course="ml-101")
    assert credentials.load()["current"] == "https://quiz.example.org"
    assert credentials.forget(url="https://quiz.example.org") is True
    assert credentials.load() == {"current": None, "servers": {"http://127.0.0.1:8000": {"token": "local",
                                                                                        "course": None}}}
    assert credentials.forget(url="https://quiz.example.org") is False


def test_a_damaged_file_reads_as_no_credentials(config_dir: Path) -> None:
    config_dir.mkdir(mode=0o700)
    (config_dir / "credentials.json").write_text("{not json")
    (config_dir / "credentials.json").chmod(0o600)
    assert credentials.load() == {"current": None, "servers": {}}


@pytest.mark.parametrize(("given", "expected"), [
    ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
    ("localhost:8000", "http://localhost:8000"),
    ("[::1]:8000", "http://[::1]:8000"),
    ("quiz.example.org", "https://quiz.example.org"),
    ("HTTPS://Quiz.Example.org/course-site/", "https://quiz.example.org/course-site"),
])
def test_one_server_has_one_spelling(given: str, expected: str) -> None:
    assert credentials.normalise_url(given) == expected


def test_an_address_that_is_not_a_web_address_is_refused() -> None:
    with pytest.raises(ValueError):
        credentials.normalise_url("ftp://quiz.example.org")


def test_the_config_folder_follows_the_platforms_convention(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AUTOGRAD_QUIZ_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(credentials.sys, "platform", "linux")
    assert credentials.config_dir() == tmp_path / "xdg" / "autograd-quiz"
