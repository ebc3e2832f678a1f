"""Celery tasks of the policies app (propagation lives here; see the propagation issue)."""

from __future__ import annotations

from celery import shared_task


@shared_task(
    name="policies.propagate_change",
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=8,
    soft_time_limit=60,
    time_limit=90,
)
def propagate_change(change_id: int) -> None:
    from policies import propagation

    propagation.propagate_change(change_id=change_id)


def enqueue_propagation(*, change_id: int, priority: bool) -> None:
    propagate_change.apply_async(
        args=[change_id], queue="priority" if priority else "celery", retry=False
    )
