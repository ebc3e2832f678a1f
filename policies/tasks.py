"""Celery tasks of the policies app: propagation of committed changes, and the sweep.

Tasks take ids, call ``policies.propagation`` and are idempotent: a change is claimed with
``SELECT … FOR UPDATE SKIP LOCKED`` and marked processed by a conditional UPDATE, so a
redelivered or duplicated message does nothing. ``acks_late`` keeps a message in the broker
until its task finished, so a killed worker's change is redelivered (and the sweep takes it
sooner, see ``propagation.STRANDED_AFTER_S``).

Each worker also keeps a heartbeat (``propagation.record_heartbeat``; ``propagation.status()``
shows its age): in Redis, or in the Django cache for the embedded default.
"""

from __future__ import annotations

import logging
import threading

from celery import shared_task
from celery.signals import task_postrun, task_prerun, worker_ready, worker_shutdown

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 1.0


@shared_task(
    bind=True,
    name="policies.propagate_change",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=8,
    soft_time_limit=60,
    time_limit=90,
)
def propagate_change(self, change_id: int) -> str:  # type: ignore[no-untyped-def]
    from policies import propagation

    outcome = propagation.propagate_change(change_id=change_id)
    retry = outcome in (propagation.Outcome.RETRY, propagation.Outcome.UNAVAILABLE)
    # Out of retries, the row is still pending and the sweep takes it from there.
    if retry and self.request.retries < self.max_retries:
        raise self.retry(countdown=propagation.backoff_s(self.request.retries + 1))
    return outcome


@shared_task(
    name="policies.sweep_outbox",
    soft_time_limit=30,
    time_limit=45,
    ignore_result=True,
)
def sweep_outbox() -> int:
    from policies import propagation

    return propagation.sweep()


def enqueue_propagation(*, change_id: int, priority: bool) -> None:
    propagate_change.apply_async(
        args=[change_id], queue="priority" if priority else "celery", retry=False
    )


# --- database connections ---------------------------------------------------------------------

# Celery's Django fixup closes the database connection before and after every task unless
# CELERY_DB_REUSE_MAX is set (console/settings.py sets it), so each propagation task paid a new
# PostgreSQL connection (about 6 ms of a 14 ms commit-to-decision lag). Instead, connections are
# handled as Django handles them around a request: kept for CONN_MAX_AGE, checked with
# CONN_HEALTH_CHECKS, and closed after an error, so a restarted PostgreSQL costs one failed
# attempt (retried) and not every task until the next recycle. Not around an eager task: it
# runs inside its caller's transaction.


@task_prerun.connect
def _db_before_task(task=None, **kwargs) -> None:  # type: ignore[no-untyped-def]
    from django.db import close_old_connections

    if not getattr(getattr(task, "request", None), "is_eager", False):
        close_old_connections()


@task_postrun.connect
def _db_after_task(task=None, **kwargs) -> None:  # type: ignore[no-untyped-def]
    from django.db import close_old_connections

    if not getattr(getattr(task, "request", None), "is_eager", False):
        close_old_connections()


# --- the worker heartbeat ---------------------------------------------------------------------

_stop = threading.Event()


def _beat(hostname: str) -> None:
    from policies import propagation, store

    # The embedded default's cache is a folder of files: a heartbeat every few seconds is plenty.
    interval = HEARTBEAT_INTERVAL_S if store.enabled() else 5 * HEARTBEAT_INTERVAL_S
    while not _stop.is_set():
        try:
            propagation.record_heartbeat(hostname)
        except Exception as exc:
            logger.warning("worker heartbeat not written: %s", exc)
        _stop.wait(interval)


@worker_ready.connect
def _start_heartbeat(sender=None, **kwargs) -> None:  # type: ignore[no-untyped-def]
    hostname = getattr(sender, "hostname", "worker")
    _stop.clear()
    threading.Thread(target=_beat, args=(hostname,), name="heartbeat", daemon=True).start()


@worker_shutdown.connect
def _stop_heartbeat(**kwargs) -> None:  # type: ignore[no-untyped-def]
    _stop.set()
