"""Ending a federated console session: signing out, the idle timeout and the role session's
expiry are each audited as the role session (``role_session`` with its assumed-role ARN and
access key id), with the provider and subject it came from."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from identity import federation, services
from identity.federation_views import (
    FEDERATED_CREDENTIAL_SESSION_KEY,
    FEDERATED_LAST_SEEN_SESSION_KEY,
)
from identity.models import Role, TemporaryCredential
from tests.federation.conftest import META, create_provider, trust_policy

SESSION_ARN = "arn:aws:sts::111111111111:assumed-role/Viewer/alice@alice.example"


@pytest.fixture
def federated_session(client, account, root_actor, rogue_issuer):
    """A browser signed in to the console as Alice's Viewer role session, as the role choice
    leaves it (the sign-in itself is walked in test_console_signin)."""
    provider = create_provider(account, rogue_issuer.issuer, root_actor)
    services.create_role(
        account=account,
        role_name="Viewer",
        assume_role_policy_document=trust_policy(provider.arn, provider.host_and_path),
        actor=root_actor,
    )
    token = rogue_issuer.sign(
        {"sub": "alice", "aud": "portcullis-console", "email": "alice@alice.example"}
    )
    identity = federation.verify_id_token(account=account, token=token)
    issued = federation.start_console_role_session(
        identity=identity, role=Role.objects.get(name="Viewer"), meta=META
    )
    session = client.session
    session[FEDERATED_CREDENTIAL_SESSION_KEY] = issued.credential.access_key_id
    session[FEDERATED_LAST_SEEN_SESSION_KEY] = timezone.now().isoformat()
    session.save()
    return issued.credential


def assert_signed_in(client):
    response = client.get("/identity-providers/")
    assert response.status_code == 403
    assert f"User: {SESSION_ARN} is not authorized to perform" in response.content.decode()


def assert_signed_out(client):
    response = client.get("/identity-providers/")
    assert response.status_code == 302
    assert response["Location"].startswith("/signin/")


def logout_event() -> AuditEvent:
    return AuditEvent.objects.get(action="signin:ConsoleLogout")


@pytest.mark.django_db
def test_it_audits_a_federated_sign_out_as_the_role_session(client, federated_session):
    assert_signed_in(client)

    response = client.post("/signout/")

    assert response.status_code == 302
    assert response["Location"] == "/signin/"
    event = logout_event()
    assert (event.actor_kind, event.actor_arn, event.access_key_id) == (
        "role_session",
        SESSION_ARN,
        federated_session.access_key_id,
    )
    assert (event.category, event.result, event.account_id, event.resource_arn) == (
        "signin",
        "Success",
        "111111111111",
        SESSION_ARN,
    )
    assert event.request_parameters == {
        "Reason": "SignOut",
        "ProviderArn": federated_session.federated_provider_arn,
        "Subject": "alice",
    }
    assert_signed_out(client)


@pytest.mark.django_db
def test_it_audits_an_idle_federated_session_ending(client, account, federated_session):
    session = client.session
    idle = timedelta(seconds=account.session_idle_timeout_s + 1)
    session[FEDERATED_LAST_SEEN_SESSION_KEY] = (timezone.now() - idle).isoformat()
    session.save()

    response = client.get("/identity-providers/")

    assert response.status_code == 302
    assert response["Location"] == "/signin/oidc/"
    event = logout_event()
    assert (event.actor_kind, event.actor_arn) == ("role_session", SESSION_ARN)
    assert event.request_parameters["Reason"] == "IdleTimeout"
    assert_signed_out(client)


@pytest.mark.django_db
def test_it_audits_a_federated_session_whose_role_session_expired(client, federated_session):
    TemporaryCredential.objects.filter(pk=federated_session.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = client.get("/identity-providers/")

    assert response.status_code == 302
    event = logout_event()
    assert (event.actor_kind, event.actor_arn, event.access_key_id) == (
        "role_session",
        SESSION_ARN,
        federated_session.access_key_id,
    )
    assert event.request_parameters["Reason"] == "SessionEnded"
    assert_signed_out(client)
