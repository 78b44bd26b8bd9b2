"""The notebook client (clients/python) served by the site as a source archive, so a downloaded notebook's
first cell can `%pip install` it from the server it grades on: nothing to fetch from anywhere else.

pip builds it from the archive (setuptools, pure Python, no dependencies of its own). The archive is made
once per process from the files in the tree, with fixed timestamps and ownership, so it is the same bytes
every time (a browser or pip may cache it).
"""
from __future__ import annotations

import io
import tarfile
from functools import lru_cache
from pathlib import Path

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

CLIENT_DIR = Path(__file__).resolve().parents[1] / "clients" / "python"
ARCHIVE_NAME = "autograd-quiz-client.tar.gz"
SKIP = {"tests", "build", "dist", "__pycache__"}


@lru_cache(maxsize=1)
def client_archive() -> bytes:
    """clients/python (its package, pyproject.toml and README) as a reproducible .tar.gz."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(CLIENT_DIR.rglob("*")):
            relative = path.relative_to(CLIENT_DIR)
            if not path.is_file() or SKIP & set(relative.parts) or any(p.endswith(".egg-info") for p in relative.parts):
                continue
            info = archive.gettarinfo(str(path), arcname=f"autograd-quiz-client/{relative}")
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with path.open("rb") as handle:
                archive.addfile(info, handle)
    return buffer.getvalue()


@require_http_methods(["GET", "HEAD"])
def client_download(request: HttpRequest) -> HttpResponse:
    """The client's source archive (public: it holds no secret, and pip fetches it without a session)."""
    response = HttpResponse(client_archive(), content_type="application/gzip")
    response["Content-Disposition"] = f'attachment; filename="{ARCHIVE_NAME}"'
    response["Cache-Control"] = "public, max-age=3600"
    return response
