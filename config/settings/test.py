"""The test suite: fast hashing, in-memory mail, a broker database of its own."""
from .base import *  # noqa: F403
from .base import BASE_DIR, DATABASES, env
from .environment import dev_secret_key

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or dev_secret_key(BASE_DIR)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Tests run real Celery workers: keep their queue apart from a `make run` stack.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/15")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CELERY_BROKER_URL,
                      "KEY_PREFIX": "autograd-quiz-test"}}
(BASE_DIR / "var" / "static").mkdir(parents=True, exist_ok=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so a worker process can open the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / "test-db.sqlite3")}
