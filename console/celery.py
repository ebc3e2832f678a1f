"""The Celery application: broker and cache come from settings (Redis, or the embedded broker)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("portcullis")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The beat schedule, in one place (seconds).
app.conf.beat_schedule = {
    # Propagation's safety net: re-marks pending changes and takes stranded ones (policies).
    "sweep-propagation-outbox": {
        "task": "policies.sweep_outbox",
        "schedule": 1.0,
        "options": {"expires": 5.0},
    },
    # OpenID Connect providers' discovery documents and signing keys (key rotation).
    "refresh-oidc-provider-keys": {
        "task": "identity.refresh_oidc_provider_keys",
        "schedule": 3600.0,
    },
    # Users inactive for longer than their account allows are disabled (PCI DSS 8.2.6).
    "disable-inactive-users": {"task": "identity.disable_inactive_users", "schedule": 3600.0},
}
