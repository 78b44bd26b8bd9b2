"""Settings come from the environment; a typo never passes silently."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from pytest_django.fixtures import Settings

from config.settings.environment import check_environment, dev_secret_key

ROOT = Path(__file__).resolve().parents[1]


def run_settings(module: str, env: dict[str, str], code: str = "from django.conf import settings; settings.SECRET_KEY") -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "GRADER_", "CELERY_"))}
    clean.update(env, DJANGO_SETTINGS_MODULE=module)
    return subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=ROOT, env=clean,
                          capture_output=True, text=True, timeout=60)


def test_a_misspelt_variable_stops_start_up_with_the_closest_name() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"DJANGO_DEBGU \(did you mean DJANGO_DEBUG\?\)"):
        check_environment({"DJANGO_DEBGU": "1", "HOME": "/root"})


def test_known_and_foreign_variables_pass() -> None:
    check_environment({"DJANGO_DEBUG": "1", "DATABASE_URL": "sqlite://", "HOME": "/x", "POSTGRES_PASSWORD": "x"})


def test_unknown_variable_refuses_the_whole_process() -> None:
    result = run_settings("config.settings.local", {"CELERY_BROKER_ULR": "redis://nowhere"})
    assert result.returncode != 0
    assert "CELERY_BROKER_ULR (did you mean CELERY_BROKER_URL?)" in result.stderr


def test_production_refuses_to_start_without_a_secret_key() -> None:
    result = run_settings("config.settings.production",
                          {"DJANGO_ALLOWED_HOSTS": "quiz.example.org", "DATABASE_URL": "postgres://db/quiz"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_without_hosts_or_database() -> None:
    key = {"DJANGO_SECRET_KEY": "k" * 50}
    assert "DJANGO_ALLOWED_HOSTS must be set" in run_settings("config.settings.production", {**key, "DATABASE_URL": "postgres://db/q"}).stderr
    assert "DATABASE_URL must be set" in run_settings("config.settings.production", {**key, "DJANGO_ALLOWED_HOSTS": "a"}).stderr


def test_production_starts_with_its_settings_and_debug_off() -> None:
    result = run_settings(
        "config.settings.production",
        {"DJANGO_SECRET_KEY": "k" * 50, "DJANGO_ALLOWED_HOSTS": "quiz.example.org,api.example.org",
         "DATABASE_URL": "postgres://u:p@db.example.org:5432/quiz", "CELERY_BROKER_URL": "redis://cache:6379/2"},
        "from django.conf import settings as s; print(s.DEBUG, s.ALLOWED_HOSTS, s.DATABASES['default']['HOST'], "
        "s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.SESSION_COOKIE_SECURE)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "['quiz.example.org',", "'api.example.org']", "db.example.org",
                                     "django.db.backends.postgresql", "redis://cache:6379/2", "True"]


def test_sqlite_is_the_embedded_default() -> None:
    result = run_settings("config.settings.local", {},
                          "from django.conf import settings as s; print(s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], s.CELERY_BROKER_URL)")
    assert result.returncode == 0, result.stderr
    engine, name, broker = result.stdout.split()
    assert engine == "django.db.backends.sqlite3" and name == str(ROOT / "db.sqlite3")
    assert broker == "redis://127.0.0.1:6379/0"


def test_dev_secret_key_is_generated_once_per_checkout(tmp_path: Path) -> None:
    first = dev_secret_key(tmp_path)
    assert len(first) >= 50
    assert dev_secret_key(tmp_path) == first
    assert (tmp_path / ".dev-secret-key").stat().st_mode & 0o777 == 0o600


def test_dev_secret_key_is_ignored_by_git() -> None:
    ignored = subprocess.run(["git", "check-ignore", ".dev-secret-key"], cwd=ROOT, capture_output=True, text=True)
    assert ignored.stdout.strip() == ".dev-secret-key"


def test_misspelt_celery_setting_is_a_system_check_error(settings: Settings) -> None:
    from config.checks import celery_setting_names

    settings.CELERY_TAKS_ACKS_LATE = True
    errors = celery_setting_names()
    assert [e.msg for e in errors] == ["CELERY_TAKS_ACKS_LATE is not a Celery setting"]


def test_every_celery_setting_we_rely_on_is_a_real_one() -> None:
    from config.checks import celery_setting_names

    assert celery_setting_names() == []
