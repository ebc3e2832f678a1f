"""The Celery application: broker and cache come from settings (Redis, or the embedded broker)."""

import os

from celery import Celery
from celery.beat import PersistentScheduler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("portcullis")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class PunctualScheduler(PersistentScheduler):
    """Beat's persistent scheduler, minus a busy wait before every run.

    Celery's ``Scheduler.adjust`` wakes beat 10 ms before an entry is due; the entry is not due
    yet, the 10 ms early delay it asks for again comes out negative, and beat ticks in a loop
    without sleeping until the moment arrives. With the sweep due every second that burnt about
    1 % of a core, in a 10 ms burst right before each sweep, which showed as the decision API's
    p99 latency on a small machine. Waking on time costs nothing: the sweep is not precise to
    10 ms anyway.
    """

    def adjust(self, n: float | None, drift: float = -0.010) -> float | None:
        return n


app.conf.beat_scheduler = "console.celery:PunctualScheduler"

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
