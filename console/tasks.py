"""Celery tasks of the console: generating the credential report."""

from __future__ import annotations

from celery import shared_task


@shared_task(
    name="console.generate_credential_report",
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=600,
    time_limit=660,
)
def generate_credential_report(account_id: str, generation: int) -> bool:
    """Idempotent: a redelivered or stale generation changes nothing (see
    ``console.reports.build_credential_report``)."""
    from console import reports

    return reports.build_credential_report(account_id=account_id, generation=generation)
