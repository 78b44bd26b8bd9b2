"""The web tier never imports torch: a gunicorn process would carry its 2.7 s of import and some 140,000 objects
that every full garbage collection walks while all of the process's threads wait. Only the sandbox's zygote
(a process of its own) imports it."""
from __future__ import annotations

import subprocess
import sys

from tests import worker

LOAD_THE_SITE = """
import sys
import django
django.setup()
import config.urls, config.wsgi, grader.tasks  # every view, API and the task the API enqueues
from django.urls import get_resolver
get_resolver().url_patterns
print(",".join(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))))
"""


def test_loading_the_whole_site_does_not_import_torch(db: None) -> None:
    result = subprocess.run([sys.executable, "-c", LOAD_THE_SITE], cwd=worker.ROOT, capture_output=True, text=True,
                            timeout=120, env={"DJANGO_SETTINGS_MODULE": "config.settings.test",
                                              "DATABASE_URL": worker.test_database_url(), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"torch modules imported by the web tier: {result.stdout.strip()[:200]}"
