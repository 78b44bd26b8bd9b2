"""Every environment variable the project reads, and a guard against typos.

A misspelt variable (DJANGO_DEBGU=1, CELERY_BROKER_ULR=...) would otherwise be
ignored in silence and the default used instead; here it stops start-up with
the closest known name.
"""
from __future__ import annotations

import difflib
import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

KNOWN = {
    # ours
    "DJANGO_SECRET_KEY": "secret key; required in production",
    "DJANGO_DEBUG": "true/false",
    "DJANGO_ALLOWED_HOSTS": "comma-separated host names",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "comma-separated origins, e.g. https://quiz.example.org",
    "DJANGO_LOG_LEVEL": "INFO by default",
    "DATABASE_URL": "e.g. postgres://user:pass@host:5432/db; SQLite file by default",
    "DATABASE_POOL_SIZE": "PostgreSQL: pooled connections per process (gunicorn.conf.py sets 12); 0: one per thread",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0 by default",
    "GRADER_ALLOW_UNSAFE_SANDBOX": "true to grade even when seccomp, Landlock or rlimits are missing",
    "GRADER_POOL_SIZE": "pre-forked children per zygote (default 2)",
    "GRADER_STUCK_AFTER_SECONDS": "re-queue submissions queued or running for longer (default 120)",
    "GRADER_SUBMISSION_RATE": "per-user submission throttle, e.g. 30/min",
    "DJANGO_SECURE_SSL_REDIRECT": "production: redirect http to https (default false)",
    # read by Django, Celery or their tools themselves
    "DJANGO_SETTINGS_MODULE": "", "DJANGO_COLORS": "", "DJANGO_WATCHMAN_TIMEOUT": "",
    "DJANGO_AUTO_COMPLETE": "", "DJANGO_ALLOW_ASYNC_UNSAFE": "", "DJANGO_LIVE_TEST_SERVER_ADDRESS": "",
    "DJANGO_SUPERUSER_USERNAME": "", "DJANGO_SUPERUSER_PASSWORD": "", "DJANGO_SUPERUSER_EMAIL": "",
    "CELERY_CONFIG_MODULE": "", "CELERY_LOADER": "", "CELERY_RDB_HOST": "", "CELERY_RDB_PORT": "",
    "CELERY_BENCH": "", "CELERY_TRACE_APP": "", "CELERY_CUSTOM_WORKER_POOL": "",
}
PREFIXES = ("DJANGO_", "GRADER_", "CELERY_", "DATABASE_")


def check_environment(environ: dict[str, str] | None = None) -> None:
    """Refuse to start when a variable looks like ours but is not a known name."""
    environ = dict(os.environ) if environ is None else environ
    unknown = sorted(k for k in environ if k.startswith(PREFIXES) and k not in KNOWN)
    if unknown:
        lines = []
        for name in unknown:
            close = difflib.get_close_matches(name, KNOWN, n=1, cutoff=0.7)
            lines.append(f"{name} (did you mean {close[0]}?)" if close else name)
        raise ImproperlyConfigured(
            "Unknown environment variable(s): " + ", ".join(lines)
            + ". Known names are listed in config/settings/environment.py."
        )


def dev_secret_key(base_dir: Path) -> str:
    """A per-checkout key for development, generated once and never committed."""
    path = base_dir / ".dev-secret-key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ImproperlyConfigured(f"cannot read {path}: {exc}") from exc
    # Written whole to a private file, then linked into place: a process racing
    # this one either wins the link or reads a complete key.
    key = secrets.token_urlsafe(50)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    try:
        os.link(tmp, path)
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        tmp.unlink()
    return key
