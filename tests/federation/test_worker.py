"""The key fetch on a real Celery worker: creating a provider queues the fetch after commit, the
worker (a separate process on the test database) fetches the discovery document and keys, and
tokens then verify with the keys it stored."""

from __future__ import annotations

import re
import time

import pytest

from identity import federation
from tests.federation.conftest import create_provider

LOOPBACK_SETTING = "PORTCULLIS_OIDC_ALLOW_LOOPBACK_HTTP"


@pytest.fixture
def loopback_worker(celery_worker):
    """The session's worker (tests/worker.py), restarted so that it may reach the test's
    issuer on loopback, as the test process may (production refuses loopback). Only one
    worker consumes the queues, so no worker without the setting can take the task; the
    worker is restarted without the setting afterwards."""
    celery_worker.stop()
    celery_worker.extra_env[LOOPBACK_SETTING] = "1"
    try:
        celery_worker.start()
        yield celery_worker
    finally:
        celery_worker.stop()
        celery_worker.extra_env.pop(LOOPBACK_SETTING, None)
        celery_worker.start()


def test_it_fetches_a_new_providers_keys_on_the_worker(
    transactional_db, account, root_actor, rogue_issuer, loopback_worker
):
    provider = create_provider(account, rogue_issuer.issuer, root_actor)

    deadline = time.monotonic() + 30
    while provider.jwks_fetched_at is None and time.monotonic() < deadline:
        time.sleep(0.1)
        provider.refresh_from_db()

    assert provider.jwks_fetched_at is not None, loopback_worker.log_tail()
    assert [k["kid"] for k in provider.jwks["keys"]] == ["rogue-1"]
    assert provider.discovery_document["jwks_uri"] == f"{rogue_issuer.issuer}/jwks"
    assert rogue_issuer.fetches == ["/.well-known/openid-configuration", "/jwks"]
    # The worker process ran it (this process only queued it).
    assert re.search(
        r"Task identity\.fetch_oidc_provider_keys\[[0-9a-f-]+\] succeeded in [0-9.]+s: True",
        loopback_worker.log_tail(400),
    )

    # A token verifies with the keys the worker stored; nothing is fetched again.
    token = rogue_issuer.sign({"sub": "alice", "aud": "portcullis-console"})
    identity = federation.verify_id_token(account=account, token=token)
    assert identity.subject == "alice"
    assert rogue_issuer.fetches == ["/.well-known/openid-configuration", "/jwks"]
