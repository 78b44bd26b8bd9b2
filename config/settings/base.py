"""Settings shared by every environment. Values come from the environment
(see environment.py for the full list); local.py, test.py and production.py
adjust them."""
from __future__ import annotations

from pathlib import Path

import environ

from .environment import check_environment

BASE_DIR = Path(__file__).resolve().parents[2]
check_environment()
env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "quiz",
    "courses",
    "grader",
    "reports",  # instructor reports: regrades, statistics, the gradebook (no models)
    "lti_tool",  # django-lti: LTI platform registrations, deployments, signing keys
    "lti",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "quiz.error_pages.FriendlyErrorPagesMiddleware",  # our 404/500 pages with DEBUG on too (make run)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.RequestGuardMiddleware",  # NUL in the query: 400; an API body over the limit: 413
    "config.middleware.DatabaseUnavailableMiddleware",  # the database down: 503, never a 500
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite is the embedded default; PostgreSQL in production and CI (DATABASE_URL).
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write concurrently: wait for locks, use WAL.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# Reuse connections across requests and tasks (per thread), checked before reuse.
DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# A web process on PostgreSQL (config/gunicorn.conf.py sets DATABASE_POOL_SIZE) shares a pool of connections among
# its 80 threads: a request borrows one, a long-poll holds none while it waits, and no request pays for a new
# connection (a PostgreSQL backend forked, authenticated and configured). With one persistent connection per
# thread, long-polls past GRADER_WAITS_HOLDING_CONNECTIONS closed theirs and opened another at each look: in a
# deadline rush (tests/faults/test_deadline_rush.py) that was most of the web tier's CPU: 2,000 learners took 206 s
# to grade, 120 s with the pool. Celery's pool processes run one task at a time and keep their one connection.
DATABASE_POOL_SIZE = env.int("DATABASE_POOL_SIZE", default=0)
if DATABASE_POOL_SIZE and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections; Django refuses both
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2, "max_size": DATABASE_POOL_SIZE, "timeout": 3}  # no connection within 3 s: a 503
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "quiz:login"
LOGIN_REDIRECT_URL = "quiz:quiz-list"
LOGOUT_REDIRECT_URL = "quiz:quiz-list"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

REST_FRAMEWORK = {
    # Token first: an anonymous request then gets 401 with a WWW-Authenticate header.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.authentication.TokenAuthentication",  # DRF's, in SQL
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {"submissions": env.str("GRADER_SUBMISSION_RATE", default="30/min")},
    "EXCEPTION_HANDLER": "config.api_errors.exception_handler",
    # Bodies too deep, too large or not in their charset are refused with the error shape (config/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONParser", "config.parsers.FormParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Autograd quiz grading API",
    "DESCRIPTION": "Quizzes, items and graded submissions. Every error has the shape "
    '{"error": {"code": ..., "message": ..., "fields": {...}}}.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "config.openapi.add_infrastructure_errors"],
}

# Celery: read by config/celery_app.py through the CELERY_ namespace.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True  # verdicts live in the database, not in a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"grader.grade_submission": {"queue": "grading"}}
# The sandbox stops a job after its wall limit (at most 2 * 10 s + 1 s); these only
# catch a worker that is stuck for a reason of its own.
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
# A worker rides out a broker outage: it reconnects with back-off (1, 2, then every 3 s) for as long as it takes,
# and never exits for it. Celery's default gives up after 100 tries and exits.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CONSUMER = "config.celery_app:Consumer"  # reconnects at most 3 s apart, not up to 30 s
# A grading that is running when the connection drops finishes and stores its verdict; only its ack is lost, and
# the redelivered message (if Redis kept it) is refused by the claim. Cancelling it would only waste the grading.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# A new pool process starts its sandbox zygote before it reports up (grader.signals: importing torch, 2-4 s, more on
# a busy machine). Celery's default 4 s wait then kills it and starts another, which is killed too: after a pool
# process died, the worker never got a working one back (seen in tests/faults/test_recovery.py under load).
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 60.0
# The message of a SIGKILLed worker stays in Redis's unacked hash for visibility_timeout; recovery does not wait for
# it (the sweep re-sends the submission within seconds and the claim refuses the late copy). Keepalive and a
# connect timeout make a broker that vanished without closing its sockets show as a connection error.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300, "socket_keepalive": True, "socket_connect_timeout": 5}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes the database connection around every task unless this
# is set: a new PostgreSQL connection per submission. Tasks follow Django's own
# CONN_MAX_AGE and health checks instead (grader.tasks calls close_old_connections).
CELERY_DB_REUSE_MAX = 10_000
CELERY_BEAT_SCHEDULE_FILENAME = str(BASE_DIR / "var" / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # Expires: sweeps that waited (no worker was up, or all were busy) are dropped, not run in a pile.
    "requeue-stuck-submissions": {"task": "grader.requeue_stuck", "schedule": 2.0, "options": {"expires": 10.0}},
}

# Shared by every web process: the per-user submission throttle must count across them. Short socket
# timeouts: with Redis unreachable the throttle lets requests through (grader.apis) instead of hanging them.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CELERY_BROKER_URL,
                      "KEY_PREFIX": "autograd-quiz",
                      "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2}}}

GRADER_ALLOW_UNSAFE_SANDBOX = env.bool("GRADER_ALLOW_UNSAFE_SANDBOX", default=False)
GRADER_POOL_SIZE = env.int("GRADER_POOL_SIZE", default=2)
GRADER_STUCK_AFTER_SECONDS = env.int("GRADER_STUCK_AFTER_SECONDS", default=120)  # `manage.py requeue_stuck`'s default
# Recovery in seconds (grader.services.submissions_requeue_stuck, run by beat every 2 s). A claim is a lease of
# GRADER_LEASE_SECONDS that the grading task renews every third of it; once it runs out the worker is presumed dead
# and the submission is sent again: re-queued at most lease + sweep period (10 s) after a worker's death.
GRADER_LEASE_SECONDS = 8
# A queued submission whose message the broker does not hold (Redis restarted empty, the enqueue failed), or that
# a worker has held this long without starting it (it was prefetched by a worker that died), is sent again.
GRADER_LOST_MESSAGE_SECONDS = 5
GRADER_MAX_DELIVERIES = 3  # a submission that kills its worker this often gets internal_error
# Requests allowed to wait for a verdict (?wait=) at once, per web process (grader.notify); more answer at
# once. Below config/gunicorn.conf.py's threads per process, so ordinary requests always find a free thread.
GRADER_WAITS_PER_PROCESS = 64
# Waiting requests beyond this many per process let their database connection go while they wait (grader.apis):
# the web tier then holds at most about this many connections per process for long-polls, however many there are.
GRADER_WAITS_HOLDING_CONNECTIONS = 16

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
