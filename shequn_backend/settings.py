"""Settings for shequn-backend, read from environment variables.

With no environment at all the service runs in the *embedded default* mode
only if DEBUG is on: SQLite file, Celery tasks eager, local-memory cache. In
production (DEBUG off) it refuses to start without a real SECRET_KEY.
"""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
INSECURE_SECRET_KEY = "django-insecure-embedded-default-do-not-use-in-production"

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=INSECURE_SECRET_KEY)
if not DEBUG and (SECRET_KEY == INSECURE_SECRET_KEY or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "SECRET_KEY is missing or insecure. Set SECRET_KEY to a random string of "
        "at least 50 characters (python -c 'import secrets; print(secrets.token_urlsafe(64))'), "
        "or set DEBUG=1 for local development."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc as our own static files: the docs page works offline
    "members",
    "commerce",
    "trust",
    "shequn_backend",  # last: project-wide commands (seed_demo) and tasks that wire the apps
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "shequn_backend.middleware.RejectNulBytesMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Sessions, logins and messages serve the admin; API requests skip them (bearer tokens).
    "shequn_backend.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "shequn_backend.middleware.AuthenticationMiddleware",
    "shequn_backend.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "shequn_backend.urls"
WSGI_APPLICATION = "shequn_backend.wsgi.application"
AUTH_USER_MODEL = "members.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "shequn_backend" / "templates"],
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


def _with_socket_health_check(database: dict) -> dict:
    """PostgreSQL's connections are health-checked by a poll of their socket, not a round trip
    (shequn_backend/postgresql)."""
    if database["ENGINE"] == "django.db.backends.postgresql":
        database["ENGINE"] = "shequn_backend.postgresql"
    return database


DATABASES = {
    "default": _with_socket_health_check(
        env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    )
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# A connection lives as long as its thread (checked before each request, CONN_HEALTH_CHECKS). One
# closed after a quiet minute (the former 60 s) made a flash sale start on new PostgreSQL backends,
# which read their catalogs and plan everything afresh: the 200-buyer race's p99 doubled
# (docs/benchmarks.md). CONN_MAX_AGE=<seconds> recycles them; 0 behind PgBouncer.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=None)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default: serialise writers instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
else:
    # The few hot reads of fixed SQL (``shequn_backend.sql.prepared_cursor``) are prepared on each
    # connection at first use, so PostgreSQL parses and plans them once. Django's own cursors never
    # prepare. Set 0 behind a pooler that cannot keep prepared statements (PgBouncer before 1.21,
    # or without max_prepared_statements).
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        0 if env.bool("DATABASE_PREPARED_STATEMENTS", default=True) else None
    )
# A PostgreSQL streaming replica (optional): reports, exports and dashboards read from it
# (shequn_backend/db.py); tests point it at the test database (TEST MIRROR).
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = {
        **_with_socket_health_check(env.db_url("DATABASE_REPLICA_URL")),
        "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"MIRROR": "default"},
    }
REPLICA_READS = env.bool("REPLICA_READS", default=True)
DATABASE_ROUTERS = ["shequn_backend.db.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
if CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache":
    # The cache is an optimisation (throttles, activity counters): Redis down must not fail a request.
    DJANGO_REDIS_IGNORE_EXCEPTIONS = True
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="zh-hans")
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "shequn_backend" / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")
# Hashed, compressed static files after `collectstatic` in production; plain files otherwise.
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default=not DEBUG)
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Request size limits: the API takes small JSON bodies only.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# --- Security: strict unless DEBUG is on. ---------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["shequn_backend.api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["shequn_backend.api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "shequn_backend.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "shequn_backend.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "shequn_backend.api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "login": env.str("LOGIN_THROTTLE_RATE", default="10/min"),
        # Anonymous browsing of the public community pages, per address (members are not limited).
        "anon_browse": env.str("ANON_BROWSE_THROTTLE_RATE", default="120/min"),
    },
    "COERCE_DECIMAL_TO_STRING": True,
    # Throttles key anonymous callers by address: the right-most of X-Forwarded-For after this many
    # trusted reverse proxies; none by default (REMOTE_ADDR, whatever the client sends).
    "NUM_PROXIES": env.int("TRUSTED_PROXY_COUNT", default=0),
}
# Public pages (community list and detail) are served from the cache for this long; 0 turns it off.
PUBLIC_CACHE_SECONDS = env.int("PUBLIC_CACHE_SECONDS", default=10)
# API tokens (django-rest-knox): one per device, stored hashed, valid this many days from login.
API_TOKEN_TTL_DAYS = env.int("API_TOKEN_TTL_DAYS", default=30)
# Live tokens a user may hold (devices); a new login drops the oldest beyond this.
API_TOKENS_PER_USER = env.int("API_TOKENS_PER_USER", default=10)
REST_KNOX = {"TOKEN_TTL": timedelta(days=API_TOKEN_TTL_DAYS), "AUTH_HEADER_PREFIX": "Bearer"}
SPECTACULAR_SETTINGS = {
    "TITLE": "shequn-backend API",
    "DESCRIPTION": "REST API of shequn-backend (社群电商) for the WeChat mini-program.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "PaymentProviderEnum": "commerce.payments.base.SHOWN_PROVIDERS",
        "OnlinePaymentProviderEnum": "commerce.payments.base.ONLINE_PROVIDERS",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Path parameters as the URL converters match them (anything else is a 404).
    "PATH_CONVERTER_OVERRIDES": {
        "slug": {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"},
        "int": {"type": "integer", "minimum": 0},
    },
}

# --- WeChat mini-program (login, server APIs) -------------------------------
WECHAT_APP_ID = env.str("WECHAT_APP_ID", default="")
WECHAT_APP_SECRET = env.str("WECHAT_APP_SECRET", default="")
WECHAT_TIMEOUT_SECONDS = env.float("WECHAT_TIMEOUT_SECONDS", default=5.0)
# Every mini-program server API (/sns/jscode2session, /cgi-bin/stable_token ...) is called under it.
WECHAT_API_BASE = env.str("WECHAT_API_BASE", default="https://api.weixin.qq.com")


def _pem(name: str) -> str:
    """A PEM given as text (``NAME``) or as a file (``NAME_PATH``)."""
    path = env.str(f"{name}_PATH", default="")
    if path:
        with open(path, encoding="ascii") as pem:
            return pem.read()
    return env.str(name, default="", multiline=True)


# --- WeChat Pay (API v3; see docs/wechat.md) -------------------------------------
WECHATPAY_MODE = env.str("WECHATPAY_MODE", default="direct")  # direct | partner
WECHATPAY_MCHID = env.str("WECHATPAY_MCHID", default="")
WECHATPAY_SP_APPID = env.str("WECHATPAY_SP_APPID", default="")
WECHATPAY_PRIVATE_KEY = _pem("WECHATPAY_PRIVATE_KEY")
WECHATPAY_CERT_SERIAL_NO = env.str("WECHATPAY_CERT_SERIAL_NO", default="")
WECHATPAY_APIV3_KEY = env.str("WECHATPAY_APIV3_KEY", default="")
WECHATPAY_PUBLIC_KEY = _pem("WECHATPAY_PUBLIC_KEY")
WECHATPAY_PUBLIC_KEY_ID = env.str("WECHATPAY_PUBLIC_KEY_ID", default="")
WECHATPAY_API_BASE = env.str("WECHATPAY_API_BASE", default="https://api.mch.weixin.qq.com")
WECHATPAY_NOTIFY_URL = env.str("WECHATPAY_NOTIFY_URL", default="")
WECHATPAY_TIMEOUT_SECONDS = env.float("WECHATPAY_TIMEOUT_SECONDS", default=8.0)
# A notification whose timestamp is further off than this is refused (replays).
WECHATPAY_NOTIFY_TOLERANCE_SECONDS = env.int("WECHATPAY_NOTIFY_TOLERANCE_SECONDS", default=300)

# --- Commission withdrawals (提现) and rules ----------------------------------------
# The smallest withdrawal (yuan), the platform's fee as a fraction of it, and the WeChat Pay
# merchant-transfer scene (1005 佣金报酬: its report infos 岗位类型 and 报酬说明 are sent).
WITHDRAWAL_MINIMUM = Decimal(env.str("WITHDRAWAL_MINIMUM", default="10.00"))
WITHDRAWAL_FEE_RATE = Decimal(env.str("WITHDRAWAL_FEE_RATE", default="0"))
WECHATPAY_TRANSFER_SCENE_ID = env.str("WECHATPAY_TRANSFER_SCENE_ID", default="1005")
# What the transfer's report infos say (岗位类型, 报酬说明) and the remark the member sees (<= 32).
WITHDRAWAL_JOB_TYPE = env.str("WITHDRAWAL_JOB_TYPE", default="社群推广员")
WITHDRAWAL_PAY_DESCRIPTION = env.str("WITHDRAWAL_PAY_DESCRIPTION", default="社群推广佣金")
WITHDRAWAL_TRANSFER_REMARK = env.str("WITHDRAWAL_TRANSFER_REMARK", default="佣金提现")
# sync_withdrawals cancels a transfer the member has not confirmed for this many hours.
WITHDRAWAL_CONFIRM_HOURS = env.int("WITHDRAWAL_CONFIRM_HOURS", default=24)
# Both commission levels together may not exceed this percent of an order (at most 50).
COMMISSION_RATE_CEILING = Decimal(env.str("COMMISSION_RATE_CEILING", default="30"))

# --- Payment providers ----------------------------------------------------------
# The provider when neither the member nor the community names one ("" = the first configured
# of wechatpay, stripe, sandbox). The sandbox confirms payments by itself: demo and local runs only.
PAYMENT_DEFAULT_PROVIDER = env.str("PAYMENT_DEFAULT_PROVIDER", default="")
PAYMENT_SANDBOX_ENABLED = env.bool("PAYMENT_SANDBOX_ENABLED", default=DEBUG)
# sync_payments queries the payments of orders cancelled this many hours ago at most (later news:
# the trade bill's reconciliation shows it); reconcile_payments looks back this many bill days.
PAYMENT_SYNC_CANCELLED_HOURS = env.int("PAYMENT_SYNC_CANCELLED_HOURS", default=6)
WECHATPAY_RECONCILE_DAYS = env.int("WECHATPAY_RECONCILE_DAYS", default=3)
# The web worker's timeout (gunicorn's --timeout, read by gunicorn.conf.py): a request killed
# there answers an HTML 500 and leaves its work half done.
WEB_WORKER_TIMEOUT_SECONDS = env.int("WEB_WORKER_TIMEOUT_SECONDS", default=30)
# The total time one request of ours may wait on payment providers (every connect, read, retry
# and backoff together). The check commerce.E001 keeps it at most half the worker's timeout.
PAYMENT_PROVIDER_TIMEOUT_SECONDS = env.float("PAYMENT_PROVIDER_TIMEOUT_SECONDS", default=12.0)
# Seconds the sandbox waits before it notifies a payment or a refund (none when tasks run eagerly).
PAYMENT_SANDBOX_NOTIFY_DELAY_SECONDS = env.int("PAYMENT_SANDBOX_NOTIFY_DELAY_SECONDS", default=2)

# --- Money ---------------------------------------------------------------------
# Currencies entry plans may be priced in (ISO 4217 codes the payment setup can charge and settle).
SUPPORTED_CURRENCIES = env.list("SUPPORTED_CURRENCIES", default=["CNY"])

# --- Stripe -------------------------------------------------------------------
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
# The library retries connection errors, 409s and 5xx itself, with the same idempotency key, while
# PAYMENT_PROVIDER_TIMEOUT_SECONDS leaves time; each try's connect and read are bounded as well.
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
STRIPE_CONNECT_TIMEOUT_SECONDS = env.float("STRIPE_CONNECT_TIMEOUT_SECONDS", default=3.0)
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=8.0)
# Sent as allowed_payment_method_types: what a customer may pay a PaymentIntent with.
STRIPE_PAYMENT_METHOD_TYPES = env.list(
    "STRIPE_PAYMENT_METHOD_TYPES", default=["card", "alipay", "wechat_pay"]
)
# The smallest payment per currency where Stripe's table has none (it must convert to 0.50 USD):
# "CNY=4.00,TWD=20". Orders below it are refused before Stripe is called (amount_below_minimum).
STRIPE_MINIMUM_AMOUNTS = env.dict("STRIPE_MINIMUM_AMOUNTS", default={"CNY": "4.00"})

# --- Commerce -------------------------------------------------------------------
# How long an unpaid order holds its stock before release_stock_holds gives it back.
ORDER_HOLD_MINUTES = env.int("ORDER_HOLD_MINUTES", default=30)
# Shipments the buyer has not confirmed are confirmed (confirm_receipts) this many days after shipping.
AUTO_CONFIRM_DAYS = env.int("AUTO_CONFIRM_DAYS", default=10)
# After-sale requests (售后) are open until this many days after delivery; commissions wait for it too.
AFTER_SALE_DAYS = env.int("AFTER_SALE_DAYS", default=7)
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "ProductKindEnum": "commerce.models.Product.Kind",
        "ProductDeliveryEnum": "commerce.models.Product.Delivery",
        "OrderKindEnum": "commerce.models.Order.Kind",
        "OrderStatusEnum": "commerce.models.Order.Status",
        "TicketStatusEnum": "commerce.models.Ticket.Status",
        "OrderPaymentStatusEnum": "commerce.models.Order.PaymentStatus",
        "OrderFulfilmentStatusEnum": "commerce.models.Order.FulfilmentStatus",
        "CouponKindEnum": "commerce.models.Coupon.Kind",
        "WithdrawalStatusEnum": "commerce.models.Withdrawal.Status",
    }
)

# --- Celery -------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
# Eager only in the embedded default (no broker configured).
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=900)
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request queueing after commit must not wait for a broker that is down (kombu retries for
# seconds by default): one quick retry, then ``shequn_backend.events.enqueue`` logs and moves on.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# Periodic jobs scan the database (no long countdowns). The beat schedule is built from the jobs
# each app declares in its jobs.py (shequn_backend/celery.py); documented in the README.

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
# The stripe library logs every request at INFO; keep it quiet unless asked.
LOGGING["loggers"]["stripe"] = {"level": env.str("STRIPE_LOG_LEVEL", default="WARNING")}

# --- Community health (trust) ------------------------------------------------------
# Records each member's active days in a community (DAU/MAU on the owner's dashboard).
MIDDLEWARE += ["trust.middleware.ActivityMiddleware"]

# --- Jobs: commissions, repurchase, renewals, stock holds (issue 7) ---------------------
# Repurchase reminders: due cycles from this many days before today (catch-up after downtime)
# to this many days ahead, judged on paid goods bought within the look-back window.
REPURCHASE_LOOKBACK_DAYS = env.int("REPURCHASE_LOOKBACK_DAYS", default=365)
REPURCHASE_STALE_DAYS = env.int("REPURCHASE_STALE_DAYS", default=14)
REPURCHASE_LEAD_DAYS = env.int("REPURCHASE_LEAD_DAYS", default=1)
# Renewal reminders go to memberships expiring within this many days.
RENEWAL_REMIND_DAYS = env.int("RENEWAL_REMIND_DAYS", default=7)
# Sends outbox notifications: f(*, notification) -> None raising on failure, or a transport object
# (commerce.services.notifications). Empty: WeChat subscription messages when WECHAT_APP_ID and
# WECHAT_APP_SECRET are set, else the log.
NOTIFICATION_TRANSPORT = env.str("NOTIFICATION_TRANSPORT", default="")
# Messages in flight at once (threads), attempts before a message is a dead letter, messages per
# member and day (0: no cap; the rest wait for the next morning).
NOTIFICATION_CONCURRENCY = env.int("NOTIFICATION_CONCURRENCY", default=32)
NOTIFICATION_MAX_ATTEMPTS = env.int("NOTIFICATION_MAX_ATTEMPTS", default=5)
NOTIFICATION_DAILY_CAP = env.int("NOTIFICATION_DAILY_CAP", default=5)
# No message goes out between these hours (Asia/Shanghai); they wait. Empty: no quiet hours.
QUIET_HOURS = env.str("QUIET_HOURS", default="22-8")

# --- WeChat subscription messages (订阅消息; docs/wechat.md) ---------------------------------
# The template id of each kind of message (from the mini-program's 订阅消息 console); a kind
# without one is not sent (the notification shows "not sendable").
WECHAT_TEMPLATE_REPURCHASE = env.str("WECHAT_TEMPLATE_REPURCHASE", default="")
WECHAT_TEMPLATE_RENEWAL = env.str("WECHAT_TEMPLATE_RENEWAL", default="")
WECHAT_TEMPLATE_SHIPPED = env.str("WECHAT_TEMPLATE_SHIPPED", default="")
WECHAT_TEMPLATE_PAYOUT = env.str("WECHAT_TEMPLATE_PAYOUT", default="")
# Per kind, each template key and what fills it (a key of the notification's data, or title/body).
# Values are cut to WeChat's limit for the key's type (thing 20 characters, phrase 5 ...).
WECHAT_TEMPLATE_FIELDS = env.json(
    "WECHAT_TEMPLATE_FIELDS",
    default={
        "repurchase": {"thing1": "product", "date2": "due_at", "thing3": "community", "thing4": "body"},
        "renewal": {"thing1": "community", "date2": "due_at", "thing3": "body"},
        "shipped": {
            "character_string1": "order_no",
            "thing2": "items",
            "thing3": "carrier",
            "character_string4": "tracking_no",
            "time5": "shipped_at",
        },
        "payout": {"amount1": "amount", "phrase2": "status", "time3": "time", "thing4": "body"},
    },
)
# Which version of the mini-program a message opens: formal, trial or developer.
WECHAT_MINIPROGRAM_STATE = env.str("WECHAT_MINIPROGRAM_STATE", default="formal")
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["ReminderKindEnum"] = "commerce.models.Reminder.Kind"

# --- Finance reports (issue 8) -----------------------------------------------------------
# Exports up to this many rows download at once from the admin; larger ones run as a Celery job.
REPORTS_DIRECT_MAX_ROWS = env.int("REPORTS_DIRECT_MAX_ROWS", default=20_000)
# Rows fetched per round trip from the server-side cursor (memory stays flat whatever the export size).
REPORTS_CHUNK_SIZE = env.int("REPORTS_CHUNK_SIZE", default=10_000)
