"""Development: `make run`. DEBUG on, a per-checkout secret key."""
from .base import *  # noqa: F403
from .base import BASE_DIR, env
from .environment import dev_secret_key

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or dev_secret_key(BASE_DIR)
(BASE_DIR / "var" / "static").mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing
