"""Sign-in through the Django test client: both steps, session cycling, redirects."""

from __future__ import annotations

from django.test import Client

from audit.models import AuditEvent
from identity.request_context import (
    AUTHENTICATED_AT_SESSION_KEY,
    MFA_AUTHENTICATED_AT_SESSION_KEY,
)
from tests.signin.conftest import ALICE_PASSWORD, code_at, enrol


def signin(client: Client, password: str = ALICE_PASSWORD, **extra: str):
    data = {"account": "111111111111", "user_name": "alice", "password": password}
    data.update(extra)
    return client.post("/signin/", data)


def test_it_signs_in_without_mfa_and_cycles_the_session_key(client, alice):
    client.get("/signin/")
    before = client.session.session_key

    response = signin(client, user_name="ALICE")

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session.session_key != before
    assert client.session[AUTHENTICATED_AT_SESSION_KEY]
    assert MFA_AUTHENTICATED_AT_SESSION_KEY not in client.session
    assert client.get("/my/").status_code == 200
    event = AuditEvent.objects.filter(category="signin", action="signin:ConsoleLogin").last()
    assert event.result == "Success"
    assert event.actor_arn == alice.arn


def test_it_cycles_the_key_at_the_password_step_and_again_after_mfa(client, alice):
    _device, seed = enrol(alice)
    client.get("/signin/")
    first = client.session.session_key

    response = signin(client)
    assert response["Location"] == "/signin/mfa/"
    second = client.session.session_key
    assert second != first
    # Not signed in yet: the console is out of reach.
    assert client.get("/my/")["Location"].startswith("/signin/")

    response = client.post("/signin/mfa/", {"code": code_at(seed, 1)})

    assert response.status_code == 302
    third = client.session.session_key
    assert third not in (first, second)
    assert client.session[MFA_AUTHENTICATED_AT_SESSION_KEY]
    assert client.get("/my/").status_code == 200
