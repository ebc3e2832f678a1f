"""Celery tasks of the identity app: fetching OpenID Connect providers' discovery documents and
signing keys (see ``identity.federation``); disabling inactive users (``identity.signin``)."""

from __future__ import annotations

from celery import shared_task

from identity import federation, signin
from identity.models import OIDCProvider


@shared_task(
    name="identity.fetch_oidc_provider_keys",
    acks_late=True,
    soft_time_limit=30,
    time_limit=45,
)
def fetch_oidc_provider_keys(provider_id: int) -> bool:
    """Fetch one provider's discovery document and JWKS. Idempotent: a redelivery fetches the
    same documents again. A failure keeps the cached keys and records why; the beat refresh
    tries again, so the task itself does not retry (a provider that is down would otherwise
    keep a worker busy)."""
    return federation.refresh_oidc_provider_keys(provider_id=provider_id)


@shared_task(name="identity.refresh_oidc_provider_keys", soft_time_limit=60, time_limit=90)
def refresh_oidc_provider_keys() -> int:
    """Beat: queue a key fetch for every provider; returns how many were queued."""
    ids = list(OIDCProvider.objects.values_list("pk", flat=True))
    for provider_id in ids:
        fetch_oidc_provider_keys.delay(provider_id)
    return len(ids)


@shared_task(name="identity.disable_inactive_users", soft_time_limit=300, time_limit=360)
def disable_inactive_users() -> int:
    """Beat: disable users inactive for longer than their account allows (PCI DSS v4 8.2.6).
    Idempotent: each user is disabled by a conditional UPDATE, so a redelivered or overlapping
    run disables and audits nobody twice. Returns how many were disabled."""
    return signin.disable_inactive_users()
