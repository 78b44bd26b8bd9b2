"""Where the client keeps the learner's API token: one JSON file in the user's config folder, mode 0600 in a
0700 folder, written atomically, so a token typed once serves every notebook and script of that user and
no other account on the machine can read it.

The file maps each server address to its token (and the course last used there), and remembers which
server was logged in to last, so `grade()` in a plain script needs no address.
"""
from __future__ import annotations

import json
import logging
import os
import stat
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

logger = logging.getLogger(__name__)

CONFIG_DIR_ENV = "AUTOGRAD_QUIZ_CONFIG_DIR"
FILE_NAME = "credentials.json"
FILE_MODE = 0o600
DIR_MODE = 0o700
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def config_dir() -> Path:
    """The user's config folder for this client: $AUTOGRAD_QUIZ_CONFIG_DIR, else the platform's usual place
    (%APPDATA% on Windows, ~/Library/Application Support on macOS, $XDG_CONFIG_HOME or ~/.config elsewhere)."""
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "autograd-quiz"


def credentials_path() -> Path:
    return config_dir() / FILE_NAME


def normalise_url(url: str) -> str:
    """A server address in one spelling, so `localhost:8000/` and `http://localhost:8000` share a token:
    scheme and host lower-cased, no trailing slash; without a scheme, http for this machine, else https."""
    url = url.strip()
    if not url:
        raise ValueError("the server address is empty")
    if "://" not in url:
        host = (urlsplit("//" + url).hostname or "").lower()
        url = ("http://" if host in LOCAL_HOSTS else "https://") + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not a web address: {url!r} (expected e.g. https://quiz.example.org)")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def load() -> dict[str, Any]:
    """The stored credentials ({"current": url, "servers": {url: {"token", "course"}}}); empty when none.
    A file readable by others (e.g. copied by hand) is narrowed to 0600 first."""
    path = credentials_path()
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return {"current": None, "servers": {}}
    if os.name == "posix" and mode & 0o077:
        logger.warning("%s was readable by others (mode %o); narrowing it to 0600", path, mode)
        path.chmod(FILE_MODE)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable %s: %s", path, exc)
        return {"current": None, "servers": {}}
    servers = data.get("servers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        return {"current": None, "servers": {}}
    return {"current": data.get("current"), "servers": servers}


def save(data: dict[str, Any]) -> Path:
    """Write the credentials: a temporary file created 0600 in a 0700 folder, then renamed over the old one,
    so the token is never on disk with wider permissions, nor half-written."""
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    if os.name == "posix":
        folder.chmod(DIR_MODE)
    path = folder / FILE_NAME
    temporary = folder / f".{FILE_NAME}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, FILE_MODE)  # O_CREAT's mode does not apply to a file left over from a crash
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def remember(*, url: str, token: str, course: str | None) -> Path:
    """Store the token for a server and make it the current one."""
    data = load()
    data["servers"][url] = {"token": token, "course": course}
    data["current"] = url
    return save(data)


def forget(*, url: str) -> bool:
    """Remove a server's token; True when there was one."""
    data = load()
    if url not in data["servers"]:
        return False
    del data["servers"][url]
    if data["current"] == url:
        data["current"] = None
    save(data)
    return True


def stored(url: str) -> dict[str, Any]:
    """The stored token and course of a server ({} when none)."""
    entry = load()["servers"].get(url)
    return entry if isinstance(entry, dict) else {}
