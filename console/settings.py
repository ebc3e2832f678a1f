"""Portcullis settings: one file, read from environment variables.

With no variable set, the *embedded default* runs: a SQLite file and an embedded Celery broker
and cache under ``PORTCULLIS_DATA_DIR`` (``./data``), with a secret key and encryption keys
generated there on first run. Production sets ``DATABASE_URL`` (PostgreSQL through psycopg 3),
``REDIS_URL``, ``SECRET_KEY``, ``PORTCULLIS_ENCRYPTION_KEYS`` and ``ALLOWED_HOSTS``, and leaves
``DEBUG`` off; it refuses to start without the secrets.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DATA_DIR = Path(env.str("PORTCULLIS_DATA_DIR", default=str(BASE_DIR / "data"))).resolve()
EMBEDDED = "DATABASE_URL" not in env
# The embedded default is a try-it-out shape, so it runs in debug unless told otherwise;
# anything with a real database is production and runs without debug unless told otherwise.
DEBUG = env.bool("DEBUG", default=EMBEDDED)


def _data_file_secret(name: str, make: callable) -> str:  # type: ignore[valid-type]
    """Read a secret generated into the data folder on first run (embedded default only)."""
    path = DATA_DIR / name
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(make())
    return path.read_text().strip()


if "SECRET_KEY" in env:
    SECRET_KEY = env.str("SECRET_KEY")
elif DEBUG:
    SECRET_KEY = _data_file_secret("secret_key", lambda: secrets.token_urlsafe(64))
else:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters long.")

# Keys for secrets at rest (access-key secrets, TOTP seeds): Fernet keys, newest first. Adding a
# new key in front rotates; older keys keep decrypting until `manage.py rotate_encryption_keys`
# has re-encrypted everything. Keys never live in the database.
if "PORTCULLIS_ENCRYPTION_KEYS" in env:
    ENCRYPTION_KEYS = env.list("PORTCULLIS_ENCRYPTION_KEYS")
elif DEBUG:
    ENCRYPTION_KEYS = [
        _data_file_secret("encryption_key", lambda: Fernet.generate_key().decode("ascii"))
    ]
else:
    raise ImproperlyConfigured("PORTCULLIS_ENCRYPTION_KEYS must be set when DEBUG is off.")

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_htmx",
    "csp",
    "audit",
    "identity",
    "policies",
    "api",
    "console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # /v1/ (the decision API, SigV4-authenticated) answers here, without the console's stack.
    "api.lean.DecisionApiMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A console signed in as a federated role session (OIDC); before the session rules.
    "identity.federation_views.FederatedSessionMiddleware",
    # Deny by default, session timeouts, forced password change and MFA enrolment (sign-in).
    "identity.middleware.ConsoleSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

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
                "csp.context_processors.nonce",
                "identity.middleware.password_expiry_banner",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'portcullis.sqlite3'}")
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the embedded web process and worker share the file.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "portcullis",
        }
    }
    # The broker may live in its own Redis database (the test suite does this, so clearing the
    # cache between tests never drops the broker's queue bindings under a running worker).
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
    # A task whose worker died is redelivered after this, not after the broker's default hour.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 60}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }
    # kombu's filesystem transport: a broker with no server, shared by the web process and the
    # worker through the data folder.
    _broker_dir = DATA_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }

CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery closes the database connection around every task unless this is set; policies.tasks
# closes it the way Django does around a request instead (CONN_MAX_AGE, health checks, errors).
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}

AUTH_USER_MODEL = "identity.User"
AUTHENTICATION_BACKENDS = ["identity.backends.PortcullisBackend"]
LOGIN_URL = "signin"
LOGIN_REDIRECT_URL = "console:dashboard"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
# WhiteNoise scans this at start-up; in debug it stays empty (files come from the finders).
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Sessions and cookies -----------------------------------------------------------------------
# The account's idle timeout and absolute lifetime are enforced by middleware; this is the cookie
# ceiling (the longest absolute lifetime an account may configure).
SESSION_COOKIE_AGE = 12 * 60 * 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Strict"
SECURE_COOKIES = env.bool("SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
if SECURE_COOKIES:
    # The __Host- prefix pins a cookie to this host over HTTPS with Path=/ (RFC 6265bis).
    SESSION_COOKIE_NAME = "__Host-portcullis-session"
    CSRF_COOKIE_NAME = "__Host-portcullis-csrf"
else:
    SESSION_COOKIE_NAME = "portcullis-session"
    CSRF_COOKIE_NAME = "portcullis-csrf"

# --- Transport and browser security headers ----------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("TRUST_X_FORWARDED_PROTO", False) else None
)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
# Preload is on outside debug (secure by default); an organisation whose parent domain is not
# all-HTTPS turns it off with SECURE_HSTS_PRELOAD=0.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
    }
}

# --- Portcullis -----------------------------------------------------------------------------
# Where an API caller's address comes from. Off by default: X-Forwarded-For is attacker-chosen
# unless a trusted proxy sets it, and aws:SourceIp conditions depend on it.
TRUST_X_FORWARDED_FOR = env.bool("TRUST_X_FORWARDED_FOR", default=False)
# AWS advises against access keys for the root user; Portcullis refuses them unless allowed.
ALLOW_ROOT_ACCESS_KEYS = env.bool("PORTCULLIS_ALLOW_ROOT_ACCESS_KEYS", default=False)
# The test-double reset endpoint (Query API issue); off unless asked for.
ENABLE_RESET_ENDPOINT = env.bool("PORTCULLIS_ENABLE_RESET_ENDPOINT", default=False)
# A compiled policy set older than this is not trusted for decisions (seconds).
POLICY_MAX_STALENESS_S = env.int("PORTCULLIS_POLICY_MAX_STALENESS_S", default=300)
# Keep compiled-store answers in each process, dropped when Redis reports a write to them
# (policies.nearcache): a decision then makes no Redis round trip.
POLICY_NEAR_CACHE = env.bool("PORTCULLIS_POLICY_NEAR_CACHE", default=True)
# OIDC federation: providers are reached over https only; plain http to a loopback address is
# for test providers and must be allowed explicitly. Cached keys of an unreachable provider stay
# in use for this long after their last successful fetch.
OIDC_ALLOW_LOOPBACK_HTTP = env.bool("PORTCULLIS_OIDC_ALLOW_LOOPBACK_HTTP", default=False)
OIDC_KEYS_MAX_AGE_S = env.int("PORTCULLIS_OIDC_KEYS_MAX_AGE_S", default=7 * 24 * 3600)
# Sign-in throttle per source address (beyond the per-user lockout): failed attempts from one
# address within the window before it is refused for the rest of the window.
SIGNIN_IP_FAILURE_LIMIT = env.int("PORTCULLIS_SIGNIN_IP_FAILURE_LIMIT", default=50)
SIGNIN_IP_WINDOW_S = env.int("PORTCULLIS_SIGNIN_IP_WINDOW_S", default=15 * 60)
if SIGNIN_IP_FAILURE_LIMIT < 1 or SIGNIN_IP_WINDOW_S < 1:
    raise ImproperlyConfigured("PORTCULLIS_SIGNIN_IP_FAILURE_LIMIT and _WINDOW_S must be >= 1.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
