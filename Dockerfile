# One image for the web server, the Celery worker and Celery beat
# (docker-compose.yml picks the command). Build: docker compose build
#
# No secret is baked in: DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS and DATABASE_URL
# come from the environment at run time (production settings refuse to start
# without them).
#
# The container runs as root on purpose: the grading sandbox (grader/sandbox/)
# needs root to enter its own pid and mount namespaces and to drop each graded
# child to a throw-away uid. It also needs CAP_SYS_ADMIN and the unshare, mount,
# Landlock and seccomp syscalls, which Docker's default profiles block; see
# docker-compose.yml for the settings that allow them.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production

WORKDIR /app

# torch first, from the CPU-only index, so the multi-GB CUDA build is never
# pulled. Its own layer: it changes far less often than requirements.txt.
# Keep the version equal to the torch pin in requirements.txt
# (tests/test_compose.py checks that they match).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# Then the rest of the pins. torch==2.13.0 is already satisfied by the
# 2.13.0+cpu wheel, so pip keeps it. Copied before the code so a code change
# does not reinstall the dependencies.
COPY requirements.txt .
# requirements.txt installs the notebook client from the tree (-e ./clients/python)
COPY clients/python clients/python
RUN pip install -r requirements.txt

COPY . .

# Static files are collected into the image (STATIC_ROOT = /app/var/static,
# served by WhiteNoise). The values below exist only for this RUN line: they
# satisfy production settings' start-up checks and are not kept in the image.
RUN DJANGO_SECRET_KEY=build-only-not-a-secret-collectstatic-0123456789 \
    DJANGO_ALLOWED_HOSTS=localhost \
    DATABASE_URL=sqlite:////tmp/build.db \
    python manage.py collectstatic --noinput \
    && rm -f /tmp/build.db

EXPOSE 8000

CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi:application", "--bind", "0.0.0.0:8000"]
